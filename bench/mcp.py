"""`python -m bench.mcp`: what a `tools/call` round trip costs through capsem-proxy's MCP proxy.

Two targets get the same call (`tools/call echo {"text": "hello"}`, in an initialized session):
`direct` (the fake MCP server of tests/fake_mcp, the official SDK's Streamable HTTP server) and
`proxy` (`capsem-proxy run` with its default policies and SQLite audit, the fake at `/mcp/bench`).
Rounds alternate the targets; each round sends `--calls` calls one after the other on one
keep-alive connection (concurrency 1) after a warm-up, and the report gives the median over rounds
of the p50 and p99 latency, what the proxy adds over direct, and the proxy's CPU per call
(utime + stime of its process over the round, divided by the calls). See bench/README.md, "MCP".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.procstat import cpu_sample
from bench.servers import REPO_ROOT, CpuPlan, pinned, start_capsem_proxy

__all__ = ["main"]

_ACCEPT = "application/json, text/event-stream"
ADDED_P50_TARGET_MS = 0.5


def _start_fake(cpu: int | None, json_answers: bool) -> tuple[subprocess.Popen[str], str]:
    command = pinned([sys.executable, "-m", "tests.fake_mcp", *(["--json"] if json_answers else [])], cpu)
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("FAKE_MCP_READY "):
        process.kill()
        raise RuntimeError(f"the fake MCP server did not start: {line!r}")
    return process, line.split(" ", 1)[1].strip() + "/mcp"


def _session(http: httpx.Client, url: str) -> dict[str, str]:
    """Initialize a session; the headers every later request carries."""
    params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
    opened = http.post(url, json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params},
                       headers={"accept": _ACCEPT})
    opened.raise_for_status()
    headers = {"accept": _ACCEPT, "content-type": "application/json", "mcp-protocol-version": "2025-11-25",
               "mcp-session-id": opened.headers["mcp-session-id"]}
    done = http.post(url, content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}', headers=headers)
    done.raise_for_status()
    return headers


def _round(url: str, calls: int, warmup: int, pid: int | None) -> dict[str, Any]:
    """Latencies (ms) of `calls` tools/call round trips, and the CPU `pid` used meanwhile."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "echo", "arguments": {"text": "hello"}}}).encode()
    latencies: list[float] = []
    with httpx.Client(timeout=30) as http:
        headers = _session(http, url)
        for _ in range(warmup):
            http.post(url, content=body, headers=headers).read()
        before = cpu_sample(pid) if pid is not None else None
        for _ in range(calls):
            started = time.perf_counter()
            answer = http.post(url, content=body, headers=headers)
            answer.read()
            latencies.append((time.perf_counter() - started) * 1000.0)
            if answer.status_code != 200 or b'"hello"' not in answer.content:
                raise RuntimeError(f"bad answer from {url}: {answer.status_code} {answer.content[:200]!r}")
        after = cpu_sample(pid) if pid is not None else None
    latencies.sort()
    result: dict[str, Any] = {
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }
    if before is not None and after is not None:
        result["cpu_us_per_call"] = 1e6 * (after - before).schedstat_s / calls
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mcp", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="measured calls per round and target (2000)")
    parser.add_argument("--warmup", type=int, default=200, help="calls before measuring (200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, targets alternating (3)")
    parser.add_argument("--quick", action="store_true", help="300 calls, 50 warm-up, 1 round")
    parser.add_argument("--sse", action="store_true", help="the server answers with SSE (default: JSON)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument("--json", metavar="FILE", help="also write the numbers to FILE")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls, args.warmup, args.rounds = 300, 50, 1
    plan = CpuPlan.detect(not args.no_pin)
    if plan.loadgen is not None:
        os.sched_setaffinity(0, {plan.loadgen})  # the client (this process) beside the fake server
    fake, direct_url = _start_fake(plan.fake, json_answers=not args.sse)
    workdir = Path(tempfile.mkdtemp(prefix="capsem-bench-mcp-"))
    proxy = start_capsem_proxy("http://127.0.0.1:9", plan.server, config={
        "server": {"data_dir": str(workdir / "data")}, "mcp": {"servers": {"bench": {"url": direct_url}}},
    })
    targets = {"direct": (direct_url, fake.pid), "proxy": (f"{proxy.base_url}/mcp/bench", proxy.pid)}
    rounds: dict[str, list[dict[str, Any]]] = {"direct": [], "proxy": []}
    try:
        for index in range(args.rounds):
            order = list(targets) if index % 2 == 0 else list(reversed(targets))
            for name in order:
                url, pid = targets[name]
                rounds[name].append(_round(url, args.calls, args.warmup, pid))
    finally:
        proxy.stop()
        fake.terminate()
        fake.wait(10)
    summary = {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in rounds.items()
    }
    added_p50 = summary["proxy"]["p50_ms"] - summary["direct"]["p50_ms"]
    added_p99 = summary["proxy"]["p99_ms"] - summary["direct"]["p99_ms"]
    answers = "SSE" if args.sse else "JSON"
    print(f"MCP tools/call round trip, concurrency 1, {answers} answers, {args.rounds} round(s) x {args.calls} calls")
    print(f"{'':28}{'direct':>12}{'proxy':>12}")
    print(f"{'latency p50 (ms)':28}{summary['direct']['p50_ms']:>12.3f}{summary['proxy']['p50_ms']:>12.3f}")
    print(f"{'latency p99 (ms)':28}{summary['direct']['p99_ms']:>12.3f}{summary['proxy']['p99_ms']:>12.3f}")
    print(f"{'CPU per call (µs)':28}{summary['direct']['cpu_us_per_call']:>12.0f}"
          f"{summary['proxy']['cpu_us_per_call']:>12.0f}")
    verdict = "met" if added_p50 <= ADDED_P50_TARGET_MS else "MISSED"
    print(f"proxy adds {added_p50:.3f} ms at p50 ({verdict}: target <= {ADDED_P50_TARGET_MS} ms), "
          f"{added_p99:.3f} ms at p99")
    if args.json:
        Path(args.json).write_text(json.dumps({"rounds": rounds, "summary": summary, "added_p50_ms": added_p50,
                                               "added_p99_ms": added_p99}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
