"""The dashboard's routes: its pages and files (a login page until a session exists), and the
login and logout that set and clear the session cookie."""

from __future__ import annotations

from collections.abc import Mapping

from capsem_proxy.admin.auth import AdminAuth
from capsem_proxy.admin.replies import Reply, error_reply, not_allowed
from capsem_proxy.dashboard import DashboardAssets

__all__ = ["FAVICON", "answer_dashboard"]

# Login page files and the icon: the only dashboard files served before logging in; they hold no data.
_PUBLIC_ASSETS = frozenset({"static/login.js", "static/style.css", "static/favicon.svg", "static/favicon.ico"})
FAVICON = "static/favicon.ico"


def answer_dashboard(auth: AdminAuth, assets: DashboardAssets, method: str, name: str,
                     headers: Mapping[str, str]) -> Reply:
    """Answer `/dashboard/<name>` (`name` is "" for the page itself)."""
    secure = headers.get("x-forwarded-proto", "").lower() == "https"
    if name in ("login", "logout"):
        if method != "POST":
            return not_allowed("POST")
        if name == "login":
            # The token itself is checked here, once; the browser keeps only the derived cookie.
            if not auth.bearer_ok(headers):
                return error_reply(401, "admin token required")
            return Reply(204, b"", headers=[(b"set-cookie", auth.sessions.set_cookie(secure))])
        if not auth.authorized(method, headers):
            return error_reply(401, "admin token required")
        return Reply(204, b"", headers=[(b"set-cookie", auth.sessions.clear_cookie(secure))])
    page = name == ""
    asset = assets.get("static/index.html" if page else name)
    if asset is None or (name.startswith("static/") and name.endswith(".html")):
        return error_reply(404, "not found")
    if method != "GET":
        return not_allowed("GET")
    if not auth.authorized(method, headers):
        if page:
            login = assets.get("static/login.html")
            assert login is not None
            return Reply(401, login.body, login.content_type)
        if name not in _PUBLIC_ASSETS:
            return error_reply(401, "admin token required")
    return Reply(200, asset.body, asset.content_type)
