"""Benchmark scenarios.

A scenario measures while one target is up (``measure(bench, server) -> raw dict``) and, once
every target it needs has been measured, turns the raw numbers into table rows (``rows``) and
target checks (``verdicts``). To add one, write those functions and append a :class:`Scenario`
to :data:`SCENARIOS`; a scenario that needs another proxy configuration registers a target in
``bench.runner.TARGETS`` and names it in ``targets``. Scenarios with other targets than the
main three set ``table`` so that they get a table (and columns) of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.gateway import GATEWAY_TARGETS, measure_gateway, rows_gateway, verdicts_gateway
from bench.observability import (
    OBSERVABILITY_TARGETS,
    measure_observability,
    rows_observability,
    verdicts_observability,
)
from bench.procstat import rss_bytes
from bench.providers import PROVIDER_TARGETS, measure_providers, rows_providers, verdicts_providers
from bench.report import Row, Verdict, paired_ratio, round_ratios
from bench.routing import ROUTING_TARGETS, measure_routing, rows_routing, verdicts_routing
from bench.workers import WORKERS_TARGETS, measure_workers, rows_workers, verdicts_workers

if TYPE_CHECKING:
    from bench.runner import Bench
    from bench.servers import Server

__all__ = ["GUARD_MODES", "POLICY_COUNTS", "SCENARIOS", "Scenario", "scenario_names"]

Raw = dict[str, Any]
ByTarget = dict[str, Raw]  # target name -> this scenario's raw results on it

MAIN_TARGETS = ("direct", "baseline", "proxy")
ADDED_P50_LIMIT_MS = 0.5
ADDED_TTFB_LIMIT_MS = 1.0
CPU_RATIO_LIMIT = 1.25
GUARD_ADDED_TTFB_LIMIT_MS = 2.0
POLICY_CPU_LIMIT_US = 20.0

GUARD_MODES = ("pass", "guard", "buffer")  # targets proxy-<mode> (bench.runner.guard_config)
POLICY_COUNTS = (0, 1, 5, 20)  # targets policies-<n> (bench.runner.policies_config)


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
    table: str = "main"  # scenarios with the same table are printed together, one column per target


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
        # The median of per-round ratios (see `round_ratios`), the ratio of medians without rounds.
        ratio, spread = paired_ratio(round_ratios(
            by.get("proxy", {}).get("_rounds", []), by.get("baseline", {}).get("_rounds", []),
            lambda item, kind=kind: (item.get(kind) or {}).get("server", {}).get("ticks_us")), proxy, base)
        detail = f"median {proxy:.0f} vs {base:.0f} µs/req" if proxy is not None and base else ""
        spreads = [_spread(by, t, kind) for t in ("proxy", "baseline")]
        if detail and all(spreads):
            detail += f"; per round proxy {spreads[0]}, baseline {spreads[1]}, ratio {spread}"
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


# --- optional: streaming modes (pass / guard / buffer) with one answer-reading policy ---------------

GUARD_TARGETS = ("direct", *(f"proxy-{mode}" for mode in GUARD_MODES))


def _measure_guard(bench: Bench, server: Server) -> Raw:
    p = bench.profile
    out: Raw = {"c1": bench.load(server, concurrency=1, warmup=p.ttfb_warmup, requests=p.ttfb_requests, stream=True,
                                 text_ttfb=True)}
    raw = bench.load(server, concurrency=16, warmup=p.cpu_warmup, requests=p.cpu_stream_requests, stream=True,
                     settle=p.cpu_settle)
    out["c16"] = {"load": raw, "server": _cpu_per_request(raw)}
    return out


def _over(values: dict[str, float | None], ref: str, targets: tuple[str, ...], scale: float = 1.0
          ) -> dict[str, float | None]:
    """``(values[t] - values[ref]) * scale`` for each of ``targets``."""
    base = values.get(ref)
    return {t: ((v - base) * scale if (v := values.get(t)) is not None and base is not None else None)
            for t in targets}


def _rows_guard(by: ByTarget) -> list[Row]:
    section = "streaming modes, one answer-reading policy, 20 text events (direct = fake provider)"
    t = GUARD_TARGETS
    diff = ("diff", "proxy-guard", "proxy-pass")
    ttfb = _values(by, "c1", "ttfb_ms", "p50", targets=t)
    text = _values(by, "c1", "text_ttfb_ms", "p50", targets=t)
    last = _values(by, "c1", "latency_ms", "p50", targets=t)
    later = ("proxy-guard", "proxy-buffer")
    return [
        Row(section, "time to first body byte p50, c=1", "ms", ttfb, diff, key="guard_ttfb_p50_ms"),
        Row(section, "time to first text byte p50, c=1", "ms", text, diff, key="guard_text_ttfb_p50_ms"),
        Row(section, "time to last byte p50, c=1", "ms", last, diff, key="guard_last_byte_p50_ms"),
        Row(section, "added TTFB over pass", "ms", _over(ttfb, "proxy-pass", later), key="guard_added_ttfb_ms"),
        Row(section, "added first text byte over pass", "ms", _over(text, "proxy-pass", later),
            key="guard_added_text_ttfb_ms"),
        Row(section, "added last byte over pass", "ms", _over(last, "proxy-pass", later),
            key="guard_added_last_byte_ms"),
        Row(section, "CPU per stream, c=16", "µs/req", _values(by, "c16", "server", "ticks_us", targets=t),
            ("ratio", "proxy-guard", "proxy-pass"), 0, key="guard_cpu_us_stream"),
        Row(section, "CPU per stream, c=16 (schedstat cross-check)", "µs/req",
            _values(by, "c16", "server", "schedstat_us", targets=t), ("ratio", "proxy-guard", "proxy-pass"), 0,
            key="guard_cpu_us_stream_schedstat"),
    ]


def _verdicts_guard(by: ByTarget) -> list[Verdict]:
    ttfb = _values(by, "c1", "ttfb_ms", "p50", targets=GUARD_TARGETS)
    added = _over(ttfb, "proxy-pass", ("proxy-guard", "proxy-buffer"))
    text = _values(by, "c1", "text_ttfb_ms", "p50", targets=GUARD_TARGETS)
    parts = []
    if added["proxy-buffer"] is not None:
        parts.append(f"buffer adds {added['proxy-buffer']:.3f} ms")
    if text["proxy-pass"] is not None and text["proxy-guard"] is not None:
        parts.append(f"first text byte: pass {text['proxy-pass']:.3f}, guard {text['proxy-guard']:.3f} ms")
    return [Verdict("guard adds TTFB over pass (p50, 20-event stream)", added["proxy-guard"],
                    GUARD_ADDED_TTFB_LIMIT_MS, "ms", "; ".join(parts))]


# --- optional: cost of trivial policies ---------------------------------------------------------------

POLICY_TARGETS = tuple(f"policies-{n}" for n in POLICY_COUNTS)


def _measure_policies(bench: Bench, server: Server) -> Raw:
    p = bench.profile
    out: Raw = {"c1": bench.load(server, concurrency=1, warmup=p.latency_warmup, requests=p.latency_requests)}
    raw = bench.load(server, concurrency=16, warmup=p.cpu_warmup, requests=p.cpu_requests, settle=p.cpu_settle)
    out["c16"] = {"load": raw, "server": _cpu_per_request(raw)}
    return out


def _per_policy(values: dict[str, float | None], scale: float = 1.0) -> dict[str, float | None]:
    """Slope from 0 policies to each N > 0: ``(values[N] - values[0]) * scale / N``."""
    base = values.get("policies-0")
    out: dict[str, float | None] = {}
    for n in POLICY_COUNTS[1:]:
        v = values.get(f"policies-{n}")
        out[f"policies-{n}"] = (v - base) * scale / n if v is not None and base is not None else None
    return out


def _rows_policies(by: ByTarget) -> list[Row]:
    section = "trivial on_model_call policies (column = number of policies), non-streamed"
    t = POLICY_TARGETS
    last = POLICY_TARGETS[-1]
    latency = _values(by, "c1", "latency_ms", "p50", targets=t)
    cpu = _values(by, "c16", "server", "ticks_us", targets=t)
    return [
        Row(section, "latency p50, c=1", "ms", latency, ("diff", last, "policies-0"), key="policies_latency_p50_ms"),
        Row(section, "latency p99, c=1", "ms", _values(by, "c1", "latency_ms", "p99", targets=t),
            ("diff", last, "policies-0"), key="policies_latency_p99_ms"),
        Row(section, "CPU per request, c=16", "µs/req", cpu, ("ratio", last, "policies-0"), 0,
            key="policies_cpu_us_json"),
        Row(section, "CPU per request, c=16 (schedstat cross-check)", "µs/req",
            _values(by, "c16", "server", "schedstat_us", targets=t), ("ratio", last, "policies-0"), 0,
            key="policies_cpu_us_json_schedstat"),
        Row(section, "CPU added per policy (slope 0→N)", "µs", _per_policy(cpu), digits=1,
            key="policies_cpu_us_per_policy"),
        Row(section, "latency p50 added per policy (slope 0→N)", "µs", _per_policy(latency, 1000.0), digits=1,
            key="policies_latency_us_per_policy"),
    ]


def _round_slopes(by: ByTarget, n: int) -> list[float]:
    """The 0→n CPU slope of each round (rounds measure every target, so index i pairs them)."""
    zero = by.get("policies-0", {}).get("_rounds", [])
    many = by.get(f"policies-{n}", {}).get("_rounds", [])
    out = []
    for a, b in zip(zero, many, strict=False):
        ca, cb = a["c16"]["server"]["ticks_us"], b["c16"]["server"]["ticks_us"]
        if ca is not None and cb is not None:
            out.append((cb - ca) / n)
    return out


def _verdicts_policies(by: ByTarget) -> list[Verdict]:
    n = POLICY_COUNTS[-1]
    cpu = _values(by, "c16", "server", "ticks_us", targets=POLICY_TARGETS)
    slopes = _per_policy(cpu)
    parts = [f"0→{k}: {v:.1f} µs" for k in POLICY_COUNTS[1:-1] if (v := slopes[f"policies-{k}"]) is not None]
    one, many = cpu.get("policies-1"), cpu.get(f"policies-{n}")
    if one is not None and many is not None:
        parts.append(f"1→{n}: {(many - one) / (n - 1):.1f} µs")
    per_round = _round_slopes(by, n)
    if len(per_round) > 1:
        parts.append(f"per round 0→{n}: {min(per_round):.1f} to {max(per_round):.1f} µs")
    return [Verdict(f"CPU added per trivial policy (slope 0→{n} policies, c=16)", slopes[f"policies-{n}"],
                    POLICY_CPU_LIMIT_US, "µs", "; ".join(parts))]


SCENARIOS: list[Scenario] = [
    Scenario("latency", "non-streamed latency at concurrency 1", _measure_latency, _rows_latency,
             _verdicts_latency),
    Scenario("ttfb", "streaming time to first byte at concurrency 1", _measure_ttfb, _rows_ttfb, _verdicts_ttfb),
    Scenario("throughput", "req/s at concurrency 16 and 64", _measure_throughput, _rows_throughput),
    Scenario("cpu", "server CPU per request at concurrency 16", _measure_cpu, _rows_cpu, _verdicts_cpu),
    Scenario("memory", "RSS after the load (keep last)", _measure_memory, _rows_memory, repeat=False),
    Scenario("clients", "aiohttp vs httpx in the pass-through at concurrency 64", _measure_clients, _rows_clients,
             targets=CLIENT_TARGETS, default=False),
    Scenario("guard", "streaming modes pass / guard / buffer with one answer-reading policy", _measure_guard,
             _rows_guard, _verdicts_guard, targets=GUARD_TARGETS, default=False, table="guard"),
    Scenario("policies", "0, 1, 5 and 20 trivial policies, non-streamed", _measure_policies, _rows_policies,
             _verdicts_policies, targets=POLICY_TARGETS, default=False, table="policies"),
    Scenario("providers", "CPU per request per provider stream, default config and with the four text detectors",
             measure_providers, rows_providers, verdicts_providers, targets=PROVIDER_TARGETS, default=False,
             table="providers"),
    Scenario("observability", "audit (SQLite) + metrics on vs both off, CPU per request", measure_observability,
             rows_observability, verdicts_observability, targets=OBSERVABILITY_TARGETS, default=False,
             table="observability"),
    Scenario("gateway", "gateway key + Redis limit on vs off, CPU per request", measure_gateway, rows_gateway,
             verdicts_gateway, targets=GATEWAY_TARGETS, default=False, table="gateway"),
    Scenario("workers", "--workers 1 vs 2, throughput at concurrency 64", measure_workers, rows_workers,
             verdicts_workers, targets=WORKERS_TARGETS, default=False, table="workers"),
    Scenario("routing", "plain route vs a two-upstream chain vs a request translated to Anthropic, CPU per request",
             measure_routing, rows_routing, verdicts_routing, targets=ROUTING_TARGETS, default=False,
             table="routing"),
]

# Rows are shown in this order (measurement order above keeps RSS last).
REPORT_ORDER = (
    "latency", "ttfb", "throughput", "cpu", "memory", "clients", "guard", "policies", "providers", "observability",
    "workers", "gateway", "routing",
)


def scenario_names() -> list[str]:
    """Every registered scenario name."""
    return [s.name for s in SCENARIOS]
