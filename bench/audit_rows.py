"""Micro-benchmark of the audit write path: CPU per request spent building the rows on the request path
(`Observer.decisions` + `Observer.finish`) and writing them to SQLite on the writer thread (chaining,
hashing, inserting), for a few request shapes. Runs in one process, no server:

    .venv/bin/python -m bench.audit_rows [--requests 20000] [--repeat 5]

Numbers are process CPU time (the median of `--repeat` runs), so other load on the machine matters
less than for wall-clock timings.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.queued import QueuedAuditSink
from capsem_proxy.audit.sqlite import SQLiteStore
from capsem_proxy.config import Settings
from capsem_proxy.decisions import Decision, Verdict, new_decision_id, sequential_decision_id
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext
from capsem_proxy.observability import Observer
from capsem_proxy.records import RequestRecord, new_request_id

__all__ = ["main"]

KEY = ChainKey.derive(b"bench-secret")


def _allow(hook: str, subject: str = "") -> Decision:
    return Decision(Verdict.ALLOW, "DebugPolicy", hook, subject=subject, latency_ms=0.004,
                    decision_id=sequential_decision_id())


def _decisions_default() -> list[Decision]:
    return [_allow("on_model_call")]


def _decisions_tools() -> list[Decision]:
    return [_allow("on_model_call"), *(_allow("on_tool_call", f"tool_{index}") for index in range(10))]


def _decisions_blocked() -> list[Decision]:
    return [Decision(Verdict.BLOCK, "DebugPolicy", "on_model_call", reason="capsem_block", details="found capsem_block",
                     latency_ms=0.004, decision_id=new_decision_id())]


SHAPES: dict[str, Callable[[], list[Decision]]] = {
    "1 ALLOW decision (default policy)": _decisions_default,
    "11 ALLOW decisions (10 tools)": _decisions_tools,
    "1 BLOCK decision": _decisions_blocked,
}


def _request(make: Callable[[], list[Decision]]) -> tuple[RequestContext, RequestRecord, list[Decision]]:
    record = RequestRecord(new_request_id(), time.time(), tenant_id="5f" * 16, session_id="s-" + "ab" * 10,
                           provider="openai", operation="chat", route="/v1/chat/completions", model="gpt-4o-mini",
                           status=200, latency_ms=1.5, upstream_ms=1.0, ttfb_ms=1.2, input_tokens=12,
                           output_tokens=30)
    exchange = Exchange("openai", "chat", model="gpt-4o-mini")
    context = RequestContext(record.request_id, record.tenant_id, "openai", "chat", exchange,
                             session_id=record.session_id, record=record)
    return context, record, make()


def _settings() -> Settings:
    return Settings(metrics={"enabled": False}, audit={"url": "sqlite:///unused.db", "queue_max": 10_000_000})


def _cpu(work: Callable[[], Any]) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def measure(make: Callable[[], list[Decision]], requests: int, repeat: int, folder: Path) -> tuple[float, float, int]:
    """(request-path µs, writer µs, rows) per request, medians over `repeat` runs."""
    record_us, write_us, rows = [], [], 0
    for run in range(repeat):
        store = SQLiteStore(folder / f"audit-{id(make)}-{run}.db", key=KEY)
        sink = QueuedAuditSink(store, queue_max=10_000_000, flush_interval=3600)
        observer = Observer(_settings(), sink)
        prepared = [_request(make) for _ in range(requests)]

        def record_all(observer: Observer = observer, prepared: list[Any] = prepared) -> None:
            for context, record, decisions in prepared:
                observer.decisions(context, decisions)
                observer.finish(record, None, context)

        record_us.append(1e6 * _cpu(record_all) / requests)
        # The writer's own steps, called directly on this thread (the sink runs them on the store's
        # write thread), so that process CPU counts only them.
        entries = list(sink._queue)
        rows = len(entries) // requests
        store._connect_writer()

        def write_all(store: SQLiteStore = store, entries: list[Any] = entries) -> None:
            for start in range(0, len(entries), 2000):
                store._write(entries[start:start + 2000])

        write_us.append(1e6 * _cpu(write_all) / requests)
        store._close_writer()
    return statistics.median(record_us), statistics.median(write_us), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"{'request shape':<36} {'rows':>5} {'request path µs':>16} {'writer µs':>10} {'total µs':>9}")
    with tempfile.TemporaryDirectory(prefix="capsem-audit-bench-") as folder:
        for name, make in SHAPES.items():
            record_us, write_us, rows = measure(make, args.requests, args.repeat, Path(folder))
            print(f"{name:<36} {rows:>5} {record_us:>16.2f} {write_us:>10.2f} {record_us + write_us:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
