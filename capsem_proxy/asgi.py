"""Small ASGI helpers: read a bounded body, send a whole response.

The proxy is a raw ASGI app (no framework): every microsecond on the request path counts,
and a proxy needs little beyond exact control of bytes and headers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from capsem_proxy.errors import BodyTooLarge, ProxyError

__all__ = ["ClientDisconnected", "Receive", "Scope", "Send", "read_body", "send_response"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ClientDisconnected(ProxyError):
    """The client went away before the request body was complete."""

    status = 499


async def read_body(receive: Receive, limit: int, declared_length: int | None) -> bytes:
    """The request body, refusing more than `limit` bytes (checked before reading when declared)."""
    if declared_length is not None and declared_length > limit:
        raise BodyTooLarge(f"request body of {declared_length} bytes exceeds the limit of {limit} bytes")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientDisconnected("client disconnected")
    body = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
        return body
    parts = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def send_response(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    """Send a complete response with its content length."""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
