"""usage-rules: model allow/deny lists (global and per tenant), output-token caps, prompt and
request size limits, allowed media types."""

from __future__ import annotations

import pytest

from capsem_proxy.config import ConfigError, PolicySettings
from capsem_proxy.decisions import Verdict
from capsem_proxy.exchange import Exchange, MediaPart, Message
from capsem_proxy.hooks import ModelCall, RequestContext
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policies.loader import load_policies
from capsem_proxy.policies.usage_rules import UsageRulesPolicy
from tests.work import calls


def _event(model="gpt-4o-mini", prompt="hello", *, system="", max_output_tokens=None, request_bytes=0,
           media=(), tenant_id="tenant-a") -> ModelCall:
    exchange = Exchange("openai", "chat", model=model, system=system,
                        messages=[Message("user", prompt, media=list(media))],
                        max_output_tokens=max_output_tokens, request_bytes=request_bytes)
    context = RequestContext("req-1", tenant_id, "openai", "chat", exchange)
    return ModelCall(context, model, system, exchange.prompt, exchange.media)


def _check(options, **event):
    return UsageRulesPolicy.from_config(options).check(_event(**event))


def test_models_off_the_allow_list_are_refused():
    options = {"allow_models": ["gpt-4o-mini", "claude-3-5-haiku*", "gemini-*-flash"]}
    assert _check(options, model="gpt-4o-mini") is None
    assert _check(options, model="claude-3-5-haiku-20241022") is None
    assert _check(options, model="GEMINI-2.0-FLASH") is None
    refused = _check(options, model="gpt-5")
    assert refused.verdict is Verdict.BLOCK and refused.reason == "policy_violation"
    assert refused.details == "model 'gpt-5' is not on the allow list"
    assert refused.extra["kinds"] == ["model_not_allowed"]
    assert _check(options, model="").verdict is Verdict.BLOCK


def test_denied_models_are_refused_even_when_allowed_by_a_tenant():
    options = {"deny_models": ["*-preview"], "allow_models": ["gpt-4o-mini"],
               "tenants": {"research": {"allow_models": ["gpt-*"]}}}
    assert _check(options, model="gpt-4.1", tenant_id="research") is None
    assert _check(options, model="gpt-4.1", tenant_id="other").verdict is Verdict.BLOCK
    refused = _check(options, model="gpt-5-preview", tenant_id="research")
    assert refused.details == "model 'gpt-5-preview' is on the deny list"


def test_tenant_deny_list_adds_to_the_global_one():
    options = {"tenants": {"interns": {"deny_models": ["*opus*"]}}}
    assert _check(options, model="claude-opus-4", tenant_id="interns").verdict is Verdict.BLOCK
    assert _check(options, model="claude-opus-4", tenant_id="staff") is None


def test_an_output_cap_above_the_limit_is_refused():
    options = {"max_output_tokens": 4096}
    assert _check(options, max_output_tokens=4096) is None
    refused = _check(options, max_output_tokens=100000)
    assert refused.verdict is Verdict.BLOCK and refused.reason == "excessive_usage"
    assert refused.details == "the request asks for up to 100000 output tokens (the limit is 4096)"
    assert _check(options) is None  # no cap asked: allowed unless required


def test_a_missing_cap_is_refused_only_when_required():
    options = {"max_output_tokens": 4096, "require_max_output_tokens": True}
    refused = _check(options)
    assert refused.details == "the request sets no limit on output tokens"
    assert _check(options, max_output_tokens=1000) is None


def test_tenant_caps_replace_the_global_ones():
    options = {"max_output_tokens": 1000, "tenants": {"batch": {"max_output_tokens": 32000}}}
    assert _check(options, max_output_tokens=20000, tenant_id="batch") is None
    assert _check(options, max_output_tokens=20000, tenant_id="chat").verdict is Verdict.BLOCK


def test_long_prompts_and_large_requests_are_refused():
    options = {"max_prompt_chars": 100, "max_request_bytes": 5000}
    assert _check(options, prompt="x" * 60, system="y" * 40) is None
    too_long = _check(options, prompt="x" * 60, system="y" * 41)
    assert too_long.details == "the prompt has 101 characters (the limit is 100)"
    too_large = _check(options, request_bytes=5001)
    assert too_large.details == "the request has 5001 bytes (the limit is 5000)"
    assert _check(options, request_bytes=0) is None  # size unknown


def test_only_allowed_media_types_may_be_attached():
    options = {"allowed_media_types": ["image/png", "image/jpeg", "text/*"]}
    assert _check(options, media=[MediaPart("image/PNG"), MediaPart("text/plain; charset=utf-8")]) is None
    refused = _check(options, media=[MediaPart("image/png"), MediaPart("application/pdf")])
    assert refused.details == "media of type 'application/pdf' is not allowed"
    assert _check(options, media=[MediaPart("")]).details == "media of type 'unknown' is not allowed"
    assert _check({"allowed_media_types": []}, media=[MediaPart("image/png")]).verdict is Verdict.BLOCK


def test_every_violation_is_reported_and_the_strictest_action_governs():
    options = {"allow_models": ["gpt-4o-mini"], "max_output_tokens": 100,
               "actions": {"model_not_allowed": "log", "output_tokens_over_cap": "confirm"}}
    decision = _check(options, model="gpt-5", max_output_tokens=500)
    assert decision.verdict is Verdict.CONFIRM
    assert decision.details == ("the request asks for up to 500 output tokens (the limit is 100); "
                                "model 'gpt-5' is not on the allow list")
    assert _check(options, model="gpt-5").verdict is Verdict.LOG


async def test_pipeline_blocks_the_request_with_the_policy_name():
    pipeline = Pipeline(load_policies([PolicySettings(class_path="usage_rules",
                                                      options={"allow_models": ["gpt-4o-mini"]})]))
    outcome = await pipeline.check_request(_event(model="o3").context)
    assert outcome.blocked and outcome.governing.policy == "usage-rules" and outcome.governing.hook == "on_model_call"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"allow_models": ["gpt-["]}, "unclosed '['"),
        ({"allowed_media_types": ["png"]}, "'png' is not a media type"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_tokens": 10}, "max_tokens"),
        ({"tenants": {"t": {"max_prompt_char": 1}}}, "tenants.t.max_prompt_char"),
        ({"actions": {"model_not_allowed": "redact"}}, "actions.model_not_allowed"),
    ],
)
def test_bad_options_fail_at_load_naming_the_key(options, message):
    with pytest.raises(ConfigError) as error:
        load_policies([PolicySettings(class_path="usage_rules", options=options)])
    assert message in str(error.value)


def test_a_typical_request_is_checked_in_a_few_hundred_steps():
    policy = UsageRulesPolicy.from_config({
        "allow_models": ["gpt-4o*", "claude-*", "gemini-*"], "deny_models": ["*-preview"], "max_output_tokens": 4096,
        "max_prompt_chars": 100000, "max_request_bytes": 1 << 20, "allowed_media_types": ["image/*"],
    })
    event = _event(prompt="a typical prompt sentence. " * 80, max_output_tokens=1024, request_bytes=2400,
                   media=[MediaPart("image/png")])
    policy.check(event)
    # Function calls rather than seconds (a dozen today; well under two milliseconds was the aim).
    assert calls(lambda: policy.check(event)) < 500
