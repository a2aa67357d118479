"""Stream events, the neutral deltas they decode into, and the contract of a provider's stream decoder."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "COUNTS",
    "NOTHING",
    "TOOL_CALL",
    "Delta",
    "EchoDelta",
    "ErrorDelta",
    "FinishDelta",
    "NullStreamDecoder",
    "StreamDecoder",
    "StreamEvent",
    "TextDelta",
    "ThinkingDelta",
    "ToolCallDelta",
    "UnreadableDelta",
    "UsageDelta",
]


# What an event relayed unread may need, by a byte scan (`ProviderAdapter.stream_event_need`):
# nothing, a reading of its token counts, or decoding in full (it may hold a tool call).
NOTHING, COUNTS, TOOL_CALL = 0, 1, 2


@dataclass(slots=True)
class StreamEvent:
    """One event of an upstream stream, with the exact bytes it arrived as.

    For SSE, `raw` is the whole event including its blank-line terminator, `event` the
    `event:` field (None when absent) and `data` the joined `data:` lines. For Gemini's
    JSON-array stream, `raw` is the element with the separators around it and `data` the
    element's JSON text. `unknown_lines` is True when the event holds lines that are no SSE
    field: the proxy cannot read them, though a client might.
    """

    raw: bytes
    data: str
    event: str | None = None
    unknown_lines: bool = False


@dataclass(slots=True)
class TextDelta:
    """A piece of answer text."""

    text: str


@dataclass(slots=True)
class ThinkingDelta:
    """A piece of the model's reasoning (Anthropic thinking, Gemini thought parts)."""

    text: str


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of a tool call the model emits; pieces with the same index form one call."""

    index: int
    call_id: str = ""
    name: str = ""
    arguments_fragment: str = ""


@dataclass(slots=True)
class FinishDelta:
    """The model finished (one choice / candidate / message)."""

    reason: str


@dataclass(slots=True)
class UsageDelta:
    """Token counts reported in the stream."""

    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(slots=True)
class ErrorDelta:
    """The provider reported an error inside the stream."""

    message: str


@dataclass(slots=True)
class UnreadableDelta:
    """The event carries something the decoder could not read (not JSON by any reading an SDK
    accepts, lines outside the SSE fields): a client may still see content in it, so a guard
    whose policies read answers fails closed."""

    reason: str


@dataclass(slots=True)
class EchoDelta:
    """Text a summary event repeats from earlier in the stream (the Responses API's `*.done` and
    `response.completed` events carry the whole text and tool arguments again, and SDK helpers
    build their final answer from them). Text must appear in what the stream carried before, a
    call's arguments must equal them, and it is redacted like them. `part` is "text",
    "thinking", or "tool" (the arguments of call `index`)."""

    text: str
    part: str = "text"
    index: int = 0


Delta = TextDelta | ThinkingDelta | ToolCallDelta | FinishDelta | UsageDelta | ErrorDelta | UnreadableDelta | EchoDelta


class StreamDecoder(ABC):
    """Turns the events of one streamed answer into neutral deltas, in order.

    One instance per stream: decoders may keep state (e.g. which content block index is a
    tool call in Anthropic streams).
    """

    # True when an event whose deltas are one TextDelta or ThinkingDelta (and UsageDeltas) is
    # decoded without reading or changing the decoder's state: such events may then be read by
    # their shape (`capsem_proxy.streaming.templates`), without `feed`.
    text_events_alone: ClassVar[bool] = False
    # Members of an event this decoder never reads, whose plain string values change from event to
    # event (OpenAI's `obfuscation` padding): a text event's template leaves a gap for their value.
    padding_fields: ClassVar[tuple[str, ...]] = ()
    # Whole events (their exact bytes, line ends included) that decode to no delta and change no
    # state: the pings and ends a provider sends alike in every stream. With `text_events_alone`,
    # they are taken as read by their bytes (`capsem_proxy.streaming.templates`), without `feed`.
    silent_events: ClassVar[frozenset[bytes]] = frozenset()

    @abstractmethod
    def feed(self, event: StreamEvent) -> list[Delta]:
        """Decode one event. Events that carry nothing neutral (pings, role-only deltas,
        metadata) give an empty list; data that is not JSON by any reading an SDK accepts gives
        an UnreadableDelta. Never raises on unexpected shapes."""

    def feed_usage(self, event: StreamEvent) -> list[Delta]:
        """Decode an event that holds no tool call, for a reader of token counts only: the
        UsageDelta and UnreadableDelta that `feed` gives are kept, text and finish deltas may be
        left out (decoders whose `feed` is cheap keep it whole). Must not change the decoder's state
        differently from `feed`."""
        return self.feed(event)


class NullStreamDecoder(StreamDecoder):
    """The decoder of operations that do not stream: every event gives nothing."""

    __slots__ = ()

    def feed(self, event: StreamEvent) -> list[Delta]:
        return []
