"""Scenario `workers`: throughput of `capsem-proxy run --workers 2` against `--workers 1` in the same run,
rounds interleaved. Neither is pinned, so two workers may use two cores; the fake provider and the load
generator run on the same machine, so on a two-core machine they compete with the workers for CPU and
the speedup says more about the machine than about the proxy (docs/deploy.md, "Workers or replicas")."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from bench.report import Row, Verdict

if TYPE_CHECKING:
    from bench.runner import Bench
    from bench.servers import Server

__all__ = ["WORKERS_TARGETS", "WORKER_COUNTS", "measure_workers", "rows_workers", "verdicts_workers"]

Raw = dict[str, Any]
ByTarget = dict[str, Raw]

WORKER_COUNTS = (1, 2)
WORKERS_TARGETS = tuple(f"workers-{count}" for count in WORKER_COUNTS)
SPEEDUP_GOAL = 1.8
CONCURRENCY = 64


def measure_workers(bench: Bench, server: Server) -> Raw:
    """Closed-loop non-streamed throughput at concurrency 64, and the CPU it took."""
    p = bench.profile
    return {"c64": bench.load(server, concurrency=CONCURRENCY, warmup=CONCURRENCY * p.throughput_warmup_per_conn,
                              duration=p.throughput_seconds)}


def _rps(raw: Raw | None) -> float | None:
    value = (raw or {}).get("c64", {}).get("rps")
    return value if isinstance(value, int | float) else None


def _busy(raw: Raw | None, who: str) -> float | None:
    load = (raw or {}).get("c64") or {}
    elapsed = load.get("elapsed_s") or 0
    cpu = load.get("loadgen_cpu_s") if who == "loadgen" else (load.get("cpu_s", {}).get(who) or {}).get("ticks")
    return 100.0 * cpu / elapsed if cpu is not None and elapsed else None


def _speedups(by: ByTarget) -> list[float]:
    """2 workers ÷ 1 worker, round by round (measured one after the other, so drifts mostly cancel)."""
    one, two = by.get("workers-1", {}).get("_rounds", []), by.get("workers-2", {}).get("_rounds", [])
    out = []
    for a, b in zip(one, two, strict=False):
        ra, rb = _rps(a), _rps(b)
        if ra and rb:
            out.append(rb / ra)
    return out


def _cpu_per_request_us(raw: Raw | None) -> float | None:
    load = (raw or {}).get("c64") or {}
    ticks = (load.get("cpu_s", {}).get("server") or {}).get("ticks")
    answers = load.get("ok") or 0
    return 1e6 * ticks / answers if ticks is not None and answers else None


def rows_workers(by: ByTarget) -> list[Row]:
    section = f"--workers 1 vs 2 (unpinned, closed loop, non-streamed, concurrency {CONCURRENCY})"
    speedups = _speedups(by)
    return [
        Row(section, "throughput", "req/s", {t: _rps(by.get(t)) for t in WORKERS_TARGETS},
            ("ratio", "workers-2", "workers-1"), 0, key="workers_rps_c64"),
        Row(section, "speedup, median of per-round ratios", "x",
            {"workers-2": statistics.median(speedups) if speedups else None}, digits=2, key="workers_speedup"),
        Row(section, "proxy CPU busy (all workers)", "% core", {t: _busy(by.get(t), "server") for t in WORKERS_TARGETS},
            digits=0, key="workers_server_busy"),
        Row(section, "fake provider CPU busy", "% core", {t: _busy(by.get(t), "fake") for t in WORKERS_TARGETS},
            digits=0, key="workers_fake_busy"),
        Row(section, "load generator CPU busy", "% core", {t: _busy(by.get(t), "loadgen") for t in WORKERS_TARGETS},
            digits=0, key="workers_loadgen_busy"),
        Row(section, "proxy CPU per request", "µs/req", {t: _cpu_per_request_us(by.get(t)) for t in WORKERS_TARGETS},
            digits=0, key="workers_cpu_us"),
    ]


def verdicts_workers(by: ByTarget) -> list[Verdict]:
    speedups = _speedups(by)
    if not speedups:
        return []
    speedup = statistics.median(speedups)
    detail = f"2 workers give {speedup:.2f}x one worker's req/s"
    if len(speedups) > 1:
        detail += f" (per round {min(speedups):.2f} to {max(speedups):.2f})"
    # Verdicts read lower as better: the check is on 1 ÷ speedup against 1 ÷ goal.
    return [Verdict(f"1 worker ÷ 2 workers throughput (goal: 2 workers ≥ {SPEEDUP_GOAL}x)", 1 / speedup,
                    1 / SPEEDUP_GOAL, "", detail, extra={"speedup": speedup, "per_round": speedups})]
