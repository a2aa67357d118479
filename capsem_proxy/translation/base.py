"""The shape of one request's translation between the client's API and an upstream's.

One object per request (as Envoy AI Gateway's translators): it turns the client's request body into
the upstream's, then the upstream's answer (whole, streamed chunk by chunk, or an error) back into
what the client's SDK expects, keeping whatever state a stream needs between chunks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["Translation", "TranslationError"]


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
