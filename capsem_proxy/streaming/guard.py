"""Guarded release of a streamed answer: policies see the text as it arrives, and only what
they approved reaches the client.

The guard keeps a FIFO of pending events (never reordered) and the answer assembled so far.
Text is approved up to `len(text) - window` after a check of everything seen, so a match that
straddles two chunks (`sk-ab` + `cd…`) is always seen whole before any of it is released, as
long as the window is at least as long as what the policies look for. A tool call the model
emits is held until it is complete (the finish event or the stream's end), then checked with
`on_tool_call`, then released whole.

Modes: `pass` approves every event at once (policies still check at checkpoints and may end
the stream from there on), `guard` holds back the window, `buffer` holds everything until the
whole answer has been checked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from capsem_proxy.decisions import Decision, Outcome, Verdict
from capsem_proxy.exchange import Answer, ToolCall
from capsem_proxy.providers._decode_helpers import parse_arguments
from capsem_proxy.redaction import find_spans, rewrite_segment
from capsem_proxy.streaming.events import (
    Delta,
    FinishDelta,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    UsageDelta,
)

__all__ = ["GuardChecks", "StreamBlocked", "StreamGuard"]


class StreamBlocked(Exception):
    """A policy ended the stream; `decision` says which and why."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.details)
        self.decision = decision


@dataclass(slots=True)
class GuardChecks:
    """The checks a guard runs (bound to one request's pipeline and context)."""

    # (the answer so far, final, how many of its text characters earlier checks settled)
    answer: Callable[[Answer, bool, int], Awaitable[Outcome]]
    tool_call: Callable[[ToolCall], Awaitable[Outcome]]


@dataclass(slots=True)
class _Pending:
    raw: bytes
    text_start: int  # offsets of this event's text in the guarded text
    text_end: int
    tool_indexes: tuple[int, ...] = ()


@dataclass(slots=True)
class _OpenCall:
    call_id: str = ""
    name: str = ""
    fragments: list[str] = field(default_factory=list)


_UNBOUNDED = 1 << 62


class StreamGuard:
    """Decides which events of one stream may be released, and when."""

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
        reads_text: bool = True,
    ) -> None:
        self._checks = checks
        # With no policy reading the text, only emitted tool calls are held; text flows at once.
        self._reads_text = reads_text
        self._mode = mode if reads_text else "pass"
        self._window = 0 if self._mode == "pass" else (_UNBOUNDED if mode == "buffer" else window_chars)
        self._max_buffer_bytes = max_buffer_bytes
        self._check_every = max(1, check_every_chars)
        self._pending: deque[_Pending] = deque()
        self._pending_bytes = 0
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._guarded: list[str] = []  # text and thinking, in stream order (offsets refer to this)
        self._redactions: list[tuple[str, str]] = []
        self._restorations = restorations or []
        self._rewrite = rewrite
        self._guarded_chars = 0
        self._approved_chars = 0
        self._released_chars = 0  # text of every event released so far ends here
        self._checked_chars = 0
        self._open_calls: dict[int, _OpenCall] = {}
        self._held_calls: set[int] = set()
        self.answer = Answer()
        self.decisions: list[Decision] = []

    @property
    def has_open_calls(self) -> bool:
        """True while a tool call the model emits is still being assembled."""
        return bool(self._open_calls)

    async def push(self, raw: bytes, deltas: list[Delta]) -> bytes:
        """Take one event; return the bytes that may go to the client now (possibly b"").

        Raises StreamBlocked when a policy ends the stream; nothing pending is released then.
        """
        tool_indexes: list[int] = []
        completed: list[int] = []
        text_start = self._guarded_chars
        for delta in deltas:
            kind = type(delta)
            if kind is TextDelta:
                self._text.append(delta.text)  # type: ignore[union-attr]
                self._guarded.append(delta.text)  # type: ignore[union-attr]
                self._guarded_chars += len(delta.text)  # type: ignore[union-attr]
            elif kind is ThinkingDelta:
                self._thinking.append(delta.text)  # type: ignore[union-attr]
                self._guarded.append(delta.text)  # type: ignore[union-attr]
                self._guarded_chars += len(delta.text)  # type: ignore[union-attr]
            elif kind is ToolCallDelta:
                # A call is complete at the finish (or the stream's end), not when another index
                # appears: parallel calls may interleave their fragments.
                self._add_tool_fragment(delta)  # type: ignore[arg-type]
                tool_indexes.append(delta.index)  # type: ignore[union-attr]
            elif kind is FinishDelta:
                self.answer.finish_reason = delta.reason  # type: ignore[union-attr]
                completed.extend(self._open_calls)
            elif kind is UsageDelta:
                usage = self.answer.usage
                usage.input_tokens = delta.input_tokens if delta.input_tokens is not None else usage.input_tokens  # type: ignore[union-attr]
                usage.output_tokens = delta.output_tokens if delta.output_tokens is not None else usage.output_tokens  # type: ignore[union-attr]
        self._pending.append(_Pending(raw, text_start, self._guarded_chars, tuple(tool_indexes)))
        self._pending_bytes += len(raw)
        for index in dict.fromkeys(completed):
            await self._complete_call(index)
        if self._pending_bytes > self._max_buffer_bytes:
            overflow = Decision(
                Verdict.BLOCK, "stream-guard", "on_model_response", reason="excessive_usage",
                details=f"the answer held for inspection exceeded {self._max_buffer_bytes} bytes",
            )
            self.decisions.append(overflow)
            raise StreamBlocked(overflow)
        if self._mode == "pass":
            if self._reads_text:
                await self._check_text_at_checkpoint()
            self._approved_chars = self._guarded_chars
        elif self._guarded_chars - self._window > self._approved_chars and (
            self._guarded_chars - self._checked_chars >= self._check_every
        ):
            await self._check_text(final=False)
            self._approved_chars = max(self._approved_chars, self._checked_chars - self._window)
        return self._release()

    async def finish(self) -> bytes:
        """The upstream stream ended: complete open tool calls, check the whole answer, release the rest."""
        for index in list(self._open_calls):
            await self._complete_call(index)
        if self._reads_text:
            await self._check_text(final=True)
        self._approved_chars = self._guarded_chars
        return self._release()

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
        raw_arguments = "".join(call.fragments)
        tool_call = ToolCall(
            name=call.name, arguments=parse_arguments(raw_arguments), call_id=call.call_id, raw_arguments=raw_arguments
        )
        self.answer.tool_calls.append(tool_call)
        outcome = await self._checks.tool_call(tool_call)
        self._record(outcome)
        if outcome.redactions:
            # A streamed call goes out as the provider's own argument fragments, which no rewrite
            # reaches: a call a policy wanted redacted is stopped rather than released as it is.
            redacting = next(d for d in outcome.decisions if d.verdict is Verdict.REDACT)
            blocked = Decision(
                Verdict.BLOCK, redacting.policy, "on_tool_call", reason=redacting.reason,
                details=f"{redacting.details or redacting.reason}; a streamed tool call cannot be redacted",
                subject=tool_call.name, extra={"emitted": True},
            )
            self.decisions.append(blocked)
            self._pending.clear()
            self._pending_bytes = 0
            raise StreamBlocked(blocked)
        self._held_calls.discard(index)

    async def _check_text_at_checkpoint(self) -> None:
        if self._guarded_chars - self._checked_chars >= self._check_every:
            await self._check_text(final=False)

    async def _check_text(self, *, final: bool) -> None:
        if not final and self._guarded_chars == self._checked_chars:
            return
        self.answer.text = "".join(self._text)
        self.answer.thinking = "".join(self._thinking)
        # Text is released event by event, so what earlier checks settled ends where the last
        # released event's text ends; offsets there are the answer text's only without thinking.
        settled = self._released_chars if not self._thinking else 0
        outcome = await self._checks.answer(self.answer, final, settled)
        self._checked_chars = self._guarded_chars
        self._record(outcome, keep_allows=final)
        self._redactions = outcome.redactions

    def _record(self, outcome: Outcome, keep_allows: bool = True) -> None:
        # Intermediate checks of a growing answer record only what is not ALLOW; the final check
        # records every policy's verdict on the whole answer.
        if keep_allows:
            self.decisions.extend(outcome.decisions)
        else:
            self.decisions.extend(d for d in outcome.decisions if d.verdict is not Verdict.ALLOW)
        if outcome.blocked and outcome.governing is not None:
            self._pending.clear()
            self._pending_bytes = 0
            raise StreamBlocked(outcome.governing)

    def _release(self) -> bytes:
        released: list[bytes] = []
        pending = self._pending
        approved = self._approved_chars
        held_calls = self._held_calls
        rewrites = self._redactions + self._restorations
        spans: list[tuple[int, int, str]] | None = None
        guarded_text = ""
        while pending:
            head = pending[0]
            if head.text_end > approved:
                break
            if head.tool_indexes and not held_calls.isdisjoint(head.tool_indexes):
                break
            pending.popleft()
            self._pending_bytes -= len(head.raw)
            self._released_chars = max(self._released_chars, head.text_end)
            raw = head.raw
            if rewrites and head.text_end > head.text_start:
                if spans is None:
                    guarded_text = "".join(self._guarded)
                    spans = find_spans(guarded_text, rewrites)
                if spans:
                    raw = self._rewritten(raw, guarded_text, head, spans)
            released.append(raw)
        return b"".join(released)

    def _rewritten(self, raw: bytes, text: str, event: _Pending, spans: list[tuple[int, int, str]]) -> bytes:
        old = text[event.text_start : event.text_end]
        new = rewrite_segment(text, event.text_start, event.text_end, spans)
        if new == old:
            return raw
        rewritten = self._rewrite(raw, old, new) if self._rewrite is not None else None
        if rewritten is None:
            failure = Decision(
                Verdict.BLOCK, "stream-guard", "on_model_response", reason="policy_error",
                details="a redaction could not be applied to the streamed answer",
            )
            self.decisions.append(failure)
            self._pending.clear()
            self._pending_bytes = 0
            raise StreamBlocked(failure)
        return rewritten
