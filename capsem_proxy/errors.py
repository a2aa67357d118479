"""Errors the proxy itself produces. The app maps each to a provider-shaped body in one place."""

from __future__ import annotations

__all__ = [
    "AmbiguousKey",
    "AuditUnavailable",
    "BodyTooLarge",
    "ErrorKind",
    "MalformedJSON",
    "MalformedKey",
    "MissingKey",
    "ProxyError",
    "RouteNotFound",
    "UpstreamBroken",
    "UpstreamMalformed",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class ErrorKind:
    """Neutral names of the errors the proxy produces; adapters map them to native types."""

    AUTHENTICATION = "authentication"  # 401
    INVALID_REQUEST = "invalid_request"  # 400
    NOT_FOUND = "not_found"  # 404
    TOO_LARGE = "too_large"  # 413
    PERMISSION = "permission"  # 403 (policy blocks)
    RATE_LIMIT = "rate_limit"  # 429
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"  # 502
    UNAVAILABLE = "unavailable"  # 503
    TIMEOUT = "timeout"  # 504
    INTERNAL = "internal"  # 500


class ProxyError(Exception):
    """An error answered by the proxy: an HTTP status, a neutral kind and a safe message.

    The message is shown to the caller, so it must never contain a key or request content.
    """

    status: int = 500
    kind: str = ErrorKind.INTERNAL

    def __init__(self, message: str, *, status: int | None = None, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if kind is not None:
            self.kind = kind


class MissingKey(ProxyError):
    status = 401
    kind = ErrorKind.AUTHENTICATION


class MalformedKey(ProxyError):
    status = 401
    kind = ErrorKind.AUTHENTICATION


class AmbiguousKey(ProxyError):
    """More than one value for a header that carries the caller's key."""

    status = 400
    kind = ErrorKind.INVALID_REQUEST


class MalformedJSON(ProxyError):
    status = 400
    kind = ErrorKind.INVALID_REQUEST


class BodyTooLarge(ProxyError):
    status = 413
    kind = ErrorKind.TOO_LARGE


class RouteNotFound(ProxyError):
    status = 404
    kind = ErrorKind.NOT_FOUND


class AuditUnavailable(ProxyError):
    """The audit trail cannot take the request, and its tenant must not go unaudited."""

    status = 503
    kind = ErrorKind.UNAVAILABLE


class UpstreamUnavailable(ProxyError):
    """The provider could not be reached (connection refused, DNS, TLS, reset before answering)."""

    status = 502
    kind = ErrorKind.UPSTREAM_UNAVAILABLE


class UpstreamTimeout(ProxyError):
    """The provider did not connect or answer within the configured timeout."""

    status = 504
    kind = ErrorKind.TIMEOUT


class UpstreamBroken(ProxyError):
    """The provider broke off an answer it had started."""

    status = 502
    kind = ErrorKind.UPSTREAM_UNAVAILABLE


class UpstreamMalformed(ProxyError):
    """The provider's answer broke the protocol or a limit the proxy enforces: an HTTP status
    outside 200-599, a body or stream event over its size cap."""

    status = 502
    kind = ErrorKind.UPSTREAM_UNAVAILABLE
