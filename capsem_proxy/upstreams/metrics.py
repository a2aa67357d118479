"""Prometheus series of routing: attempts per upstream and outcome, fail-overs, breaker states."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge

from capsem_proxy.metrics import local_counter
from capsem_proxy.upstreams.breaker import STATE_VALUES

__all__ = ["UpstreamMetrics"]


class UpstreamMetrics:
    """Series registered on the proxy's metrics registry. Labels are configured upstream names and
    a bounded outcome (answered, an HTTP status, timeout, connect, reset, breaker_open)."""

    def __init__(self, registry: Any) -> None:
        # Counted for every request: a lock-free counter (see capsem_proxy.metrics).
        self._attempts = local_counter(
            registry, "capsem_proxy_upstream_attempts", "Tries of an upstream by outcome (answered, an HTTP status, "
            "timeout, connect, reset, breaker_open).", ("upstream", "outcome"),
        )
        self._failovers = Counter(
            "capsem_proxy_upstream_failovers", "Requests passed on from an upstream to the next of their chain.",
            ("upstream",), registry=registry,
        )
        self._breaker = Gauge(
            "capsem_proxy_upstream_breaker_state", "Circuit breaker of each upstream: 0 closed, 1 open, 2 half-open.",
            ("upstream",), registry=registry, multiprocess_mode="max",
        )
        self._children: dict[tuple[str, str], Any] = {}

    def breaker_watcher(self, upstream: str) -> Callable[[str], None]:
        gauge = self._breaker.labels(upstream)
        gauge.set(0)

        def changed(state: str) -> None:
            gauge.set(STATE_VALUES[state])

        return changed

    def observe(self, attempts: list[Any]) -> None:
        children = self._children
        for attempt in attempts:
            # By the attempt's target as labelled (`name` or `name:model`, from configured names only).
            key = (attempt.target, attempt.outcome)
            child = children.get(key)
            if child is None:
                child = children[key] = self._attempts.labels(attempt.target.partition(":")[0], attempt.outcome)
            child.inc()
            if attempt.fell_over:
                self._failovers.labels(attempt.target.partition(":")[0]).inc()
