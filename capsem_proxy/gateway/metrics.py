"""Prometheus series of the team gateway: tokens and cost by tenant, refusals, limit-store outages."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

__all__ = ["GatewayMetrics"]

_MAX_TENANTS = 500


class GatewayMetrics:
    """No-ops when metrics are off (no registry)."""

    def __init__(self, registry: Any = None) -> None:
        self.enabled = registry is not None
        if not self.enabled:
            return
        from capsem_proxy.metrics import _BoundedLabel

        self._tenant = _BoundedLabel(_MAX_TENANTS)
        self._tokens = Counter(
            "capsem_proxy_tenant_tokens", "Tokens used by each tenant, by direction (input or output).",
            ("tenant", "direction"), registry=registry,
        )
        self._cost = Counter(
            "capsem_proxy_tenant_cost_usd", "What each tenant's requests cost, in USD (price table).",
            ("tenant",), registry=registry,
        )
        self._limited = Counter(
            "capsem_proxy_rate_limited", "Requests refused by a limit or budget (429), by tenant and limit kind.",
            ("tenant", "limit"), registry=registry,
        )
        self._store_down = Counter(
            "capsem_proxy_limit_store_errors", "Times the limit store did not answer (requests let through or "
            "refused per limits.on_store_down).", registry=registry,
        )
        self._auth_failures = Counter(
            "capsem_proxy_gateway_auth_failures", "Gateway credentials refused, by reason.", ("reason",),
            registry=registry,
        )

    def usage(self, tenant: str, input_tokens: int, output_tokens: int, cost: float) -> None:
        if not self.enabled:
            return
        label = self._tenant(tenant)
        if input_tokens:
            self._tokens.labels(label, "input").inc(input_tokens)
        if output_tokens:
            self._tokens.labels(label, "output").inc(output_tokens)
        if cost:
            self._cost.labels(label).inc(cost)

    def limited(self, tenant: str, kind: str) -> None:
        if self.enabled:
            self._limited.labels(self._tenant(tenant), kind).inc()

    def store_down(self) -> None:
        if self.enabled:
            self._store_down.inc()

    def auth_failure(self, reason: str) -> None:
        if self.enabled:
            self._auth_failures.labels(reason).inc()
