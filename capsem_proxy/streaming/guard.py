"""Guarded release of a streamed answer: policies see the text as it arrives, and only what
they approved reaches the client.

The guard keeps a FIFO of pending events (never reordered) and the answer assembled so far.
Text is approved up to `len(text) - window` after a check of everything seen, so a match that
straddles two chunks (`sk-ab` + `cd…`) is always seen whole before any of it is released, as
long as the window is at least as long as what the policies look for. A tool call the model
emits is held until it is complete (the finish event or the stream's end), then checked with
`on_tool_call`, then released whole.

Policies that can say where, at the end of the checked text, a finding may still be in progress
(`holds`: the built-in detectors) replace the window by that point, so prose is approved as it
is checked. When the approved point falls inside an event's text, the approved start goes out as
an event of its own (`split`), so text is held back, never whole events. Released bytes depend on
the sequence of events only, never on how they were cut into reads.

Modes: `pass` approves every event at once (policies still check at checkpoints and may end
the stream from there on), `guard` holds back the window, `buffer` holds everything until the
whole answer has been checked.

Cost stays linear in the answer's length. The text is kept in growing buffers, never re-joined.
Policies that read incrementally (`incremental_answers`: only the unsettled end of the text) are
checked every `check_every_chars`; policies that read the whole text at every check (CAPSEM
policies, Rego, anything that reads `answer.text`) are checked when the text has grown by
`whole_check_growth` of its length since their last check, so their reads add up to a few
times the answer's length. Text is approved only once every policy has seen it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from math import ceil

from capsem_proxy.decisions import Decision, Outcome, Verdict
from capsem_proxy.exchange import Answer, ToolUse, parse_arguments
from capsem_proxy.redaction import find_spans, rewrite_segment
from capsem_proxy.streaming.events import (
    Delta,
    EchoDelta,
    FinishDelta,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    UnreadableDelta,
    UsageDelta,
)
from capsem_proxy.streaming.text import GrowingText

__all__ = ["AnswerCheck", "GuardChecks", "StreamBlocked", "StreamGuard", "unreadable_decision"]


class StreamBlocked(Exception):
    """A policy ended the stream; `decision` says which and why."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.details)
        self.decision = decision


def unreadable_decision(why: str) -> Decision:
    """The BLOCK taken when answer policies are active and the answer cannot be decoded: what
    the proxy cannot read, a client may still read, so it is not passed on unchecked."""
    return Decision(
        Verdict.BLOCK, "answer-inspection", "on_model_response", reason="unreadable_answer",
        details=f"the provider's answer could not be decoded for inspection: {why}",
    )


@dataclass(slots=True)
class AnswerCheck:
    """One check of a streamed answer, as the guard hands it to the answer policies."""

    answer: Answer  # its text and thinking are current only when `whole`
    final: bool
    # True: every answer policy runs; False: only those reading incrementally (`incremental_answers`).
    whole: bool
    # How much of the text (and of the thinking) earlier checks have read: findings wholly inside
    # were reported then, and the guard keeps applying their redactions until that text is out.
    settled_text_chars: int
    settled_thinking_chars: int
    text: GrowingText
    thinking: GrowingText


@dataclass(slots=True)
class GuardChecks:
    """The checks a guard runs (bound to one request's pipeline and context)."""

    answer: Callable[[AnswerCheck], Awaitable[Outcome]]
    tool_call: Callable[[ToolUse], Awaitable[Outcome]]


# An event held back, as a plain tuple (one is made per event: no object of its own to build):
# (its bytes, the offsets of its text in the guarded text (text and thinking in order), the tool
# calls it carries a piece of, the text it repeats from earlier (redacted like it), and whether it
# carries one piece of text and nothing else the guard holds, so that its approved start may go out
# as an event of its own (see `split`)).
_Pending = tuple[bytes, int, int, tuple[int, ...], tuple[str, ...], bool]


@dataclass(slots=True)
class _OpenCall:
    call_id: str = ""
    name: str = ""
    fragments: list[str] = field(default_factory=list)


_UNBOUNDED = 1 << 62
# Until the first text is approved, or this much text has come, a guard with holds checks every event.
_EAGER_CHARS = 256
# Echoed text is first looked for this far before the end of what was streamed (it is usually
# the part that just ended), then in the whole text.
_ECHO_SLACK = 4096
# Redactions applied to echoed text, which may repeat anything said since the stream began:
# beyond this many distinct ones, an echo event is refused rather than searched for each.
_MAX_ECHO_REDACTIONS = 512


class StreamGuard:
    """Decides which events of one stream may be released, and when."""

    # More attributes than an instance dictionary shares its keys for: slots keep each read and
    # write a fixed offset (the guard reads several at every event).
    __slots__ = (
        "_all_redactions", "_approval_open", "_approved_chars", "_check_every", "_check_redactions",
        "_checked_chars", "_checks", "_completed_arguments", "_due_at", "_eager", "_fail_closed_unreadable",
        "_guarded", "_held_calls", "_holds", "_incremental_checked_chars", "_incremental_readers", "_last_hold",
        "_max_buffer_bytes", "_mode", "_open_calls", "_pending", "_pending_bytes", "_read_text_chars",
        "_read_thinking_chars", "_reads_text", "_released_chars", "_restorations", "_rewrite", "_split", "_text",
        "_thinking", "_waiting_at", "_whole_growth", "_whole_readers", "_window", "answer", "decisions",
    )

    def __init__(
        self,
        checks: GuardChecks,
        *,
        mode: str,
        window_chars: int,
        max_buffer_bytes: int,
        check_every_chars: int = 64,
        restorations: list[tuple[str, str]] | None = None,
        rewrite: Callable[[bytes, str, str], bytes | None] | None = None,
        split: Callable[[bytes, str, str, str], tuple[bytes, bytes] | None] | None = None,
        holds: Sequence[Callable[[str], int]] = (),
        reads_text: bool = True,
        whole_readers: bool = True,
        incremental_readers: bool = False,
        whole_check_growth: float = 0.125,
        fail_closed_unreadable: bool = True,
    ) -> None:
        self._checks = checks
        # With no policy reading the text, only emitted tool calls are held; text flows at once.
        self._reads_text = reads_text
        self._mode = mode if reads_text else "pass"
        self._window = 0 if self._mode == "pass" else (_UNBOUNDED if mode == "buffer" else window_chars)
        self._max_buffer_bytes = max_buffer_bytes
        self._check_every = max(1, check_every_chars)
        self._whole_readers = whole_readers or not incremental_readers
        self._incremental_readers = incremental_readers
        self._whole_growth = max(0.0, whole_check_growth)
        self._fail_closed_unreadable = fail_closed_unreadable
        self._pending: deque[_Pending] = deque()
        # The approved point at which the last release left the oldest event waiting (-1: it left
        # none, or nothing is held): until that point moves or a call completes, a release would
        # give nothing. The approved point never moves back, so equal means unchanged.
        self._waiting_at = -1
        self._pending_bytes = 0
        self._text = GrowingText()
        self._thinking = GrowingText()
        # Text and thinking, in stream order (offsets refer to this): the text itself until the
        # first thinking comes (most answers have none), so each piece is stored once.
        self._guarded = self._text
        # (guarded length at a check, the redactions that check asked for): an original found by a
        # check lies before that length, so its redaction is kept until the text up to there is out.
        self._check_redactions: deque[tuple[int, list[tuple[str, str]]]] = deque()
        # Longest first, as every list of rewrites is applied (see `_release`).
        self._restorations = sorted(restorations, key=lambda pair: -len(pair[0])) if restorations else []
        self._rewrite = rewrite
        self._split = split
        # Where, in the unapproved text, a finding may still be in progress, per policy that can
        # tell (see `_approvable`); `window_chars` then covers only the policies that cannot.
        self._holds = tuple(holds) if self._mode == "guard" else ()
        # With holds, text is approved as soon as it is checked: until the first text is approved
        # (time to the first byte) every event is checked, then every `check_every_chars` as without.
        self._eager = bool(self._holds)
        # The last hold read: (approved point, checked limit, approvable point). The text is only
        # appended to, so the same two points give the same answer; between checks they do not move.
        self._last_hold = (-1, -1, 0)
        # False once `_approvable` gave nothing more at the current checked limit: until the next
        # check it would give the same, so it is not asked again.
        self._approval_open = True
        self._approved_chars = 0
        self._released_chars = 0  # text of every event released so far ends here (guarded offsets)
        self._read_text_chars = 0  # answer text and thinking the last check read
        self._read_thinking_chars = 0
        self._checked_chars = 0  # guarded text seen by the last check of every policy
        self._incremental_checked_chars = 0  # ... by the last check of the incremental readers
        # The guarded length from which a check is due (see `_due`), kept so that an event that
        # brings no check costs one comparison.
        self._due_at = 0
        self._all_redactions: dict[str, str] = {}  # every redaction asked for in this stream
        self._open_calls: dict[int, _OpenCall] = {}
        self._completed_arguments: dict[int, str] = {}
        self._held_calls: set[int] = set()
        self.answer = Answer()
        self.decisions: list[Decision] = []
        self._plan_checks()

    @property
    def text_released(self) -> bool:
        """True once some of the answer's text was approved for the client."""
        return self._approved_chars > 0

    @property
    def has_open_calls(self) -> bool:
        """True while a tool call the model emits is still being assembled."""
        return bool(self._open_calls)

    def pass_unread(self, raw: bytes) -> bool:
        """Take an event that holds no tool call, when `push` would release it at once and
        unchanged: no policy reads the text, nothing is held and the event is within the buffer
        cap. True: the caller sends `raw` as it is (its counts go to `add_usage`). False: nothing
        was taken, the event goes through `push`."""
        return not (self._reads_text or self._pending or self._open_calls or len(raw) > self._max_buffer_bytes)

    def add_usage(self, delta: UsageDelta | None) -> None:
        """Token counts read from events taken by `pass_unread`, in stream order with the others."""
        if delta is None:
            return
        usage = self.answer.usage
        if delta.input_tokens is not None:
            usage.input_tokens = delta.input_tokens
        if delta.output_tokens is not None:
            usage.output_tokens = delta.output_tokens

    async def push(self, raw: bytes, deltas: list[Delta]) -> bytes:
        """Take one event; return the bytes that may go to the client now (possibly b"").

        Raises StreamBlocked when a policy ends the stream; nothing pending is released then.
        """
        guarded = self._guarded
        text_start = guarded.length
        texts = 0
        tool_indexes: list[int] | None = None
        completed: list[int] | None = None
        echoes: list[EchoDelta] | None = None
        text = self._text
        for delta in deltas:
            kind = type(delta)
            if kind is TextDelta:
                texts += 1
                piece = delta.text  # type: ignore[union-attr]
                text.append(piece)
                if guarded is not text:
                    guarded.append(piece)
            elif kind is ThinkingDelta:
                texts += 1
                if guarded is self._text:
                    guarded = self._guarded = self._split_guarded()
                self._thinking.append(delta.text)  # type: ignore[union-attr]
                guarded.append(delta.text)  # type: ignore[union-attr]
            elif kind is ToolCallDelta:
                # A call is complete at the finish (or the stream's end), not when another index
                # appears: parallel calls may interleave their fragments.
                self._add_tool_fragment(delta)  # type: ignore[arg-type]
                if tool_indexes is None:
                    tool_indexes = []
                tool_indexes.append(delta.index)  # type: ignore[union-attr]
            elif kind is FinishDelta:
                self.answer.finish_reason = delta.reason  # type: ignore[union-attr]
                if completed is None:
                    completed = []
                completed.extend(self._open_calls)
            elif kind is UsageDelta:
                self.add_usage(delta)  # type: ignore[arg-type]
            elif kind is UnreadableDelta and self._fail_closed_unreadable:
                self._stop(unreadable_decision(delta.reason))  # type: ignore[union-attr]
            elif kind is EchoDelta:
                if echoes is None:
                    echoes = []
                echoes.append(delta)  # type: ignore[arg-type]
        if echoes and self._fail_closed_unreadable:
            for echo in echoes:
                # Without text readers, text events are not even decoded: only calls are compared.
                if echo.part == "tool" or self._reads_text:
                    self._check_echo(echo)
        guarded_chars = guarded.length
        pending = self._pending
        if tool_indexes or echoes:
            pending.append((
                raw, text_start, guarded_chars, tuple(tool_indexes) if tool_indexes else (),
                tuple(echo.text for echo in echoes if echo.part != "tool" and echo.text) if echoes else (),
                False,
            ))
        else:
            pending.append((raw, text_start, guarded_chars, (), (), texts == 1 and guarded_chars - text_start > 1))
        self._pending_bytes += len(raw)
        if completed:
            for index in dict.fromkeys(completed):
                await self._complete_call(index)
        if self._pending_bytes > self._max_buffer_bytes:
            self._stop(Decision(
                Verdict.BLOCK, "stream-guard", "on_model_response", reason="excessive_usage",
                details=f"the answer held for inspection exceeded {self._max_buffer_bytes} bytes",
            ))
        if self._mode == "pass":
            if self._reads_text and guarded_chars >= self._due_at:
                await self._check_text(final=False, whole=self._due())
            self._approved_chars = guarded_chars
        elif guarded_chars - self._window > self._approved_chars:
            if guarded_chars >= self._due_at:
                await self._check_text(final=False, whole=self._due())
            if self._approval_open:
                # Read once per check: the approvable point depends only on what was checked.
                self._approval_open = False
                approvable = self._approvable()
                if approvable > self._approved_chars:
                    self._approved_chars = approvable
            if self._eager and (self._approved_chars or guarded_chars > _EAGER_CHARS):
                self._eager = False  # the first text is out (or long in coming): back to the usual pace
                self._plan_checks()
        if self._waiting_at == self._approved_chars and not completed:
            # The oldest event still waits for what has not changed since the last release (more
            # approved text, a call's completion), and this one is queued behind it: nothing to release.
            return b""
        return self._release()

    async def push_events(
        self, events: list[bytes], read: Callable[[bytes], list[Delta]], released: list[bytes]
    ) -> None:
        """`push` of each of `events` in turn, decoded by `read` as it comes; what each releases is
        appended to `released` at once, so it stays there when a later one blocks.

        The usual event between two checks, one piece of answer text (with token counts, as Gemini's
        carry) that brings no check, would only be queued by `push`: it is queued here without a
        call of its own (and its coroutine)."""
        text = self._text
        pending = self._pending
        cap = self._max_buffer_bytes
        for raw in events:
            deltas = read(raw)
            count = len(deltas)
            delta = deltas[0] if count else None
            usage = None
            if count == 2:
                # Text and counts, in either order (the two touch nothing in common).
                usage = deltas[1]
                if type(delta) is UsageDelta:
                    delta, usage = usage, delta
                if type(usage) is not UsageDelta:
                    delta = None
            elif count != 1:
                delta = None
            if (
                type(delta) is TextDelta
                and self._guarded is text
                and self._mode != "pass"
                and not self._eager
                and not self._approval_open
                and self._waiting_at == self._approved_chars
                and self._pending_bytes + len(raw) <= cap
            ):
                text_start = text.length
                text_end = text_start + len(delta.text)
                if text_end < self._due_at:
                    # What `push` does with it: the text kept, the event queued (splittable when its
                    # text is longer than one character), nothing due, nothing newly approvable.
                    if usage is not None:
                        self.add_usage(usage)  # type: ignore[arg-type]
                    text.append(delta.text)
                    pending.append((raw, text_start, text_end, (), (), text_end - text_start > 1))
                    self._pending_bytes += len(raw)
                    continue
            out = await self.push(raw, deltas)
            if out:
                released.append(out)

    async def finish(self) -> bytes:
        """The upstream stream ended: complete open tool calls, check the whole answer, release the rest."""
        for index in list(self._open_calls):
            await self._complete_call(index)
        if self._reads_text:
            await self._check_text(final=True, whole=True)
        self._approved_chars = self._guarded.length
        return self._release()

    def _split_guarded(self) -> GrowingText:
        """The guarded text as a buffer of its own, once thinking joins the text (the two interleave)."""
        guarded = GrowingText()
        guarded.append(self._text.value())
        return guarded

    def _approvable(self) -> int:
        """How far the text may be approved: what every policy has checked, less the window of
        those that cannot say where a finding may still be in progress, and short of the earliest
        point where one of those that can says it may be (an unfinished token, URL, digit run).

        A hold is read on the checked text past the approved point: text before it belongs to no
        finding that more text could still make, and every finding it holds was reported."""
        limit = self._seen_by_all() - self._window
        approved = self._approved_chars
        if self._holds and limit > approved:
            last_approved, last_limit, approvable = self._last_hold
            if last_approved == approved and last_limit == limit:
                return approvable
            unapproved = self._guarded.slice(approved, limit)
            held = -1  # the earliest hold (a loop: `min` over a generator costs more than the holds here)
            for hold in self._holds:
                at = hold(unapproved)
                if held < 0 or at < held:
                    held = at
            approvable = approved + held
            self._last_hold = (approved, limit, approvable)
            return approvable
        return limit

    def _seen_by_all(self) -> int:
        """How much of the guarded text every answer policy has checked."""
        seen = self._checked_chars if self._whole_readers else _UNBOUNDED
        if self._incremental_readers and self._incremental_checked_chars < seen:
            seen = self._incremental_checked_chars
        return seen

    def _due(self) -> bool:
        """Called once a check is due (`_due_at` reached): True for every policy (the whole readers
        once the text grew by their share), False for the incremental readers only."""
        return self._whole_readers and self._guarded.length >= self._whole_due_at()

    def _whole_due_at(self) -> int:
        checked = self._checked_chars
        growth = ceil(checked * self._whole_growth)
        return checked + (growth if growth > self._check_every else self._check_every)

    def _plan_checks(self) -> None:
        """Where the next check is due: the whole readers once the text grew by their share (at
        least `check_every_chars`), the incremental readers every `check_every_chars`, or at every
        event that brings text until the first text is approved (see `_eager`)."""
        due_at = self._whole_due_at() if self._whole_readers else _UNBOUNDED
        if self._incremental_readers:
            incremental_at = self._incremental_checked_chars + (1 if self._eager else self._check_every)
            if incremental_at < due_at:
                due_at = incremental_at
        self._due_at = due_at

    def _check_echo(self, echo: EchoDelta) -> None:
        """An echo must repeat what the stream carried: text seen (and checked) before, or a
        call's arguments exactly. Anything else would reach the client unchecked."""
        if echo.part == "tool":
            call = self._open_calls.get(echo.index)
            streamed = "".join(call.fragments) if call is not None else self._completed_arguments.get(echo.index)
            if streamed == echo.text:
                return
        else:
            seen = self._text if echo.part == "text" else self._thinking
            if echo.text in seen.since(len(seen) - len(echo.text) - _ECHO_SLACK) or echo.text in seen.value():
                return
        self._stop(unreadable_decision(f"a summary event repeats {echo.part} the stream never carried"))

    def _add_tool_fragment(self, delta: ToolCallDelta) -> None:
        call = self._open_calls.get(delta.index)
        if call is None:
            call = self._open_calls[delta.index] = _OpenCall()
            self._held_calls.add(delta.index)
        if delta.call_id:
            call.call_id = delta.call_id
        if delta.name:
            call.name = delta.name
        if delta.arguments_fragment:
            call.fragments.append(delta.arguments_fragment)

    async def _complete_call(self, index: int) -> None:
        call = self._open_calls.pop(index, None)
        if call is None:
            return
        raw_arguments = self._completed_arguments[index] = "".join(call.fragments)
        tool_call = ToolUse(
            name=call.name, arguments=parse_arguments(raw_arguments), call_id=call.call_id, raw_arguments=raw_arguments
        )
        self.answer.tool_calls.append(tool_call)
        outcome = await self._checks.tool_call(tool_call)
        self._record(outcome)
        if outcome.redactions:
            # A streamed call goes out as the provider's own argument fragments, which no rewrite
            # reaches: a call a policy wanted redacted is stopped rather than released as it is.
            redacting = next(d for d in outcome.decisions if d.verdict is Verdict.REDACT and not d.shadow)
            self._stop(Decision(
                Verdict.BLOCK, redacting.policy, "on_tool_call", reason=redacting.reason,
                details=f"{redacting.details or redacting.reason}; a streamed tool call cannot be redacted",
                subject=tool_call.name, extra={"emitted": True},
            ))
        self._held_calls.discard(index)

    async def _check_text(self, *, final: bool, whole: bool) -> None:
        guarded_chars = self._guarded.length
        if not final and guarded_chars == (self._checked_chars if whole else self._incremental_checked_chars):
            return
        if whole:
            self.answer.text = self._text.value()
            self.answer.thinking = self._thinking.value()
        check = AnswerCheck(
            self.answer, final, whole, self._read_text_chars, self._read_thinking_chars, self._text, self._thinking
        )
        outcome = await self._checks.answer(check)
        self._incremental_checked_chars = guarded_chars
        self._read_text_chars, self._read_thinking_chars = self._text.length, self._thinking.length
        if whole:
            self._checked_chars = guarded_chars
        self._plan_checks()
        self._approval_open = True
        if not outcome.decisions and outcome.governing is None:
            return  # the usual intermediate check: no policy had an opinion, nothing to record or apply
        self._record(outcome, keep_allows=final)
        redactions = outcome.redactions
        if redactions:
            self._check_redactions.append((guarded_chars, redactions))
            for original, replacement in redactions:
                self._all_redactions.setdefault(original, replacement)

    def _record(self, outcome: Outcome, keep_allows: bool = True) -> None:
        # Intermediate checks of a growing answer record only what is not ALLOW; the final check
        # records every policy's verdict on the whole answer.
        if keep_allows:
            self.decisions.extend(outcome.decisions)
        else:
            self.decisions.extend(d for d in outcome.decisions if d.verdict is not Verdict.ALLOW)
        if outcome.blocked and outcome.governing is not None:
            self._drop_pending()
            raise StreamBlocked(outcome.governing)

    def _stop(self, decision: Decision) -> None:
        """End the stream with `decision` (recorded), dropping everything still held."""
        self.decisions.append(decision)
        self._drop_pending()
        raise StreamBlocked(decision)

    def _drop_pending(self) -> None:
        """Forget every event still held (the stream ends without them)."""
        self._pending.clear()
        self._pending_bytes = 0
        self._waiting_at = -1

    def _release(self) -> bytes:
        pending = self._pending
        approved = self._approved_chars
        if not pending:
            return b""
        head = pending[0]
        if head[2] > approved and (not head[5] or head[1] >= approved):  # see `_Pending`
            self._waiting_at = approved
            return b""  # the oldest event waits for more of its text to be approved (as in the loop below)
        released: list[bytes] = []
        held_calls = self._held_calls
        check_redactions = self._check_redactions
        while check_redactions and check_redactions[0][0] <= self._released_chars:
            check_redactions.popleft()  # every original that check found is out (redacted) already
        if check_redactions:
            rewrites = [pair for _, redactions in check_redactions for pair in redactions] + self._restorations
        else:
            rewrites = self._restorations  # read only
        if len(check_redactions) > 1 or (self._restorations and check_redactions):
            # Longest first, as within one check: a finding still growing (a PEM block) was found
            # shorter by earlier checks, and the longest spelling must claim its text.
            rewrites.sort(key=lambda pair: -len(pair[0]))
        spans: list[tuple[int, int, str]] | None = None
        region_start = 0
        region = ""
        self._waiting_at = -1
        while pending:
            head = pending[0]
            raw, text_start, text_end, tool_indexes, echoes, splittable = head
            if text_end > approved:
                if not splittable or text_start >= approved or self._split is None:
                    self._waiting_at = approved
                    break
                first = self._split_head(head, approved)
                if first is None:
                    self._waiting_at = approved
                    break
                raw, text_end = first, approved
            elif tool_indexes and not held_calls.isdisjoint(tool_indexes):
                self._waiting_at = approved
                break
            else:
                pending.popleft()
                self._pending_bytes -= len(raw)
            if text_end > self._released_chars:
                self._released_chars = text_end
            if rewrites and text_end > text_start:
                if spans is None:
                    # Only the text around what is released now is searched: an original that
                    # touches these events starts at most its length before the first of them.
                    reach = max(len(original) for original, _ in rewrites)
                    region_start = max(0, text_start - reach)
                    region = self._guarded.slice(region_start, approved + reach)
                    spans = find_spans(region, rewrites)
                if spans:
                    raw = self._rewritten(raw, region, region_start, text_start, text_end, spans)
            if echoes:
                raw = self._rewritten_echoes(raw, echoes)
            released.append(raw)
        return b"".join(released)

    def _split_head(self, head: _Pending, approved: int) -> bytes | None:
        """The approved start of the oldest event's text (`head`, whose text starts before
        `approved` and ends after it) as an event of its own, the event keeping the rest; None
        when it cannot be split exactly (it then waits whole)."""
        raw, text_start, text_end = head[0], head[1], head[2]
        old = self._guarded.slice(text_start, text_end)
        cut = approved - text_start
        halves = self._split(raw, old, old[:cut], old[cut:])  # type: ignore[misc]
        if halves is None:
            return None
        first, rest = halves
        self._pending_bytes += len(rest) - len(raw)
        self._pending[0] = (rest, approved, text_end, (), (), True)
        return first

    def _rewritten_echoes(self, raw: bytes, echoes: tuple[str, ...]) -> bytes:
        """`raw` with the text it repeats redacted (and placeholders restored) as the stream was."""
        if not self._all_redactions and not self._restorations:
            return raw
        if len(self._all_redactions) > _MAX_ECHO_REDACTIONS:
            self._stop(Decision(
                Verdict.BLOCK, "stream-guard", "on_model_response", reason="excessive_usage",
                details=f"more than {_MAX_ECHO_REDACTIONS} redactions to apply to a summary event",
            ))
        rewrites = sorted([*self._all_redactions.items(), *self._restorations], key=lambda pair: -len(pair[0]))
        for echo in echoes:
            spans = find_spans(echo, rewrites)
            if not spans:
                continue
            redacted = rewrite_segment(echo, 0, len(echo), spans)
            rewritten = self._rewrite(raw, echo, redacted) if self._rewrite is not None else None
            if rewritten is None:
                self._stop(Decision(
                    Verdict.BLOCK, "stream-guard", "on_model_response", reason="policy_error",
                    details="a redaction could not be applied to a summary event of the streamed answer",
                ))
            raw = rewritten  # type: ignore[assignment]
        return raw

    def _rewritten(
        self, raw: bytes, region: str, region_start: int, text_start: int, text_end: int,
        spans: list[tuple[int, int, str]],
    ) -> bytes:
        start, end = text_start - region_start, text_end - region_start
        old = region[start:end]
        new = rewrite_segment(region, start, end, spans)
        if new == old:
            return raw
        rewritten = self._rewrite(raw, old, new) if self._rewrite is not None else None
        if rewritten is None:
            self._stop(Decision(
                Verdict.BLOCK, "stream-guard", "on_model_response", reason="policy_error",
                details="a redaction could not be applied to the streamed answer",
            ))
        return rewritten  # type: ignore[return-value]
