"""The `auth:` and `limits:` sections of the configuration (team gateway; off by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["AuthSettings", "JwtSettings", "LimitValues", "LimitsSettings", "Price"]

JwtAlgorithm = Literal["RS256", "ES256"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JwtSettings(_Section):
    """JWT bearer tokens signed by an identity provider (RS256 / ES256), checked against its JWKS."""

    jwks_file: Path | None = Field(None, description="a JWKS document on disk")
    jwks_url: str | None = Field(None, description="a JWKS URL, fetched at start and when an unknown kid arrives")
    issuer: str = Field(..., description="the required `iss`")
    audience: str = Field(..., description="the required `aud`")
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"
    algorithms: list[JwtAlgorithm] = Field(default_factory=lambda: list[JwtAlgorithm](["RS256", "ES256"]))
    clock_skew_s: float = Field(30.0, ge=0, le=300, description="leeway on exp/nbf/iat, in seconds (at most 300)")
    jwks_refresh_s: float = Field(300.0, ge=10, description="how long a fetched JWKS is trusted before refetching")

    @model_validator(mode="after")
    def _one_source(self) -> JwtSettings:
        if (self.jwks_file is None) == (self.jwks_url is None):
            raise ValueError("auth.jwt needs exactly one of jwks_file or jwks_url")
        if self.jwks_url is not None and not self.jwks_url.startswith(("http://", "https://")):
            raise ValueError("auth.jwt.jwks_url must start with http:// or https://")
        return self


class AuthSettings(_Section):
    """Who may call the proxy: the caller's own provider key (passthrough), a gateway key or JWT, or both."""

    mode: Literal["passthrough", "gateway", "both"] = "passthrough"
    master_key_env: str = Field(
        "CAPSEM_PROXY_MASTER_KEY",
        description="environment variable holding the master key that encrypts held provider keys (AES-GCM); "
        "<name>_PREVIOUS may hold former master keys, comma-separated, during a rotation",
    )
    jwt: JwtSettings | None = None
    provider_key_env: dict[Literal["openai", "gemini", "anthropic"], str] = Field(
        default_factory=dict,
        description="provider key held for JWT callers and for gateway keys that hold none, by environment "
        "variable name ({openai: OPENAI_API_KEY})",
    )
    cache_ttl_s: float = Field(
        5.0, ge=0, le=300,
        description="how long a looked-up gateway key is trusted before the store is read again (a revocation "
        "on another replica takes effect within this)",
    )


class LimitValues(_Section):
    """Limits of one tenant, key or model; null means no limit."""

    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    tokens_per_day: int | None = Field(None, ge=1)
    budget_usd_per_day: float | None = Field(None, gt=0)
    concurrent_streams: int | None = Field(None, ge=1)
    on_budget: Literal["reject"] | dict[Literal["downgrade"], str] = Field(
        "reject", description="when the USD budget is spent: reject (429) or {downgrade: cheaper-model}"
    )

    def is_empty(self) -> bool:
        return (
            self.requests_per_minute is None and self.tokens_per_minute is None and self.tokens_per_day is None
            and self.budget_usd_per_day is None and self.concurrent_streams is None
        )

    @property
    def downgrade_to(self) -> str | None:
        return self.on_budget.get("downgrade") if isinstance(self.on_budget, dict) else None


class Price(_Section):
    """USD per one million tokens."""

    input: float = Field(..., ge=0)
    output: float = Field(0.0, ge=0)


class LimitsSettings(_Section):
    """Rate limits and budgets, enforced before the provider is called."""

    store_url: str = Field("memory://", description="memory:// (one process) or redis://host:6379/0 (shared)")
    key_prefix: str = Field("capsem:limits:", description="prefix of every Redis key the limiter writes")
    on_store_down: Literal["open", "closed"] = Field(
        "open", description="Redis unreachable: allow (counted in a metric) or refuse with 503"
    )
    defaults: LimitValues = Field(default_factory=LimitValues, description="limits of every tenant without its own")
    tenants: dict[str, LimitValues] = Field(default_factory=dict, description="limits by tenant name")
    models: dict[str, LimitValues] = Field(
        default_factory=dict, description="limits per tenant and model, by model name or glob (gpt-4o*)"
    )
    prices: dict[str, Price] = Field(
        default_factory=dict,
        description="USD per 1M input/output tokens by model name or glob, over the built-in table",
    )
    timeout_ms: float = Field(50.0, gt=0, description="longest wait on the limit store before it counts as down")

    @field_validator("store_url")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("must be memory:// or redis://host:port/db")
        return value
