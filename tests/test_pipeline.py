"""The pipeline: order, combination (strictest wins), failures and time budgets."""

import asyncio

import pytest

from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.exchange import Exchange, Message, ToolDefinition
from capsem_proxy.hooks import RequestContext
from capsem_proxy.pipeline import POLICY_ERROR_REASON, Pipeline
from capsem_proxy.policies.base import ConfiguredPolicy


def _context(text="hello", tools=()):
    exchange = Exchange(provider="openai", operation="chat", model="m", messages=[Message("user", text)],
                        tools=list(tools))
    return RequestContext("req", "tenant", "openai", "chat", exchange)


class Verdicts:
    def __init__(self, name, verdict, calls):
        self.name, self.verdict, self.calls = name, verdict, calls

    async def on_model_call(self, event):
        self.calls.append(self.name)
        if self.verdict is Verdict.ALLOW:
            return None
        return Decision(self.verdict, self.name, "on_model_call", details=f"{self.name} says {self.verdict.value}")


class Sleeper:
    name = "sleeper"

    def __init__(self, seconds, verdict=None):
        self.seconds = seconds
        self.verdict = Verdict(verdict) if isinstance(verdict, str) else verdict

    async def on_model_call(self, event):
        await asyncio.sleep(self.seconds)
        if self.verdict:
            return Decision(self.verdict, self.name, "on_model_call", details="slept")
        return None


class Raiser:
    name = "raiser"

    async def on_model_call(self, event):
        raise RuntimeError("boom")


def _configured(policy, fail_open=False, timeout_s=0.2):
    return ConfiguredPolicy(policy, policy.name, fail_open, timeout_s)


async def test_strictest_verdict_wins_and_all_run_in_order():
    calls = []
    pipeline = Pipeline([_configured(Verdicts(name, verdict, calls)) for name, verdict in
                         [("a", Verdict.LOG), ("b", Verdict.BLOCK), ("c", Verdict.CONFIRM)]])
    outcome = await pipeline.check_request(_context())
    assert calls == ["a", "b", "c"]
    assert [d.verdict for d in outcome.decisions] == [Verdict.LOG, Verdict.BLOCK, Verdict.CONFIRM]
    assert outcome.governing.policy == "b"
    assert outcome.blocked


async def test_all_allow_has_no_governing_decision():
    pipeline = Pipeline([_configured(Verdicts("a", Verdict.ALLOW, []))])
    outcome = await pipeline.check_request(_context())
    assert outcome.governing is None and not outcome.blocked
    assert outcome.decisions[0].verdict is Verdict.ALLOW


async def test_log_does_not_block():
    pipeline = Pipeline([_configured(Verdicts("a", Verdict.LOG, []))])
    outcome = await pipeline.check_request(_context())
    assert outcome.governing.verdict is Verdict.LOG and not outcome.blocked


async def test_suspending_policies_run_concurrently():
    pipeline = Pipeline([_configured(Sleeper(0.1)) for _ in range(5)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = await pipeline.check_request(_context())
    assert loop.time() - started < 0.45  # five 0.1 s policies one after another would take 0.5 s
    assert len(outcome.decisions) == 5


async def test_raising_policy_fails_closed():
    outcome = await Pipeline([_configured(Raiser())]).check_request(_context())
    assert outcome.blocked
    assert outcome.governing.reason == POLICY_ERROR_REASON
    assert "raiser" in outcome.governing.details


async def test_raising_policy_fails_open_when_configured():
    outcome = await Pipeline([_configured(Raiser(), fail_open=True)]).check_request(_context())
    assert not outcome.blocked
    assert outcome.governing.verdict is Verdict.LOG


async def test_slow_policy_is_cut_at_its_budget_and_blocks():
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = await Pipeline([_configured(Sleeper(5), timeout_s=0.05)]).check_request(_context())
    assert loop.time() - started < 1
    assert outcome.blocked and "time budget" in outcome.governing.details


async def test_suspending_policy_verdict_is_kept():
    outcome = await Pipeline([_configured(Sleeper(0.01, Verdict.BLOCK))]).check_request(_context())
    assert outcome.blocked and outcome.governing.details == "slept"


class ToolNamer:
    name = "tools"

    async def on_tool_call(self, event):
        if "bad" in event.tool.name:
            return Decision(Verdict.BLOCK, self.name, "on_tool_call", details=f"tool {event.tool.name}")
        return None


async def test_each_offered_tool_is_checked():
    tools = [ToolDefinition("good"), ToolDefinition("bad_tool")]
    outcome = await Pipeline([_configured(ToolNamer())]).check_request(_context(tools=tools))
    assert len(outcome.decisions) == 2
    assert outcome.governing.subject == "bad_tool"


@pytest.mark.parametrize("verdict", [Verdict.CONFIRM, Verdict.CLARIFY, Verdict.REPLAN])
async def test_confirmation_verdicts_hold_the_request(verdict):
    outcome = await Pipeline([_configured(Verdicts("a", verdict, []))]).check_request(_context())
    assert outcome.blocked


async def test_each_policy_is_measured_against_its_own_budget():
    fast = ConfiguredPolicy(Sleeper(0.01), "fast", False, 0.2)
    slow = ConfiguredPolicy(Sleeper(0.5), "slow", False, 2.0)
    outcome = await Pipeline([fast, slow]).check_request(_context())
    assert [d.verdict for d in outcome.decisions] == [Verdict.ALLOW, Verdict.ALLOW]
    assert outcome.decisions[0].latency_ms < 200
    assert outcome.decisions[1].latency_ms >= 450


class OwnTimeout:
    name = "own-timeout"

    async def on_model_call(self, event):
        async with asyncio.timeout(0.05):
            await asyncio.sleep(1)


async def test_a_policys_own_timeout_fails_that_policy_not_the_request():
    outcome = await Pipeline([_configured(OwnTimeout(), timeout_s=2)]).check_request(_context())
    assert outcome.blocked
    assert outcome.governing.policy == "own-timeout"
    assert asyncio.current_task().cancelling() == 0


def test_hooks_that_never_await_run_inline():
    from capsem_proxy.config import PolicySettings
    from capsem_proxy.policies.loader import load_policies

    debug = load_policies([PolicySettings(class_path="capsem.policies.debug_policy.DebugPolicy")])[0]
    assert {"on_model_call", "on_tool_call"} <= debug.inline_hooks
    sleeper = load_policies([PolicySettings(class_path=f"{__name__}.Sleeper", options={"seconds": 0.01})])[0]
    assert sleeper.inline_hooks == frozenset()


async def test_inline_and_task_policies_together_keep_their_order():
    from capsem_proxy.config import PolicySettings
    from capsem_proxy.policies.loader import load_policies

    loaded = load_policies([
        PolicySettings(class_path=f"{__name__}.Sleeper", options={"seconds": 0.01, "verdict": "BLOCK"}),
        PolicySettings(class_path="capsem.policies.debug_policy.DebugPolicy"),
    ])
    outcome = await Pipeline(loaded).check_request(_context("capsem_block"))
    assert [d.policy for d in outcome.decisions] == ["sleeper", "Debug"]
    assert outcome.governing.policy == "sleeper"
