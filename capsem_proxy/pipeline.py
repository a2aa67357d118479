"""Runs the configured policies at each interception point and combines their decisions.

Requests pass the policies in configured order; answers in reverse order. Policies on one
interception point are independent, so they run concurrently; a policy that raises or
overruns its time budget is a BLOCK unless it is configured to fail open.

A hook whose code never awaits (and the built-in detectors, which await only to give the event
loop a turn while they read a long text in slices) runs inline, with no task and no timer. If
it does suspend, the pipeline drives it on in the request's own task and enforces its time
budget between its steps: what counts is the hook's own work and its waits (for a place to
scan, say), not the turns it gives the rest of the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from time import perf_counter, thread_time
from typing import TYPE_CHECKING, Any

from capsem_proxy.decisions import Decision, Outcome, Verdict, sequential_decision_id, strictest
from capsem_proxy.exchange import Answer, ToolDefinition, ToolResult, ToolUse
from capsem_proxy.hooks import HOOK_NAMES, ModelCall, ModelResponse, RequestContext, ToolCall, ToolResponse
from capsem_proxy.policies.base import SUSPENDS, ConfiguredPolicy
from capsem_proxy.scanning import DEFAULT_LIMITS, ScanLimits, ledger_for, reset_current, set_current

if TYPE_CHECKING:
    from capsem_proxy.streaming.guard import AnswerCheck

__all__ = ["POLICY_ERROR_REASON", "Pipeline"]

logger = logging.getLogger("capsem_proxy.pipeline")
# An inline hook that blocks without using CPU (a sleep, blocking I/O) still fails once this many
# budgets of wall-clock time have gone by.
WALL_BACKSTOP = 10.0

POLICY_ERROR_REASON = "policy_error"
_ALLOW = Verdict.ALLOW  # read once: a member read through its Enum class is a lookup each time

_Call = tuple[ConfiguredPolicy, str, Any, str]  # policy, hook name, event, subject


async def _with_deadline(coroutine: Coroutine[Any, Any, Any], timeout_s: float) -> tuple[Any, float]:
    """Run a policy call in its own task under its time budget; (result, when it finished)."""
    async with asyncio.timeout(timeout_s):
        result = await coroutine
    return result, perf_counter()


def _offered_tool(context: RequestContext, name: str) -> ToolDefinition:
    """The tool of that name the request offered (looked up once per request), or a bare one."""
    offered = context.offered_tools
    if offered is None:
        offered = context.offered_tools = {tool.name: tool for tool in context.exchange.tools}
    return offered.get(name) or ToolDefinition(name=name)


class Pipeline:
    """The ordered policy chain of one configuration."""

    def __init__(
        self,
        policies: list[ConfiguredPolicy],
        *,
        confirmations_hold: bool = True,
        scan_limits: ScanLimits = DEFAULT_LIMITS,
    ) -> None:
        self.policies = policies
        self.confirmations_hold = confirmations_hold
        self.scan_limits = scan_limits
        # Policies that screen text keep a per-request ledger of it (capsem_proxy.scanning).
        self._screens_text = any(policy.traits.screens_text for policy in policies)
        # Shadow policies' decisions are marked (recorded, never enforced: see Decision.shadow).
        self._has_shadow = any(policy.shadow for policy in policies)
        self._by_hook: dict[str, list[ConfiguredPolicy]] = {}
        for hook in HOOK_NAMES:
            self._by_hook[hook] = [policy for policy in policies if policy.implements(hook)]
        self._by_hook_reversed = {hook: list(reversed(chain)) for hook, chain in self._by_hook.items()}
        # What the answer policies need, computed once per configuration rather than per request.
        readers = self._by_hook["on_model_response"]
        # Policies that read a growing answer only from its unsettled end (see ModelResponse).
        self._incremental_readers = [p for p in readers if p.traits.incremental_answers]
        self._incremental_readers_reversed = list(reversed(self._incremental_readers))
        self._window_chars = max((p.traits.window_chars for p in readers), default=0)
        self._needs_whole_answer = any(p.traits.needs_whole_answer for p in readers)
        # Readers that say where a finding may still be in progress in a growing answer (`stream_hold`);
        # the others need the text they look at held back by their window.
        holding = [p for p in self._incremental_readers if p.traits.stream_hold is not None]
        self._stream_holds = tuple(p.traits.stream_hold for p in holding if p.traits.stream_hold is not None)
        self._unheld_window: int | None = (
            None if len(holding) == len(readers)
            else max((p.traits.window_chars for p in readers if p not in holding), default=0)
        )
        self._reads_answer_text = bool(readers)
        self._has_response_policies = bool(readers or self._by_hook["on_tool_call"])

    def window_chars(self) -> int:
        """The longest text any answer policy says it must see whole (its `window_chars`)."""
        return self._window_chars

    def stream_holds(self) -> tuple[tuple[Callable[[str], int], ...], int | None]:
        """(each answer reader's `stream_hold`, for those that have one; the longest window of
        those that do not, or None when every reader has one)."""
        return self._stream_holds, self._unheld_window

    def has_response_policies(self) -> bool:
        """True when any policy looks at answers (model responses or emitted tool calls)."""
        return self._has_response_policies

    def needs_whole_answer(self) -> bool:
        """True when an answer policy declares it must see the whole answer before any of it
        is released (`needs_whole_answer = True`): such requests stream in `buffer` mode."""
        return self._needs_whole_answer

    def reads_answer_text(self) -> bool:
        """True when any policy reads the answer's text (`on_model_response`)."""
        return self._reads_answer_text

    def answer_readers(self) -> tuple[bool, bool]:
        """(any answer policy reads the whole text, any reads incrementally `incremental_answers`)."""
        incremental = len(self._incremental_readers)
        return len(self._by_hook["on_model_response"]) > incremental, incremental > 0

    def check_request(self, context: RequestContext) -> Coroutine[Any, Any, Outcome]:
        """`on_model_call`, `on_tool_call` for each offered tool and `on_tool_response` for each
        tool result, all policies in configured order (awaited: a plain function handing back the
        run's coroutine, one coroutine fewer per request)."""
        exchange = context.exchange
        calls: list[_Call] = []
        model_call = ModelCall(context, exchange.model, exchange.system, exchange.prompt, exchange.media)
        for policy in self._by_hook["on_model_call"]:
            calls.append((policy, "on_model_call", model_call, ""))
        tool_policies = self._by_hook["on_tool_call"]
        if tool_policies:
            for tool in exchange.tools:
                event = ToolCall(context, tool, {}, emitted=False)
                for policy in tool_policies:
                    calls.append((policy, "on_tool_call", event, tool.name))
        response_policies = self._by_hook["on_tool_response"]
        if response_policies:
            for result in exchange.tool_results:
                tool = _offered_tool(context, result.name or "unknown")
                response_event = ToolResponse(context, tool, result.as_dict(), result.call_id, result)
                for policy in response_policies:
                    calls.append((policy, "on_tool_response", response_event, tool.name))
        return self._run(calls)

    def check_answer(
        self,
        context: RequestContext,
        answer: Answer,
        *,
        final: bool = True,
        include_tool_calls: bool = True,
        settled_chars: int = 0,
        stream: AnswerCheck | None = None,
    ) -> Coroutine[Any, Any, Outcome]:
        """`on_tool_call` for each tool call the model emitted and `on_model_response`, reverse order
        (awaited: a plain function handing back the run's coroutine when no emitted call is checked).

        Streams check emitted tool calls one by one as they complete (`include_tool_calls=False`),
        and hand their check (`stream`: what earlier checks settled, the growing text, and whether
        only the incremental readers run).
        """
        calls: list[_Call] = []
        if answer.tool_calls and include_tool_calls:
            for emitted in answer.tool_calls:
                tool_event = self._emitted_event(context, emitted)
                for policy in self._by_hook_reversed["on_tool_call"]:
                    calls.append((policy, "on_tool_call", tool_event, emitted.name))
        marks_emitted = bool(calls)
        readers = self._by_hook_reversed["on_model_response"]
        if stream is None:
            event = ModelResponse(context, answer, final, settled_chars)
        else:
            event = ModelResponse(
                context, answer, final, stream.settled_text_chars, stream.settled_thinking_chars,
                stream.text, stream.thinking,
            )
            if not stream.whole:
                readers = self._incremental_readers_reversed
        for policy in readers:
            calls.append((policy, "on_model_response", event, ""))
        # A stream's intermediate checks record only what is not ALLOW (see StreamGuard).
        run = self._run(calls, keep_allows=final or stream is None)
        return self._marked_emitted(run) if marks_emitted else run

    async def _marked_emitted(self, run: Coroutine[Any, Any, Outcome]) -> Outcome:
        return self._mark_emitted(await run)

    async def check_emitted_tool_call(self, context: RequestContext, emitted: ToolUse) -> Outcome:
        """`on_tool_call` for one tool call the model emitted (streams check each as it completes)."""
        event = self._emitted_event(context, emitted)
        calls: list[_Call] = [
            (policy, "on_tool_call", event, emitted.name) for policy in self._by_hook_reversed["on_tool_call"]
        ]
        return self._mark_emitted(await self._run(calls))

    # --- tools reached directly (MCP): the same hooks, one tool list, call or result at a time ---

    async def check_offered_tools(self, context: RequestContext, tools: list[ToolDefinition]) -> list[Outcome]:
        """`on_tool_call` (args empty) for each tool a server offers (an MCP `tools/list`), all
        policies in configured order, run together; one outcome per tool, in `tools`' order."""
        policies = self._by_hook["on_tool_call"]
        if not policies:
            return [Outcome([], None, self.confirmations_hold) for _ in tools]
        calls: list[_Call] = []
        for tool in tools:
            event = ToolCall(context, tool, {}, emitted=False)
            calls.extend((policy, "on_tool_call", event, tool.name) for policy in policies)
        decisions = (await self._run(calls)).decisions
        width = len(policies)
        outcomes = []
        for index in range(len(tools)):
            own = decisions[index * width : (index + 1) * width]
            outcomes.append(Outcome(own, strictest(own), self.confirmations_hold))
        return outcomes

    async def check_tool_invocation(
        self, context: RequestContext, tool: ToolDefinition, args: dict[str, Any], call_id: str = ""
    ) -> Outcome:
        """`on_tool_call` for a call about to reach the tool's server (an MCP `tools/call`), checked
        as a call the model emitted (names, schema, argument rules, detectors), configured order."""
        event = ToolCall(context, tool, args, emitted=True, call_id=call_id)
        calls: list[_Call] = [(policy, "on_tool_call", event, tool.name) for policy in self._by_hook["on_tool_call"]]
        return self._mark_emitted(await self._run(calls))

    async def check_tool_result(self, context: RequestContext, tool: ToolDefinition, result: ToolResult) -> Outcome:
        """`on_tool_response` for a result a tool's server returned (an MCP `tools/call`,
        `resources/read` or `prompts/get` answer), answer order."""
        event = ToolResponse(context, tool, result.as_dict(), result.call_id, result)
        calls: list[_Call] = [
            (policy, "on_tool_response", event, tool.name) for policy in self._by_hook_reversed["on_tool_response"]
        ]
        return await self._run(calls)

    def reads_tool_results(self) -> bool:
        """True when any policy reads tool results (`on_tool_response`)."""
        return bool(self._by_hook["on_tool_response"])

    @staticmethod
    def _emitted_event(context: RequestContext, emitted: ToolUse) -> ToolCall:
        tool = _offered_tool(context, emitted.name)
        return ToolCall(context, tool, emitted.arguments, emitted=True, call_id=emitted.call_id)

    @staticmethod
    def _mark_emitted(outcome: Outcome) -> Outcome:
        for decision in outcome.decisions:
            if decision.hook == "on_tool_call":
                decision.extra["emitted"] = True
        return outcome

    async def _run(self, calls: list[_Call], *, keep_allows: bool = True) -> Outcome:
        """Every call's decision, in `calls`' order. With `keep_allows` False (the intermediate
        checks of a streamed answer, whose ALLOWs are not recorded) a hook that finished inline
        within its budget with no opinion makes no decision at all."""
        token = None
        if self._screens_text and calls:
            # The text detectors account for their work in the request's (or its answer's) ledger.
            _, hook_name, event, _ = calls[0]
            answer = hook_name == "on_model_response" or (hook_name == "on_tool_call" and event.emitted)
            token = set_current(ledger_for(event.context, self.scan_limits, answer=answer))
        try:
            decisions: list[Decision | None] = []
            suspended: list[tuple[int, asyncio.Task[Any], float, _Call]] = []
            skipped = False  # an ALLOW left out (keep_allows False): its place stays None
            plain_allows = 0  # ALLOWs of hooks with no opinion (which never govern)
            # The thread's CPU clock and the wall clock when it was last read (see `_step_cpu`).
            cpu_mark = wall_mark = -1.0
            # When the previous hook finished in one step, the clock read at its end: the next starts
            # then (what lies between is this loop's own bookkeeping), without a read of its own.
            finished = -1.0
            for call in calls:
                policy, hook_name, event, subject = call
                started = finished if finished >= 0.0 else perf_counter()
                finished = -1.0
                plain = policy.sync_hooks.get(hook_name) if policy.sync_hooks else None
                result: Any = SUSPENDS
                if plain is not None:
                    # The hook as a plain function (a built-in detector on a text short enough to read
                    # now): what the inline coroutine below would decide, without a coroutine.
                    if cpu_mark < 0.0:
                        cpu_mark, wall_mark = thread_time(), started
                    try:
                        result = plain(event)
                    except Exception as exc:
                        decisions.append(self._failure(policy, hook_name, subject, exc, started))
                        continue
                if result is SUSPENDS:
                    coroutine = policy.hook(hook_name)(event)
                    if hook_name not in policy.inline_hooks:
                        task = asyncio.ensure_future(_with_deadline(coroutine, policy.timeout_s))
                        suspended.append((len(decisions), task, started, call))
                        decisions.append(None)  # filled in below, keeping the configured order
                        continue
                    # A hook whose code never awaits (or awaits only to give the event loop a turn)
                    # finishes in its first step, unless it reads a long text: run it here, with no
                    # task and no timer. Anything that may wait gets its own task (above), so that
                    # `asyncio.timeout` or `current_task()` inside a policy see that task, not ours.
                    # Its own steps are charged the CPU they use (thread_time): on a busy machine the
                    # process may wait for a core mid-step, which is not the hook's work.
                    if cpu_mark < 0.0:
                        cpu_mark, wall_mark = thread_time(), started
                    try:
                        pending = coroutine.send(None)
                    except StopIteration as stop:
                        result = stop.value
                    except Exception as exc:
                        decisions.append(self._failure(policy, hook_name, subject, exc, started))
                        continue
                    else:
                        # It suspended (a long text read in slices): finish it here, in this task.
                        first_step, _, _ = _step_cpu(cpu_mark, wall_mark, started)
                        cpu_mark = -1.0  # other tasks run while it waits: the clock is read afresh after
                        try:
                            decided = await self._drive(
                                policy, hook_name, subject, coroutine, pending, started, first_step
                            )
                        except BaseException:
                            for _, task, _, _ in suspended:
                                task.cancel()
                            raise
                        decisions.append(decided)
                        continue
                # Finished in one step (the plain function, or the coroutine's first step).
                finished = perf_counter()
                # A step no longer than the budget in wall time used no more CPU than that: the
                # thread's clock is read again only when the step took longer.
                spent: float | None
                if finished - started <= policy.timeout_s:
                    if result is None:
                        if keep_allows:
                            # The decision most hook calls make, without `_settle`'s other cases.
                            decisions.append(_allow(policy, hook_name, subject, finished - started, started))
                            plain_allows += 1
                        else:
                            decisions.append(None)
                            skipped = True
                        continue
                    spent = None
                else:
                    spent, cpu_mark, wall_mark = _step_cpu(cpu_mark, wall_mark, started)
                decisions.append(self._settle(policy, hook_name, subject, result, started, finished, spent))
            if suspended:
                tasks = [task for _, task, _, _ in suspended]
                try:
                    await asyncio.wait(tasks)
                except asyncio.CancelledError:
                    for task in tasks:
                        task.cancel()
                    raise
                for position, task, started, (policy, hook_name, _, subject) in suspended:
                    failure = task.exception()
                    if failure is not None:
                        decisions[position] = self._failure(policy, hook_name, subject, failure, started)
                    else:
                        result, finished = task.result()
                        # The deadline was enforced by asyncio.timeout: only the latency is recorded.
                        decisions[position] = self._settle(
                            policy, hook_name, subject, result, started, finished=finished
                        )
            if self._has_shadow:
                for maybe, (policy, _, _, _) in zip(decisions, calls, strict=True):
                    if maybe is not None:
                        maybe.shadow = policy.shadow
            # Every place is filled by now (inline, or by its task above), but for the ALLOWs left out.
            settled: list[Decision] = [d for d in decisions if d is not None] if skipped else decisions  # type: ignore[assignment]
            # When every decision is such an ALLOW, none governs: no need to look.
            governing = strictest(settled) if plain_allows < len(settled) else None
            return Outcome(settled, governing, self.confirmations_hold)
        finally:
            if token is not None:
                reset_current(token)

    async def _drive(
        self, policy: ConfiguredPolicy, hook: str, subject: str, coroutine: Any, pending: Any, started: float,
        spent: float,
    ) -> Decision:
        """Run an inline hook that suspended to its end, in this task, within its time budget.

        The hook is charged the CPU its own steps use (`spent` holds its first step's); once over
        budget it is cancelled at its next step, and fails. A bare yield (`asyncio.sleep(0)`) gives
        the event loop a turn, and a future it waits on is a place to scan behind other requests'
        scans: neither is the hook's work, so only the wall-clock backstop (WALL_BACKSTOP budgets
        from its start) bounds them. Under a burst of large scans a request then waits its turn
        instead of failing closed at once, and still fails past the backstop.
        """
        budget = policy.timeout_s
        while True:
            if spent > budget or perf_counter() - started > budget * WALL_BACKSTOP:
                _abandon(coroutine, pending)
                return self._failure(policy, hook, subject, TimeoutError(), started)
            try:
                if pending is None:
                    await asyncio.sleep(0)
                elif isinstance(pending, asyncio.Future):
                    pending._asyncio_future_blocking = False
                    left = budget * WALL_BACKSTOP - (perf_counter() - started)
                    await asyncio.wait((pending,), timeout=max(left, 0.0))
                    if not pending.done():
                        _abandon(coroutine, pending)
                        return self._failure(policy, hook, subject, TimeoutError(), started)
                else:
                    _abandon(coroutine, None)
                    failure = RuntimeError(f"a policy hook yielded {type(pending).__name__}, not an asyncio future")
                    return self._failure(policy, hook, subject, failure, started)
            except BaseException:
                _abandon(coroutine, pending)  # the request was cancelled (its client left)
                raise
            step_from = thread_time()
            try:
                pending = coroutine.send(None)
            except StopIteration as stop:
                return self._settle(policy, hook, subject, stop.value, started, finished=perf_counter())
            except Exception as exc:
                return self._failure(policy, hook, subject, exc, started)
            finally:
                spent += thread_time() - step_from

    @staticmethod
    def _settle(
        policy: ConfiguredPolicy, hook: str, subject: str, result: Any, started: float, finished: float | None = None,
        spent: float | None = None,
    ) -> Decision:
        elapsed = (finished if finished is not None else perf_counter()) - started
        if spent is not None and (spent > policy.timeout_s or elapsed > policy.timeout_s * WALL_BACKSTOP):
            # An inline hook cannot be interrupted; one whose work overran its budget still fails.
            return Pipeline._failure(policy, hook, subject, TimeoutError(), started)
        if result is None:
            return _allow(policy, hook, subject, elapsed, started)
        if not isinstance(result, Decision):
            return Pipeline._failure(
                policy, hook, subject, TypeError(f"returned {type(result).__name__}, not a Decision"), started
            )
        result.latency_ms = elapsed * 1000.0
        result.started_at = started
        if not result.subject:
            result.subject = subject
        return result

    @staticmethod
    def _failure(policy: ConfiguredPolicy, hook: str, subject: str, exc: BaseException, started: float) -> Decision:
        elapsed_ms = (perf_counter() - started) * 1000.0
        if isinstance(exc, TimeoutError):
            details = f"policy '{policy.name}' exceeded its time budget of {policy.timeout_s * 1000:.0f} ms"
        else:
            details = f"policy '{policy.name}' failed ({type(exc).__name__})"
        logger.warning("%s on %s", details, hook, exc_info=not isinstance(exc, TimeoutError))
        verdict = Verdict.LOG if policy.fail_open else Verdict.BLOCK
        return Decision(
            verdict, policy.name, hook, reason=POLICY_ERROR_REASON, details=details, subject=subject,
            latency_ms=elapsed_ms, started_at=started, extra={"fail_open": policy.fail_open},
        )


def _allow(policy: ConfiguredPolicy, hook: str, subject: str, elapsed: float, started: float) -> Decision:
    """The ALLOW of a hook that had no opinion (returned None) after `elapsed` seconds."""
    # Positional (reason "safe", no details): keywords would build and unpack a dict per call.
    return Decision(_ALLOW, policy.name, hook, "safe", "", subject, elapsed * 1000.0, started, sequential_decision_id())


def _step_cpu(cpu_mark: float, wall_mark: float, started: float) -> tuple[float, float, float]:
    """The CPU an inline step that began at `started` used at least, and the new marks.

    The thread's CPU clock is a system call, so it is read once per run of the hooks (`cpu_mark`,
    at `wall_mark`) and again only after a step that took longer than its budget in wall time. The
    CPU used since the mark is the step's own plus at most the wall time from the mark to the
    step's start (inline steps never wait, so no other task ran in between): the step is charged
    at least that difference, so a step that surely overran still fails, and one that may not have
    is not failed for the steps before it."""
    now_cpu, now_wall = thread_time(), perf_counter()
    return max(now_cpu - cpu_mark - (started - wall_mark), 0.0), now_cpu, now_wall


def _abandon(coroutine: Any, pending: Any) -> None:
    """Stop a suspended hook as a task cancellation would: cancel the future it waits on, then
    raise CancelledError where it stands (so `async with` blocks such as a semaphore give back
    what they hold)."""
    if isinstance(pending, asyncio.Future):
        pending.cancel()
    try:
        coroutine.throw(asyncio.CancelledError())
    except BaseException:  # the hook ends here, however it ends
        return
    coroutine.close()
