"""The admin API (`/admin/...`) and the dashboard (`/dashboard`); both absent (404) while no admin
token is configured.

Routes (JSON, never cached):
  GET  /admin/requests                       request rows, filtered and paged (`next` cursor)
  GET  /admin/requests/{request_id}          one request row and its decisions
  GET  /admin/decisions                      decision rows, filtered and paged
  GET  /admin/sessions                       sessions, newest first
  GET  /admin/sessions/{session_id}          a session's requests and decisions in time order
  GET  /admin/summary?since=&bucket=         counts, top policies and tenants, latency percentiles
  GET  /admin/approvals                      held requests awaiting a decision
  GET  /admin/approvals/{decision_id}        one held request
  POST /admin/approvals/{decision_id}/approve
  POST /admin/approvals/{decision_id}/deny
  GET  /dashboard                            the dashboard, or its login page (401) without a session
  POST /dashboard/login                      bearer token in, session cookie out
  POST /dashboard/logout

Callers authenticate with `Authorization: Bearer <token>`, or (from the dashboard) with the session
cookie; a POST authenticated by cookie must also carry `x-capsem-admin: 1`, which a cross-site form
cannot send.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from capsem_proxy.approvals import ApprovalStore
from capsem_proxy.asgi import Send, send_response
from capsem_proxy.audit.base import AuditSink
from capsem_proxy.audit.query import MAX_LIMIT, AuditQuery
from capsem_proxy.dashboard import DashboardAssets, DashboardSessions
from capsem_proxy.decisions import Verdict

__all__ = ["AdminAPI", "BadParameter", "parse_audit_query"]

logger = logging.getLogger("capsem_proxy.admin")

_JSON = b"application/json"
_MAX_VALUE_CHARS = 256
_MAX_BUCKETS = 10_000
_DEFAULT_SUMMARY_WINDOW = 3600.0
_CSRF_HEADER = "x-capsem-admin"
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
# Login page files: the only dashboard files served before logging in; they hold no data.
_PUBLIC_ASSETS = frozenset({"static/login.js", "static/style.css"})

_TEXT_FILTERS = ("tenant_id", "session_id", "agent_id", "request_id", "provider", "model", "policy")
_PAGING = frozenset({"limit", "before_seq", "after_seq"})
_REQUEST_FILTERS = frozenset(
    {"tenant_id", "session_id", "agent_id", "request_id", "provider", "model", "verdict", "blocked", "since", "until"}
) | _PAGING
_DECISION_FILTERS = frozenset(
    {
        "tenant_id", "session_id", "agent_id", "request_id", "provider", "model", "policy", "verdict", "blocked",
        "since", "until",
    }
) | _PAGING
# Sessions are built from request rows: these filters select the requests that count.
_SESSION_FILTERS = frozenset({"tenant_id", "agent_id", "provider", "model", "since", "until", "limit"})
_VERDICTS = frozenset(verdict.value for verdict in Verdict)


class BadParameter(ValueError):
    """A query parameter the admin API cannot use (answered with 400 naming it)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


@dataclass(slots=True)
class _Reply:
    status: int
    body: bytes
    content_type: bytes = _JSON
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def _error(status: int, message: str, parameter: str | None = None) -> _Reply:
    error: dict[str, Any] = {"message": message}
    if parameter is not None:
        error["parameter"] = parameter
    return _Reply(status, orjson.dumps({"detail": message, "error": error}))


def _json(payload: Any) -> _Reply:
    # Rows come from several stores; anything orjson does not know is shown as text, not a 500.
    return _Reply(200, orjson.dumps(payload, default=str))


def _not_allowed(allowed: str) -> _Reply:
    reply = _error(405, f"method not allowed (use {allowed})")
    reply.headers.append((b"allow", allowed.encode()))
    return reply


# --- query string ------------------------------------------------------------------------------


def parse_params(query_string: bytes, allowed: frozenset[str]) -> dict[str, str]:
    """The query string as a dict, refusing unknown, repeated, empty or oversized parameters."""
    try:
        pairs = parse_qsl(
            query_string.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="strict",
            max_num_fields=len(allowed) + 1,
        )
    except UnicodeDecodeError as exc:
        raise BadParameter("query", "is not valid UTF-8") from exc
    except ValueError as exc:
        raise BadParameter("query", "has too many parameters") from exc
    params: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise BadParameter(name[:64], f"unknown parameter for this route (known: {known})")
        if name in params:
            raise BadParameter(name, "given more than once")
        if not value:
            raise BadParameter(name, "must not be empty")
        if len(value) > _MAX_VALUE_CHARS:
            raise BadParameter(name, f"longer than {_MAX_VALUE_CHARS} characters")
        params[name] = value
    return params


def parse_time(name: str, value: str) -> float:
    """Unix seconds, or an ISO 8601 date-time (UTC when it names no offset)."""
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or seconds < 0:
            raise BadParameter(name, "must be a non-negative number of unix seconds")
        return seconds
    # An unencoded '+' of a UTC offset arrives as a space.
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadParameter(name, "must be unix seconds or an ISO 8601 date-time such as 2025-01-31T12:00:00Z") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_int(name: str, value: str, low: int, high: int | None = None) -> int:
    if not value.isdigit():
        raise BadParameter(name, "must be a whole number")
    number = int(value)
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise BadParameter(name, f"must be {bound}")
    return number


def _parse_bool(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise BadParameter(name, "must be true or false")
    return lowered == "true"


def _parse_verdicts(value: str) -> list[str]:
    verdicts = [part.strip().upper() for part in value.split(",") if part.strip()]
    unknown = [verdict for verdict in verdicts if verdict not in _VERDICTS]
    if unknown or not verdicts:
        raise BadParameter("verdict", f"unknown verdict {unknown[0] if unknown else value!r} "
                           f"(known: {', '.join(sorted(_VERDICTS))})")
    return verdicts


def parse_audit_query(params: Mapping[str, str]) -> AuditQuery:
    """An AuditQuery from checked query parameters (see parse_params)."""
    query = AuditQuery()
    for name in _TEXT_FILTERS:
        if name in params:
            setattr(query, name, params[name])
    if "verdict" in params:
        query.verdict = _parse_verdicts(params["verdict"])
    if "blocked" in params:
        query.blocked = _parse_bool("blocked", params["blocked"])
    if "since" in params:
        query.since = parse_time("since", params["since"])
    if "until" in params:
        query.until = parse_time("until", params["until"])
    if query.since is not None and query.until is not None and query.since > query.until:
        raise BadParameter("until", "must not be before since")
    if "limit" in params:
        query.limit = _parse_int("limit", params["limit"], 1, MAX_LIMIT)
    if "before_seq" in params and "after_seq" in params:
        raise BadParameter("after_seq", "cannot be combined with before_seq")
    if "before_seq" in params:
        query.before_seq = _parse_int("before_seq", params["before_seq"], 0)
    if "after_seq" in params:
        query.after_seq = _parse_int("after_seq", params["after_seq"], 0)
    return query


def _next_cursor(rows: list[dict[str, Any]], query: AuditQuery) -> dict[str, int] | None:
    """Where the next page starts: the live tail continues after the newest row seen; a page
    read backwards continues before its oldest row, unless it was the last one."""
    seqs = [row["seq"] for row in rows if isinstance(row.get("seq"), int)]
    if query.after_seq is not None:
        return {"after_seq": max(seqs, default=query.after_seq)}
    if len(rows) >= query.limit and seqs:
        return {"before_seq": min(seqs)}
    return None


def _segment(raw: str, name: str) -> str:
    """One percent-encoded path segment, decoded."""
    try:
        value = unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadParameter(name, "is not valid UTF-8") from exc
    if not value or len(value) > _MAX_VALUE_CHARS:
        raise BadParameter(name, f"must be 1 to {_MAX_VALUE_CHARS} characters")
    return value


# --- the API -----------------------------------------------------------------------------------


class AdminAPI:
    """Serves /admin/* and /dashboard*."""

    def __init__(self, token: str | None, approvals: ApprovalStore, audit: AuditSink | None = None) -> None:
        self._token = token.encode() if token else None
        self.approvals = approvals
        self.audit = audit
        self.sessions = DashboardSessions(self._token) if self._token is not None else None
        self.assets = DashboardAssets() if self._token is not None else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    # Authentication ---------------------------------------------------------------------------

    def _bearer_ok(self, headers: Mapping[str, str]) -> bool:
        scheme, _, presented = headers.get("authorization", "").partition(" ")
        if self._token is None or scheme.lower() != "bearer" or not presented:
            return False
        return hmac.compare_digest(presented.strip().encode(), self._token)

    def _cookie_ok(self, headers: Mapping[str, str]) -> bool:
        if self.sessions is None:
            return False
        # SameSite=Strict keeps the cookie off cross-site requests; Fetch Metadata also refuses
        # other origins of the same site (another port on the same host).
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return False
        return self.sessions.authenticated(headers)

    def _authorized(self, method: str, headers: Mapping[str, str]) -> bool:
        if self._bearer_ok(headers):
            return True
        if method == "GET":
            return self._cookie_ok(headers)
        return headers.get(_CSRF_HEADER) == "1" and self._cookie_ok(headers)

    # Dispatch ---------------------------------------------------------------------------------

    async def handle(
        self,
        send: Send,
        method: str,
        path: str,
        headers: Mapping[str, str],
        extra_headers: list[tuple[bytes, bytes]],
        query_string: bytes = b"",
    ) -> int:
        """Answer one admin or dashboard request; returns the status sent."""
        try:
            reply = await self._route(method, path, headers, query_string)
        except BadParameter as exc:
            reply = _error(400, str(exc), exc.parameter)
        except Exception:
            logger.exception("admin request %s %s failed", method, path.split("?", 1)[0][:200])
            reply = _error(500, "internal error in the admin API")
        if reply.status == 401:
            reply.headers.append(_WWW_AUTHENTICATE)
        response_headers = [
            (b"content-type", reply.content_type), *_SECURITY_HEADERS, *reply.headers, *extra_headers
        ]
        await send_response(send, reply.status, response_headers, reply.body)
        return reply.status

    async def _route(self, method: str, path: str, headers: Mapping[str, str], query_string: bytes) -> _Reply:
        if not self.enabled:
            return _error(404, "not found")
        if path == "/dashboard" or path.startswith("/dashboard/"):
            return self._dashboard(method, path.removeprefix("/dashboard").strip("/"), headers)
        if not path.startswith("/admin/"):
            return _error(404, "not found")
        if not self._authorized(method, headers):
            return _error(401, "admin token required")
        parts = path.removeprefix("/admin/").strip("/").split("/")
        if parts[0] == "approvals":
            return await self._approvals(method, parts)
        if parts[0] in ("requests", "decisions", "sessions", "summary") and len(parts) <= 2:
            if len(parts) == 2 and parts[0] in ("decisions", "summary"):
                return _error(404, "not found")
            if method != "GET":
                return _not_allowed("GET")
            return await self._query(parts, query_string)
        return _error(404, "not found")

    # Audit queries ----------------------------------------------------------------------------

    async def _query(self, parts: list[str], query_string: bytes) -> _Reply:
        if self.audit is None or not hasattr(self.audit, "query_requests"):
            return _error(501, "the configured audit store does not answer queries")
        resource = parts[0]
        try:
            if resource == "requests" and len(parts) == 2:
                parse_params(query_string, frozenset())
                return await self._request_detail(_segment(parts[1], "request_id"))
            if resource == "requests":
                query = parse_audit_query(parse_params(query_string, _REQUEST_FILTERS))
                rows = await self.audit.query_requests(query)
                return _json({"requests": rows, "next": _next_cursor(rows, query)})
            if resource == "decisions":
                query = parse_audit_query(parse_params(query_string, _DECISION_FILTERS))
                rows = await self.audit.query_decisions(query)
                return _json({"decisions": rows, "next": _next_cursor(rows, query)})
            if resource == "sessions" and len(parts) == 2:
                session_id = _segment(parts[1], "session_id")
                params = parse_params(query_string, frozenset({"limit"}))
                limit = _parse_int("limit", params["limit"], 1, MAX_LIMIT) if "limit" in params else MAX_LIMIT
                timeline = await self.audit.session_timeline(session_id, limit=limit)
                if not timeline:
                    return _error(404, "unknown session")
                return _json({"session_id": session_id, "timeline": timeline})
            if resource == "sessions":
                query = parse_audit_query(parse_params(query_string, _SESSION_FILTERS))
                return _json({"sessions": await self.audit.query_sessions(query)})
            return await self._summary(parse_params(query_string, frozenset({"since", "bucket"})))
        except BadParameter:
            raise
        except Exception:
            logger.exception("audit query on /admin/%s failed", resource)
            return _error(503, "the audit store did not answer; try again")

    async def _request_detail(self, request_id: str) -> _Reply:
        assert self.audit is not None
        rows = await self.audit.query_requests(AuditQuery(request_id=request_id, limit=1))
        decisions = await self.audit.query_decisions(AuditQuery(request_id=request_id, limit=MAX_LIMIT))
        if not rows and not decisions:
            return _error(404, "unknown request id")
        decisions.sort(key=lambda row: row.get("seq", 0))
        return _json({"request": rows[0] if rows else None, "decisions": decisions})

    async def _summary(self, params: Mapping[str, str]) -> _Reply:
        assert self.audit is not None
        now = time.time()
        since = parse_time("since", params["since"]) if "since" in params else now - _DEFAULT_SUMMARY_WINDOW
        bucket = _parse_int("bucket", params["bucket"], 1, 86_400) if "bucket" in params else 60
        if (now - since) / bucket > _MAX_BUCKETS:
            raise BadParameter("bucket", f"too small for this window (at most {_MAX_BUCKETS} buckets)")
        summary = await self.audit.summary(since, float(bucket))
        return _json({"since": since, "bucket": bucket, **summary})

    # Approvals --------------------------------------------------------------------------------

    async def _approvals(self, method: str, parts: list[str]) -> _Reply:
        if len(parts) in (1, 2) and method != "GET":
            return _not_allowed("GET")
        if len(parts) == 1:
            return _json({"approvals": [held.as_dict() for held in await self.approvals.pending()]})
        if len(parts) == 2:
            held = await self.approvals.get(_segment(parts[1], "decision_id"))
            return _json(held.as_dict()) if held else _error(404, "unknown or expired decision id")
        if len(parts) == 3 and parts[2] in ("approve", "deny"):
            if method != "POST":
                return _not_allowed("POST")
            held = await self.approvals.decide(_segment(parts[1], "decision_id"), approve=parts[2] == "approve")
            if held is None:
                return _error(404, "unknown or expired decision id")
            expected = "approved" if parts[2] == "approve" else "denied"
            if held.status != expected:
                return _error(409, f"decision {held.decision_id} is already {held.status}")
            return _json(held.as_dict())
        return _error(404, "not found")

    # Dashboard --------------------------------------------------------------------------------

    def _dashboard(self, method: str, name: str, headers: Mapping[str, str]) -> _Reply:
        assert self.assets is not None and self.sessions is not None
        secure = headers.get("x-forwarded-proto", "").lower() == "https"
        if name in ("login", "logout"):
            if method != "POST":
                return _not_allowed("POST")
            if name == "login":
                # The token itself is checked here, once; the browser keeps only the derived cookie.
                if not self._bearer_ok(headers):
                    return _error(401, "admin token required")
                return _Reply(204, b"", headers=[(b"set-cookie", self.sessions.set_cookie(secure))])
            if not self._authorized(method, headers):
                return _error(401, "admin token required")
            return _Reply(204, b"", headers=[(b"set-cookie", self.sessions.clear_cookie(secure))])
        page = name == ""
        asset = self.assets.get("static/index.html" if page else name)
        if asset is None or (name.startswith("static/") and name.endswith(".html")):
            return _error(404, "not found")
        if method != "GET":
            return _not_allowed("GET")
        if not self._authorized(method, headers):
            if page:
                login = self.assets.get("static/login.html")
                assert login is not None
                return _Reply(401, login.body, login.content_type)
            if name not in _PUBLIC_ASSETS:
                return _error(401, "admin token required")
        return _Reply(200, asset.body, asset.content_type)
