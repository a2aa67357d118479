"""What every provider adapter does: decode its wire format into the neutral model and
shape the errors the proxy itself produces so the provider's own SDK understands them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from capsem_proxy.exchange import Answer, Exchange, Usage
from capsem_proxy.streaming.events import COUNTS, NOTHING, TOOL_CALL, StreamDecoder
from capsem_proxy.streaming.usage import USAGE_KEY, may_report_usage

__all__ = ["ConflictingKeys", "ProviderAdapter"]


class ConflictingKeys(ValueError):
    """A request carries two different keys (two headers, or a header and the query): the tenant
    the proxy sees could differ from the one the provider bills."""


class ProviderAdapter(ABC):
    """A provider's wire format, in both directions."""

    name: ClassVar[str]
    # Byte strings at least one of which appears in any answer or stream event that carries a
    # tool call; events without them need no decoding when no policy reads answer text.
    tool_call_markers: ClassVar[tuple[bytes, ...]] = ()

    # A substring every marker holds (None when they share none worth a search): an event without it
    # holds none of them, found with one search instead of one per marker.
    _marker_core: ClassVar[bytes | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._marker_core = _common_core(cls.tool_call_markers)

    def may_carry_tool_call(self, raw: bytes) -> bool:
        """False when `raw` certainly holds no tool call: a few substring searches, each a fast C
        search (an alternation regex steps through the bytes one by one).

        A key spelled with escapes (`"tool\\u005fcalls"`) or in UTF-16 hides the markers from a
        byte search: such bytes always count as possibly carrying a call, to be decoded.
        """
        return self.stream_event_need(raw) == TOOL_CALL if self.tool_call_markers else False

    def stream_event_need(self, raw: bytes) -> int:
        """What stream event(s) `raw`, relayed unread, need: TOOL_CALL when they may hold a tool
        call (a marker, or a key spelled so that no byte search finds it), else COUNTS when they may
        report token counts (`may_report_usage`), else NOTHING."""
        markers = self.tool_call_markers
        if markers:
            core = self._marker_core
            # `find`, not `in`: CPython's `bytes in bytes` first tries the needle as an integer and
            # raises and clears a TypeError each time (~2,000 instructions); this runs per event.
            if core is None or raw.find(core) != -1:
                for marker in markers:
                    if raw.find(marker) != -1:
                        return TOOL_CALL
            # may_be_disguised, inline
            if (raw.find(b"\\") != -1 and raw.find(b"\\u") != -1) or raw.find(b"\x00") != -1:
                return TOOL_CALL
            return COUNTS if raw.find(USAGE_KEY) != -1 else NOTHING
        return COUNTS if may_report_usage(raw) else NOTHING

    @abstractmethod
    def decode_request(self, operation: str, body: Any, path_model: str = "") -> Exchange:
        """Decode a parsed request body for `operation` into an Exchange.

        `path_model` is the model named in the URL (Gemini), empty otherwise. Tolerates
        any shape the SDKs send and never raises on unknown fields; raises ValueError only
        when the body is not a JSON object at all.
        """

    @abstractmethod
    def decode_answer(self, operation: str, body: Any) -> Answer:
        """Decode a parsed non-streamed answer body."""

    def decode_usage(self, operation: str, body: Any) -> Usage:
        """The token counts of a parsed non-streamed answer, as `decode_answer` reads them; adapters
        read only the counts, so an answer nobody else reads is not decoded whole for them."""
        return self.decode_answer(operation, body).usage

    @abstractmethod
    def stream_decoder(self, operation: str) -> StreamDecoder:
        """A fresh decoder for one streamed answer of `operation`."""

    @abstractmethod
    def error_payload(self, status: int, message: str, kind: str) -> dict[str, Any]:
        """The provider-native error object for a proxy-made error (without `detail`)."""

    @abstractmethod
    def stream_error_event(self, operation: str, status: int, message: str, kind: str, *, sse: bool) -> bytes:
        """The bytes of the provider's own error event, ending a stream so the SDK raises.

        `sse` is False only for Gemini's JSON-array stream, where the result is an array
        element (the caller adds separators).
        """

    @abstractmethod
    def extract_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """The caller's provider key, or None when absent. `headers` keys are lower-case.

        Raises ConflictingKeys when the request carries the key in more than one place with
        different values."""


def _common_core(markers: tuple[bytes, ...], shortest: int = 4) -> bytes | None:
    """The longest substring all `markers` hold, when it is at least `shortest` bytes long."""
    if len(markers) < 2:
        return None
    first = min(markers, key=len)
    for size in range(len(first), shortest - 1, -1):
        for start in range(len(first) - size + 1):
            core = first[start : start + size]
            if all(core in marker for marker in markers):
                return core
    return None
