"""What the admin API and dashboard answer: a reply value, the JSON and error bodies, and the
headers every admin response carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from capsem_proxy.asgi import Send, send_response

__all__ = ["Reply", "error_reply", "json_reply", "not_allowed", "send_reply"]

_JSON = b"application/json"
# Headers on every admin and dashboard response: nothing is cached, framed, sniffed or loaded
# from anywhere but the proxy itself (no inline script, no CDN).
_SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (
        b"content-security-policy",
        b"default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_WWW_AUTHENTICATE = (b"www-authenticate", b'Bearer realm="capsem-proxy admin"')


@dataclass(slots=True)
class Reply:
    """One admin or dashboard response, before the common headers are added."""

    status: int
    body: bytes
    content_type: bytes = _JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def error_reply(status: int, message: str, parameter: str | None = None) -> Reply:
    """A JSON error body: `detail` for people, `error.parameter` naming the query parameter at fault."""
    error: dict[str, Any] = {"message": message}
    if parameter is not None:
        error["parameter"] = parameter
    return Reply(status, orjson.dumps({"detail": message, "error": error}))


def json_reply(payload: Any) -> Reply:
    """A 200 with `payload` as JSON."""
    # Rows come from several stores; anything orjson does not know is shown as text, not a 500.
    return Reply(200, orjson.dumps(payload, default=str))


def not_allowed(allowed: str) -> Reply:
    """A 405 naming the method the route takes."""
    reply = error_reply(405, f"method not allowed (use {allowed})")
    reply.headers.append((b"allow", allowed.encode()))
    return reply


async def send_reply(send: Send, reply: Reply, extra_headers: list[tuple[bytes, bytes]]) -> None:
    """Send `reply` with the security headers (and the bearer challenge on a 401)."""
    if reply.status == 401:
        reply.headers.append(_WWW_AUTHENTICATE)
    response_headers = [(b"content-type", reply.content_type), *_SECURITY_HEADERS, *reply.headers, *extra_headers]
    await send_response(send, reply.status, response_headers, reply.body)
