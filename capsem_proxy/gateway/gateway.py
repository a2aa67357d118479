"""The team gateway on the request path: who the caller is (gateway key, JWT or their own provider
key), what they may use, whether a limit or budget stops them, which provider key goes upstream,
and what their request cost once it is over."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from capsem_proxy.errors import ErrorKind, ProxyError
from capsem_proxy.gateway.crypto import MasterKeyError, MasterKeys, load_master_keys
from capsem_proxy.gateway.jwt_auth import InvalidToken, JwtVerifier, looks_like_jwt
from capsem_proxy.gateway.keys import GatewayKey, hash_key, looks_like_gateway_key
from capsem_proxy.gateway.limits import Check, LimitStore, MemoryLimitStore, Refusal, StoreDown, open_limit_store
from capsem_proxy.gateway.limits import window_ids as _windows
from capsem_proxy.gateway.metrics import GatewayMetrics
from capsem_proxy.gateway.prices import PriceTable
from capsem_proxy.gateway.settings import AuthSettings, LimitsSettings, LimitValues
from capsem_proxy.gateway.store import KeyStore, UsageRow

__all__ = ["Admission", "Gateway", "Grant"]

logger = logging.getLogger("capsem_proxy.gateway")

# Where each provider's SDK sends its key, and where the held key goes upstream.
KEY_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})
_UPSTREAM_KEY_HEADER = {
    "openai": ("authorization", "Bearer {}"),
    "anthropic": ("x-api-key", "{}"),
    "gemini": ("x-goog-api-key", "{}"),
}
_CACHE_MAX = 10_000
_FLUSH_INTERVAL_S = 0.05
_USAGE_FLUSH_INTERVAL_S = 2.0
_MICRO = 1_000_000


class Unauthorized(ProxyError):
    status = 401
    kind = ErrorKind.AUTHENTICATION


class Forbidden(ProxyError):
    status = 403
    kind = ErrorKind.PERMISSION


class RateLimited(ProxyError):
    status = 429
    kind = ErrorKind.RATE_LIMIT


class StoreUnavailable(ProxyError):
    status = 503
    kind = ErrorKind.UNAVAILABLE


@dataclass(slots=True)
class Grant:
    """A caller the gateway recognised: its tenant, what it may use and the provider keys it gets."""

    tenant: str
    key_id: str = ""  # "" for JWT callers and for callers with their own provider key
    key: GatewayKey | None = None
    provider_keys: dict[str, str] = field(default_factory=dict)
    roles: list[str] = field(default_factory=list)
    held: bool = True  # False: the caller's own provider key goes upstream unchanged

    @property
    def policy_tenant(self) -> str:
        return self.key.policy_set if self.key is not None and self.key.policy_set else self.tenant


@dataclass(slots=True)
class Admission:
    """An admitted request: what to charge when it ends."""

    tenant: str
    key_id: str
    provider: str
    model: str
    checks: list[Check]
    stream_keys: list[str]
    downgraded_from: str = ""


@dataclass(slots=True)
class _Cached:
    key: GatewayKey | None
    provider_keys: dict[str, str]
    fetched_at: float


class Gateway:
    """One per process. `authenticate` → `admit` → (the request) → `settle`."""

    def __init__(
        self, auth: AuthSettings | None, limits: LimitsSettings | None, store: KeyStore, registry: Any = None
    ) -> None:
        self.auth = auth or AuthSettings()
        self.limits = limits or LimitsSettings()
        self.store = store
        self.master: MasterKeys | None = load_master_keys(self.auth.master_key_env)
        self.jwt = JwtVerifier(self.auth.jwt) if self.auth.jwt is not None else None
        self.metrics = GatewayMetrics(registry)
        self.prices = PriceTable({name: (p.input, p.output) for name, p in self.limits.prices.items()})
        self.limit_store: LimitStore = open_limit_store(
            self.limits.store_url, self.limits.key_prefix, self.limits.timeout_ms / 1000
        )
        self._inline = self.limit_store if isinstance(self.limit_store, MemoryLimitStore) else None
        self._cache: dict[str, _Cached] = {}
        self._key_limits: dict[str, LimitValues] = {}  # a key's limits never change once it is made
        self._pending: dict[str, list[int]] = {}
        self._usage: dict[tuple[int, str, str, str, str], list[float]] = {}
        self._flusher: asyncio.Task[None] | None = None
        self._env_keys: dict[str, str] = {
            provider: os.environ[var] for provider, var in self.auth.provider_key_env.items() if os.environ.get(var)
        }
        self._limits_on = not self.limits.defaults.is_empty() or any(
            not values.is_empty() for values in (*self.limits.tenants.values(), *self.limits.models.values())
        )

    @property
    def gateway_auth(self) -> bool:
        return self.auth.mode != "passthrough"

    # Lifecycle.

    async def start(self) -> None:
        await self.store.open()
        if self.jwt is not None:
            await self.jwt.start()
        self._flusher = asyncio.create_task(self._flush_forever(), name="gateway-flush")

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self._flush_charges()
        await self._flush_usage()
        await self.limit_store.close()
        await self.store.close()

    # Who is calling.

    async def authenticate(self, presented: str, provider: str) -> Grant:
        """The caller's grant from the credential its SDK sent; 401/403 as the provider would answer."""
        if looks_like_gateway_key(presented) and self.gateway_auth:
            grant = await self._by_gateway_key(presented)
        elif self.jwt is not None and self.gateway_auth and looks_like_jwt(presented):
            try:
                identity = await self.jwt.verify(presented)
            except InvalidToken as exc:
                self.metrics.auth_failure("jwt")
                raise Unauthorized(str(exc)) from None
            if not identity.tenant:
                self.metrics.auth_failure("jwt")
                raise Unauthorized(f"the bearer token has no usable {self.auth.jwt.tenant_claim} claim")  # type: ignore[union-attr]
            grant = Grant(identity.tenant, roles=identity.roles)
        elif self.auth.mode == "gateway":
            self.metrics.auth_failure("not_gateway")
            raise Unauthorized("this proxy accepts gateway keys only (cpk-...)")
        else:
            return Grant("", held=False)
        if grant.key is not None and not grant.key.allows_provider(provider):
            raise Forbidden(f"this key may not use the {provider} provider")
        return grant

    async def _by_gateway_key(self, presented: str) -> Grant:
        digest = hash_key(presented)
        now = time.time()
        cached = self._cache.get(digest)
        if cached is None or time.monotonic() - cached.fetched_at > self.auth.cache_ttl_s:
            key = await self.store.by_hash(digest)
            cached = _Cached(key, self._open_keys(key) if key is not None else {}, time.monotonic())
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = cached
        key = cached.key
        if key is None:
            self.metrics.auth_failure("unknown")
            raise Unauthorized("the gateway key is not valid")
        status = key.status(now)
        if status != "active":
            self.metrics.auth_failure(status)
            raise Unauthorized(f"the gateway key is {status}")
        return Grant(key.tenant, key.id, key, cached.provider_keys)

    def _open_keys(self, key: GatewayKey) -> dict[str, str]:
        if not key.sealed_provider_keys:
            return {}
        if self.master is None:
            logger.error("gateway key %s holds provider keys but %s is unset", key.id, self.auth.master_key_env)
            return {}
        opened = {}
        for provider, sealed in key.sealed_provider_keys.items():
            try:
                opened[provider] = self.master.open(sealed, key.id)
            except MasterKeyError as exc:
                logger.error("gateway key %s: the %s key cannot be opened: %s", key.id, provider, exc)
        return opened

    def forget(self, key_hash: str | None = None) -> None:
        """Drop cached keys (all, or one) so the next request reads the store."""
        if key_hash is None:
            self._cache.clear()
        else:
            self._cache.pop(key_hash, None)

    # What goes upstream.

    def upstream_credentials(
        self, grant: Grant, provider: str, forwarded: list[tuple[str, str]], query_string: bytes
    ) -> tuple[list[tuple[str, str]], bytes]:
        """The forwarded headers and query with the caller's credential replaced by the held provider key."""
        if not grant.held:
            return forwarded, query_string
        provider_key = grant.provider_keys.get(provider) or self._env_keys.get(provider)
        if not provider_key:
            raise Forbidden(f"no {provider} key is held for this caller")
        headers = [(name, value) for name, value in forwarded if name.lower() not in KEY_HEADERS]
        header, template = _UPSTREAM_KEY_HEADER.get(provider, ("authorization", "Bearer {}"))
        headers.append((header, template.format(provider_key)))
        if query_string and b"key" in query_string:
            query_string = _without_key_param(query_string)
        return headers, query_string

    # Limits.

    def _limits_of(self, grant: Grant, tenant: str, model: str) -> list[tuple[str, LimitValues]]:
        scopes: list[tuple[str, LimitValues]] = []
        tenant_limits = self.limits.tenants.get(tenant, self.limits.defaults)
        if not tenant_limits.is_empty():
            scopes.append((f"tenant {tenant}", tenant_limits))
        if grant.key is not None and grant.key.limits:
            key_limits = self._key_limits.get(grant.key.id)
            if key_limits is None:
                if len(self._key_limits) >= _CACHE_MAX:
                    self._key_limits.clear()
                key_limits = self._key_limits[grant.key.id] = LimitValues.model_validate(grant.key.limits)
            scopes.append((f"key {grant.key.id}", key_limits))
        if model:
            for pattern, values in self.limits.models.items():
                if fnmatchcase(model, pattern):
                    scopes.append((f"model {model} of tenant {tenant}", values))
                    break
        return scopes

    def _checks(self, scopes: list[tuple[str, LimitValues]], stream: bool, *, budget: bool = True) -> list[Check]:
        minute, minute_left, day, day_left = _windows(time.time())
        checks: list[Check] = []
        for scope, values in scopes:
            name = scope.replace(" ", ":")
            if values.requests_per_minute is not None:
                checks.append(Check(f"r:{name}:{minute}", values.requests_per_minute, 1, minute_left + 1, "requests",
                                    scope, "minute"))
            if values.tokens_per_minute is not None:
                checks.append(Check(f"t:{name}:{minute}", values.tokens_per_minute, 0, minute_left + 1, "tokens",
                                    scope, "minute"))
            if values.tokens_per_day is not None:
                checks.append(Check(f"td:{name}:{day}", values.tokens_per_day, 0, day_left + 60, "tokens", scope,
                                    "day"))
            if values.budget_usd_per_day is not None and budget:
                checks.append(Check(f"u:{name}:{day}", int(values.budget_usd_per_day * _MICRO), 0, day_left + 60,
                                    "usd", scope, "day"))
            if values.concurrent_streams is not None and stream:
                checks.append(Check(f"s:{name}", values.concurrent_streams, 1, 3600, "streams", scope, "open"))
        return checks

    async def admit(
        self, grant: Grant, tenant: str, provider: str, model: str, stream: bool,
        extra_headers: list[tuple[bytes, bytes]],
    ) -> Admission | None:
        """Check the key's model list and every limit; None when nothing applies. Raises 403/429/503.
        `Admission.model` differs from `model` when a spent budget downgrades the request."""
        if grant.key is not None and model and not grant.key.allows_model(model):
            raise Forbidden(f"this key may not use the model {model[:128]}")
        if not self._limits_on and (grant.key is None or not grant.key.limits):
            return None
        scopes = self._limits_of(grant, tenant, model)
        if not scopes:
            return None
        checks = self._checks(scopes, stream)
        refusal, downgraded_from = await self._admit_checks(checks), ""
        if refusal is not None and refusal.check.kind == "usd":
            target = next((values.downgrade_to for scope, values in scopes if scope == refusal.check.scope), None)
            if target and target != model:
                downgraded_from, model = model, target
                checks = self._checks(self._limits_of(grant, tenant, model), stream, budget=False)
                refusal = await self._admit_checks(checks)
        if refusal is not None:
            self.metrics.limited(tenant, refusal.check.kind)
            extra_headers.extend(_limit_headers(refusal, checks))
            raise RateLimited(_refusal_message(refusal))
        return Admission(
            tenant, grant.key_id, provider, model, checks,
            [check.key for check in checks if check.kind == "streams"], downgraded_from,
        )

    async def _admit_checks(self, checks: list[Check]) -> Refusal | None:
        if not checks:
            return None
        try:
            refusal, _values = await self.limit_store.admit(checks)
        except StoreDown as exc:
            self.metrics.store_down()
            if self.limits.on_store_down == "closed":
                raise StoreUnavailable("rate limits cannot be checked right now; retry shortly") from None
            logger.warning("limits not enforced: %s", exc)
            return None
        return refusal

    # When the request is over.

    def settle(self, admission: Admission | None, grant: Grant | None, provider: str, model: str,
               input_tokens: int | None, output_tokens: int | None) -> None:
        """Charge the request's real usage (streams: at their end) and record its spend."""
        tokens_in, tokens_out = input_tokens or 0, output_tokens or 0
        if admission is not None:
            model = admission.model
        tenant = admission.tenant if admission is not None else (grant.tenant if grant is not None else "")
        if not tenant:
            return
        cost = self.prices.cost(model, tokens_in, tokens_out) if tokens_in or tokens_out else 0.0
        charges: dict[str, list[int]] = {}
        if admission is not None:
            for check in admission.checks:
                if check.kind == "tokens" and (tokens_in or tokens_out):
                    charges[check.key] = [tokens_in + tokens_out, check.ttl_s]
                elif check.kind == "usd" and cost:
                    charges[check.key] = [round(cost * _MICRO), check.ttl_s]
            for key in admission.stream_keys:
                charges[key] = [-1, 3600]
        if charges:
            if self._inline is not None:
                self._inline.settle_now({key: (delta, ttl) for key, (delta, ttl) in charges.items()})
            else:
                for key, (delta, ttl) in charges.items():
                    pending = self._pending.setdefault(key, [0, ttl])
                    pending[0] += delta
        key_id = admission.key_id if admission is not None else (grant.key_id if grant is not None else "")
        hour = int(time.time() // 3600) * 3600
        sums = self._usage.setdefault((hour, tenant, key_id, provider, model), [0, 0, 0, 0.0])
        sums[0] += 1
        sums[1] += tokens_in
        sums[2] += tokens_out
        sums[3] += cost
        self.metrics.usage(tenant, tokens_in, tokens_out, cost)

    async def _flush_forever(self) -> None:
        last_usage = time.monotonic()
        while True:
            await asyncio.sleep(_FLUSH_INTERVAL_S)
            try:
                await self._flush_charges()
                if time.monotonic() - last_usage >= _USAGE_FLUSH_INTERVAL_S:
                    last_usage = time.monotonic()
                    await self._flush_usage()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("gateway: flushing usage failed")

    async def _flush_charges(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        try:
            await self.limit_store.settle({key: (delta, ttl) for key, (delta, ttl) in pending.items() if delta})
        except StoreDown as exc:
            self.metrics.store_down()
            logger.warning("usage not charged to the limits: %s", exc)

    async def flush_usage(self) -> None:
        """Write the usage summed so far to the store (spend reads see it)."""
        await self._flush_usage()

    async def _flush_usage(self) -> None:
        if not self._usage:
            return
        usage, self._usage = self._usage, {}
        rows = [UsageRow(*ident, int(s[0]), int(s[1]), int(s[2]), float(s[3])) for ident, s in usage.items()]
        try:
            await self.store.add_usage(rows)
        except Exception:
            logger.exception("gateway: %d spend rows could not be written", len(rows))


def _without_key_param(query_string: bytes) -> bytes:
    from urllib.parse import unquote_to_bytes

    kept = [part for part in query_string.split(b"&") if unquote_to_bytes(part.split(b"=", 1)[0]) != b"key"]
    return b"&".join(kept)


def _refusal_message(refusal: Refusal) -> str:
    check = refusal.check
    if check.kind == "usd":
        return f"the daily budget of {check.scope} (USD {check.limit / _MICRO:g}) is spent"
    if check.kind == "streams":
        return f"{check.scope} has {check.limit} streams open already"
    per = "minute" if check.window == "minute" else "day"
    return f"rate limit of {check.scope} reached: {check.limit} {check.kind} per {per}"


def _limit_headers(refusal: Refusal, checks: list[Check]) -> list[tuple[bytes, bytes]]:
    """Retry-After and x-ratelimit-* the way OpenAI sends them, so each SDK's retry waits right."""
    retry_after = max(1, -(-refusal.reset_ms // 1000))
    headers = [(b"retry-after", str(retry_after).encode())]
    failed = refusal.check
    if failed.window == "day":
        headers.append((b"x-should-retry", b"false"))  # a day's budget does not come back within a retry
    for kind, name in (("requests", b"requests"), ("tokens", b"tokens")):
        index = next((i for i, check in enumerate(checks) if check is failed and check.kind == kind), None)
        if index is None:
            index = next((i for i, check in enumerate(checks) if check.kind == kind), None)
        if index is None:
            continue
        check, current = checks[index], refusal.values[index] if index < len(refusal.values) else 0
        headers.append((b"x-ratelimit-limit-" + name, str(check.limit).encode()))
        headers.append((b"x-ratelimit-remaining-" + name, str(max(check.limit - current, 0)).encode()))
        if kind == "requests":
            reset = retry_after if check is failed else 60
            headers.append((b"x-ratelimit-reset-requests", f"{reset}s".encode()))
    return headers
