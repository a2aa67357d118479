"""Policy sets: the first matching set governs a request; otherwise the default set."""

from capsem_proxy.config import PolicySetMatch, PolicySetSettings, PolicySettings, Settings
from capsem_proxy.policy_sets import PolicySelector

DEBUG = PolicySettings(class_path="capsem.policies.debug_policy.DebugPolicy")
STRICT = PolicySettings(class_path="tests.policies.test_loader.KeywordPolicy", options={"keyword": "x"}, name="Strict")


def _names(pipeline):
    return [policy.name for policy in pipeline.policies]


def test_sets_match_by_tenant_provider_operation_and_model_glob():
    settings = Settings(
        policies=[DEBUG],
        policy_sets=[
            PolicySetSettings(match=PolicySetMatch(tenants=["t-1"]), policies=[STRICT]),
            PolicySetSettings(match=PolicySetMatch(providers=["openai"], models=["gpt-4*"]), policies=[STRICT],
                              inherit=True),
            PolicySetSettings(match=PolicySetMatch(operations=["messages"]), policies=[]),
        ],
    )
    selector = PolicySelector(settings)
    assert _names(selector.select("t-1", "gemini", "generate", "gemini-2.0")) == ["Strict"]
    assert _names(selector.select("t-2", "openai", "chat", "gpt-4o")) == ["Debug", "Strict"]
    assert _names(selector.select("t-2", "openai", "chat", "gpt-3.5")) == ["Debug"]
    assert _names(selector.select("t-2", "anthropic", "messages", "claude")) == []
    assert len(selector.pipelines) == 4


def test_no_sets_means_the_default_for_everyone():
    selector = PolicySelector(Settings(policies=[DEBUG]))
    assert selector.select("any", "openai", "chat", "m") is selector.default
