"""The pipeline: order, combination (strictest wins), failures and time budgets."""

import asyncio
import time
from time import perf_counter

import pytest

from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.exchange import Exchange, Message, ToolDefinition
from capsem_proxy.hooks import RequestContext
from capsem_proxy.pipeline import POLICY_ERROR_REASON, WALL_BACKSTOP, Pipeline
from capsem_proxy.policies.base import SUSPENDS, ConfiguredPolicy


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
        self.cut = False

    async def on_model_call(self, event):
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cut = True
            raise
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


class Gathering:
    """A hook that returns only once `expected` hooks of its group are inside at the same time."""

    name = "gathering"

    def __init__(self, inside, expected, everyone_in):
        self.inside, self.expected, self.everyone_in = inside, expected, everyone_in

    async def on_model_call(self, event):
        self.inside.append(self)
        if len(self.inside) == self.expected:
            self.everyone_in.set()
        await self.everyone_in.wait()
        return None


async def test_suspending_policies_run_concurrently():
    inside, everyone_in = [], asyncio.Event()
    # Budgets far above the few turns of the event loop this takes: run one after another, the
    # first would wait for the others until its budget ran out, and block.
    pipeline = Pipeline([_configured(Gathering(inside, 5, everyone_in), timeout_s=30) for _ in range(5)])
    outcome = await pipeline.check_request(_context())
    assert len(inside) == 5 and not outcome.blocked
    assert [d.verdict for d in outcome.decisions] == [Verdict.ALLOW] * 5


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
    sleeper = Sleeper(3600)  # an hour: the check ends only if the budget cuts it
    async with asyncio.timeout(300):
        outcome = await Pipeline([_configured(sleeper, timeout_s=0.05)]).check_request(_context())
    assert outcome.blocked and "time budget" in outcome.governing.details
    assert sleeper.cut  # its sleep was ended, not waited out


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
    # Each decision's time is its own: the fast one is not charged the slow one's wait (both run
    # at once on one event loop, the fast one's timer due first).
    assert outcome.decisions[0].latency_ms < outcome.decisions[1].latency_ms
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


# --- hooks that run inline but suspend (a long text read in slices) ------------------------------


def _busy(seconds):
    end = perf_counter() + seconds
    while perf_counter() < end:
        pass


def _burn(seconds):
    """Uses `seconds` of this thread's CPU: the same work however busy the machine is."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class Slicer:
    """An inline hook that reads `steps` slices of `work_s` each, giving the event loop a turn
    between them (as the detectors do on a long text)."""

    name = "slicer"
    inline_hooks = frozenset({"on_model_call"})

    def __init__(self, steps, work_s=0.0, verdict=None):
        self.steps, self.work_s, self.verdict = steps, work_s, verdict
        self.done = 0
        self.tasks = set()
        self.closed = False

    async def on_model_call(self, event):
        try:
            for _ in range(self.steps):
                self.tasks.add(asyncio.current_task())
                _burn(self.work_s)
                self.done += 1
                await asyncio.sleep(0)
        finally:
            self.closed = True
        if self.verdict is not None:
            return Decision(self.verdict, self.name, "on_model_call", details="read it all")
        return None


def _inline(policy, fail_open=False, timeout_s=0.2):
    return ConfiguredPolicy(policy, policy.name, fail_open, timeout_s, inline_hooks=policy.inline_hooks)


async def test_an_inline_hook_that_suspends_is_finished_in_the_requests_own_task():
    slicer = Slicer(steps=5, verdict=Verdict.LOG)
    outcome = await Pipeline([_inline(slicer)]).check_request(_context())
    assert slicer.done == 5
    assert slicer.tasks == {asyncio.current_task()}  # no task of its own, no timer
    assert outcome.governing.verdict is Verdict.LOG and outcome.governing.details == "read it all"


async def test_an_inline_hook_over_its_budget_is_stopped_between_steps_and_blocks():
    slicer = Slicer(steps=10_000, work_s=0.005)
    outcome = await Pipeline([_inline(slicer, timeout_s=0.05)]).check_request(_context())
    assert outcome.blocked and outcome.governing.reason == POLICY_ERROR_REASON
    assert "time budget of 50 ms" in outcome.governing.details
    # Stopped after its budget's worth of steps (about ten), not after reading everything.
    assert 1 <= slicer.done < 100
    assert slicer.closed  # stopped where it stood: its `finally` ran


async def test_an_inline_hook_over_its_budget_fails_open_when_configured():
    slicer = Slicer(steps=10_000, work_s=0.005)
    outcome = await Pipeline([_inline(slicer, fail_open=True, timeout_s=0.05)]).check_request(_context())
    assert not outcome.blocked and outcome.governing.verdict is Verdict.LOG
    assert outcome.governing.extra["fail_open"] is True


async def test_turns_given_to_other_requests_do_not_count_against_the_budget():
    slicer = Slicer(steps=10, verdict=Verdict.LOG)
    stop = asyncio.Event()

    async def another_request():  # takes 30 ms of the event loop at every turn it gets
        while not stop.is_set():
            _busy(0.03)
            await asyncio.sleep(0)

    neighbour = asyncio.create_task(another_request())
    try:
        outcome = await Pipeline([_inline(slicer, timeout_s=0.15)]).check_request(_context())
    finally:
        stop.set()
        await neighbour
    assert slicer.done == 10  # about 300 ms of wall time, almost none of it the hook's own
    assert outcome.governing.verdict is Verdict.LOG


class Waiter:
    """An inline hook that waits for a place (a semaphore) before reading."""

    name = "waiter"
    inline_hooks = frozenset({"on_model_call"})

    def __init__(self, places):
        self.places = places

    async def on_model_call(self, event):
        async with self.places:
            await asyncio.sleep(0)
        return None


async def test_waiting_for_a_place_is_bounded_by_the_backstop_and_gives_the_place_back():
    places = asyncio.Semaphore(1)
    await places.acquire()  # another scan holds the only place, and never gives it back
    outcome = await Pipeline([_inline(Waiter(places), timeout_s=0.05)]).check_request(_context())
    assert outcome.blocked and "time budget" in outcome.governing.details
    places.release()
    assert not places.locked()  # the abandoned waiter took no place with it
    outcome = await Pipeline([_inline(Waiter(places), timeout_s=0.05)]).check_request(_context())
    assert not outcome.blocked


async def test_waiting_for_a_place_behind_other_scans_is_not_charged_to_the_hook():
    places = asyncio.Semaphore(1)
    await places.acquire()  # another request's scan holds the only place for 1.5 budgets
    asyncio.get_running_loop().call_later(0.15, places.release)
    # The wall-clock backstop (ten budgets) is far past the wait, however late the timer runs.
    outcome = await Pipeline([_inline(Waiter(places), timeout_s=0.1)]).check_request(_context())
    assert not outcome.blocked


async def test_a_cancelled_request_stops_its_sliced_hook_and_frees_its_place():
    places = asyncio.Semaphore(1)

    class Holder(Slicer):
        async def on_model_call(self, event):
            async with places:
                return await super().on_model_call(event)

    holder = Holder(steps=10_000)
    request = asyncio.create_task(Pipeline([_inline(holder, timeout_s=30)]).check_request(_context()))
    while holder.done < 3:
        await asyncio.sleep(0)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert holder.closed and not places.locked()


class Blocker:
    """An inline hook that blocks the thread for `seconds` without using CPU (as blocking I/O would)."""

    name = "blocker"
    inline_hooks = frozenset({"on_model_call"})

    def __init__(self, seconds):
        self.seconds = seconds

    async def on_model_call(self, event):
        time.sleep(self.seconds)
        return None


async def test_an_inline_hook_is_charged_its_cpu_and_fails_past_the_wall_clock_backstop():
    # Waiting without CPU (a process waiting for a core looks the same) is not charged to the hook...
    assert not (await Pipeline([_inline(Blocker(0.1), timeout_s=0.05)]).check_request(_context())).blocked
    # ...unless it lasts WALL_BACKSTOP budgets: a hook that blocks the event loop that long still fails.
    outcome = await Pipeline([_inline(Blocker(0.05 * WALL_BACKSTOP + 0.1), timeout_s=0.05)]).check_request(_context())
    assert outcome.blocked and "time budget of 50 ms" in outcome.governing.details


class Burner:
    """An inline hook that uses the CPU for `seconds` in one step (it never awaits)."""

    name = "burner"
    inline_hooks = frozenset({"on_model_call"})

    def __init__(self, seconds):
        self.seconds = seconds

    async def on_model_call(self, event):
        until = time.thread_time() + self.seconds
        while time.thread_time() < until:
            pass
        return None


async def test_an_inline_hook_that_uses_more_cpu_than_its_budget_in_one_step_fails():
    outcome = await Pipeline([_inline(Burner(0.08), timeout_s=0.02)]).check_request(_context())
    assert outcome.blocked and "time budget of 20 ms" in outcome.governing.details
    # Within its budget it passes, and its decision records how long it took.
    outcome = await Pipeline([_inline(Burner(0.001), timeout_s=0.2)]).check_request(_context())
    assert not outcome.blocked and outcome.decisions[0].latency_ms > 0


class Plain:
    """An inline hook also offered as a plain function (`sync_hooks`), which may decline (SUSPENDS)."""

    name = "plain"
    inline_hooks = frozenset({"on_model_call"})

    def __init__(self, answer, seconds=0.0):
        self.answer, self.seconds, self.ran = answer, seconds, []
        self.sync_hooks = {"on_model_call": self._now}

    def _now(self, event):
        self.ran.append("plain")
        until = time.thread_time() + self.seconds
        while time.thread_time() < until:
            pass
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    async def on_model_call(self, event):
        self.ran.append("hook")
        return Decision(Verdict.LOG, self.name, "on_model_call", details="from the hook")


async def test_a_plain_hook_decides_without_its_coroutine_and_declining_runs_the_hook():
    plain = Plain(Decision(Verdict.LOG, "plain", "on_model_call", details="plain"))
    outcome = await Pipeline([_inline(plain)]).check_request(_context())
    assert plain.ran == ["plain"] and outcome.governing.details == "plain" and outcome.governing.latency_ms >= 0
    allowing = Plain(None)
    outcome = await Pipeline([_inline(allowing)]).check_request(_context())
    assert allowing.ran == ["plain"] and outcome.governing is None and outcome.decisions[0].verdict is Verdict.ALLOW
    declining = Plain(SUSPENDS)
    outcome = await Pipeline([_inline(declining)]).check_request(_context())
    assert declining.ran == ["plain", "hook"] and outcome.governing.details == "from the hook"
    # Offered for a hook the policy does not run inline, it is not used.
    outsider = Plain(None)
    await Pipeline([_configured(outsider)]).check_request(_context())
    assert outsider.ran == ["hook"]


async def test_a_plain_hook_that_raises_or_overruns_its_budget_fails_closed():
    outcome = await Pipeline([_inline(Plain(RuntimeError("boom")))]).check_request(_context())
    assert outcome.blocked and outcome.governing.reason == POLICY_ERROR_REASON
    outcome = await Pipeline([_inline(Plain(None, seconds=0.08), timeout_s=0.02)]).check_request(_context())
    assert outcome.blocked and "time budget of 20 ms" in outcome.governing.details
    outcome = await Pipeline([_inline(Plain(None, seconds=0.08), fail_open=True, timeout_s=0.02)]).check_request(
        _context()
    )
    assert not outcome.blocked and outcome.decisions[0].verdict is Verdict.LOG


class _InlineVerdicts(Verdicts):
    inline_hooks = frozenset({"on_model_call"})


async def test_hooks_finished_in_one_step_are_timed_back_to_back():
    """The clock read when a hook finishes in one step is the next hook's start: the times of such
    hooks tile the run, each latency the time to the next start, on generated mixes of verdicts,
    failures and hooks that run as tasks (which read the clock afresh)."""
    import random

    rng = random.Random(5)
    for _ in range(40):
        kinds = [rng.choice(["allow", "log", "block", "raise", "sleep"]) for _ in range(rng.randint(1, 6))]
        policies = []
        for index, kind in enumerate(kinds):
            if kind == "raise":
                policies.append(_configured(Raiser()))  # a task: the next hook reads the clock afresh
            elif kind == "sleep":
                policies.append(_configured(Sleeper(0.0)))
            else:
                verdict = {"allow": Verdict.ALLOW, "log": Verdict.LOG, "block": Verdict.BLOCK}[kind]
                policies.append(_inline(_InlineVerdicts(f"p{index}", verdict, [])))
        outcome = await Pipeline(policies).check_request(_context())
        decisions = outcome.decisions
        assert len(decisions) == len(kinds)
        for kind, decision, after in zip(kinds, decisions, decisions[1:], strict=False):
            if kind in ("allow", "log", "block"):
                assert after.started_at == pytest.approx(decision.started_at + decision.latency_ms / 1000, abs=1e-9)
            assert after.started_at >= decision.started_at
