"""Token counts read from a stream that is relayed without decoding: only the events that
report usage are decoded, by the provider's own stream decoder."""

from __future__ import annotations

import logging

from capsem_proxy.providers.base import StreamDecoder
from capsem_proxy.streaming.events import Delta, StreamEvent, UsageDelta
from capsem_proxy.streaming.sse import SSESplitter, parse_event

__all__ = ["USAGE_KEY", "UsageMeter"]

logger = logging.getLogger("capsem_proxy.streaming")

# Every provider names its token counts `usage…` (usage, usageMetadata).
USAGE_KEY = b'"usage'


class UsageMeter:
    """Keeps the latest input and output token counts a stream reported."""

    __slots__ = ("_decoder", "input_tokens", "output_tokens")

    def __init__(self, decoder: StreamDecoder) -> None:
        self._decoder = decoder
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None

    def sse(self, events: bytes) -> None:
        """Read the usage in `events`, complete SSE events as relayed."""
        if USAGE_KEY not in events:
            return
        for raw in SSESplitter().feed_events(events):
            if USAGE_KEY in raw:
                self._take(parse_event(raw))

    def element(self, element: bytes) -> None:
        """Read the usage in one element of a JSON-array stream."""
        if USAGE_KEY in element:
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
