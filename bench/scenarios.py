"""Benchmark scenarios.

A scenario measures while one target is up (``measure(bench, server) -> raw dict``) and, once
every target it needs has been measured, turns the raw numbers into table rows (``rows``) and
target checks (``verdicts``). To add one, write those functions and append a :class:`Scenario`
to :data:`SCENARIOS`; a scenario that needs another proxy configuration registers a target in
``bench.runner.TARGETS`` and names it in ``targets``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.procstat import rss_bytes
from bench.report import Row, Verdict

if TYPE_CHECKING:
    from bench.runner import Bench
    from bench.servers import Server

__all__ = ["SCENARIOS", "Scenario", "scenario_names"]

Raw = dict[str, Any]
ByTarget = dict[str, Raw]  # target name -> this scenario's raw results on it

MAIN_TARGETS = ("direct", "baseline", "proxy")
ADDED_P50_LIMIT_MS = 0.5
ADDED_TTFB_LIMIT_MS = 1.0
CPU_RATIO_LIMIT = 1.25


@dataclass(frozen=True, slots=True)
class Scenario:
    """How to measure one thing on each target, and how to report it."""

    name: str
    description: str
    measure: Callable[[Bench, Server], Raw]
    rows: Callable[[ByTarget], list[Row]]
    verdicts: Callable[[ByTarget], list[Verdict]] = lambda _: []
    targets: tuple[str, ...] = MAIN_TARGETS
    default: bool = True
    repeat: bool = True  # measured once per round (the runner keeps the median); False = once per run


def _get(by: ByTarget, target: str, *path: str) -> float | None:
    node: Any = by.get(target)
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, int | float) else None


def _values(by: ByTarget, *path: str, targets: tuple[str, ...] = MAIN_TARGETS) -> dict[str, float | None]:
    return {t: _get(by, t, *path) for t in targets}


def _added(values: dict[str, float | None], ref: str = "direct") -> dict[str, float | None]:
    base = values.get(ref)
    return {t: (v - base if v is not None and base is not None else None) for t, v in values.items() if t != ref}


# --- 1. latency at concurrency 1 ----------------------------------------------------------------


def _measure_latency(bench: Bench, server: Server) -> Raw:
    p = bench.profile
    return bench.load(server, concurrency=1, warmup=p.latency_warmup, requests=p.latency_requests)


def _rows_latency(by: ByTarget) -> list[Row]:
    section = "latency, concurrency 1, non-streamed chat completion"
    p50 = _values(by, "latency_ms", "p50")
    p99 = _values(by, "latency_ms", "p99")
    diff = ("diff", "proxy", "direct")
    return [
        Row(section, "p50", "ms", p50, diff, key="latency_p50_ms"),
        Row(section, "p99", "ms", p99, diff, key="latency_p99_ms"),
        Row(section, "added p50 over direct", "ms", _added(p50), key="added_p50_ms"),
        Row(section, "added p99 over direct", "ms", _added(p99), key="added_p99_ms"),
    ]


def _verdicts_latency(by: ByTarget) -> list[Verdict]:
    added = _added(_values(by, "latency_ms", "p50"))
    base = added.get("baseline")
    detail = f"baseline adds {base:.3f} ms" if base is not None else ""
    return [Verdict("added p50 latency (proxy - direct)", added.get("proxy"), ADDED_P50_LIMIT_MS, "ms", detail)]


# --- 2. throughput --------------------------------------------------------------------------------


def _measure_throughput(bench: Bench, server: Server) -> Raw:
    p = bench.profile
    out = {}
    for c in (16, 64):
        out[f"c{c}"] = bench.load(server, concurrency=c, warmup=c * p.throughput_warmup_per_conn,
                                  duration=p.throughput_seconds)
    return out


def _busy(by: ByTarget, target: str, level: str, who: str) -> float | None:
    raw = by.get(target, {}).get(level)
    if not raw:
        return None
    elapsed = raw.get("elapsed_s") or 0
    cpu = raw.get("loadgen_cpu_s") if who == "loadgen" else (raw.get("cpu_s", {}).get(who) or {}).get("ticks")
    return 100.0 * cpu / elapsed if cpu is not None and elapsed else None


def _rows_throughput(by: ByTarget) -> list[Row]:
    section = "throughput (closed loop, non-streamed)"
    ratio = ("ratio", "proxy", "baseline")
    rows = []
    for c in (16, 64):
        rows.append(Row(section, f"throughput at concurrency {c}", "req/s", _values(by, f"c{c}", "rps"), ratio, 0,
                        key=f"rps_c{c}"))
    rows.append(Row(section, "p50 latency at concurrency 64", "ms", _values(by, "c64", "latency_ms", "p50"),
                    ("diff", "proxy", "direct"), key="latency_c64_p50_ms"))
    rows.append(Row(section, "server CPU busy at c=64", "% core",
                    {t: _busy(by, t, "c64", "server") for t in MAIN_TARGETS}, digits=0, key="server_busy_c64"))
    rows.append(Row(section, "fake provider CPU busy at c=64", "% core",
                    {t: _busy(by, t, "c64", "fake") if t != "direct" else _busy(by, t, "c64", "server")
                     for t in MAIN_TARGETS}, digits=0, key="fake_busy_c64"))
    rows.append(Row(section, "load generator CPU busy at c=64", "% core",
                    {t: _busy(by, t, "c64", "loadgen") for t in MAIN_TARGETS}, digits=0, key="loadgen_busy_c64"))
    return rows


# --- 3. CPU per request -------------------------------------------------------------------------------


def _cpu_per_request(raw: Raw, who: str = "server") -> dict[str, float | None]:
    cpu = (raw.get("cpu_s") or {}).get(who) or {}
    n = raw.get("ok") or 0
    if not n or "ticks" not in cpu:
        return {"ticks_us": None, "schedstat_us": None}
    return {"ticks_us": 1e6 * cpu["ticks"] / n, "schedstat_us": 1e6 * cpu["schedstat"] / n}


def _measure_cpu(bench: Bench, server: Server) -> Raw:
    p = bench.profile
    out: Raw = {}
    for kind, stream, n in (("json", False, p.cpu_requests), ("stream", True, p.cpu_stream_requests)):
        raw = bench.load(server, concurrency=16, warmup=p.cpu_warmup, requests=n, stream=stream,
                         settle=p.cpu_settle)
        out[kind] = {"load": raw, "server": _cpu_per_request(raw), "fake": _cpu_per_request(raw, "fake")}
    return out


def _rows_cpu(by: ByTarget) -> list[Row]:
    section = "CPU per request of the server process (utime+stime, concurrency 16; direct = fake provider)"
    ratio = ("ratio", "proxy", "baseline")
    return [
        Row(section, "non-streamed", "µs/req", _values(by, "json", "server", "ticks_us"), ratio, 0,
            key="cpu_us_json"),
        Row(section, "stream, 20 text events", "µs/req", _values(by, "stream", "server", "ticks_us"), ratio, 0,
            key="cpu_us_stream"),
        Row(section, "non-streamed (schedstat cross-check)", "µs/req",
            _values(by, "json", "server", "schedstat_us"), ratio, 0, key="cpu_us_json_schedstat"),
        Row(section, "stream (schedstat cross-check)", "µs/req",
            _values(by, "stream", "server", "schedstat_us"), ratio, 0, key="cpu_us_stream_schedstat"),
    ]


def _spread(by: ByTarget, target: str, kind: str) -> str:
    """Per-round CPU per request of ``target`` as "min-max" (empty with one round)."""
    values = [r[kind]["server"]["ticks_us"] for r in by.get(target, {}).get("_rounds", [])
              if r.get(kind, {}).get("server", {}).get("ticks_us") is not None]
    return f"{min(values):.0f}-{max(values):.0f}" if len(values) > 1 else ""


def _verdicts_cpu(by: ByTarget) -> list[Verdict]:
    out = []
    for kind, label in (("json", "non-streamed"), ("stream", "20-event stream")):
        proxy = _get(by, "proxy", kind, "server", "ticks_us")
        base = _get(by, "baseline", kind, "server", "ticks_us")
        ratio = proxy / base if proxy is not None and base else None
        detail = f"median {proxy:.0f} vs {base:.0f} µs/req" if ratio is not None else ""
        spreads = [_spread(by, t, kind) for t in ("proxy", "baseline")]
        if ratio is not None and all(spreads):
            detail += f"; per round proxy {spreads[0]}, baseline {spreads[1]}"
        out.append(Verdict(f"CPU per request proxy ÷ baseline, {label}", ratio, CPU_RATIO_LIMIT, "x", detail))
    return out


# --- 4. streaming time to first byte ---------------------------------------------------------------


def _measure_ttfb(bench: Bench, server: Server) -> Raw:
    p = bench.profile
    return bench.load(server, concurrency=1, warmup=p.ttfb_warmup, requests=p.ttfb_requests, stream=True)


def _rows_ttfb(by: ByTarget) -> list[Row]:
    section = "streaming, concurrency 1, 20 text events"
    ttfb = _values(by, "ttfb_ms", "p50")
    diff = ("diff", "proxy", "direct")
    return [
        Row(section, "time to first body byte p50", "ms", ttfb, diff, key="ttfb_p50_ms"),
        Row(section, "added TTFB over direct", "ms", _added(ttfb), key="added_ttfb_ms"),
        Row(section, "time to last byte p50", "ms", _values(by, "latency_ms", "p50"), diff, key="stream_p50_ms"),
    ]


def _verdicts_ttfb(by: ByTarget) -> list[Verdict]:
    added = _added(_values(by, "ttfb_ms", "p50"))
    base = added.get("baseline")
    detail = f"baseline adds {base:.3f} ms" if base is not None else ""
    return [Verdict("added TTFB p50 (proxy - direct)", added.get("proxy"), ADDED_TTFB_LIMIT_MS, "ms", detail)]


# --- 5. memory ---------------------------------------------------------------------------------------


def _measure_memory(bench: Bench, server: Server) -> Raw:
    rss = rss_bytes(server.pid)
    return {"rss_bytes": rss, "rss_mib": rss / 2**20}


def _rows_memory(by: ByTarget) -> list[Row]:
    return [Row("memory after the load", "RSS (VmRSS; direct = fake provider)", "MiB", _values(by, "rss_mib"),
                ("ratio", "proxy", "baseline"), 1, key="rss_mib")]


# --- optional: aiohttp vs httpx as the upstream client of the pass-through --------------------------

CLIENT_TARGETS = ("baseline", "baseline-httpx")


def _measure_clients(bench: Bench, server: Server) -> Raw:
    p = bench.profile
    out: Raw = {}
    # httpx manages ~500 req/s here: keep the counts small enough for a run of about a minute.
    counts = (("json", False, min(p.cpu_requests, 4000)), ("stream", True, min(p.cpu_stream_requests, 2000)))
    for kind, stream, n in counts:
        raw = bench.load(server, concurrency=64, warmup=max(p.cpu_warmup, 640), requests=n, stream=stream,
                         settle=p.cpu_settle)
        out[kind] = {"load": raw, "server": _cpu_per_request(raw)}
    return out


def _rows_clients(by: ByTarget) -> list[Row]:
    section = "pass-through upstream client: aiohttp (baseline) vs httpx, concurrency 64"
    ratio = ("ratio", "baseline-httpx", "baseline")
    return [
        Row(section, "CPU non-streamed", "µs/req", _values(by, "json", "server", "ticks_us", targets=CLIENT_TARGETS),
            ratio, 0, key="clients_cpu_json"),
        Row(section, "CPU stream, 20 events", "µs/req",
            _values(by, "stream", "server", "ticks_us", targets=CLIENT_TARGETS), ratio, 0, key="clients_cpu_stream"),
        Row(section, "req/s non-streamed", "req/s", _values(by, "json", "load", "rps", targets=CLIENT_TARGETS),
            ratio, 0, key="clients_rps_json"),
        Row(section, "p50 latency non-streamed", "ms",
            _values(by, "json", "load", "latency_ms", "p50", targets=CLIENT_TARGETS), ratio, key="clients_p50_json"),
    ]


SCENARIOS: list[Scenario] = [
    Scenario("latency", "non-streamed latency at concurrency 1", _measure_latency, _rows_latency,
             _verdicts_latency),
    Scenario("ttfb", "streaming time to first byte at concurrency 1", _measure_ttfb, _rows_ttfb, _verdicts_ttfb),
    Scenario("throughput", "req/s at concurrency 16 and 64", _measure_throughput, _rows_throughput),
    Scenario("cpu", "server CPU per request at concurrency 16", _measure_cpu, _rows_cpu, _verdicts_cpu),
    Scenario("memory", "RSS after the load (keep last)", _measure_memory, _rows_memory, repeat=False),
    Scenario("clients", "aiohttp vs httpx in the pass-through at concurrency 64", _measure_clients, _rows_clients,
             targets=CLIENT_TARGETS, default=False),
]

# Rows are shown in this order (measurement order above keeps RSS last).
REPORT_ORDER = ("latency", "ttfb", "throughput", "cpu", "memory", "clients")


def scenario_names() -> list[str]:
    """Every registered scenario name."""
    return [s.name for s in SCENARIOS]
