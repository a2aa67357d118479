"""The admin API (`/admin/...`), behind a bearer token; absent while no token is configured.

Routes:
  GET  /admin/approvals                      held requests awaiting a decision
  GET  /admin/approvals/{decision_id}        one held request
  POST /admin/approvals/{decision_id}/approve
  POST /admin/approvals/{decision_id}/deny
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import orjson

from capsem_proxy.approvals import ApprovalStore
from capsem_proxy.asgi import Send, send_response
from capsem_proxy.replies import JSON_CONTENT_TYPE

__all__ = ["AdminAPI"]



def _error(message: str) -> bytes:
    return orjson.dumps({"detail": message, "error": {"message": message}})


class AdminAPI:
    """Serves the admin routes."""

    def __init__(self, token: str | None, approvals: ApprovalStore) -> None:
        self._token = token.encode() if token else None
        self.approvals = approvals

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if self._token is None or scheme.lower() != "bearer" or not presented:
            return False
        return hmac.compare_digest(presented.strip().encode(), self._token)

    async def handle(
        self, send: Send, method: str, path: str, headers: Mapping[str, str], extra_headers: list[tuple[bytes, bytes]]
    ) -> int:
        """Answer one admin request; returns the status sent."""
        status, body = await self._route(method, path, headers)
        await send_response(send, status, [JSON_CONTENT_TYPE, (b"cache-control", b"no-store"), *extra_headers], body)
        return status

    async def _route(self, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, bytes]:
        if not self.enabled:
            return 404, _error("not found")
        if not self._authorized(headers):
            return 401, _error("admin token required")
        parts = path.removeprefix("/admin/").strip("/").split("/")
        if parts[0] != "approvals":
            return 404, _error("not found")
        if len(parts) == 1 and method == "GET":
            return 200, orjson.dumps({"approvals": [held.as_dict() for held in await self.approvals.pending()]})
        if len(parts) == 2 and method == "GET":
            held = await self.approvals.get(parts[1])
            return (200, orjson.dumps(held.as_dict())) if held else (404, _error("unknown or expired decision id"))
        if len(parts) == 3 and method == "POST" and parts[2] in ("approve", "deny"):
            held = await self.approvals.decide(parts[1], approve=parts[2] == "approve")
            if held is None:
                return 404, _error("unknown or expired decision id")
            expected = "approved" if parts[2] == "approve" else "denied"
            if held.status != expected:
                return 409, _error(f"decision {held.decision_id} is already {held.status}")
            return 200, orjson.dumps(held.as_dict())
        return 404, _error("not found")
