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

    def _mac(self, expires: int, role: str = "admin") -> str:
        message = f"{_VERSION}.{expires}" if role == "admin" else f"{_VERSION}.{expires}.{role}"
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def issue(self, now: float | None = None, role: str = "admin") -> str:
        """A fresh cookie value valid for `max_age_seconds`; a role other than admin is signed into it."""
        expires = int(now if now is not None else time.time()) + self.max_age_seconds
        value = f"{_VERSION}.{expires}.{self._mac(expires, role)}"
        return value if role == "admin" else f"{value}.{role}"

    def role_of(self, value: str, now: float | None = None) -> str | None:
        """The role `value` was issued for, or None when it was not issued for this token or has expired."""
        parts = value.split(".")
        if len(parts) not in (3, 4) or parts[0] != _VERSION:
            return None
        expires_text, mac = parts[1], parts[2]
        role = parts[3] if len(parts) == 4 else "admin"
        if not expires_text.isdigit() or len(expires_text) > 12 or len(role) > 16:
            return None
        expires = int(expires_text)
        if expires < (now if now is not None else time.time()):
            return None
        return role if hmac.compare_digest(mac.encode(), self._mac(expires, role).encode()) else None

    def valid(self, value: str, now: float | None = None) -> bool:
        """Whether `value` was issued for this token and has not expired."""
        return self.role_of(value, now) is not None

    def role(self, headers: Mapping[str, str]) -> str | None:
        """The role of the request's valid session cookie, if any."""
        cookie_header = headers.get("cookie")
        if not cookie_header:
            return None
        for value in _cookie_values(cookie_header, COOKIE_NAME):
            role = self.role_of(value)
            if role is not None:
                return role
        return None

    def authenticated(self, headers: Mapping[str, str]) -> bool:
        """Whether the request carries a valid session cookie."""
        return self.role(headers) is not None

    def set_cookie(self, secure: bool, role: str = "admin") -> bytes:
        """A Set-Cookie value starting a session (for `role`)."""
        value = self.issue(role=role)
        attributes = f"{COOKIE_NAME}={value}; Max-Age={self.max_age_seconds}; Path=/; HttpOnly; SameSite=Strict"
        return (attributes + ("; Secure" if secure else "")).encode()

    @staticmethod
    def clear_cookie(secure: bool) -> bytes:
        """A Set-Cookie value ending the session in this browser."""
        attributes = f"{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict"
        return (attributes + ("; Secure" if secure else "")).encode()
