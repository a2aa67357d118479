"""Token counts read from a stream that is relayed without decoding: only the events that
report usage are decoded, by the provider's own stream decoder."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence

from capsem_proxy.answer_decoding import may_be_disguised
from capsem_proxy.streaming.events import Delta, StreamDecoder, StreamEvent, UsageDelta
from capsem_proxy.streaming.sse import SSESplitter, parse_event

__all__ = ["USAGE_KEY", "HeldUsage", "UsageMeter", "may_report_usage", "sse_events", "sse_usage_reader"]

logger = logging.getLogger("capsem_proxy.streaming")

# Every provider names its token counts `usage…` (usage, usageMetadata).
USAGE_KEY = b'"usage'


def may_report_usage(raw: bytes) -> bool:
    """False when `raw` certainly reports no token counts (no usage key, plain or escaped)."""
    # `find`, not `in`: `bytes in bytes` raises and clears a TypeError inside CPython on every call.
    return raw.find(USAGE_KEY) != -1 or may_be_disguised(raw)


class UsageMeter:
    """Keeps the latest input and output token counts a stream reported."""

    __slots__ = ("_decoder", "input_tokens", "output_tokens")

    def __init__(self, decoder: StreamDecoder) -> None:
        self._decoder = decoder
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None

    def sse(self, events: bytes) -> None:
        """Read the usage in `events`, complete SSE events as relayed."""
        if not may_report_usage(events):
            return
        splitter = SSESplitter()
        for raw in splitter.feed_events(events) + splitter.finish():
            if may_report_usage(raw):
                self._take(parse_event(raw))

    def element(self, element: bytes) -> None:
        """Read the usage in one element of a JSON-array stream."""
        if may_report_usage(element):
            self._take(StreamEvent(raw=element, data=element.decode("utf-8", "replace")))

    def _take(self, event: StreamEvent) -> None:
        try:
            deltas: list[Delta] = self._decoder.feed(event)
        except Exception:  # counting tokens must never break a relayed stream
            logger.debug("could not read usage from a stream event", exc_info=True)
            return
        for delta in deltas:
            if type(delta) is UsageDelta:
                if delta.input_tokens is not None:
                    self.input_tokens = delta.input_tokens
                if delta.output_tokens is not None:
                    self.output_tokens = delta.output_tokens


# Bytes of events whose counts are kept unread (see HeldUsage).
_HELD_USAGE_BYTES = 64 * 1024

EventReader = Callable[[bytes], Sequence[Delta]]


def sse_events(events: bytes) -> Iterator[bytes]:
    """The events of `events` (complete SSE events) that may report token counts, newest first.

    Each is cut out around the last usage key before the one found earlier, without splitting the
    other events, when its line ends are all of one kind: LF throughout, or CRLF with the cut-out
    event itself CRLF throughout and opening after a line end that no other one precedes (whole
    counts of a CRLF stream cost more than the reading they spare). Otherwise the rest is split.
    """
    if may_be_disguised(events):
        yield from _split_events(events)
        return
    lf_only = events.find(b"\r") == -1  # find: `bytes in bytes` raises and clears a TypeError
    boundary = b"\n\n" if lf_only else b"\r\n\r\n"
    end = len(events)
    while (at := events.rfind(USAGE_KEY, 0, end)) != -1:
        start = events.rfind(boundary, 0, at)
        start = 0 if start == -1 else start + len(boundary)
        stop = events.find(boundary, at)
        event = events[start : len(events) if stop == -1 else stop + len(boundary)]
        if not lf_only and not _crlf_event(events, start, event):
            yield from _split_events(events[:end])
            return
        yield event
        end = start


def _crlf_event(events: bytes, start: int, event: bytes) -> bool:
    """True when `event`, cut out of `events` at `start` around CRLF CRLF, is one event as the
    splitter would cut it: CRLF line ends only, after a boundary no other line end runs into."""
    crlf = event.count(b"\r\n")
    if event.count(b"\r") != crlf or event.count(b"\n") != crlf:
        return False
    return start < 5 or events[start - 5] not in b"\r\n"


def _split_events(events: bytes) -> Iterator[bytes]:
    """What `sse_events` gives, by a full split."""
    splitter = SSESplitter()
    for raw in reversed(splitter.feed_events(events) + splitter.finish()):
        if may_report_usage(raw):
            yield raw


def sse_usage_reader(decoder: StreamDecoder) -> EventReader:
    """Reads the token counts of one SSE event, with `decoder.feed_usage`."""

    def read(raw: bytes) -> list[Delta]:
        return decoder.feed_usage(parse_event(raw))

    return read


class HeldUsage:
    """Token counts of relayed events, read only when wanted.

    A stream reports its counts in one or two events, or (Gemini) again in every event, each
    report replacing the counts before it. The events that may report counts are kept as they
    are (up to 64 KiB of them) and read newest first, and only until both counts are known: a
    stream whose last report holds both is read once. Reading must not depend on the decoder's
    state (`StreamDecoder.feed_usage`). An event that cannot be read reports nothing: events
    kept here hold no tool call (those are decoded as they come), and they have been sent.
    """

    __slots__ = ("_held", "_held_bytes", "_read", "_split")

    def __init__(self, read: EventReader, split: Callable[[bytes], Iterable[bytes]] | None = None) -> None:
        self._read = read
        # Kept bytes may hold several events: how to find those that may report counts, newest first.
        self._split = split
        self._held: list[bytes] = []
        self._held_bytes = 0

    def add(self, raw: bytes) -> UsageDelta | None:
        """Keep `raw`, events that may report counts; past the cap, what `settle` returns."""
        self._held.append(raw)
        self._held_bytes += len(raw)
        return self.settle() if self._held_bytes > _HELD_USAGE_BYTES else None

    def settle(self) -> UsageDelta | None:
        """Read the events kept so far, newest first until both counts are known: the counts they
        report (a count none reports is None), or None when nothing was kept."""
        held = self._held
        if not held:
            return None
        found: list[int | None] = [None, None]
        while held and (found[0] is None or found[1] is None):
            kept = held.pop()
            for raw in self._split(kept) if self._split is not None else (kept,):
                self._take(raw, found)
                if found[0] is not None and found[1] is not None:
                    break
        held.clear()
        self._held_bytes = 0
        return UsageDelta(found[0], found[1])

    def _take(self, raw: bytes, found: list[int | None]) -> None:
        try:
            deltas = self._read(raw)
        except Exception:  # counting tokens must never break a relayed stream
            logger.debug("could not read usage from a stream event", exc_info=True)
            return
        for delta in reversed(deltas):
            if type(delta) is UsageDelta:
                if found[0] is None:
                    found[0] = delta.input_tokens
                if found[1] is None:
                    found[1] = delta.output_tokens
