"""Micro-benchmark of the admin API's triage queries on a large audit store: the time to answer one page
(`admin.triage.read_page`: the rows, their governing decisions, and the scan's extent) under each
filter, where matches are rare (one request in 5,000 blocked), so that every filter no index serves
has to use its whole bounded scan. Runs in one process, no server:

    .venv/bin/python -m bench.admin_queries [--rows 200000] [--url sqlite:///path|postgresql://...]

The store is filled once (a SQLite file is kept in the temp dir and reused; a PostgreSQL schema of its
own is dropped at the end). Times are wall-clock medians of 5 runs: other load on the machine shows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from capsem_proxy.admin.tenants import NO_TENANT_NAMES
from capsem_proxy.admin.triage import read_page
from capsem_proxy.audit import AuditQuery, open_audit_sink
from capsem_proxy.audit.folding import folded_json
from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.query import MAX_SCAN
from capsem_proxy.audit.sqlite_schema import CURRENT_VERSION
from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext
from capsem_proxy.records import RequestRecord

__all__ = ["main"]

KEY = ChainKey.derive(b"bench-admin-queries")
BLOCK_EVERY = 5000
RUNS = 5


async def _fill(sink, rows: int) -> None:
    started = time.time() - rows  # one request a second, the newest now
    for index in range(rows):
        request_id, tenant, session = f"req{index:09d}", f"tenant{index % 50}", f"session{index % 1000}"
        blocked = index % BLOCK_EVERY == 0
        decision = Decision(
            Verdict.BLOCK if blocked else Verdict.ALLOW, "secrets" if blocked else "pii", "on_model_call",
            reason="policy_violation" if blocked else "safe", details="AWS key in prompt" if blocked else "",
        )
        record = RequestRecord(
            request_id, started + index, tenant_id=tenant, session_id=session, provider="openai", operation="chat",
            model="gpt-4o", status=403 if blocked else 200, verdict="BLOCK" if blocked else "ALLOW",
            decision_id=decision.decision_id if blocked else "", reason="policy_violation" if blocked else "",
        )
        context = RequestContext(request_id, tenant, "openai", "chat", Exchange("openai", "chat", model="gpt-4o"),
                                 session_id=session, record=record)
        sink.record(context, [decision])  # an ALLOW is folded into the request row, as the proxy does
        record.allowed = folded_json(context)
        sink.record_request(record)
        if index % 5000 == 4999:
            await sink.flush()
    await sink.flush()


def _cases(now: float) -> dict[str, tuple[str, AuditQuery]]:
    def admin(**filters) -> AuditQuery:  # as parse_audit_query builds them
        return AuditQuery(seq_bounded_time=True, limit=100, **filters)

    return {
        "newest page, no filter": ("requests", admin()),
        "verdict=BLOCK": ("requests", admin(verdict=["BLOCK"])),
        "blocked=true": ("requests", admin(blocked=True)),
        "status=4xx": ("requests", admin(statuses=[(400, 499)])),
        "q=aws key (reasons)": ("requests", admin(text="aws key")),
        "policy=secrets": ("requests", admin(policy="secrets")),
        "tenant + verdict=BLOCK": ("requests", admin(tenant_ids=["tenant0"], verdict=["BLOCK"])),
        "last hour + q=aws": ("requests", admin(since=now - 3600, text="aws")),
        "1 h, a day ago + BLOCK": ("requests", admin(since=now - 90000, until=now - 86400, verdict=["BLOCK"])),
        "decisions verdict=BLOCK": ("decisions", admin(verdict=["BLOCK"])),
        "decisions, no filter": ("decisions", admin()),
        "decisions of a tenant": ("decisions", admin(tenant_id="tenant7")),
        "decisions, last hour": ("decisions", admin(since=now - 3600)),
        "decisions of a session": ("decisions", admin(session_id="session42")),
        "model=none (no match)": ("requests", admin(model="none")),
    }


async def _run(url: str, rows: int, fill: bool) -> None:
    sink = open_audit_sink(url, KEY)
    await sink.start()
    try:
        if fill:
            began = time.perf_counter()
            await _fill(sink, rows)
            print(f"filled {rows:,} requests and {rows:,} decisions (the ALLOWs folded into their requests) "
                  f"in {time.perf_counter() - began:.1f} s")
        print(f"{'filter':28s} {'rows':>5s} {'scanned':>8s} {'median ms':>10s} {'max ms':>8s}")
        for name, (table, query) in _cases(time.time()).items():
            timings = []
            for _ in range(RUNS):
                began = time.perf_counter()
                found, _, _ = await read_page(sink, table, AuditQuery(**query.__dict__), NO_TENANT_NAMES)
                timings.append((time.perf_counter() - began) * 1000)
            scanned, _ = await sink.scan_extent(table, query)
            print(f"{name:28s} {len(found):5d} {scanned:8,d} {statistics.median(timings):10.1f} {max(timings):8.1f}")
        print(f"(a filter no index serves looks at {MAX_SCAN:,} rows at most per page)")
    finally:
        if url.startswith("postgres") and hasattr(sink, "store"):
            await sink.store.drop()  # type: ignore[attr-defined]
        await sink.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="requests in the store (default 200000)")
    parser.add_argument("--url", help="audit store URL (default: a SQLite file in the temp dir)")
    args = parser.parse_args(argv)
    url = args.url
    fill = True
    if url is None:
        path = Path(tempfile.gettempdir()) / f"capsem-bench-admin-queries-v{CURRENT_VERSION}-{args.rows}.db"
        fill = not path.exists()
        url = f"sqlite:///{path}"
    elif url.startswith("postgres") and "schema=" not in url:
        url += ("&" if "?" in url else "?") + f"schema=capsem_bench_admin_{os.getpid()}"
    asyncio.run(_run(url, args.rows, fill))


if __name__ == "__main__":
    main()
