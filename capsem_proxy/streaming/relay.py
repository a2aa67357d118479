"""Relays a streamed answer to the client, whole events at a time, as they arrive.

Events are cut only at their boundaries, so a stream the provider breaks off (or that a
policy ends) can always be closed with a well-formed provider error event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from capsem_proxy.errors import ProxyError
from capsem_proxy.streaming.jsonarray import JSONArraySplitter
from capsem_proxy.streaming.sse import SSESplitter
from capsem_proxy.upstream import UpstreamResponse

__all__ = ["StreamResult", "relay_sse", "relay_json_array"]

Send = Callable[[dict[str, Any]], Awaitable[None]]
ErrorEvent = Callable[[ProxyError], bytes]


@dataclass(slots=True)
class StreamResult:
    """How a relayed stream ended."""

    bytes_sent: int = 0
    error: ProxyError | None = None


async def _send_body(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def relay_sse(send: Send, upstream: UpstreamResponse, error_event: ErrorEvent) -> StreamResult:
    """Forward SSE events as they complete; end with the provider's error event on a failure."""
    splitter = SSESplitter()
    result = StreamResult()
    try:
        async for chunk in upstream.chunks():
            complete = splitter.feed(chunk)
            if complete:
                result.bytes_sent += len(complete)
                await _send_body(send, complete)
        tail = splitter.pending
        if tail:
            await _send_body(send, tail)
    except ProxyError as exc:
        result.error = exc
        await _send_body(send, error_event(exc))
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    return result


async def relay_json_array(send: Send, upstream: UpstreamResponse, error_event: ErrorEvent) -> StreamResult:
    """Forward Gemini's JSON-array stream element by element; on a failure, close the array
    with an error element so the client still parses a complete array."""
    splitter = JSONArraySplitter()
    result = StreamResult()
    try:
        async for chunk in upstream.chunks():
            forwarded, _ = splitter.feed(chunk)
            if forwarded:
                result.bytes_sent += len(forwarded)
                await _send_body(send, forwarded)
        tail = splitter.rest()
        if tail:
            await _send_body(send, tail)
    except ProxyError as exc:
        result.error = exc
        element = error_event(exc)
        closing = (b",\r\n" + element + b"\n]") if splitter.elements_seen else (b"[" + element + b"]")
        await _send_body(send, closing)
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    return result
