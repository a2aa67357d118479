"""Prometheus metrics, served at GET /metrics.

The per-request update is a few dictionary lookups and counter increments: labelled children
are created once and cached, and caller-chosen label values (model names, routes) are bounded
so that no caller can grow the series without limit. No label ever holds a key or content.
In one process the request-path series are plain numbers (`_LocalFamily`) updated on the event
loop without locks and turned into Prometheus samples only when scraped; prometheus-client's own
counters and histograms take a lock and check their type on every update, about three times
the cost.

With several worker processes (`--workers N`), prometheus-client's multiprocess mode shares the
numbers through files: `PROMETHEUS_MULTIPROC_DIR` must be set before the workers start (see
`prepare_multiprocess`); any worker then answers a scrape with the sum over all of them. Running
`uvicorn capsem_proxy.server:app --workers N` directly needs that variable set by hand.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from capsem_proxy.config import Settings
from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.logs import looks_like_secret
from capsem_proxy.records import RequestRecord

__all__ = ["MULTIPROCESS_ENV", "Metrics", "local_counter", "open_metrics", "prepare_multiprocess"]

logger = logging.getLogger("capsem_proxy.metrics")

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
OTHER = "other"
_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4.encode()

# LLM calls last from milliseconds (blocked, cached, errors) to minutes (long generations).
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# Policies take microseconds (a keyword) to a few hundred milliseconds (a model-based check).
_POLICY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

_MAX_MODELS = 50  # distinct model names per process before the rest count as "other"
_MAX_ROUTES = 50  # routes are templates, but GET /v1/models/{id} carries an id
_MAX_LABEL_CHARS = 64
# How often a worker copies its audit queue depth into the shared files (multiprocess mode).
_AUDIT_SYNC_SECONDS = 1.0


class _AuditGauges(Protocol):
    dropped: int

    def queue_depth(self) -> int: ...


class _BoundedLabel:
    """Caller-chosen values as label values: the first `limit` distinct ones keep their name (cut
    to `max_chars`), later ones become "other", and a value shaped like a key is never kept."""

    __slots__ = ("_known", "_limit", "_max_chars")

    def __init__(self, limit: int, max_chars: int = _MAX_LABEL_CHARS) -> None:
        self._known: dict[str, str] = {}
        self._limit = limit
        self._max_chars = max_chars

    def __call__(self, value: str) -> str:
        label = self._known.get(value)
        if label is not None:
            return label
        if len(self._known) >= self._limit or looks_like_secret(value):
            return OTHER
        label = self._known[value] = value[: self._max_chars]
        return label


class _LocalCounter:
    """One labelled counter child, without a lock: updated on the event loop only."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class _LocalHistogram:
    """One labelled histogram child: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("_bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        # Bucket `le=b` counts values <= b: the first bound not below the value.
        self.counts[bisect_left(self._bounds, value)] += 1
        self.total += value


class _LocalFamily:
    """A counter or histogram with labels whose children are `_LocalCounter`/`_LocalHistogram`,
    exposed through `_LocalCollector` at scrape time exactly as prometheus-client would."""

    def __init__(self, name: str, documentation: str, labelnames: tuple[str, ...],
                 buckets: tuple[float, ...] | None = None) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = labelnames
        self.buckets = buckets
        self._le = [floatToGoString(bound) for bound in buckets or ()] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = (
                _LocalCounter() if self.buckets is None else _LocalHistogram(self.buckets)
            )
        return child

    def collect(self) -> Metric:
        labels = list(self.labelnames)
        children = list(self._children.items())  # a snapshot: the event loop may add children meanwhile
        if self.buckets is None:
            counter = CounterMetricFamily(self.name, self.documentation, labels=labels)
            for values, child in children:
                counter.add_metric(list(values), child.value)
            return counter
        histogram = HistogramMetricFamily(self.name, self.documentation, labels=labels)
        for values, child in children:
            cumulative, running = [], 0
            for le, count in zip(self._le, list(child.counts), strict=True):
                running += count
                cumulative.append((le, float(running)))
            histogram.add_metric(list(values), cumulative, child.total)
        return histogram


class _LocalCollector(Collector):
    """Serves the `_LocalFamily` series of one process at scrape time."""

    def __init__(self, families: list[_LocalFamily]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        for family in self._families:
            yield family.collect()


class _LocalGauge(Collector):
    """A gauge without labels updated on the event loop only: a plain number, turned into the sample
    prometheus-client's Gauge would give when scraped (its own takes a lock on every change)."""

    def __init__(self, name: str, documentation: str) -> None:
        self._name = name
        self._documentation = documentation
        self.value = 0.0

    def inc(self) -> None:
        self.value += 1.0

    def dec(self) -> None:
        self.value -= 1.0

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self._name, self._documentation, value=self.value)


def local_counter(registry: CollectorRegistry, name: str, documentation: str, labelnames: tuple[str, ...]) -> Any:
    """A labelled counter of the request path on `registry`: a `_LocalFamily` with a collector of
    its own in one process, prometheus-client's Counter in multiprocess mode (the files need it)."""
    if os.environ.get(MULTIPROCESS_ENV):
        return Counter(name, documentation, labelnames, registry=registry)
    family = _LocalFamily(name, documentation, labelnames)
    registry.register(_LocalCollector([family]))
    return family


def prepare_multiprocess(settings: Settings, workers: int | None = None) -> dict[str, str]:
    """The environment to set before starting `workers` worker processes (default
    `server.workers`) so that they share their metrics; {} when not needed (metrics off or one
    worker). Removes the files an earlier run left in the directory."""
    workers = settings.server.workers if workers is None else workers
    if not settings.metrics.enabled or workers <= 1:
        return {}
    directory = Path(settings.metrics.multiprocess_dir or settings.server.data_dir / "metrics").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    return {MULTIPROCESS_ENV: str(directory)}


class Metrics:
    """The proxy's Prometheus metrics (one instance per process)."""

    def __init__(self, settings: Settings) -> None:
        # `*_created` series double the scrape for a timestamp nobody graphs (the process owns the library).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_ENV)
        registry = self.registry = CollectorRegistry(auto_describe=False)
        local: list[_LocalFamily] = []

        def counter(name: str, documentation: str, labelnames: tuple[str, ...]) -> Any:
            if self.multiprocess_dir:
                return Counter(name, documentation, labelnames, registry=registry)
            local.append(_LocalFamily(name, documentation, labelnames))
            return local[-1]

        def histogram(name: str, documentation: str, labelnames: tuple[str, ...], buckets: tuple[float, ...]) -> Any:
            if self.multiprocess_dir:
                return Histogram(name, documentation, labelnames, buckets=buckets, registry=registry)
            local.append(_LocalFamily(name, documentation, labelnames, buckets))
            return local[-1]

        self._requests = counter(
            "capsem_proxy_requests", "Proxied requests by provider, model, route and HTTP status.",
            ("provider", "model", "route", "status"),
        )
        self._request_seconds = histogram(
            "capsem_proxy_request_duration_seconds", "Time from the request to the last byte of the answer.",
            ("provider", "route"), _REQUEST_BUCKETS,
        )
        self._ttfb_seconds = histogram(
            "capsem_proxy_time_to_first_byte_seconds", "Time from the request to the first byte of the answer body.",
            ("provider", "route"), _REQUEST_BUCKETS,
        )
        self._upstream_seconds = histogram(
            "capsem_proxy_upstream_duration_seconds", "Time until the provider's answer headers arrived.",
            ("provider",), _REQUEST_BUCKETS,
        )
        self._tokens = counter(
            "capsem_proxy_tokens", "Tokens reported by the provider, by direction (input or output).",
            ("provider", "model", "direction"),
        )
        self._decisions = counter(
            "capsem_proxy_decisions", "Policy decisions by policy, hook and verdict.", ("policy", "hook", "verdict"),
        )
        self._policy_seconds = histogram(
            "capsem_proxy_policy_duration_seconds", "Time one policy took on one hook call.",
            ("policy", "hook"), _POLICY_BUCKETS,
        )
        if local:
            registry.register(_LocalCollector(local))
        self._active_streams: Any
        if self.multiprocess_dir:
            self._active_streams = Gauge(
                "capsem_proxy_active_streams", "Streamed answers being relayed now.",
                registry=registry, multiprocess_mode="livesum",
            )
        else:
            self._active_streams = _LocalGauge("capsem_proxy_active_streams", "Streamed answers being relayed now.")
            registry.register(self._active_streams)
        self._audit_queue = Gauge(
            "capsem_proxy_audit_queue_depth", "Audit rows waiting to be written.",
            registry=registry, multiprocess_mode="livesum",
        )
        self._audit_dropped = Counter(
            "capsem_proxy_audit_dropped_rows", "Audit rows dropped because the audit queue was full.",
            registry=registry,
        )
        self._audit_refused = Counter(
            "capsem_proxy_audit_refused_requests", "Requests refused (503) because the audit queue was full.",
            registry=registry,
        )
        self._models = _BoundedLabel(_MAX_MODELS)
        self._routes = _BoundedLabel(_MAX_ROUTES)
        self._statuses: dict[int, str] = {}
        # (provider, model label, route label, status) -> the children one finished request updates.
        self._request_children: dict[tuple[str, str, str, int], tuple[Any, ...]] = {}
        # (policy, hook, verdict, shadow) -> (decision counter, policy latency histogram).
        # Per (policy, hook, verdict, shadow): the decision counter, the policy's latency histogram, and
        # whether both are this process's own (`_LocalCounter`, `_LocalHistogram`: updated in place).
        self._decision_children: dict[tuple[str, str, Verdict, bool], tuple[Any, Any, bool]] = {}
        self._audit: _AuditGauges | None = None
        self._audit_lock = threading.Lock()
        self._dropped_seen = 0
        if self.multiprocess_dir:
            self._scraped: CollectorRegistry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(self._scraped, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            # Live gauges of a worker that exits must stop counting in the sum.
            atexit.register(mark_process_dead, os.getpid(), self.multiprocess_dir)
        else:
            self._scraped = registry
            ProcessCollector(registry=registry)

    # --- the request path ---------------------------------------------------------------------

    def observe_request(self, record: RequestRecord) -> None:
        """Count one finished request: status, latencies, tokens."""
        key = (record.provider, self._models(record.model), self._routes(record.route), record.status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = self._new_request_children(key)
        requests, duration, ttfb, upstream, input_tokens, output_tokens = children
        requests.inc()
        duration.observe(record.latency_ms / 1000.0)
        if record.ttfb_ms is not None:
            ttfb.observe(record.ttfb_ms / 1000.0)
        if record.upstream_ms is not None:
            upstream.observe(record.upstream_ms / 1000.0)
        if record.input_tokens:
            input_tokens.inc(record.input_tokens)
        if record.output_tokens:
            output_tokens.inc(record.output_tokens)

    def observe_decisions(self, decisions: list[Decision]) -> None:
        """Count decisions by policy, hook and verdict, and time each policy."""
        children = self._decision_children
        for decision in decisions:
            key = (decision.policy, decision.hook, decision.verdict, decision.shadow)
            pair = children.get(key)
            if pair is None:
                # A shadow decision is counted apart (`BLOCK_SHADOW`): it stopped nothing.
                verdict = f"{decision.verdict.value}_SHADOW" if decision.shadow else decision.verdict.value
                counter = self._decisions.labels(decision.policy, decision.hook, verdict)
                seconds = self._policy_seconds.labels(decision.policy, decision.hook)
                local = type(counter) is _LocalCounter and type(seconds) is _LocalHistogram
                pair = children[key] = (counter, seconds, local)
            counter, seconds, local = pair
            latency = decision.latency_ms / 1000.0
            if local:  # `inc()` and `observe()`, without a call each (several decisions per request)
                counter.value += 1.0
                seconds.counts[bisect_left(seconds._bounds, latency)] += 1
                seconds.total += latency
            else:
                counter.inc()
                seconds.observe(latency)

    def stream_started(self) -> None:
        self._active_streams.inc()

    def stream_ended(self) -> None:
        self._active_streams.dec()

    def audit_refused(self) -> None:
        """Count a request refused because the audit queue was full."""
        self._audit_refused.inc()

    def _new_request_children(self, key: tuple[str, str, str, int]) -> tuple[Any, ...]:
        provider, model, route, status = key
        status_label = self._statuses.setdefault(status, str(status))
        return (
            self._requests.labels(provider, model, route, status_label),
            self._request_seconds.labels(provider, route),
            self._ttfb_seconds.labels(provider, route),
            self._upstream_seconds.labels(provider),
            self._tokens.labels(provider, model, "input"),
            self._tokens.labels(provider, model, "output"),
        )

    # --- the audit trail, read outside the request path ---------------------------------------

    def watch_audit(self, sink: Any) -> None:
        """Report `sink`'s queue depth and dropped rows (read at scrape time; in multiprocess mode
        also every second, so that the workers not answering the scrape are current too)."""
        self._audit = sink
        if self.multiprocess_dir:
            threading.Thread(target=self._sync_audit_forever, name="capsem-metrics-audit", daemon=True).start()

    def _sync_audit(self) -> None:
        sink = self._audit
        if sink is None:
            return
        with self._audit_lock:
            queue_depth = getattr(sink, "queue_depth", None)
            if queue_depth is not None:
                self._audit_queue.set(queue_depth())
            dropped = int(getattr(sink, "dropped", 0))
            if dropped > self._dropped_seen:
                self._audit_dropped.inc(dropped - self._dropped_seen)
                self._dropped_seen = dropped

    def _sync_audit_forever(self) -> None:
        while True:
            time.sleep(_AUDIT_SYNC_SECONDS)
            try:
                self._sync_audit()
            except Exception:  # a sink that fails to answer must not end the reporting for good
                logger.exception("reading the audit queue for metrics failed")

    # --- GET /metrics -------------------------------------------------------------------------

    def render(self) -> tuple[bytes, bytes]:
        """The Prometheus text exposition and its content type."""
        try:
            self._sync_audit()
        except Exception:  # the other metrics are still worth serving
            logger.exception("reading the audit queue for metrics failed")
        return generate_latest(self._scraped), _CONTENT_TYPE


def open_metrics(settings: Settings) -> Metrics | None:
    """The metrics, or None when `metrics.enabled` is false (then nothing is counted at all)."""
    return Metrics(settings) if settings.metrics.enabled else None
