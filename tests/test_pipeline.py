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
        self.seconds, self.verdict = seconds, verdict

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
    assert loop.time() - started < 0.3
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
