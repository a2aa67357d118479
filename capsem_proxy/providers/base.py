"""What every provider adapter does: decode its wire format into the neutral model and
shape the errors the proxy itself produces so the provider's own SDK understands them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from capsem_proxy.exchange import Answer, Exchange, Usage
from capsem_proxy.streaming.events import StreamDecoder
from capsem_proxy.streaming.usage import USAGE_KEY

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

    # The markers and what may disguise them; empty when the provider has no tool calls.
    _tool_call_needles: ClassVar[tuple[bytes, ...]] = ()
    _decoding_needles: ClassVar[tuple[bytes, ...]] = (USAGE_KEY, b"\\u", b"\x00")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # What may disguise a key (see `answer_decoding.may_be_disguised`).
        if cls.tool_call_markers:
            cls._tool_call_needles = (*cls.tool_call_markers, b"\\u", b"\x00")
        # Everything that makes an unread stream event worth decoding (see `may_need_decoding`).
        # The usage key first: a provider that reports counts in every event (Gemini) stops at it.
        cls._decoding_needles = (USAGE_KEY, *cls.tool_call_markers, b"\\u", b"\x00")

    def may_carry_tool_call(self, raw: bytes) -> bool:
        """False when `raw` certainly holds no tool call (one C substring search per marker).

        A key spelled with escapes (`"tool\\u005fcalls"`) or in UTF-16 hides the markers from a
        byte search: such bytes always count as possibly carrying a call, to be decoded.
        """
        for needle in self._tool_call_needles:  # noqa: SIM110 (one C search each beats an alternation regex)
            if needle in raw:
                return True
        return False

    def may_need_decoding(self, raw: bytes) -> bool:
        """False when `raw` certainly holds neither token counts nor a tool call: the same answer
        as `may_report_usage(raw) or self.may_carry_tool_call(raw)`, with one substring search per
        needle (each a fast C search; an alternation regex steps through the bytes one by one)."""
        for needle in self._decoding_needles:  # noqa: SIM110 (any() over a generator costs more)
            if needle in raw:
                return True
        return False

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
