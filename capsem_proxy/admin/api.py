"""AdminAPI: the entry point for /admin/* and /dashboard*, which routes each request to its handler
and turns what goes wrong into the right status."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from capsem_proxy.admin.auth import AdminAuth
from capsem_proxy.admin.dashboard import FAVICON, answer_dashboard
from capsem_proxy.admin.params import BadParameter
from capsem_proxy.admin.queries import answer_query
from capsem_proxy.admin.replies import Reply, error_reply, json_reply, not_allowed, send_reply
from capsem_proxy.admin.tenants import NO_TENANT_NAMES, TenantDirectory
from capsem_proxy.asgi import Receive, Send, read_body
from capsem_proxy.audit.base import AuditSink
from capsem_proxy.confirm.admin_routes import answer_approvals
from capsem_proxy.confirm.store import ApprovalStore
from capsem_proxy.dashboard import DashboardAssets, DashboardSessions
from capsem_proxy.errors import BodyTooLarge
from capsem_proxy.gateway import admin as gateway_admin
from capsem_proxy.gateway import roles

if TYPE_CHECKING:
    from capsem_proxy.gateway.gateway import Gateway

__all__ = ["AdminAPI"]

logger = logging.getLogger("capsem_proxy.admin")

_QUERY_RESOURCES = ("requests", "decisions", "sessions", "summary", "export")
# Query resources with no `/{id}` route below them.
_COLLECTIONS_ONLY = ("decisions", "summary")


class AdminAPI:
    """Serves /admin/* and /dashboard*."""

    def __init__(
        self,
        token: str | None,
        approvals: ApprovalStore,
        audit: AuditSink | None = None,
        gateway: Gateway | None = None,
    ) -> None:
        self.approvals = approvals
        self.audit = audit
        self.gateway = gateway
        self.sessions: DashboardSessions | None = None
        self.assets: DashboardAssets | None = None
        self._auth: AdminAuth | None = None
        if token:
            self.sessions = DashboardSessions(token.encode())
            self.assets = DashboardAssets()
            self._auth = AdminAuth(token.encode(), self.sessions)

    @property
    def enabled(self) -> bool:
        return self._auth is not None

    # Who a tenant id is (admin/tenants.py): a TenantDirectory set here adds `tenant_name` to the rows
    # whose ids it knows. The gateway needs none: it records its tenants under their names already
    # (a provider key's tenant is a keyed hash, which has no name to look up).
    tenant_names: TenantDirectory = NO_TENANT_NAMES

    async def handle(
        self,
        send: Send,
        method: str,
        path: str,
        headers: Mapping[str, str],
        extra_headers: list[tuple[bytes, bytes]],
        query_string: bytes = b"",
        receive: Receive | None = None,
    ) -> int:
        """Answer one admin or dashboard request; returns the status sent."""
        try:
            reply = await self._route(method, path, headers, query_string, receive)
        except BadParameter as exc:
            reply = error_reply(400, str(exc), exc.parameter)
        except Exception:
            logger.exception("admin request %s %s failed", method, path.split("?", 1)[0][:200])
            reply = error_reply(500, "internal error in the admin API")
        await send_reply(send, reply, extra_headers)
        return reply.status

    async def _route(
        self, method: str, path: str, headers: Mapping[str, str], query_string: bytes, receive: Receive | None = None
    ) -> Reply:
        if self._auth is None:
            return error_reply(404, "not found")
        if path == "/favicon.ico":
            # Browsers ask for it at the root of every page they open, dashboard or login: the same
            # public file as /dashboard/static/favicon.ico (no session needed, no data in it).
            path = "/dashboard/" + FAVICON
        if path == "/dashboard/login" and method == "POST" and not self._auth.bearer_ok(headers):
            # A JWT with an admin role opens a dashboard session for that role.
            role = await roles.jwt_role(self.gateway.jwt if self.gateway is not None else None, headers)
            if role is not None:
                secure = headers.get("x-forwarded-proto", "").lower() == "https"
                assert self.sessions is not None
                return Reply(204, b"", headers=[(b"set-cookie", self.sessions.set_cookie(secure, role))])
        if path == "/dashboard" or path.startswith("/dashboard/"):
            assert self.assets is not None
            return answer_dashboard(self._auth, self.assets, method, path.removeprefix("/dashboard").strip("/"),
                                    headers)
        if not path.startswith("/admin/"):
            return error_reply(404, "not found")
        parts = path.removeprefix("/admin/").strip("/").split("/")
        role = self._auth.role(method, headers) or await roles.jwt_role(
            self.gateway.jwt if self.gateway is not None else None, headers
        )
        if role is None:
            return error_reply(401, "admin token required")
        if not roles.allowed(role, method, parts[0]):
            return error_reply(403, f"the {role} role may not {method} /admin/{parts[0]}")
        if parts == ["whoami"]:
            # The caller's role, which the dashboard reads to hide what it may not do.
            return json_reply({"role": role}) if method == "GET" else not_allowed("GET")
        if parts[0] == "keys":
            body = None
            if method == "POST" and receive is not None:
                try:
                    body = await read_body(receive, gateway_admin.MAX_ADMIN_BODY_BYTES, None)
                except BodyTooLarge as exc:
                    return error_reply(413, str(exc))
            return await gateway_admin.answer_keys(self.gateway, method, parts, body)
        if parts[0] == "spend" and len(parts) == 1:
            return await gateway_admin.answer_spend(self.gateway, method, query_string)
        if parts[0] == "approvals":
            return await answer_approvals(self.approvals, method, parts)
        if parts[0] in _QUERY_RESOURCES and len(parts) <= 2:
            if len(parts) == 2 and parts[0] in _COLLECTIONS_ONLY:
                return error_reply(404, "not found")
            if method != "GET":
                return not_allowed("GET")
            return await answer_query(self.audit, parts, query_string, self.tenant_names)
        return error_reply(404, "not found")
