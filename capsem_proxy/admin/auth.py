"""Who may use the admin API: the bearer token, or the dashboard's session cookie (plus a custom
header on anything that writes, which a cross-site form cannot send)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from capsem_proxy.dashboard import DashboardSessions

__all__ = ["CSRF_HEADER", "AdminAuth"]

CSRF_HEADER = "x-capsem-admin"


class AdminAuth:
    """Checks a request's credentials against the admin token and the sessions derived from it."""

    def __init__(self, token: bytes, sessions: DashboardSessions) -> None:
        self._token = token
        self.sessions = sessions

    def bearer_ok(self, headers: Mapping[str, str]) -> bool:
        """The request carries `Authorization: Bearer <the admin token>`."""
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return False
        return hmac.compare_digest(presented.strip().encode(), self._token)

    def _cookie_role(self, headers: Mapping[str, str]) -> str | None:
        # SameSite=Strict keeps the cookie off cross-site requests; Fetch Metadata also refuses
        # other origins of the same site (another port on the same host).
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return None
        return self.sessions.role(headers)

    def role(self, method: str, headers: Mapping[str, str]) -> str | None:
        """`admin` for the bearer token; the session's role for the cookie (with the custom header unless
        the method is GET); None otherwise."""
        if self.bearer_ok(headers):
            return "admin"
        if method == "GET" or headers.get(CSRF_HEADER) == "1":
            return self._cookie_role(headers)
        return None

    def authorized(self, method: str, headers: Mapping[str, str]) -> bool:
        """The bearer token, or a session cookie of any role (with the custom header unless GET)."""
        return self.role(method, headers) is not None
