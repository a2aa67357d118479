"""Scenario model: how the fake provider should behave for one request.

A scenario comes from the ``x-fake-scenario`` request header (a JSON object), from the
sticky script set with ``POST /_fake/script``, or both (header fields override sticky ones).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

SCENARIO_HEADER = "x-fake-scenario"
DEFAULT_REPLY = "Hello from the fake provider."
DEFAULT_TOOL_ARGS: dict[str, Any] = {"location": "Paris"}


class ScenarioError(ValueError):
    """Raised when a scenario object is malformed."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """Behaviour knobs; every field is optional in the JSON form (see the package docstring)."""

    reply: str | None = None
    chunk_size: int = 8
    delay_ms: float = 0.0
    first_byte_delay_ms: float = 0.0
    tool_call: bool = False
    tool_name: str | None = None
    tool_args: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TOOL_ARGS))
    status: int | None = None
    error_body: Any = None
    auth_error: bool = False
    rate_limit: bool = False
    retry_after: float | str = 1
    fail_times: int | None = None
    server_error: bool = False
    overloaded: bool = False
    slow_ms: float = 0.0
    break_after: int | None = None
    gzip: bool = False
    events: int | None = None
    echo: bool = False
    # Spellings of a successful answer (see spelling.py) and hostile answers.
    content_type: str | None = None
    bom: bool = False
    line_end: str | None = None
    escape_keys: bool = False
    huge_number: bool = False
    truncate_json: bool = False
    endless_event: bool = False
    gzip_bomb: int | None = None
    body_bytes: int | None = None
    # Streams: how the stream's bytes are cut into writes (None: one event per write).
    rechunk: str | None = None
    rechunk_seed: int = 0

    @property
    def wants_error(self) -> bool:
        """True when the scenario asks for an error answer (before fail_times is applied)."""
        return (
            self.auth_error
            or self.rate_limit
            or self.overloaded
            or self.server_error
            or (self.status is not None and self.status >= 400)
            or self.error_body is not None
        )

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Scenario:
        """Build a scenario, rejecting unknown fields and wrong types."""
        if not isinstance(raw, dict):
            raise ScenarioError("scenario must be a JSON object")
        unknown = set(raw) - _FIELD_NAMES
        if unknown:
            raise ScenarioError(f"unknown scenario field(s): {sorted(unknown)}; known: {sorted(_FIELD_NAMES)}")
        values = {k: v for k, v in raw.items() if v is not None}
        for name, value in values.items():
            expected = _FIELD_TYPES.get(name)
            if expected is not None and not isinstance(value, expected):
                raise ScenarioError(f"scenario field {name!r} has wrong type {type(value).__name__}")
        if values.get("chunk_size", 1) < 1:
            raise ScenarioError("chunk_size must be >= 1")
        if values.get("rechunk", "bytes") not in ("bytes", "whole", "random"):
            raise ScenarioError("rechunk must be one of bytes, whole, random")
        if values.get("line_end", "\n") not in ("\n", "\r", "\r\n"):
            raise ScenarioError("line_end must be one of LF, CR, CRLF")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The non-default fields, as JSON-ready dict."""
        default = _DEFAULT
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(Scenario))
_NUM = (int, float)
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "reply": str,
    "chunk_size": int,
    "delay_ms": _NUM,
    "first_byte_delay_ms": _NUM,
    "tool_call": bool,
    "tool_name": str,
    "tool_args": dict,
    "status": int,
    "auth_error": bool,
    "rate_limit": bool,
    "retry_after": (int, float, str),
    "fail_times": int,
    "server_error": bool,
    "overloaded": bool,
    "slow_ms": _NUM,
    "break_after": int,
    "gzip": bool,
    "events": int,
    "echo": bool,
    "content_type": str,
    "bom": bool,
    "line_end": str,
    "escape_keys": bool,
    "huge_number": bool,
    "truncate_json": bool,
    "endless_event": bool,
    "gzip_bomb": int,
    "body_bytes": int,
    "rechunk": str,
    "rechunk_seed": int,
}
_DEFAULT = Scenario()
DEFAULT_SCENARIO = _DEFAULT


class ScenarioStore:
    """Holds the sticky script, parsed header scenarios and fail_times counters."""

    __slots__ = ("_counters", "_header_cache", "_sticky", "_sticky_generation", "_sticky_raw")

    def __init__(self) -> None:
        self._sticky: Scenario | None = None
        self._sticky_raw: dict[str, Any] = {}
        self._sticky_generation = 0
        self._header_cache: dict[str, Scenario] = {}
        self._counters: dict[tuple[str, Any], int] = {}

    @property
    def sticky(self) -> dict[str, Any]:
        """The raw sticky script (empty when none)."""
        return dict(self._sticky_raw)

    def set_sticky(self, raw: dict[str, Any]) -> Scenario:
        """Replace the sticky script (an empty object clears it)."""
        scenario = Scenario.from_dict(raw)
        self._sticky = scenario if raw else None
        self._sticky_raw = dict(raw)
        self._sticky_generation += 1
        self._header_cache.clear()
        return scenario

    def reset(self) -> None:
        """Forget the sticky script, the header cache and all counters."""
        self._sticky = None
        self._sticky_raw = {}
        self._sticky_generation += 1
        self._header_cache.clear()
        self._counters.clear()

    def resolve(self, header_value: str | None) -> tuple[Scenario, tuple[str, Any]]:
        """Return the scenario for a request and the key its fail_times counter uses."""
        if header_value is None:
            return (self._sticky or _DEFAULT), ("sticky", self._sticky_generation)
        key = ("header", header_value)
        cached = self._header_cache.get(header_value)
        if cached is not None:
            return cached, key
        try:
            raw = orjson.loads(header_value)
        except orjson.JSONDecodeError as exc:
            raise ScenarioError(f"{SCENARIO_HEADER} is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ScenarioError(f"{SCENARIO_HEADER} must be a JSON object")
        scenario = Scenario.from_dict({**self._sticky_raw, **raw})
        if len(self._header_cache) > 512:
            self._header_cache.clear()
        self._header_cache[header_value] = scenario
        return scenario, key

    def error_applies(self, scenario: Scenario, key: tuple[str, Any]) -> bool:
        """Whether this request gets the scenario's error (honours fail_times)."""
        if not scenario.wants_error:
            return False
        if scenario.fail_times is None:
            return True
        seen = self._counters.get(key, 0)
        self._counters[key] = seen + 1
        return seen < scenario.fail_times
