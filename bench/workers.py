"""Scenario `workers`: throughput of `capsem-proxy run --workers 2` against `--workers 1` in the same run,
rounds interleaved, closed loop at concurrency 64 (saturation), non-streamed.

The proxy is unpinned, so two workers may use two cores. Its upstream is bench/canned.py (a recorded
answer written back by a server that parses next to nothing, pinned to the fake provider's core), so
that the upstream takes little of the cores the workers are measured on; the load generator sends
pre-encoded requests. Both still share the machine, so besides the raw speedup the scenario reports
what each part cost per request and what the machine allowed:

- proxy CPU per request, 2 workers ÷ 1: what a second worker costs the proxy itself (its own scaling);
- control: the upstream's and the load generator's CPU per request, which the number of workers does not
  change; when it grows with the workers as the proxy's does, the machine is what costs more;
- req/s the machine allows: min(workers cores, the cores left by other processes) spread over the
  CPU per request of proxy + upstream + load generator, so the speedup the machine allows is the
  most two workers could give here; the raw speedup is read against it (docs/deploy.md,
  "Workers or replicas").
"""

from __future__ import annotations

import os
import statistics
from typing import TYPE_CHECKING, Any

from bench.report import Row, Verdict

if TYPE_CHECKING:
    from bench.runner import Bench
    from bench.servers import Server

__all__ = ["WORKERS_TARGETS", "WORKER_COUNTS", "machine_bound_rps", "measure_workers", "rows_workers",
           "verdicts_workers"]

Raw = dict[str, Any]
ByTarget = dict[str, Raw]

WORKER_COUNTS = (1, 2)
WORKERS_TARGETS = tuple(f"workers-{count}" for count in WORKER_COUNTS)
SPEEDUP_GOAL = 1.8
# A second worker may cost the proxy this much more CPU per request and still give SPEEDUP_GOAL on two
# cores of its own (2 ÷ 1.1 ≈ 1.8).
CPU_PER_REQUEST_RATIO_LIMIT = 2 / SPEEDUP_GOAL
CONCURRENCY = 64


def measure_workers(bench: Bench, server: Server) -> Raw:
    """Closed-loop non-streamed throughput at concurrency 64, and the CPU it took."""
    p = bench.profile
    return {"c64": bench.load(server, concurrency=CONCURRENCY, warmup=CONCURRENCY * p.throughput_warmup_per_conn,
                              duration=p.throughput_seconds)}


def _rps(raw: Raw | None) -> float | None:
    value = (raw or {}).get("c64", {}).get("rps")
    return value if isinstance(value, int | float) else None


def _speedups(by: ByTarget) -> list[float]:
    """2 workers ÷ 1 worker, round by round (measured one after the other, so drifts mostly cancel)."""
    one, two = by.get("workers-1", {}).get("_rounds", []), by.get("workers-2", {}).get("_rounds", [])
    out = []
    for a, b in zip(one, two, strict=False):
        ra, rb = _rps(a), _rps(b)
        if ra and rb:
            out.append(rb / ra)
    return out


def _load(raw: Raw | None) -> Raw:
    return (raw or {}).get("c64") or {}


def _cpu_s(load: Raw, who: str) -> float | None:
    if who == "loadgen":
        return load.get("loadgen_cpu_s")
    if who == "other":
        window, other = load.get("cpu_window_s") or 0, load.get("other_cpu_s")
        # Other processes' CPU is sampled over the CPU window: scale it to the measured phase.
        return other * (load.get("elapsed_s") or 0) / window if other is not None and window else None
    return (load.get("cpu_s", {}).get(who) or {}).get("ticks")


def _busy(raw: Raw | None, who: str) -> float | None:
    """Cores `who` used while measuring, in % of one core."""
    load = _load(raw)
    elapsed = load.get("elapsed_s") or 0
    cpu = _cpu_s(load, who)
    return 100.0 * cpu / elapsed if cpu is not None and elapsed else None


def _cpu_per_request_us(raw: Raw | None, who: str = "server") -> float | None:
    load = _load(raw)
    cpu, answers = _cpu_s(load, who), load.get("ok") or 0
    return 1e6 * cpu / answers if cpu is not None and answers else None


def machine_bound_rps(raw: Raw | None, workers: int, cores: int) -> float | None:
    """The req/s this machine allows `workers` workers: each worker uses at most one core, and the
    proxy, its upstream and the load generator share the cores other processes left, at the CPU per
    request each was measured to use."""
    proxy, upstream, loadgen = (_cpu_per_request_us(raw, who) for who in ("server", "fake", "loadgen"))
    other = _busy(raw, "other")
    if proxy is None or upstream is None or loadgen is None or other is None:
        return None
    left = max(cores - other / 100.0, 0.0)
    return min(workers * 1e6 / proxy, left * 1e6 / (proxy + upstream + loadgen))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _bound_speedups(by: ByTarget) -> list[float]:
    """The speedup the machine allowed, round by round."""
    one, two = by.get("workers-1", {}).get("_rounds", []), by.get("workers-2", {}).get("_rounds", [])
    out = []
    for a, b in zip(one, two, strict=False):
        ra, rb = machine_bound_rps(a, 1, _cores()), machine_bound_rps(b, 2, _cores())
        if ra and rb:
            out.append(rb / ra)
    return out


def _sum(a: float | None, b: float | None) -> float | None:
    return a + b if a is not None and b is not None else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _cpu_ratio(by: ByTarget) -> float | None:
    one, two = _cpu_per_request_us(by.get("workers-1")), _cpu_per_request_us(by.get("workers-2"))
    return two / one if one and two else None


def rows_workers(by: ByTarget) -> list[Row]:
    section = (f"--workers 1 vs 2 (unpinned, closed loop, non-streamed, concurrency {CONCURRENCY}, "
               f"canned upstream, {_cores()} cores)")
    speedup, bound = _median(_speedups(by)), _median(_bound_speedups(by))
    who = (("server", "proxy (all workers)"), ("fake", "canned upstream"), ("loadgen", "load generator"))
    rows = [
        Row(section, "throughput", "req/s", {t: _rps(by.get(t)) for t in WORKERS_TARGETS},
            ("ratio", "workers-2", "workers-1"), 0, key="workers_rps_c64"),
        Row(section, "speedup, median of per-round ratios", "x", {"workers-2": speedup}, digits=2,
            key="workers_speedup"),
        Row(section, "req/s the machine allows (CPU per request, cores left)", "req/s",
            {t: machine_bound_rps(by.get(t), count, _cores()) for t, count in zip(WORKERS_TARGETS, WORKER_COUNTS,
                                                                                  strict=True)},
            digits=0, key="workers_bound_rps"),
        Row(section, "speedup the machine allows, median of rounds", "x", {"workers-2": bound}, digits=2,
            key="workers_bound_speedup"),
        Row(section, "speedup ÷ what the machine allows", "x",
            {"workers-2": speedup / bound if speedup and bound else None}, digits=2, key="workers_efficiency"),
    ]
    for name, label in who:
        rows.append(Row(section, f"{label} CPU per request", "µs/req",
                        {t: _cpu_per_request_us(by.get(t), name) for t in WORKERS_TARGETS},
                        ("ratio", "workers-2", "workers-1") if name == "server" else None, 0,
                        key=f"workers_{name}_cpu_us"))
    # The upstream's and the load generator's work per request does not depend on the workers: when it
    # costs more in one run than the other, the machine (more runnable processes than cores) does.
    control = {t: _sum(_cpu_per_request_us(by.get(t), "fake"), _cpu_per_request_us(by.get(t), "loadgen"))
               for t in WORKERS_TARGETS}
    rows.append(Row(section, "control: upstream + load generator CPU per request", "µs/req", control,
                    ("ratio", "workers-2", "workers-1"), 0, key="workers_control_cpu_us"))
    for name, label in (*who, ("other", "other processes")):
        rows.append(Row(section, f"{label} CPU busy", "% core", {t: _busy(by.get(t), name) for t in WORKERS_TARGETS},
                        digits=0, key=f"workers_{name}_busy"))
    return rows


def verdicts_workers(by: ByTarget) -> list[Verdict]:
    speedups = _speedups(by)
    if not speedups:
        return []
    speedup = statistics.median(speedups)
    detail = f"2 workers give {speedup:.2f}x one worker's req/s"
    if len(speedups) > 1:
        detail += f" (per round {min(speedups):.2f} to {max(speedups):.2f})"
    bound = _median(_bound_speedups(by))
    if bound:
        detail += f"; this machine allowed {bound:.2f}x"
    # Verdicts read lower as better: the check is on 1 ÷ speedup against 1 ÷ goal.
    out = [Verdict(f"1 worker ÷ 2 workers throughput (goal: 2 workers ≥ {SPEEDUP_GOAL}x)", 1 / speedup,
                   1 / SPEEDUP_GOAL, "", detail, extra={"speedup": speedup, "per_round": speedups, "bound": bound})]
    ratio = _cpu_ratio(by)
    if ratio is not None:
        out.append(Verdict("proxy CPU per request, 2 workers ÷ 1 (at most 2 ÷ 1.8: two cores of its own give 1.8x)",
                           ratio, CPU_PER_REQUEST_RATIO_LIMIT, "x",
                           f"{_cpu_per_request_us(by.get('workers-2')):.0f} vs "
                           f"{_cpu_per_request_us(by.get('workers-1')):.0f} µs/req"))
    return out
