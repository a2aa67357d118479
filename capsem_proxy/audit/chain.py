"""The tamper-evident hash chain over every audit row of a store.

One chain per store, across both tables: every row (request or decision) takes the next `seq` of the
store and carries `prev_hash`, the hash of the row before it in seq order, whichever table that row is
in, and `hash` = SHA-256 of the canonical encoding of [table, seq, prev_hash, *values]. One chain
means one ordered walk finds a changed, inserted or deleted row in either table, and `seq` orders the
whole trail (a live tail follows both tables with one cursor). The store also keeps its head (last
seq and hash), updated in the same transaction as the rows, so cutting rows off the end is seen too.

The encoding is orjson's of a JSON array of typed values (rows are cleaned first, see
rows.clean_values): deterministic for str, int, float (shortest round-trip repr), bool and None.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from capsem_proxy.audit.rows import COLUMN_NAMES, Entry, clean_values

__all__ = ["GENESIS", "ChainBreak", "ChainRow", "ChainWalk", "chain_entries", "row_hash"]

GENESIS = "0" * 64  # prev_hash of a store's first row
REQUEST_ID_INDEX = {table: COLUMN_NAMES[table].index("request_id") for table in COLUMN_NAMES}


def row_hash(table: str, seq: int, prev_hash: str, values: tuple[Any, ...]) -> str:
    """The hash of one row (values already cleaned)."""
    return hashlib.sha256(orjson.dumps([table, seq, prev_hash, *values])).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainRow:
    """A row ready to be stored (or read back to be verified)."""

    table: str
    seq: int
    values: tuple[Any, ...]
    prev_hash: str
    hash: str


def chain_entries(entries: Iterable[Entry], last_seq: int, last_hash: str) -> list[ChainRow]:
    """Clean queued entries and link them after the store's head (`last_seq`, `last_hash`)."""
    chained = []
    seq, previous = last_seq, last_hash
    for table, values in entries:
        seq += 1
        cleaned = clean_values(table, values)
        digest = row_hash(table, seq, previous, cleaned)
        chained.append(ChainRow(table, seq, cleaned, previous, digest))
        previous = digest
    return chained


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first row where the chain does not hold, and why."""

    table: str
    seq: int
    request_id: str
    problem: str

    def describe(self) -> str:
        return f"chain broken at {self.table} seq {self.seq} (request {self.request_id or '-'}): {self.problem}"


def _missing(first: int, last: int, where: str) -> str:
    return f"row {first} {where} is missing" if first == last else f"rows {first}..{last} {where} are missing"


def _request_id(row: ChainRow) -> str:
    return str(row.values[REQUEST_ID_INDEX[row.table]])


class ChainWalk:
    """Checks rows fed in seq order; `feed` returns the first break, then the walk stops."""

    def __init__(self, anchors: dict[int, str] | None = None) -> None:
        # Hashes noted earlier outside the store (seq -> hash): a store rewritten from some row on,
        # hashes recomputed, still chains, but no longer holds these.
        self.anchors = dict(anchors or {})
        self.rows = 0
        self.counts: dict[str, int] = {"requests": 0, "decisions": 0}
        self.last_seq = 0
        self.last_hash = GENESIS
        self.last_table = ""
        self.last_request_id = ""

    def feed(self, rows: Iterable[ChainRow]) -> ChainBreak | None:
        """Check the next `rows` of the store, in seq order."""
        for row in rows:
            cleaned = clean_values(row.table, row.values)
            if row_hash(row.table, row.seq, row.prev_hash, cleaned) != row.hash:
                return ChainBreak(row.table, row.seq, _request_id(row), "the row's content does not match its hash "
                                  "(changed after it was written)")
            if row.prev_hash != self.last_hash:
                if row.seq != self.last_seq + 1:
                    problem = _missing(self.last_seq + 1, row.seq - 1, "before it")
                else:
                    problem = f"its prev_hash does not match the hash of seq {self.last_seq}"
                return ChainBreak(row.table, row.seq, _request_id(row), problem)
            anchored = self.anchors.pop(row.seq, None)
            if anchored is not None and anchored != row.hash:
                return ChainBreak(row.table, row.seq, _request_id(row), f"its hash is not the anchored {anchored}")
            self.rows += 1
            self.counts[row.table] += 1
            self.last_seq, self.last_hash, self.last_table = row.seq, row.hash, row.table
            self.last_request_id = _request_id(row)
        return None

    def check_head(self, head_seq: int, head_hash: str) -> ChainBreak | None:
        """After the last row: the store's recorded head must be that row, and every anchor seen."""
        if self.anchors:
            seq = min(self.anchors)
            return ChainBreak("-", seq, "", f"anchored row {seq} is not in the store")
        if (head_seq, head_hash) == (self.last_seq, self.last_hash):
            return None
        if head_seq > self.last_seq:
            problem = _missing(self.last_seq + 1, head_seq, "at the end") + f" (the recorded head is seq {head_seq})"
        else:
            problem = f"the store's head (seq {head_seq}) does not match the last row"
        return ChainBreak(self.last_table or "-", self.last_seq, self.last_request_id, problem)
