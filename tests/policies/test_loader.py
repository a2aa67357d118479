"""Policies load by import path, CAPSEM ones run unchanged, bad configs stop with a clear message."""


import asyncio

import pytest
from capsem.models import Decision as CapsemDecision
from capsem.models import Reason
from capsem.models import Verdict as CapsemVerdict
from capsem.policies import Policy as CapsemPolicy
from capsem.policies.debug_policy import DebugPolicy

from capsem_proxy.config import ConfigError, PolicySettings, Settings
from capsem_proxy.decisions import Verdict
from capsem_proxy.exchange import Exchange, Message, ToolDefinition
from capsem_proxy.hooks import ModelCall, RequestContext
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policies.loader import load_policies


class KeywordPolicy(CapsemPolicy):
    """A custom CAPSEM policy configured through from_config."""

    def __init__(self, keyword: str):
        super().__init__(name="Keyword", description="blocks a keyword", authors="tests", url="")
        self.keyword = keyword
        self.seen = []

    async def on_model_call(self, invocation_id, agent, model_name, system_instructions, prompt, media):
        self.seen.append((invocation_id, agent.name, model_name, system_instructions, prompt))
        if self.keyword in prompt:
            return CapsemDecision(verdict=CapsemVerdict.BLOCK, reason=Reason.POLICY_VIOLATION,
                                  details=f"found {self.keyword}")
        return CapsemDecision(verdict=CapsemVerdict.ALLOW, reason=Reason.SAFE)

    @classmethod
    def from_config(cls, config):
        if "keyword" not in config:
            raise ValueError("keyword is required")
        return cls(config["keyword"])


def _context(prompt, tools=()):
    exchange = Exchange("openai", "chat", model="gpt-x", system="be nice",
                        messages=[Message("user", prompt)], tools=list(tools))
    return RequestContext("req-1", "tenant", "openai", "chat", exchange, agent_id="agent-7")


async def test_debug_policy_blocks_prompt_and_tool_names():
    pipeline = Pipeline(load_policies([PolicySettings(class_path="capsem.policies.debug_policy.DebugPolicy")]))
    outcome = await pipeline.check_request(_context("please capsem_block this"))
    assert outcome.blocked
    assert outcome.governing.details == "Detected 'capsem_block' in prompt"
    outcome = await pipeline.check_request(_context("fine", [ToolDefinition("run_capsem_block_tool")]))
    assert outcome.blocked and outcome.governing.hook == "on_tool_call"
    assert (await pipeline.check_request(_context("fine", [ToolDefinition("weather")]))).governing is None


async def test_custom_capsem_policy_gets_capsem_arguments():
    loaded = load_policies([PolicySettings(class_path=f"{__name__}.KeywordPolicy", options={"keyword": "xyzzy"})])
    policy = loaded[0].policy.capsem_policy
    outcome = await Pipeline(loaded).check_request(_context("say xyzzy"))
    assert outcome.governing.verdict is Verdict.BLOCK
    assert outcome.governing.policy == "Keyword"
    assert policy.seen == [("req-1", "agent-7", "gpt-x", "be nice", "say xyzzy")]


class AwaitingPolicy(KeywordPolicy):
    """A CAPSEM policy whose request hook awaits."""

    async def on_model_call(self, invocation_id, agent, model_name, system_instructions, prompt, media):
        await asyncio.sleep(0)
        return await super().on_model_call(invocation_id, agent, model_name, system_instructions, prompt, media)


async def test_a_capsem_hook_that_never_awaits_runs_as_a_plain_function():
    loaded = load_policies([PolicySettings(class_path=f"{__name__}.KeywordPolicy", options={"keyword": "xyzzy"})])
    assert set(loaded[0].sync_hooks) == {"on_model_call"}
    assert loaded[0].sync_hooks["on_model_call"](
        ModelCall(_context("say xyzzy"), "gpt-x", "be nice", "say xyzzy", [])).details == "found xyzzy"
    waiting = load_policies([PolicySettings(class_path=f"{__name__}.AwaitingPolicy", options={"keyword": "xyzzy"})])
    assert waiting[0].sync_hooks == {}
    outcome = await Pipeline(waiting).check_request(_context("say xyzzy"))
    assert outcome.blocked and waiting[0].policy.capsem_policy.seen[0][-1] == "say xyzzy"


def test_custom_policy_only_reports_the_hooks_it_overrides():
    loaded = load_policies([PolicySettings(class_path=f"{__name__}.KeywordPolicy", options={"keyword": "k"})])
    assert loaded[0].implements("on_model_call")
    assert not loaded[0].implements("on_model_response")


class LoudDebugPolicy(DebugPolicy):
    """A DebugPolicy that does read answers: its own hook, though of the same name."""

    async def on_model_response(self, invocation_id, agent, response, thoughts, media):
        return CapsemDecision(verdict=CapsemVerdict.ALLOW, reason=Reason.SAFE)


class QuietDebugPolicy(DebugPolicy):
    """Inherits DebugPolicy's answer hooks unchanged."""


@pytest.mark.parametrize(
    "class_path", ["capsem.policies.debug_policy.DebugPolicy", "debug", f"{__name__}.QuietDebugPolicy"]
)
def test_debug_policy_named_by_path_reads_no_answers_like_the_default(class_path):
    """Its answer hooks always allow: an answer is not decoded, nor held back, for them."""
    explicit = Pipeline(load_policies([PolicySettings(class_path=class_path)]))
    default = Pipeline(load_policies(Settings().policies))
    for pipeline in (explicit, default):
        assert not pipeline.reads_answer_text()
        assert pipeline.has_response_policies()  # emitted tool calls are still checked
    assert explicit.policies[0].implements("on_model_call") and explicit.policies[0].implements("on_tool_call")
    assert not explicit.policies[0].implements("on_tool_response")


def test_a_debug_policy_overriding_its_answer_hook_reads_answers():
    pipeline = Pipeline(load_policies([PolicySettings(class_path=f"{__name__}.LoudDebugPolicy")]))
    assert pipeline.reads_answer_text()


@pytest.mark.parametrize(
    ("class_path", "options", "message"),
    [
        ("no_such_module.Policy", {}, "cannot import module 'no_such_module'"),
        ("capsem.policies.debug_policy.Missing", {}, "has no 'Missing'"),
        ("NoDots", {}, "unknown policy 'NoDots'"),
        (f"{__name__}.KeywordPolicy", {}, "keyword is required"),
        ("collections.OrderedDict", {}, "implements none of"),
    ],
)
def test_bad_policy_config_names_the_key(class_path, options, message):
    with pytest.raises(ConfigError) as error:
        load_policies([PolicySettings(class_path=class_path, options=options)], source="config x.yaml")
    assert message in str(error.value)
    assert "config x.yaml: policies[0]" in str(error.value)


def test_disabled_capsem_policy_is_skipped():
    settings = PolicySettings(class_path="capsem.policies.debug_policy.DebugPolicy", options={"enabled": False})
    assert load_policies([settings]) == []


async def test_capsem_config_directory_loads_debug_toml(tmp_path):
    (tmp_path / "debug.toml").write_text("enabled = true\nfail_open = false\ntimeout_ms = 50\n")
    loaded = load_policies([], policy_dir=tmp_path)
    assert [policy.name for policy in loaded] == ["Debug"]
    assert loaded[0].timeout_s == 0.05
    outcome = await Pipeline(loaded).check_request(_context("capsem_block please"))
    assert outcome.blocked


def test_config_directory_file_naming_a_class(tmp_path):
    (tmp_path / "custom.toml").write_text(f'class = "{__name__}.KeywordPolicy"\nkeyword = "zork"\n')
    loaded = load_policies([], policy_dir=tmp_path)
    assert loaded[0].policy.capsem_policy.keyword == "zork"


@pytest.mark.parametrize(
    ("file_name", "text", "message"),
    [
        ("mystery.toml", "enabled = true", "unknown policy 'mystery'"),
        ("debug.toml", "enabled = [", "debug.toml"),
        ("custom.toml", f'class = "{__name__}.KeywordPolicy"', "keyword is required"),
    ],
)
def test_bad_config_directory_names_the_file(tmp_path, file_name, text, message):
    (tmp_path / file_name).write_text(text)
    with pytest.raises(ConfigError) as error:
        load_policies([], policy_dir=tmp_path)
    assert message in str(error.value)
    assert file_name in str(error.value)


def test_validate_config_fails_on_a_broken_policy(tmp_path, capsys):
    from capsem_proxy.cli import main

    config = tmp_path / "proxy.yaml"
    config.write_text("policies:\n  - class: no_such_module.Policy\n")
    assert main(["validate-config", str(config)]) == 2
    error = capsys.readouterr().err
    assert "policies[0].class" in error and "no_such_module" in error and str(config) in error
    config.write_text("policies:\n  - class: capsem.policies.debug_policy.DebugPolicy\n")
    assert main(["validate-config", str(config)]) == 0


def test_validate_config_refuses_an_unknown_audit_store(tmp_path, capsys):
    from capsem_proxy.cli import main

    config = tmp_path / "proxy.yaml"
    config.write_text("audit: {url: 'mongodb://x'}\n")
    assert main(["validate-config", str(config)]) == 2
    assert "audit.url" in capsys.readouterr().err


def test_capsem_pii_policy_with_bad_options_stops_with_the_file_named(tmp_path):
    (tmp_path / "pii.toml").write_text("enabled = true\n")
    with pytest.raises(ConfigError) as error:
        load_policies([], policy_dir=tmp_path)
    assert "pii.toml" in str(error.value) and "must include 'entity_decisions'" in str(error.value)
