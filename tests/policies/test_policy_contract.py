"""The policy contract (capsem_proxy.policies.base): what a policy may declare about itself is read
once, at load, with its types checked there rather than on a request."""

from __future__ import annotations

import pytest

from capsem_proxy.config import ConfigError, PolicySettings
from capsem_proxy.decisions import Decision
from capsem_proxy.hooks import ModelCall
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policies.base import ConfiguredPolicy, Policy, PolicyTraits
from capsem_proxy.policies.loader import load_policy


class Plain:
    name = "plain"

    async def on_model_call(self, event: ModelCall) -> Decision | None:
        return None


class Declaring(Plain):
    window_chars = 40
    needs_whole_answer = True
    incremental_answers = True
    implemented_hooks = frozenset({"on_model_call", "on_model_response"})

    async def on_model_response(self, event) -> Decision | None:
        return None


class BadWindow(Plain):
    window_chars = "wide"


def test_a_policy_that_declares_nothing_gets_the_defaults():
    assert isinstance(Plain(), Policy)
    assert ConfiguredPolicy(Plain(), "plain").traits == PolicyTraits()


def test_declared_traits_are_read_once_and_shape_the_pipeline():
    configured = ConfiguredPolicy(Declaring(), "declaring")
    assert configured.traits.window_chars == 40 and configured.traits.incremental_answers
    pipeline = Pipeline([configured])
    assert pipeline.window_chars() == 40
    assert pipeline.needs_whole_answer()
    assert pipeline.answer_readers() == (False, True)
    assert configured.implements("on_model_response") and not configured.implements("on_tool_call")


def test_a_trait_of_the_wrong_type_stops_the_proxy_at_load():
    settings = PolicySettings(**{"class": f"{__name__}.BadWindow"})
    with pytest.raises(ConfigError, match=r"policies\[0\]\.class: .*window_chars must be a non-negative int"):
        load_policy(settings, "policies[0]")
