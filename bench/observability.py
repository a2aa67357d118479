"""Scenario `observability`: what the audit trail (SQLite) and the Prometheus metrics cost in proxy
CPU per request, measured against both off (`audit.url: memory://`, `metrics.enabled: false`) in
the same run, rounds interleaved like every other scenario."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from bench.report import Row, Verdict

if TYPE_CHECKING:
    from bench.runner import Bench
    from bench.servers import Server

__all__ = [
    "OBSERVABILITY_CONFIGS",
    "OBSERVABILITY_TARGETS",
    "measure_observability",
    "rows_observability",
    "verdicts_observability",
]

Raw = dict[str, Any]
ByTarget = dict[str, Raw]

ON, METRICS_ONLY, OFF = "observability-on", "observability-metrics", "observability-off"
# Target name -> capsem-proxy configuration (over its defaults: DebugPolicy, access log off). The
# metrics-only target splits the difference between the audit trail and the metrics.
OBSERVABILITY_CONFIGS: dict[str, dict[str, Any]] = {
    ON: {"audit": {"url": "sqlite:///./capsem-data/audit.db"}, "metrics": {"enabled": True}},
    METRICS_ONLY: {"audit": {"url": "memory://"}, "metrics": {"enabled": True}},
    OFF: {"audit": {"url": "memory://"}, "metrics": {"enabled": False}},
}
OBSERVABILITY_TARGETS = (ON, METRICS_ONLY, OFF)
ADDED_CPU_LIMIT_US = 50.0
_KINDS = (("json", "non-streamed"), ("stream", "stream, 20 text events"))


def _cpu_per_request(raw: Raw) -> dict[str, float | None]:
    cpu = (raw.get("cpu_s") or {}).get("server") or {}
    answers = raw.get("ok") or 0
    if not answers or "ticks" not in cpu:
        return {"ticks_us": None, "schedstat_us": None}
    return {"ticks_us": 1e6 * cpu["ticks"] / answers, "schedstat_us": 1e6 * cpu["schedstat"] / answers}


def measure_observability(bench: Bench, server: Server) -> Raw:
    """CPU of the proxy per request at concurrency 16, non-streamed and streamed; the window ends
    after the audit rows of the last requests were written (the load generator's settle time)."""
    p = bench.profile
    out: Raw = {}
    for kind, stream, requests in (("json", False, p.cpu_requests), ("stream", True, p.cpu_stream_requests)):
        raw = bench.load(server, concurrency=16, warmup=p.cpu_warmup, requests=requests, stream=stream,
                         settle=p.cpu_settle)
        out[kind] = {"load": raw, "server": _cpu_per_request(raw)}
    return out


def _value(by: ByTarget, target: str, kind: str, counter: str = "ticks_us") -> float | None:
    value = by.get(target, {}).get(kind, {}).get("server", {}).get(counter)
    return value if isinstance(value, int | float) else None


def _round_differences(by: ByTarget, kind: str, target: str = ON) -> list[float]:
    """`target` - OFF of each round: measured one after the other, so their drifts mostly cancel."""
    on_rounds, off_rounds = by.get(target, {}).get("_rounds", []), by.get(OFF, {}).get("_rounds", [])
    out = []
    for on, off in zip(on_rounds, off_rounds, strict=False):
        a, b = on[kind]["server"]["ticks_us"], off[kind]["server"]["ticks_us"]
        if a is not None and b is not None:
            out.append(a - b)
    return out


def _added(by: ByTarget, kind: str, target: str = ON) -> float | None:
    differences = _round_differences(by, kind, target)
    return statistics.median(differences) if differences else None


def rows_observability(by: ByTarget) -> list[Row]:
    section = "audit (SQLite) + metrics on, metrics only, both off: proxy CPU per request, concurrency 16"
    rows = []
    for kind, label in _KINDS:
        for counter, suffix in (("ticks_us", ""), ("schedstat_us", " (schedstat cross-check)")):
            rows.append(Row(section, f"{label}{suffix}", "µs/req",
                            {t: _value(by, t, kind, counter) for t in OBSERVABILITY_TARGETS}, ("diff", ON, OFF), 0,
                            key=f"observability_cpu_us_{kind}{'_schedstat' if suffix else ''}"))
        rows.append(Row(section, f"added over both off, {label} (median of per-round differences)", "µs/req",
                        {t: _added(by, kind, t) for t in (ON, METRICS_ONLY)}, digits=1,
                        key=f"observability_added_us_{kind}"))
    return rows


def verdicts_observability(by: ByTarget) -> list[Verdict]:
    out = []
    for kind, label in _KINDS:
        differences = _round_differences(by, kind)
        detail = ""
        on, off = _value(by, ON, kind), _value(by, OFF, kind)
        if on is not None and off is not None:
            detail = f"median {on:.0f} vs {off:.0f} µs/req"
        if len(differences) > 1:
            detail += f"; per round {min(differences):+.0f} to {max(differences):+.0f} µs"
        metrics_only = _added(by, kind, METRICS_ONLY)
        if metrics_only is not None:
            detail += f"; metrics alone {metrics_only:+.1f} µs"
        out.append(Verdict(f"CPU added by audit + metrics, {label}", _added(by, kind), ADDED_CPU_LIMIT_US, "µs",
                           detail))
    return out
