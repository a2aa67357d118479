"""The `upstreams:`, `models:`, `retries:` and `circuit_breaker:` sections of the config.

Without `upstreams:` the proxy reaches the three providers of `providers:` (and their base URL env
vars) exactly as before; `models:` may then name only those three (`openai:gpt-4o`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_UPSTREAM_NAMES",
    "UPSTREAM_TYPES",
    "CircuitBreakerSettings",
    "RetrySettings",
    "UpstreamSettings",
    "UpstreamType",
    "check_routing",
    "wire_format",
]

UpstreamType = Literal["openai", "azure_openai", "openai_compatible", "anthropic", "gemini", "vertex_gemini"]
UPSTREAM_TYPES: tuple[str, ...] = UpstreamType.__args__  # type: ignore[attr-defined]
# The upstreams the proxy has when `upstreams:` is not given: the providers of `providers:`.
DEFAULT_UPSTREAM_NAMES = ("openai", "gemini", "anthropic")
_WIRE_FORMATS = {
    "openai": "openai",
    "azure_openai": "openai",
    "openai_compatible": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "vertex_gemini": "gemini",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RetryOn = int | Literal["timeout", "connect", "reset"]


def wire_format(upstream_type: str) -> str:
    """The API an upstream type speaks: openai, anthropic or gemini."""
    return _WIRE_FORMATS[upstream_type]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UpstreamSettings(_Section):
    """One named upstream: where it is, how long to wait for it, what it serves."""

    name: str = Field(description="how chains (`models:`) and the x-capsem-upstream header name it")
    type: UpstreamType
    base_url: str = Field(description="as the type's own SDK means it (OpenAI's ends in /v1; Azure's is the resource)")
    api_version: str | None = Field(None, description="azure_openai: the api-version sent when the client sent none")
    project: str | None = Field(None, description="vertex_gemini: the Google Cloud project of Gemini-format requests")
    location: str | None = Field(None, description="vertex_gemini: its region (default: global)")
    models: list[str] = Field(
        default_factory=list, description="model-name globs this upstream serves when no alias names it (empty: any)"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers sent with every request")
    api_key_env: str | None = Field(
        None, description="env var holding this upstream's own key, sent instead of the caller's"
    )
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(600.0, gt=0, description="longest wait for an answer's bytes")
    stream_idle_timeout: float | None = Field(None, gt=0, description="longest silence between two stream events")
    max_connections: int = Field(1024, ge=1)
    max_answer_bytes: int = Field(64 * 1024 * 1024, ge=1024)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError("letters, digits, '.', '_' or '-' (up to 64), starting with a letter or digit")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("headers")
    @classmethod
    def _lower_case_headers(cls, value: dict[str, str]) -> dict[str, str]:
        return {name.lower(): header for name, header in value.items()}

    @model_validator(mode="after")
    def _type_needs(self) -> UpstreamSettings:
        if self.type == "azure_openai" and not self.api_version:
            self.api_version = "2024-10-21"
        if self.type == "vertex_gemini" and not self.location:
            self.location = "global"
        return self


class RetrySettings(_Section):
    """Retries of one upstream before falling over to the next of a chain. Only an answer whose first
    byte has not reached the client is ever retried."""

    attempts: int = Field(1, ge=1, le=10, description="tries of each upstream in all (1: no retry)")
    backoff_ms: float = Field(200.0, ge=0, description="first back-off; doubled each retry, with full jitter")
    max_backoff_ms: float = Field(5000.0, ge=0)
    max_retry_after_s: float = Field(
        30.0, ge=0, description="a provider's Retry-After up to this long is waited out; longer falls over"
    )
    retry_on: list[RetryOn] = Field(
        default_factory=lambda: list[RetryOn]([429, 500, 502, 503, 504, "timeout", "connect"]),
        description="HTTP statuses and errors (timeout, connect, reset) worth another try or the next upstream",
    )
    audit_every_attempt: bool = Field(
        True, description="an audit row for every attempt, a request's only one included (false: only for "
        "requests tried more than once)",
    )


class CircuitBreakerSettings(_Section):
    """Per-upstream breaker: after `failures` failures in a row the upstream is skipped for `open_s`
    seconds, then one probe request decides whether it is back."""

    enabled: bool | None = Field(None, description="default: on when `upstreams:` or `models:` is configured")
    failures: int = Field(5, ge=1)
    open_s: float = Field(30.0, gt=0)


def check_routing(upstreams: list[UpstreamSettings], models: dict[str, list[str]]) -> None:
    """Names are unique and every chain entry names a known upstream; ValueError otherwise."""
    names = [upstream.name for upstream in upstreams] or list(DEFAULT_UPSTREAM_NAMES)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"upstreams: the name {name!r} is used twice")
        seen.add(name)
    for alias, chain in models.items():
        if not chain:
            raise ValueError(f"models.{alias}: the chain is empty")
        for entry in chain:
            upstream, _, _model = entry.partition(":")
            if upstream not in seen:
                raise ValueError(f"models.{alias}: {entry!r} names no upstream (known: {', '.join(names)})")
