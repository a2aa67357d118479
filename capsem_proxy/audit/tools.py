"""Reading a durable audit store from outside the proxy: verify the hash chain, export rows, follow
new rows. Stores are opened read-only: no schema is created or migrated, nothing is written."""

from __future__ import annotations

import asyncio
import csv
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Protocol

import orjson

from capsem_proxy.audit.chain import Anchor, ChainBreak, ChainRow, ChainStart, ChainWalk, StoredHead
from capsem_proxy.audit.head import ExportedHead
from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.query import MAX_LIMIT, AuditQuery
from capsem_proxy.audit.rows import COLUMN_NAMES
from capsem_proxy.config import ConfigError
from capsem_proxy.extras import needs_extra

__all__ = [
    "Reader",
    "VerifyReport",
    "export_rows",
    "open_reader",
    "parse_anchor",
    "parse_moment",
    "tail_rows",
    "verify_chain",
    "write_rows",
]

TABLES = ("requests", "decisions")
_PAGE = 5000
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Reader(Protocol):
    """What the tools need of a store (both SQL stores are readers)."""

    description: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def chain_page(self, table: str, after_seq: int, limit: int) -> list[ChainRow]: ...

    async def head(self) -> StoredHead | None: ...

    async def chain_start(self) -> ChainStart | None: ...

    async def query_requests(self, q: AuditQuery) -> list[dict[str, Any]]: ...

    async def query_decisions(self, q: AuditQuery) -> list[dict[str, Any]]: ...


def open_reader(url: str) -> Reader:
    """The store `url` names, read-only."""
    if url.startswith("sqlite:///"):
        from capsem_proxy.audit.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///"), readonly=True)
    if url.startswith(("postgresql://", "postgres://")):
        with needs_extra("a postgresql:// audit store"):
            from capsem_proxy.audit.postgres import PostgresStore

        return PostgresStore(url, readonly=True)
    if url.startswith("memory:"):
        raise ConfigError("audit.url is memory://: nothing is kept to read")
    raise ConfigError(f"audit.url: unsupported audit store '{url.split(':', 1)[0]}'")


def parse_anchor(text: str) -> Anchor:
    """`SEQ:HASH` as printed by verify and in the proxy's "audit chain head" log lines."""
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(f"--anchor '{text}': expected SEQ:HASH as printed by `audit verify`")
    return Anchor(int(seq), digest, f"the anchor {seq}:{digest[:12]}…")


def parse_moment(text: str, now: float | None = None) -> float:
    """Unix seconds of an ISO 8601 time (naive means local time) or of a duration ago: 90s, 15m, 1h30m, 2d."""
    now = time.time() if now is None else now
    compact = text.strip().lower()
    if compact and _DURATION.sub("", compact) == "":
        return now - sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in _DURATION.findall(compact))
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ConfigError(f"'{text}' is neither an ISO 8601 time nor a duration like 1h or 30m") from None


@dataclass
class VerifyReport:
    """The outcome of walking a store's chain."""

    walk: ChainWalk
    broken: ChainBreak | None
    head: StoredHead | None
    exported: ExportedHead | None = None
    later_rows: int = 0  # written while the store was being verified, left for the next run
    start: ChainStart | None = None  # where a retention prune left the chain's beginning

    def describe(self) -> str:
        if self.broken is not None:
            return self.broken.describe()
        walk, counts = self.walk, self.walk.counts
        rows = f"{walk.rows} rows (requests {counts['requests']}, decisions {counts['decisions']})"
        if walk.legacy_rows:
            rows += f"; the first {walk.legacy_rows} written before the chain was keyed"
        if self.start is not None:
            pruned = datetime.fromtimestamp(self.start.pruned_at).isoformat(timespec="seconds")
            rows += f"; rows up to seq {self.start.seq} removed by retention ({pruned}, signed checkpoint)"
        head = f"{self.head.seq}:{self.head.hash}" if self.head is not None else "none"
        text = f"audit chain intact: {rows}; head {head}"
        if self.exported is not None:
            written = datetime.fromtimestamp(self.exported.written_at).isoformat(timespec="seconds")
            text += f"; the exported head (seq {self.exported.seq}, written {written}) is in the chain"
        if self.later_rows:
            text += f"; {self.later_rows} rows written since the check began are left for the next run"
        return text


async def _in_seq_order(store: Reader, after_seq: int = 0) -> AsyncIterator[ChainRow]:
    """Both tables' rows after `after_seq` merged in seq order, a page at a time."""
    buffers: dict[str, deque[ChainRow]] = {table: deque() for table in TABLES}
    cursors = dict.fromkeys(TABLES, after_seq)
    exhausted = dict.fromkeys(TABLES, False)
    while True:
        for table in TABLES:
            if not buffers[table] and not exhausted[table]:
                page = await store.chain_page(table, cursors[table], _PAGE)
                buffers[table].extend(page)
                if page:
                    cursors[table] = page[-1].seq
                exhausted[table] = len(page) < _PAGE
        waiting = [table for table in TABLES if buffers[table]]
        if not waiting:
            return
        yield buffers[min(waiting, key=lambda table: buffers[table][0].seq)].popleft()


def _store_level(problem: str) -> ChainBreak:
    return ChainBreak("-", 0, "", problem)


async def verify_chain(
    store: Reader, key: ChainKey, anchors: Iterable[Anchor] = (), exported: ExportedHead | None = None,
    exported_source: str = "the exported head",
) -> VerifyReport:
    """Walk every row in seq order, checking each keyed hash with `key`; the report names the first
    row where the chain breaks. `anchors` (hashes noted earlier, from `describe()` or the proxy's log)
    and `exported` (the head the proxy exported) also catch a store emptied, cut short or rolled back."""
    anchors = list(anchors)
    head = await store.head()
    walk = ChainWalk(key, head.keyed_from if head is not None else 1, anchors)
    if head is not None and head.key_id and head.key_id != key.key_id:
        return VerifyReport(walk, _store_level(
            f"the store's chain is keyed with key id {head.key_id}, not with this key (key id {key.key_id}): verify "
            "with the server secret of the proxy that wrote it"), head)
    if exported is not None:
        if head is None or exported.store_id != head.store_id:
            return VerifyReport(walk, _store_level(
                f"{exported_source} names store id {exported.store_id}, this store is "
                f"{head.store_id if head is not None else 'without a head row'}: the store was replaced or "
                "recreated (or the head file belongs to another store)"), head, exported)
        if exported.keyed_from != head.keyed_from:
            return VerifyReport(walk, _store_level(
                f"the store's head says its chain is keyed from seq {head.keyed_from}, {exported_source} says "
                f"from seq {exported.keyed_from}: the head row was rewritten"), head, exported)
        if exported.seq:  # an export of an empty store anchors nothing
            walk = ChainWalk(key, head.keyed_from, [*anchors, Anchor(exported.seq, exported.hash, exported_source)])
    start = await store.chain_start()
    if start is not None:
        if head is None or not start.signed(key, head.store_id):
            return VerifyReport(walk, _store_level(
                f"the chain's start checkpoint (rows up to seq {start.seq} pruned) does not carry a valid MAC: it "
                "was written or moved without the chain key"), head, exported, start=start)
        walk.begin_after(start)
    # A live store: rows written after the head was read are left for the next run, once the head
    # read again covers them (a row past the head no proxy wrote is a break).
    later_rows, last_later = 0, 0
    resumed_after = walk.last_seq
    while True:
        broken = None
        async for row in _in_seq_order(store, resumed_after):
            if head is not None and row.seq > head.seq:
                later_rows, last_later = later_rows + 1, row.seq
                continue
            broken = walk.feed((row,))
            if broken is not None:
                break
        if broken is None:
            break
        # A prune that ran meanwhile removed rows this walk had yet to read: the rows are gone for a
        # reason only when a checkpoint signed with the key now says so, past the last row checked.
        moved = await store.chain_start()
        if (head is None or moved is None or not moved.signed(key, head.store_id)
                or moved.seq <= walk.last_seq or (start is not None and moved.seq <= start.seq)):
            return VerifyReport(walk, broken, head, exported, start=start)
        start = moved
        walk.begin_after(moved)
        resumed_after = moved.seq
        later_rows, last_later = 0, 0
    broken = walk.check_head(head)
    if broken is None and later_rows and head is not None:
        now_head = await store.head()
        if now_head is None or now_head.seq < last_later or not now_head.signed(key):
            broken = ChainBreak("-", head.seq, "", f"row {last_later} lies past the store's head (seq "
                                f"{now_head.seq if now_head is not None else head.seq}): no proxy wrote it")
    return VerifyReport(walk, broken, head, exported, later_rows, start)


async def export_rows(
    store: Reader, table: str, since: float | None = None, until: float | None = None, tenant_id: str | None = None
) -> AsyncIterator[dict[str, Any]]:
    """Rows of `table` in seq order, within [since, until) and of one tenant when given."""
    query = getattr(store, f"query_{table}")
    after_seq = 0
    while True:
        page = await query(AuditQuery(tenant_id=tenant_id, since=since, until=until, after_seq=after_seq,
                                      limit=MAX_LIMIT))
        for row in page:
            yield row
        if len(page) < MAX_LIMIT:
            return
        after_seq = page[-1]["seq"]


async def _newer(store: Reader, tables: tuple[str, ...], after_seq: int) -> list[dict[str, Any]]:
    rows = []
    for table in tables:
        query = getattr(store, f"query_{table}")
        cursor = after_seq
        while True:
            page = await query(AuditQuery(after_seq=cursor, limit=MAX_LIMIT))
            rows += [{"type": table[:-1], **row} for row in page]
            if len(page) < MAX_LIMIT:
                break
            cursor = page[-1]["seq"]
    return sorted(rows, key=lambda row: row["seq"])


async def tail_rows(
    store: Reader, tables: tuple[str, ...], last: int, follow: bool, emit: Callable[[dict[str, Any]], None],
    interval: float = 1.0,
) -> None:
    """Emit the `last` newest rows of `tables` oldest first; with `follow`, then every new row as it lands."""
    newest: list[dict[str, Any]] = []
    for table in tables:
        rows = await getattr(store, f"query_{table}")(AuditQuery(limit=max(0, last)))
        newest += [{"type": table[:-1], **row} for row in rows]
    newest.sort(key=lambda row: row["seq"])
    newest = newest[-last:] if last > 0 else []
    for row in newest:
        emit(row)
    if not follow:
        return
    head = await store.head()
    after_seq = newest[-1]["seq"] if newest else (head.seq if head is not None else 0)
    while True:
        await asyncio.sleep(interval)
        for row in await _newer(store, tables, after_seq):
            emit(row)
            after_seq = row["seq"]


async def write_rows(rows: AsyncIterator[dict[str, Any]], table: str, output_format: str, out: IO[str]) -> int:
    """Write rows as JSON lines or CSV (header first); returns how many were written."""
    count = 0
    if output_format == "csv":
        writer = csv.DictWriter(out, fieldnames=["seq", *COLUMN_NAMES[table], "prev_hash", "hash"], restval="")
        writer.writeheader()
        async for row in rows:
            writer.writerow(row)
            count += 1
        return count
    async for row in rows:
        out.write(orjson.dumps(row).decode() + "\n")
        count += 1
    return count
