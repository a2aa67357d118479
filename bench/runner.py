"""`python -m bench`: start the servers, run the scenarios against each target, print and save the results."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.gateway import GATEWAY_CONFIGS, GATEWAY_ENV, prepare_gateway
from bench.observability import OBSERVABILITY_CONFIGS
from bench.providers import RequestKind, detectors_config
from bench.report import Row, Verdict, render_table, render_verdicts, write_json
from bench.routing import ROUTING_STARTERS
from bench.scenarios import GUARD_MODES, POLICY_COUNTS, REPORT_ORDER, SCENARIOS, Scenario, scenario_names
from bench.servers import (
    REPO_ROOT,
    CpuPlan,
    Server,
    pinned,
    start_canned,
    start_capsem_proxy,
    start_fake,
    start_passthrough,
)
from bench.workers import WORKER_COUNTS

__all__ = ["TARGETS", "Bench", "Profile", "main"]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
API_KEY = "sk-bench"
PATH = "/v1/chat/completions"
STREAM_EVENTS = 20
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "Write one sentence about the sea, for a benchmark."},
]
JSON_BODY = orjson.dumps({"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0.2, "max_tokens": 64})
STREAM_BODY = orjson.dumps(
    {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0.2, "max_tokens": 256, "stream": True}
)
STREAM_SCENARIO = orjson.dumps({"events": STREAM_EVENTS}).decode()


@dataclass(frozen=True, slots=True)
class Profile:
    """Request counts and durations of one round; each number is per target and per round."""

    rounds: int
    latency_warmup: int
    latency_requests: int
    ttfb_warmup: int
    ttfb_requests: int
    throughput_warmup_per_conn: int
    throughput_seconds: float
    cpu_warmup: int
    cpu_requests: int
    cpu_stream_requests: int
    cpu_settle: float


FULL = Profile(3, 200, 2000, 100, 1000, 20, 3.0, 300, 12000, 5000, 0.6)
QUICK = Profile(1, 100, 600, 50, 300, 10, 1.5, 200, 4000, 1500, 0.6)


class Bench:
    """Shared state of a run: the profile, the CPU plan, the fake provider and the load-generator launcher."""

    def __init__(self, profile: Profile, plan: CpuPlan, workdir: Path, *, proxy_workers: int = 1,
                 verbose: bool = True) -> None:
        self.profile = profile
        self.plan = plan
        self.workdir = workdir
        self.proxy_workers = proxy_workers
        self.verbose = verbose
        self.fake: Server | None = None
        self.errors: dict[str, int] = {}
        self.other_cpu: dict[str, list[float]] = {}  # target -> [other processes' CPU s, window s]

    def say(self, text: str) -> None:
        if self.verbose:
            print(text, file=sys.stderr, flush=True)

    def load(self, server: Server, *, concurrency: int, warmup: int, requests: int | None = None,
             duration: float | None = None, stream: bool = False, settle: float = 0.0,
             text_ttfb: bool = False, kind: RequestKind | None = None) -> dict[str, Any]:
        """Run the load generator (its own process) against ``server``; return its JSON result.

        ``text_ttfb`` (streams): also time the first byte of answer text (``text_ttfb_ms``).
        ``kind``: another request than the OpenAI chat completion (``stream`` is then the kind's).
        """
        assert self.fake is not None
        command = [
            sys.executable, "-m", "bench.loadgen", "--url", server.base_url,
            "--concurrency", str(concurrency), "--warmup", str(warmup),
            "--cpu-pid", f"server={server.pid}",
        ]
        if kind is not None:
            command += kind.loadgen_args()
            stream = kind.stream
        else:
            command += ["--path", PATH, "--body", (STREAM_BODY if stream else JSON_BODY).decode(),
                        "--header", f"Authorization: Bearer {server.api_key or API_KEY}"]
            if stream:
                command += ["--stream", "--header", f"x-fake-scenario: {STREAM_SCENARIO}"]
        upstream_pid = server.upstream_pid or self.fake.pid
        if server.pid != upstream_pid:
            command += ["--cpu-pid", f"fake={upstream_pid}"]
        if settle:
            command += ["--settle", str(settle)]
        if text_ttfb:
            command += ["--text-ttfb"]
        command += ["--requests", str(requests)] if requests is not None else ["--duration", str(duration)]
        label = kind.label if kind is not None else ("stream" if stream else "json")
        what = f"{server.name}: c={concurrency} {label} " + (
            f"{requests} requests" if requests is not None else f"{duration:g} s")
        self.say(f"  {what}")
        budget = 120 + (duration or 0) + (requests or 0) / 100
        done = subprocess.run(pinned(command, self.plan.loadgen), cwd=REPO_ROOT, capture_output=True,
                              timeout=budget, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"load generator failed ({what}):\n{done.stderr.decode(errors='replace')}")
        result = orjson.loads(done.stdout)
        noise = self.other_cpu.setdefault(server.name, [0.0, 0.0])
        noise[0] += result["other_cpu_s"]
        noise[1] += result["cpu_window_s"]
        if result["other_cpu_s"] > 0.1 * result["cpu_window_s"]:
            self.say(f"  ! other processes used {100 * result['other_cpu_s'] / result['cpu_window_s']:.0f}% "
                     "of a core during this run: the machine is busy, numbers are noisy")
        if result["errors"]:
            self.errors[server.name] = self.errors.get(server.name, 0) + result["errors"]
            self.say(f"  ! {result['errors']} failed answers: {result['error_kinds']}")
        return result


# --- targets -----------------------------------------------------------------------------------------


def _start_direct(bench: Bench) -> Server:
    assert bench.fake is not None
    return bench.fake


def _start_baseline(bench: Bench) -> Server:
    assert bench.fake is not None
    return start_passthrough(bench.fake.base_url, bench.plan.server, bench.workdir)


def _start_baseline_httpx(bench: Bench) -> Server:
    assert bench.fake is not None
    return start_passthrough(bench.fake.base_url, bench.plan.server, bench.workdir, "httpx", "baseline-httpx")


def _start_proxy(bench: Bench) -> Server:
    assert bench.fake is not None
    return start_capsem_proxy(bench.fake.base_url, bench.plan.server, workers=bench.proxy_workers)


def guard_config(mode: str) -> dict[str, Any]:
    """One policy that reads the answer text (so streams are decoded and guarded), in ``mode``."""
    return {"policies": [{"class": "bench.policies.AnswerReader"}],
            "streaming": {"mode": mode, "holdback_chars": 256}}


def policies_config(count: int) -> dict[str, Any]:
    """``count`` distinct trivial `on_model_call` policies (none at all for 0)."""
    return {"policies": [{"class": "bench.policies.Trivial", "options": {"name": f"trivial-{i}"}}
                         for i in range(count)]}


def _recorded_answers(fake: Server) -> dict[str, tuple[str, bytes]]:
    """The fake provider's answers to the bench's JSON and streamed requests, as (content type, body)."""
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    answers = {}
    with httpx.Client(base_url=fake.base_url, timeout=10) as client:
        requests = (("json", JSON_BODY, {}), ("stream", STREAM_BODY, {"x-fake-scenario": STREAM_SCENARIO}))
        for kind, body, extra in requests:
            answer = client.post(PATH, content=body, headers={**headers, **extra})
            answer.raise_for_status()
            answers[kind] = (answer.headers["content-type"], answer.content)
    return answers


def _proxy_workers(count: int) -> Callable[[Bench], Server]:
    """Starter of capsem-proxy with ``count`` workers, unpinned (scenario "workers"), in front of its own
    canned upstream (bench/canned.py) on the fake provider's core: the fake provider would take a
    good part of the two cores the workers are measured on."""

    def start(bench: Bench) -> Server:
        assert bench.fake is not None
        name = f"workers-{count}"
        upstream = start_canned(_recorded_answers(bench.fake), bench.plan.fake, bench.workdir, f"{name}-upstream")
        try:
            proxy = start_capsem_proxy(upstream.base_url, None, workers=count, name=name)
        except BaseException:
            upstream.stop()
            raise

        def stop() -> None:
            try:
                proxy.stop()
            finally:
                upstream.stop()

        return replace(proxy, stop=stop, upstream_pid=upstream.pid)

    return start


def _proxy_with(name: str, config: dict[str, Any], env: dict[str, str] | None = None) -> Callable[[Bench], Server]:
    """Starter of capsem-proxy with ``config`` over its defaults, able to import ``bench.policies``."""

    def start(bench: Bench) -> Server:
        assert bench.fake is not None
        return start_capsem_proxy(bench.fake.base_url, bench.plan.server, workers=bench.proxy_workers,
                                  config=config, name=name, importable=True, env=env)

    return start


# name -> starter; measured in this order, one at a time (baseline and proxy share a core).
TARGETS: dict[str, Callable[[Bench], Server]] = {
    "direct": _start_direct,
    "baseline": _start_baseline,
    "proxy": _start_proxy,
    "baseline-httpx": _start_baseline_httpx,
    # scenario "guard": streaming modes with one answer-reading policy
    **{f"proxy-{mode}": _proxy_with(f"proxy-{mode}", guard_config(mode)) for mode in GUARD_MODES},
    # scenario "policies": 0, 1, 5, 20 trivial policies
    **{f"policies-{n}": _proxy_with(f"policies-{n}", policies_config(n)) for n in POLICY_COUNTS},
    # scenario "providers": the default policy plus the four text detectors
    "proxy-detectors": _proxy_with("proxy-detectors", detectors_config()),
    # scenario "observability": audit (SQLite) + metrics on, and both off
    **{name: _proxy_with(name, config) for name, config in OBSERVABILITY_CONFIGS.items()},
    # scenario "gateway": gateway key + Redis limit, and the same proxy without them
    **{name: _proxy_with(name, config, GATEWAY_ENV) for name, config in GATEWAY_CONFIGS.items()},
    # scenario "workers": --workers 1 and 2, unpinned
    **{f"workers-{count}": _proxy_workers(count) for count in WORKER_COUNTS},
    # scenario "routing": plain route, a two-upstream chain, a request translated to Anthropic
    **ROUTING_STARTERS,
}


def _stream_text(events: list[str]) -> tuple[int, str]:
    """(text deltas, their text joined) of an OpenAI stream's `data:` lines."""
    deltas, parts = 0, []
    for event in events:
        if event == "data: [DONE]":
            continue
        for choice in orjson.loads(event[6:]).get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                deltas += 1
                parts.append(content)
    return deltas, "".join(parts)


def sanity_check(server: Server, reference: str | None = None) -> str:
    """One JSON and one streamed request through ``server``; fail loudly if either is wrong. Returns
    the streamed text. With a ``reference`` text (the fake provider's own), the stream must carry that
    text (a proxy holding text back may release it in more events); without, exactly 20 text deltas."""
    prepare_gateway(server, API_KEY)
    headers = {"Authorization": f"Bearer {server.api_key or API_KEY}", "Content-Type": "application/json"}
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        r = client.post(PATH, content=JSON_BODY, headers=headers)
        if r.status_code != 200 or "choices" not in r.json():
            raise RuntimeError(f"{server.name}: unexpected answer {r.status_code}: {r.text[:500]}")
        r = client.post(PATH, content=STREAM_BODY, headers={**headers, "x-fake-scenario": STREAM_SCENARIO})
        events = [line for line in r.text.split("\n") if line.startswith("data: ")]
        deltas, text = _stream_text(events) if r.status_code == 200 else (0, "")
        complete = deltas == STREAM_EVENTS if reference is None else text == reference
        if r.status_code != 200 or events[-1:] != ["data: [DONE]"] or not complete:
            raise RuntimeError(f"{server.name}: unexpected stream {r.status_code} ({deltas} text deltas, "
                               f"wanted {STREAM_EVENTS} or the fake provider's text): {r.text[:500]}")
    return text


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("capsem-proxy", "capsem", "aiohttp", "uvicorn", "uvloop", "httptools", "httpx", "orjson"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="capsem-proxy benchmark")
    parser.add_argument("--quick", action="store_true", help="fewer requests (about 30 s)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--scenarios", help=f"comma-separated subset of: {', '.join(scenario_names())}")
    parser.add_argument("--all", action="store_true",
                        help="every scenario, including those not run by default (guard, policies, clients)")
    parser.add_argument("--compare-clients", action="store_true",
                        help="add the aiohttp vs httpx pass-through comparison (scenario 'clients')")
    parser.add_argument("--rounds", type=int, help="rounds per scenario (medians are reported; default 3, quick 1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores with taskset")
    parser.add_argument("--workers", type=int, default=1, help="proxy worker processes")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--strict", action="store_true", help="exit with status 3 when a target check is missed")
    return parser.parse_args(argv)


def _select(args: argparse.Namespace) -> list[Scenario]:
    if args.all and args.scenarios:
        raise SystemExit("--all and --scenarios exclude each other")
    if args.all:
        wanted = scenario_names()
    elif args.scenarios:
        wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
        unknown = set(wanted) - set(scenario_names())
        if unknown:
            raise SystemExit(f"unknown scenario(s): {sorted(unknown)}; known: {scenario_names()}")
    else:
        wanted = [s.name for s in SCENARIOS if s.default]
    if args.compare_clients and "clients" not in wanted:
        wanted.append("clients")
    return [s for s in SCENARIOS if s.name in wanted]


def median_merge(items: list[Any]) -> Any:
    """Merge the raw results of several rounds: the median of every number, the first of anything else."""
    if not items:
        return None
    first = items[0]
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for item in items if isinstance(item, dict) for k in item))
        return {k: median_merge([item[k] for item in items if isinstance(item, dict) and k in item]) for k in keys}
    numbers = [x for x in items if isinstance(x, int | float) and not isinstance(x, bool)]
    if numbers and len(numbers) == len(items):
        return statistics.median(numbers)
    return first


def measure_all(bench: Bench, scenarios: list[Scenario]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Start every target needed, then run the scenarios round by round, alternating the target order.

    All targets stay up for the whole run, but only one is under load at a time: the baseline and the
    proxy share a core and are idle while the other is measured. Interleaving them round by round,
    and keeping the median, keeps slow drifts of the machine from favouring one of them.
    Returns (target -> scenario -> merged raw, target -> scenario -> list of per-round raw).
    """
    needed = [t for t in TARGETS if any(t in s.targets for s in scenarios)]
    servers: dict[str, Server] = {}
    per_round: dict[str, dict[str, list[Any]]] = {t: {} for t in needed}
    current = "?"
    reference: str | None = None  # the fake provider's streamed text, once `direct` is checked
    try:
        for target in needed:
            current = target
            bench.say(f"[{target}] starting")
            servers[target] = TARGETS[target](bench)
            text = sanity_check(servers[target], reference)
            if target == "direct":
                reference = text
        for scenario in scenarios:
            targets = [t for t in needed if t in scenario.targets]
            rounds = bench.profile.rounds if scenario.repeat else 1
            for index in range(rounds):
                bench.say(f"{scenario.name} (round {index + 1}/{rounds}): {scenario.description}")
                for target in targets if index % 2 == 0 else reversed(targets):
                    current = target
                    result = scenario.measure(bench, servers[target])
                    per_round[target].setdefault(scenario.name, []).append(result)
    except Exception:
        server = servers.get(current)
        if server is not None:
            print(f"--- {current} log ---\n{server.log()[-4000:]}", file=sys.stderr)
        raise
    finally:
        for server in servers.values():
            if server is not bench.fake:
                server.stop()
    merged = {t: {name: median_merge(items) for name, items in by.items()} for t, by in per_round.items()}
    return merged, per_round


def run(args: argparse.Namespace) -> int:
    scenarios = _select(args)
    profile = QUICK if args.quick else FULL
    if args.rounds:
        profile = replace(profile, rounds=max(1, args.rounds))
    plan = CpuPlan.detect(not args.no_pin)
    workdir = Path(tempfile.mkdtemp(prefix="capsem-bench-"))
    bench = Bench(profile, plan, workdir, proxy_workers=args.workers, verbose=not args.quiet)
    started = time.monotonic()
    bench.say(f"cores {sorted(os.sched_getaffinity(0))}; pinning: fake provider {plan.fake}, "
              f"server under test {plan.server}, load generator {plan.loadgen}; {profile.rounds} round(s)")
    bench.fake = start_fake(plan.fake, workdir)
    try:
        raw, rounds = measure_all(bench, scenarios)
    finally:
        bench.fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started

    rows: list[Row] = []
    verdicts: list[Verdict] = []
    tables: dict[str, tuple[list[Row], set[str]]] = {}  # Scenario.table -> its rows and targets
    for name in REPORT_ORDER:
        scenario = next((s for s in scenarios if s.name == name), None)
        if scenario is None:
            continue
        # Each target's merged numbers, plus its per-round numbers under "_rounds" (for spreads).
        by_target = {t: {**raw[t][name], "_rounds": rounds[t][name]} for t in scenario.targets
                     if name in raw.get(t, {})}
        scenario_rows = scenario.rows(by_target)
        rows.extend(scenario_rows)
        verdicts.extend(scenario.verdicts(by_target))
        table_rows, table_targets = tables.setdefault(scenario.table, ([], set()))
        table_rows.extend(scenario_rows)
        table_targets.update(by_target)
    health: list[Row] = []
    if raw:
        health.append(Row("run health", "failed answers, all runs", "",
                          {t: float(bench.errors.get(t, 0)) for t in raw}, digits=0, key="errors"))
        noise = {t: 100 * used / window if window else None for t, (used, window) in bench.other_cpu.items()}
        health.append(Row("run health", "other processes' CPU while measuring", "% core", noise, digits=0,
                          key="other_cpu_pct"))
    rows.extend(health)

    order = list(TARGETS)
    print()
    # One table per group of scenarios (the default ones share "main"), each with its own columns
    # and the run-health rows of its targets.
    for table_rows, table_targets in tables.values() or [([], set(raw))]:
        own_health = [replace(r, values={t: v for t, v in r.values.items() if t in table_targets}) for r in health]
        print(render_table(table_rows + own_health, order))
        print()
    if verdicts:
        print(render_verdicts(verdicts))
    rounds_note = f"{profile.rounds} rounds, medians shown" if profile.rounds > 1 else "1 round"
    print(f"\n({'quick' if args.quick else 'full'} run, {rounds_note}, {elapsed:.0f} s; "
          f"pinning fake={plan.fake} server={plan.server} loadgen={plan.loadgen})")
    busy = [t for t, (used, window) in bench.other_cpu.items() if window and used > 0.1 * window]
    if busy:
        print("warning: other processes were busy while measuring " + ", ".join(busy)
              + "; rerun on a quiet machine for stable numbers")

    meta = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "profile": asdict(profile),
        "cpu_plan": asdict(plan),
        "cores": sorted(os.sched_getaffinity(0)),
        "proxy_workers": args.workers,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": _package_versions(),
        "elapsed_s": elapsed,
        "request_bytes": {"json": len(JSON_BODY), "stream": len(STREAM_BODY)},
        "stream_events": STREAM_EVENTS,
        "errors": bench.errors,
        "other_cpu_s_and_window_s": bench.other_cpu,
    }
    paths = [RESULTS_DIR / "latest.json"]
    if args.json:
        paths.append(args.json)
    for path in paths:
        write_json(path, meta, {"merged": raw, "rounds": rounds}, rows, verdicts)
    print("results: " + ", ".join(str(p) for p in paths))
    if bench.errors:
        return 1
    if args.strict and any(v.status == "MISS" for v in verdicts):
        return 3
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench``."""
    return run(_parse_args(argv))
