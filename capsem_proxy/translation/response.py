"""An upstream's answer presented as the client's API spells it, read whole or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from capsem_proxy.scanning import large_body_turn
from capsem_proxy.translation.base import Translation
from capsem_proxy.upstream import UpstreamResponse

__all__ = ["TranslatedResponse", "translated"]

_JSON = "application/json"
_SSE = "text/event-stream; charset=utf-8"


@dataclass(slots=True)
class TranslatedResponse(UpstreamResponse):
    """The answer of an upstream of another API, translated as it is read."""

    translation: Translation | None = None

    async def read(self) -> bytes:
        body = await UpstreamResponse.read(self)
        assert self.translation is not None
        async with large_body_turn(len(body)):  # parsed and re-encoded whole: a large one takes its turn
            if self.status >= 400:
                return self.translation.error(self.status, body)
            return self.translation.answer(body)

    async def chunks(self) -> AsyncIterator[bytes]:
        translation = self.translation
        assert translation is not None
        async for chunk in UpstreamResponse.chunks(self):
            translated_chunk = translation.feed(chunk)
            if translated_chunk:
                yield translated_chunk
        tail = translation.end()
        if tail:
            yield tail


def translated(response: UpstreamResponse, translation: Translation) -> TranslatedResponse:
    """`response` read through `translation`; its content type becomes the client's."""
    streamed = translation.stream and response.status < 400
    content_type = _SSE if streamed else _JSON
    headers = [(name, value) for name, value in response.headers if name != b"content-type"]
    headers.append((b"content-type", content_type.encode()))
    return TranslatedResponse(
        status=response.status,
        headers=headers,
        content_type=content_type,
        _answer=response._answer,
        max_body_bytes=response.max_body_bytes,
        content_encoding=response.content_encoding,
        translation=translation,
    )
