"""Query-string and path-segment parsing for the admin API: every value is checked here, and a value
the API cannot use raises BadParameter naming it (answered with 400)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl, unquote

from capsem_proxy.audit.query import MAX_LIMIT, AuditQuery
from capsem_proxy.decisions import Verdict

__all__ = [
    "BadParameter", "parse_audit_query", "parse_int", "parse_params", "parse_segment", "parse_statuses", "parse_time",
]

_MAX_VALUE_CHARS = 256
_TEXT_FILTERS = ("tenant_id", "session_id", "agent_id", "request_id", "provider", "model", "policy")
_VERDICTS = frozenset(verdict.value for verdict in Verdict)


class BadParameter(ValueError):
    """A query parameter the admin API cannot use (answered with 400 naming it)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


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


def parse_segment(raw: str, name: str) -> str:
    """One percent-encoded path segment, decoded."""
    try:
        value = unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadParameter(name, "is not valid UTF-8") from exc
    if not value or len(value) > _MAX_VALUE_CHARS:
        raise BadParameter(name, f"must be 1 to {_MAX_VALUE_CHARS} characters")
    return value


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


def parse_int(name: str, value: str, low: int, high: int | None = None) -> int:
    """A whole number from `low` up to `high` (inclusive; no upper bound when `high` is None)."""
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


_MAX_STATUS_RANGES = 10
_MIN_TEXT_CHARS = 2


def parse_statuses(value: str) -> list[tuple[int, int]]:
    """HTTP statuses, comma-separated: `403`, a class `4xx`, or a range `500-504`."""
    ranges: list[tuple[int, int]] = []
    for part in (part.strip().lower() for part in value.split(",")):
        if len(part) == 3 and part[0] in "12345" and part[1:] == "xx":
            ranges.append((int(part[0]) * 100, int(part[0]) * 100 + 99))
            continue
        low, dash, high = part.partition("-")
        if low.isdigit() and (not dash or high.isdigit()):
            first, last = int(low), int(high) if dash else int(low)
            if 100 <= first <= last <= 599:
                ranges.append((first, last))
                continue
        raise BadParameter("status", f"{part[:16]!r} is not a status, a class like 4xx or a range like 500-504")
    if len(ranges) > _MAX_STATUS_RANGES:
        raise BadParameter("status", f"at most {_MAX_STATUS_RANGES} statuses or ranges")
    return ranges


def parse_audit_query(params: Mapping[str, str], tenant_ids: list[str] | None = None) -> AuditQuery:
    """An AuditQuery from checked query parameters (see parse_params). `tenant_ids` are the tenants
    the `tenant` parameter (a name or an id) was resolved to."""
    query = AuditQuery(seq_bounded_time=True)
    for name in _TEXT_FILTERS:
        if name in params:
            setattr(query, name, params[name])
    if tenant_ids is not None:
        query.tenant_ids = tenant_ids
    if "status" in params:
        query.statuses = parse_statuses(params["status"])
    if "q" in params:
        text = params["q"].strip()
        if len(text) < _MIN_TEXT_CHARS:
            raise BadParameter("q", f"must hold at least {_MIN_TEXT_CHARS} characters besides spaces")
        query.text = text
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
        query.limit = parse_int("limit", params["limit"], 1, MAX_LIMIT)
    if "before_seq" in params and "after_seq" in params:
        raise BadParameter("after_seq", "cannot be combined with before_seq")
    if "before_seq" in params:
        query.before_seq = parse_int("before_seq", params["before_seq"], 0)
    if "after_seq" in params:
        query.after_seq = parse_int("after_seq", params["after_seq"], 0)
    return query
