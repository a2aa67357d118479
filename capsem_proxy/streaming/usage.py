"""Token counts read from a stream that is relayed without decoding: only the events that
report usage are decoded, by the provider's own stream decoder."""

from __future__ import annotations

import logging

from capsem_proxy.answer_decoding import may_be_disguised
from capsem_proxy.streaming.events import Delta, StreamDecoder, StreamEvent, UsageDelta
from capsem_proxy.streaming.sse import SSESplitter, parse_event

__all__ = ["USAGE_KEY", "UsageMeter", "may_report_usage"]

logger = logging.getLogger("capsem_proxy.streaming")

# Every provider names its token counts `usage…` (usage, usageMetadata).
USAGE_KEY = b'"usage'


def may_report_usage(raw: bytes) -> bool:
    """False when `raw` certainly reports no token counts (no usage key, plain or escaped)."""
    return USAGE_KEY in raw or may_be_disguised(raw)


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
