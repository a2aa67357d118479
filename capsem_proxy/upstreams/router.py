"""Which upstreams serve a request, in order, and a record of every attempt (audit and metrics).

A model named in `models:` resolves to its chain (`upstream:model` entries the request's API can
reach, translated when the upstream speaks another). Any other model goes to the first upstream
of the request's API whose `models` globs match it, else to the first that lists no globs; a
request for Azure's or Vertex's own paths prefers upstreams of that type.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from capsem_proxy.config import Settings
from capsem_proxy.decisions import Decision, Verdict, sequential_decision_id
from capsem_proxy.errors import ErrorKind, ProxyError
from capsem_proxy.hooks import RequestContext
from capsem_proxy.routing import Route
from capsem_proxy.upstreams.breaker import CircuitBreaker
from capsem_proxy.upstreams.dispatch import ANSWERED, Attempt, Dispatch, retryable
from capsem_proxy.upstreams.metrics import UpstreamMetrics
from capsem_proxy.upstreams.outgoing import Outgoing, can_serve
from capsem_proxy.upstreams.registry import Target, Upstream, build_upstreams

__all__ = ["UPSTREAM_HEADER", "NoUpstream", "Router"]

UPSTREAM_HEADER = b"x-capsem-upstream"
# Hook name of the audit rows that record upstream attempts (one ALLOW decision per attempt).
ATTEMPT_HOOK = "upstream"
_ATTEMPT_POLICY = "router"
# Upstream types a request for each dialect prefers, before others of the same API.
_PREFERRED = {"azure": "azure_openai", "vertex": "vertex_gemini", "gemini": "gemini", "openai": "openai"}


_MAX_PLANS = 4096


class NoUpstream(ProxyError):
    """No configured upstream can serve the request's API and model."""

    status = 404
    kind = ErrorKind.NOT_FOUND


class Router:
    """The upstreams, their breakers, and the plan of each request."""

    def __init__(self, settings: Settings, metrics_registry: object | None = None) -> None:
        self.configured = bool(settings.upstreams or settings.models)
        breaker_settings = settings.circuit_breaker
        breakers_on = breaker_settings.enabled if breaker_settings.enabled is not None else self.configured
        self.metrics = UpstreamMetrics(metrics_registry) if metrics_registry is not None else None

        def breaker_for(name: str) -> CircuitBreaker | None:
            if not breakers_on:
                return None
            on_change: Callable[[str], None] | None = None
            if self.metrics is not None:
                on_change = self.metrics.breaker_watcher(name)
            return CircuitBreaker(breaker_settings.failures, breaker_settings.open_s, on_change=on_change)

        self.upstreams: dict[str, Upstream] = build_upstreams(settings, breaker_for)
        self.retry = settings.retries
        self._retry_on = retryable(settings.retries)
        # Plans by (API, dialect, operation, model): bounded, since model names are the caller's.
        self._plans: dict[tuple[str, str, str, str], list[Target]] = {}
        self._chains: dict[str, list[Target]] = {
            alias: [self._target(entry) for entry in chain] for alias, chain in settings.models.items()
        }
        # The upstreams a request no alias decides may go to, per dialect. Azure's and Vertex's own
        # paths go only to upstreams of that type: their credentials mean nothing elsewhere.
        self._by_dialect: dict[str, list[Upstream]] = {}
        for dialect, provider in (("openai", "openai"), ("anthropic", "anthropic"), ("gemini", "gemini")):
            same_api = [upstream for upstream in self.upstreams.values() if upstream.wire == provider]
            preferred = _PREFERRED.get(dialect, dialect)
            self._by_dialect[dialect] = sorted(same_api, key=lambda upstream: upstream.type != preferred)
        for dialect in ("azure", "vertex"):
            self._by_dialect[dialect] = [
                upstream for upstream in self.upstreams.values() if upstream.type == _PREFERRED[dialect]
            ]
        self._record_attempts = self.configured and settings.retries.audit_every_attempt

    def _target(self, entry: str) -> Target:
        name, _, model = entry.partition(":")
        return Target(self.upstreams[name], model or None)

    def plan(self, route: Route, model: str) -> list[Target]:
        """The targets to try for a request of `route` asking for `model`, in order."""
        key = (route.provider, route.dialect, route.operation, model)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plan(route, model)
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def _plan(self, route: Route, model: str) -> list[Target]:
        chain = self._chains.get(model) if self._chains else None
        if chain is not None:
            usable = [target for target in chain if can_serve(target.upstream, route)]
            if usable:
                return usable
            raise NoUpstream(f"no upstream of the model alias {model!r} serves this API")
        dialect = route.dialect or route.provider
        candidates = self._by_dialect[dialect]
        if len(candidates) == 1 and not candidates[0].model_globs:
            return [Target(candidates[0])]
        catch_all: Upstream | None = None
        for upstream in candidates:
            if not can_serve(upstream, route):
                continue
            if upstream.model_globs:
                if model and upstream.serves_model(model):
                    return [Target(upstream)]
            elif catch_all is None:
                catch_all = upstream
        if catch_all is not None:
            return [Target(catch_all)]
        if not candidates and dialect in ("azure", "vertex"):
            raise NoUpstream(f"no upstream of type {_PREFERRED[dialect]} is configured")
        raise NoUpstream(f"no upstream serves the model {model!r} on this API")

    def dispatch(self, targets: list[Target], outgoing: Outgoing) -> Dispatch:
        """A request's way through its plan (call `send()` on it)."""
        return Dispatch(targets, outgoing, self.retry, self._retry_on)

    def observe(self, dispatch: Dispatch, context: RequestContext | None, audit: object | None) -> None:
        """Count the attempts, and record them in the audit trail with the request's decisions."""
        attempts = dispatch.attempts
        if self.metrics is not None:
            self.metrics.observe(attempts)
        if context is None or audit is None or not (self._record_attempts or len(attempts) > 1):
            return
        # One row each: the audit folds ALLOW decisions recorded together into one.
        for number, attempt in enumerate(attempts, 1):
            audit.record(context, [_attempt_decision(number, attempt)])  # type: ignore[attr-defined]

    async def close(self) -> None:
        for upstream in self.upstreams.values():
            await upstream.client.close()


def _attempt_decision(number: int, attempt: Attempt) -> Decision:
    if attempt.outcome == ANSWERED:
        details = f"attempt {number}: answered HTTP {attempt.status}"
    else:
        over = ", fell over to the next upstream" if attempt.fell_over else ""
        details = f"attempt {number}: {attempt.outcome}{over}"
    return Decision(
        Verdict.ALLOW, _ATTEMPT_POLICY, ATTEMPT_HOOK, reason=attempt.outcome, details=details,
        subject=attempt.target, latency_ms=attempt.elapsed_ms, started_at=perf_counter(),
        decision_id=sequential_decision_id(),  # an ALLOW row: never shown to a caller nor approved
    )
