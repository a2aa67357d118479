"""The shape of one request's translation between the client's API and an upstream's.

One object per request (as Envoy AI Gateway's translators): it turns the client's request body into
the upstream's, then the upstream's answer (whole, streamed chunk by chunk, or an error) back into
what the client's SDK expects, keeping whatever state a stream needs between chunks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import orjson

from capsem_proxy.streaming.sse import event_data

__all__ = ["Translation", "TranslationError", "event_json"]


def event_json(raw: bytes) -> Any:
    """The JSON value of one upstream SSE event's data; None when it has none or it is not JSON.
    Bytes that are not UTF-8 read as U+FFFD, as the SSE spec's decoder reads them."""
    data = event_data(raw)
    if not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return orjson.loads(data.decode("utf-8", "replace"))
        except orjson.JSONDecodeError:
            return None


class TranslationError(ValueError):
    """The request cannot be expressed in the upstream's API (the client gets a 400)."""


class Translation(ABC):
    """OpenAI chat completions served by another API: request out, answer back."""

    stream: bool = False

    @abstractmethod
    def request(self, body: bytes, model: str) -> bytes:
        """The upstream's request body for the client's `body`, asking for `model`; sets `stream`."""

    @abstractmethod
    def answer(self, body: bytes) -> bytes:
        """A whole successful answer, as an OpenAI chat completion."""

    @abstractmethod
    def error(self, status: int, body: bytes) -> bytes:
        """An error answer, in OpenAI's error shape."""

    @abstractmethod
    def feed(self, chunk: bytes) -> bytes:
        """Streamed bytes from the upstream; returns the OpenAI SSE bytes they complete (maybe none)."""

    @abstractmethod
    def end(self) -> bytes:
        """The stream ended: the last OpenAI events (`data: [DONE]`)."""
