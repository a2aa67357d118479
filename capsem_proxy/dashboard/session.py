"""The dashboard's login cookie: a signed expiry derived from the admin token, never the token.

A browser cannot attach a bearer header to a page navigation, so after one login with the token
the dashboard holds `<expiry>.<HMAC(token, expiry)>` in an HttpOnly, SameSite=Strict cookie.
Every replica configured with the same token accepts it without shared state; changing the token
ends every session at once.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

__all__ = ["COOKIE_NAME", "DashboardSessions"]

COOKIE_NAME = "capsem_admin_session"
_VERSION = "v1"
# Domain separation: the MAC key is derived from the token for this one purpose.
_KEY_LABEL = b"capsem-proxy dashboard session v1"


def _cookie_values(cookie_header: str, name: str) -> list[str]:
    """Every value of cookie `name` in a Cookie header.

    Parsed by hand because http.cookies.SimpleCookie gives up on the whole header when any other
    cookie of the site is malformed, and a duplicate name (set by a sibling host) must not hide ours.
    """
    values = []
    for part in cookie_header.split(";"):
        key, separator, value = part.strip().partition("=")
        if separator and key == name:
            values.append(value.strip().strip('"'))
    return values


class DashboardSessions:
    """Issues and checks login cookies for one admin token."""

    def __init__(self, token: bytes, max_age_seconds: int = 8 * 3600) -> None:
        self._key = hmac.new(token, _KEY_LABEL, hashlib.sha256).digest()
        self.max_age_seconds = max_age_seconds

    def _mac(self, expires: int) -> str:
        return hmac.new(self._key, f"{_VERSION}.{expires}".encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None) -> str:
        """A fresh cookie value valid for `max_age_seconds`."""
        expires = int(now if now is not None else time.time()) + self.max_age_seconds
        return f"{_VERSION}.{expires}.{self._mac(expires)}"

    def valid(self, value: str, now: float | None = None) -> bool:
        """Whether `value` was issued for this token and has not expired."""
        version, _, rest = value.partition(".")
        expires_text, _, mac = rest.partition(".")
        if version != _VERSION or not expires_text.isdigit() or len(expires_text) > 12:
            return False
        expires = int(expires_text)
        if expires < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(mac.encode(), self._mac(expires).encode())

    def authenticated(self, headers: Mapping[str, str]) -> bool:
        """Whether the request carries a valid session cookie."""
        cookie_header = headers.get("cookie")
        if not cookie_header:
            return False
        return any(self.valid(value) for value in _cookie_values(cookie_header, COOKIE_NAME))

    def set_cookie(self, secure: bool) -> bytes:
        """A Set-Cookie value starting a session."""
        attributes = f"{COOKIE_NAME}={self.issue()}; Max-Age={self.max_age_seconds}; Path=/; HttpOnly; SameSite=Strict"
        return (attributes + ("; Secure" if secure else "")).encode()

    @staticmethod
    def clear_cookie(secure: bool) -> bytes:
        """A Set-Cookie value ending the session in this browser."""
        attributes = f"{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"
        return (attributes + ("; Secure" if secure else "")).encode()
