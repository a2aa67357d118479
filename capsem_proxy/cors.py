"""CORS: no browser origin is allowed unless listed; never a wildcard with credentials."""

from __future__ import annotations

from collections.abc import Mapping

from capsem_proxy.asgi import Send, send_response
from capsem_proxy.config import CorsSettings

__all__ = ["CorsPolicy"]

_METHODS = b"GET, POST, OPTIONS"


class CorsPolicy:
    """Answers preflights and adds CORS headers for the configured origins only."""

    def __init__(self, settings: CorsSettings) -> None:
        self._any_origin = "*" in settings.allow_origins
        self._origins = frozenset(settings.allow_origins)
        self._credentials = settings.allow_credentials
        self._allow_headers = ", ".join(settings.allow_headers).encode()
        self._max_age = str(settings.max_age).encode()

    def allows(self, origin: str) -> bool:
        return self._any_origin or origin in self._origins

    def response_headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        """Headers for an actual request from `origin` (none when the origin is not allowed)."""
        if not self.allows(origin):
            return []
        headers = [
            (b"access-control-allow-origin", b"*" if self._any_origin else origin.encode("latin-1")),
            (b"access-control-expose-headers", b"x-capsem-request-id, x-capsem-decision-id"),
            (b"vary", b"origin"),
        ]
        if self._credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        return headers

    async def preflight(
        self, send: Send, origin: str, headers: Mapping[str, str], extra_headers: list[tuple[bytes, bytes]]
    ) -> None:
        """Answer an OPTIONS preflight: 204 for an allowed origin, 403 otherwise."""
        if not self.allows(origin):
            await send_response(send, 403, [*extra_headers, (b"vary", b"origin")], b"")
            return
        response_headers = [
            *extra_headers,
            *self.response_headers(origin),
            (b"access-control-allow-methods", _METHODS),
            (b"access-control-allow-headers", self._allow_headers),
            (b"access-control-max-age", self._max_age),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": response_headers})
        await send({"type": "http.response.body", "body": b""})
