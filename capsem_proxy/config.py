"""Settings: a YAML file plus `CAPSEM_PROXY_<SECTION>__<KEY>` environment variables (env wins).

Everything is validated once at start-up; a bad value stops the proxy with the file, the
key and the reason instead of failing on the first request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from capsem_proxy.config_errors import validation_lines
from capsem_proxy.gateway.settings import AuthSettings, LimitsSettings
from capsem_proxy.hooks import HookName
from capsem_proxy.mcp.settings import McpSettings
from capsem_proxy.upstreams.settings import CircuitBreakerSettings, RetrySettings, UpstreamSettings, check_routing

__all__ = [
    "CONFIG_ENV_VAR",
    "AdminSettings",
    "AuditSettings",
    "ConfigError",
    "ConfirmSettings",
    "CorsSettings",
    "PolicySetMatch",
    "PolicySetSettings",
    "PolicySettings",
    "ProviderSettings",
    "ProvidersSettings",
    "ScanningSettings",
    "ServerSettings",
    "Settings",
    "StreamingSettings",
    "load_settings",
]

CONFIG_ENV_VAR = "CAPSEM_PROXY_CONFIG"
# The highest server.max_tools_per_request accepted: beyond it one request costs more policy calls
# than any provider's tool list needs.
MAX_TOOLS_HARD_LIMIT = 65_536

# Shorthands kept for compatibility with the SDKs' own variable naming (PRODUCT.md contract).
_BASE_URL_ENV_VARS = {
    "openai": "CAPSEM_PROXY_OPENAI_BASE_URL",
    "gemini": "CAPSEM_PROXY_GEMINI_BASE_URL",
    "anthropic": "CAPSEM_PROXY_ANTHROPIC_BASE_URL",
}


class ConfigError(Exception):
    """The configuration is invalid; the message names the source, the key and the reason."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    """Where the proxy listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=256)
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="largest request body accepted (413 above)")
    data_dir: Path = Path("./capsem-data")
    tenant_secret: str | None = Field(
        None, description="HMAC key for tenant ids; generated into data_dir on first run when unset"
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="largest request head (request line and headers) accepted (431 above)"
    )
    max_headers: int = Field(100, ge=8, description="most header fields one request may carry (431 above)")
    header_timeout: float = Field(
        10.0, gt=0, description="seconds a client has to send a whole request head, counted from the connection's "
        "opening or the request's first byte; a connection that sends nothing is closed then (408 for a partial head)",
    )
    body_timeout: float = Field(
        30.0, gt=0, description="longest silence, in seconds, while a request body arrives (the connection is closed)"
    )
    keep_alive_timeout: float = Field(75.0, gt=0, description="seconds an idle keep-alive connection is kept open")
    max_connections: int = Field(
        4096, ge=1, description="open client connections per worker; one more is answered 503 and closed at once"
    )
    backlog: int = Field(2048, ge=1, description="connections the OS queues before the proxy accepts them")
    drain_seconds: float = Field(
        30.0, ge=0, description="after SIGTERM, how long open requests and streams may take to finish before they "
        "are cut; keep it below the orchestrator's grace period (Kubernetes terminationGracePeriodSeconds)",
    )
    drain_delay_seconds: float = Field(
        0.0, ge=0, description="after SIGTERM, how long the proxy keeps accepting connections while /readyz answers "
        "503, so the load balancer stops sending it new ones before it closes its listener",
    )
    max_tools_per_request: int = Field(
        1024, ge=1, le=MAX_TOOLS_HARD_LIMIT,
        description="most tools one request may offer (400 above); each is checked by every on_tool_call policy",
    )


class ProviderSettings(_Section):
    """One upstream provider. `base_url` has the same meaning as the provider SDK's base URL."""

    base_url: str
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(600.0, gt=0, description="longest wait for an answer's bytes")
    stream_idle_timeout: float | None = Field(
        None, gt=0, description="longest silence between two stream events (default: read_timeout)"
    )
    max_connections: int = Field(1024, ge=1, description="pooled keep-alive connections to this provider")
    max_answer_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="largest non-streamed answer read from this provider, after decompression (502 above; "
        "streamed answers are bounded per event by streaming.max_event_bytes)",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class ProvidersSettings(_Section):
    """The three upstream providers."""

    openai: ProviderSettings = ProviderSettings(base_url="https://api.openai.com/v1")
    gemini: ProviderSettings = ProviderSettings(base_url="https://generativelanguage.googleapis.com")
    anthropic: ProviderSettings = ProviderSettings(base_url="https://api.anthropic.com")


class PolicySettings(_Section):
    """One policy, by import path, with its options."""

    class_path: str = Field(alias="class", description="dotted import path of a Policy class")
    options: dict[str, Any] = Field(default_factory=dict)
    fail_open: bool = False
    timeout_ms: float = Field(
        200.0, gt=0,
        description="time budget of one hook call: the CPU its own steps use and its waits (a long text is read in "
        "slices, checked between them; a hook blocking without CPU fails after ten budgets of wall-clock time); "
        "over it the call fails (blocks unless fail_open)",
    )
    name: str | None = None
    hooks: list[HookName] | None = Field(
        None, description="consult the policy on these hooks only (default: every hook it implements)"
    )
    shadow: bool = Field(
        False, description="evaluate and record the policy's decisions (marked shadow) but never enforce them"
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PolicySetMatch(_Section):
    """Which requests a policy set applies to; an empty list matches everything."""

    tenants: list[str] = Field(default_factory=list, description="tenant ids (as in the audit trail)")
    providers: list[Literal["openai", "gemini", "anthropic"]] = Field(default_factory=list)
    operations: list[str] = Field(default_factory=list, description="chat, responses, messages, generate ...")
    models: list[str] = Field(default_factory=list, description="model names or globs (gpt-4*)")


class PolicySetSettings(_Section):
    """Policies for the requests a `match` selects, instead of (or on top of) the default set."""

    match: PolicySetMatch = Field(default_factory=PolicySetMatch)
    policies: list[PolicySettings] = Field(default_factory=list)
    inherit: bool = Field(False, description="run the default policies first, then these")
    shadow: bool = Field(False, description="every policy of this set runs in shadow mode (recorded, never enforced)")


class ScanningSettings(_Section):
    """Bounds on the work of the text detectors (secrets, pii_detect, injection, egress, regex_redact)."""

    max_chars_per_request: int = Field(
        1024 * 1024, ge=1024,
        description="characters of text each detector screens per request (and per answer); a request "
        "with more is refused with 413 (an answer with more: blocked), never forwarded unscreened",
    )
    slice_chars: int = Field(
        8192, ge=1024, le=1024 * 1024,
        description="a longer text is read in slices of at most this many characters, other requests "
        "running between them; shorter texts are read at once",
    )
    max_concurrent_large_scans: int = Field(
        2, ge=1, le=64,
        description="texts read in slices at once per process; the others wait, the wait counting "
        "against their policy's timeout_ms",
    )


class StreamingSettings(_Section):
    """How streamed answers are released while response policies check them."""

    mode: Literal["pass", "guard", "buffer"] = "guard"
    holdback_chars: int = Field(256, ge=0)
    max_buffer_bytes: int = Field(1024 * 1024, ge=1024)
    max_event_bytes: int = Field(
        8 * 1024 * 1024,
        ge=1024,
        description="largest single stream event (SSE event, JSON-array element) accepted from a provider; "
        "a longer one ends the stream with the provider's error event",
    )


class AuditSettings(_Section):
    """Where decisions and request metadata are recorded."""

    url: str = Field(
        "sqlite:///./capsem-data/audit.db",
        description="sqlite:///path, postgresql://user@host:5432/db[?schema=name] (tables in schema "
        "capsem_audit by default), or memory:// (kept in process memory, lost when it exits)",
    )
    store_content: bool = Field(False, description="also keep prompts and answers (after redaction)")
    queue_max: int = Field(100_000, ge=100, description="rows held in memory while the store is slow or down")
    overflow: Literal["drop", "fail_closed"] = Field(
        "drop",
        description="when the queue is full: drop the rows of allowed requests (counted in metrics; blocks are "
        "never dropped), or refuse the requests of `required_tenants` with 503",
    )
    required_tenants: list[str] = Field(
        default_factory=list, description="tenant ids whose requests must be audited ('*' for all)"
    )
    flush_interval_ms: float = Field(100.0, gt=0, description="how often queued rows are written")
    batch_max: int = Field(2000, ge=1, description="most rows written in one transaction")
    reserved_rows: int | None = Field(
        None, ge=1, description="queue room only blocking decisions and blocked requests may use (default: a "
        "tenth of queue_max); allowed rows are dropped before a block is"
    )
    max_decision_rows: int = Field(
        50, ge=1, description="decision rows other than ALLOW one request writes one by one; the rest are "
        "folded into rows with a count (ALLOW decisions always are, per policy and hook)"
    )
    max_content_chars: int = Field(
        65_536, ge=1024, description="characters of prompt and of answer kept each with store_content (cut, marked)"
    )
    queue_max_content_chars: int = Field(
        64 * 1024 * 1024, ge=1024, description="stored content held in the queue at once; past it, rows are "
        "queued without their content"
    )
    head_file: Path | None = Field(
        None, description="where the chain head is exported for `audit verify` (default: "
        "<server.data_dir>/audit-head.json)"
    )
    head_log_interval_s: float = Field(60.0, ge=0, description="how often the chain head is logged (0: never)")
    retention_days: float | None = Field(
        None, gt=0, description="rows older than this many days are pruned (the chain stays verifiable through a "
        "signed checkpoint); null keeps everything"
    )
    retention_check_interval_s: float = Field(
        3600.0, ge=1, description="how often the proxy prunes rows past audit.retention_days"
    )

    @model_validator(mode="after")
    def _reserve_within_queue(self) -> AuditSettings:
        if self.reserved_rows is not None and self.reserved_rows >= self.queue_max:
            raise ValueError(f"audit.reserved_rows ({self.reserved_rows}) must be below queue_max ({self.queue_max})")
        return self


class MetricsSettings(_Section):
    """Prometheus metrics at GET /metrics."""

    enabled: bool = True
    multiprocess_dir: Path | None = Field(
        None, description="shared directory for --workers > 1 (default: <data_dir>/metrics when workers > 1)"
    )


class TracingSettings(_Section):
    """OpenTelemetry traces, exported over OTLP/HTTP; off (and free) unless enabled."""

    enabled: bool = False
    otlp_endpoint: str = Field("http://127.0.0.1:4318/v1/traces", description="OTLP/HTTP traces endpoint")
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers sent to the collector")
    service_name: str = "capsem-proxy"
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0, description="share of new traces kept (parent-based)")


class LoggingSettings(_Section):
    """The proxy's own logs."""

    json_format: bool = Field(False, alias="json", description="one JSON object per line")


class AdminSettings(_Section):
    """Admin API and dashboard; off while no token is set."""

    token: str | None = Field(None, description="bearer token for /admin/*; the admin API is off while unset")


class ConfirmSettings(_Section):
    """What CONFIRM (and CAPSEM's CLARIFY / REPLAN) verdicts do."""

    mode: Literal["hold", "log"] = Field(
        "hold", description="hold: 403 until an admin approves the decision id; log: let the request through"
    )
    approval_ttl_seconds: float = Field(3600.0, gt=0, description="how long a held request can be approved and retried")
    max_pending: int = Field(10_000, ge=1, description="held decisions kept at once in memory (oldest dropped first)")
    store_url: str = Field(
        "memory://", description="where held requests live: memory:// (one process) or redis://host:6379/0 (shared)"
    )


class CorsSettings(_Section):
    """Browser access; no origin is allowed unless listed."""

    allow_origins: list[str] = Field(default_factory=list)
    allow_credentials: bool = False
    allow_headers: list[str] = Field(
        default_factory=lambda: [
            "authorization",
            "content-type",
            "x-api-key",
            "x-goog-api-key",
            "anthropic-version",
            "anthropic-beta",
            "x-capsem-session-id",
            "x-capsem-agent-id",
        ]
    )
    max_age: int = 600

    @field_validator("allow_origins")
    @classmethod
    def _no_wildcard_with_credentials(cls, value: list[str]) -> list[str]:
        return [origin.rstrip("/") for origin in value]


def _default_policies() -> list[PolicySettings]:
    # CAPSEM's DebugPolicy acts on prompts and tool names only; its answer hooks always allow, so
    # the default leaves them out and streamed answers are not held back for nothing.
    return [
        PolicySettings(
            class_path="capsem.policies.debug_policy.DebugPolicy", hooks=["on_model_call", "on_tool_call"]
        )
    ]


class Settings(BaseSettings):
    """The whole configuration."""

    server: ServerSettings = ServerSettings()
    providers: ProvidersSettings = ProvidersSettings()
    policies: list[PolicySettings] = Field(default_factory=_default_policies)
    policy_sets: list[PolicySetSettings] = Field(
        default_factory=list, description="per tenant / provider / route / model overrides; the first match wins"
    )
    policy_dir: Path | None = Field(
        None, description="a CAPSEM config directory of policy TOML files (debug.toml, pii.toml ...), loaded after"
    )
    streaming: StreamingSettings = StreamingSettings()
    scanning: ScanningSettings = ScanningSettings()
    audit: AuditSettings = AuditSettings()
    metrics: MetricsSettings = MetricsSettings()
    tracing: TracingSettings = TracingSettings()
    logging: LoggingSettings = LoggingSettings()
    admin: AdminSettings = AdminSettings()
    confirm: ConfirmSettings = ConfirmSettings()
    cors: CorsSettings = CorsSettings()
    mcp: McpSettings = McpSettings()
    auth: AuthSettings | None = Field(None, description="gateway keys and JWTs (team gateway); off when absent")
    limits: LimitsSettings | None = Field(None, description="rate limits, budgets and spend; off when absent")
    upstreams: list[UpstreamSettings] = Field(
        default_factory=list, description="named upstreams (default: the three of providers:)"
    )
    models: dict[str, list[str]] = Field(
        default_factory=dict, description="model aliases: a client's model name -> ordered upstream:model chain"
    )
    retries: RetrySettings = RetrySettings()
    circuit_breaker: CircuitBreakerSettings = CircuitBreakerSettings()

    model_config = SettingsConfigDict(
        env_prefix="CAPSEM_PROXY_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; environment variables must win over it.
        return (env_settings, init_settings)

    def model_post_init(self, context: Any, /) -> None:
        if self.cors.allow_credentials and "*" in self.cors.allow_origins:
            raise ValueError("cors.allow_origins may not contain '*' when cors.allow_credentials is true")
        check_routing(self.upstreams, self.models)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping of sections")
    return loaded


def _unshared(value: Any) -> Any:
    """A copy where no two keys share a mapping: YAML anchors (`*ref`) make them the same object,
    and the defaults filled in per provider below must not leak from one into another."""
    if isinstance(value, dict):
        return {key: _unshared(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unshared(item) for item in value]
    return value


def _apply_base_url_shorthands(values: dict[str, Any]) -> None:
    for provider, env_var in _BASE_URL_ENV_VARS.items():
        base_url = os.environ.get(env_var)
        if base_url:
            section = values.setdefault("providers", {}).setdefault(provider, {})
            section["base_url"] = base_url


def _format_validation_error(source: str, exc: ValidationError) -> str:
    lines = [f"invalid configuration ({source}):"]
    lines += [f"  {line}" for line in validation_lines(exc, model=Settings)]
    return "\n".join(lines)


def load_settings(path: str | Path | None = None) -> Settings:
    """Load settings from `path` (or `$CAPSEM_PROXY_CONFIG`), the environment and defaults."""
    config_path = path or os.environ.get(CONFIG_ENV_VAR)
    values: dict[str, Any] = _unshared(_read_yaml(Path(config_path))) if config_path else {}
    source = f"file {config_path} and environment" if config_path else "environment"
    _apply_base_url_shorthands(values)
    # Provider sections given partially (only a timeout, say) keep the default base URL.
    providers = values.setdefault("providers", {})
    if isinstance(providers, dict):
        for name, default in ProvidersSettings().model_dump().items():
            section = providers.setdefault(name, {})
            if isinstance(section, dict):
                section.setdefault("base_url", default["base_url"])
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from exc
    except ValueError as exc:
        raise ConfigError(f"invalid configuration ({source}): {exc}") from exc
