"""The tamper-evident, keyed hash chain over every audit row of a store.

One chain per store, across both tables: every row (request or decision) takes the next `seq` of the
store and carries `prev_hash`, the hash of the row before it in seq order, whichever table that row is
in, and `hash` = HMAC-SHA256, keyed with the chain key (keys.py), of the canonical encoding of
[table, seq, prev_hash, *values]. One chain means one ordered walk finds a changed, inserted or deleted
row in either table; the key means that whoever can write to the database but does not hold the
server secret cannot recompute the hashes of rows they change.

The store also keeps its head (last seq and hash, the first keyed seq, the key id and a store id),
updated in the same transaction as the rows and carrying a MAC, so rows cut off the end with the head
moved back are seen too. The proxy exports the head outside the store (head.py), which catches a store
emptied or rolled back wholesale.

Rows written before the chain was keyed (schema version 2) keep their plain SHA-256 hashes over the
columns they had then; `keyed_from` is the first keyed seq. They cannot be rewritten unseen either:
the first keyed row covers the last plain hash.

The encoding is orjson's of a JSON array of typed values (see rows.encode_row): deterministic for str,
int, float (shortest round-trip repr), bool and None.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.audit.rows import ADDED_DEFAULTS, COLUMN_NAMES, LEGACY_WIDTH, Entry, clean_values, encode_row

__all__ = [
    "GENESIS",
    "Anchor",
    "ChainBreak",
    "ChainRow",
    "ChainStart",
    "ChainWalk",
    "LinkedBatch",
    "StoredHead",
    "chain_entries",
    "erased_mac",
    "head_mac",
    "legacy_chain_entries",
    "legacy_row_hash",
    "link_entries",
    "linked_rows",
    "row_hash",
    "start_mac",
]

GENESIS = "0" * 64  # prev_hash of a store's first row
REQUEST_ID_INDEX = {table: COLUMN_NAMES[table].index("request_id") for table in COLUMN_NAMES}


def row_hash(key: ChainKey, table: str, seq: int, prev_hash: str, values: tuple[Any, ...]) -> str:
    """The keyed hash of one row."""
    return key.mac(encode_row(table, seq, prev_hash, values)[1])


def legacy_row_hash(table: str, seq: int, prev_hash: str, values: tuple[Any, ...]) -> str:
    """The plain SHA-256 of a row written before the chain was keyed, over its columns of that time."""
    cleaned = clean_values(table, values)[: LEGACY_WIDTH[table]]
    return hashlib.sha256(orjson.dumps([table, seq, prev_hash, *cleaned])).hexdigest()


def head_mac(key: ChainKey, store_id: str, seq: int, row_hash: str, keyed_from: int) -> str:
    """The MAC of a store's head: moving the head back over removed rows needs the key."""
    return key.mac(f"capsem-proxy audit head|{store_id}|{seq}|{row_hash}|{keyed_from}".encode())


@dataclass(frozen=True, slots=True)
class ChainRow:
    """A row ready to be stored (or read back to be verified)."""

    table: str
    seq: int
    values: tuple[Any, ...]
    prev_hash: str
    hash: str
    # (erasure seq, attestation MAC) of a row whose content an erasure blanked (lifecycle.py); its
    # `hash` is the one computed over the content, which the attestation vouches for.
    erasure: tuple[int, str] | None = None


@dataclass(frozen=True, slots=True)
class ChainStart:
    """Where the chain begins after a retention prune: rows up to `seq` are gone, the first row left
    carries `hash` as its prev_hash. `mac` (keyed) means only the key holder could move it."""

    seq: int
    hash: str
    pruned_at: float
    mac: str

    def signed(self, key: ChainKey, store_id: str) -> bool:
        return self.mac == start_mac(key, store_id, self.seq, self.hash)


def start_mac(key: ChainKey, store_id: str, seq: int, row_hash: str) -> str:
    """The MAC of a store's chain start (lifecycle.py)."""
    return key.mac(f"capsem-proxy audit start|{store_id}|{seq}|{row_hash}".encode())


def erased_mac(key: ChainKey, table: str, seq: int, prev_hash: str, values: tuple[Any, ...], row_hash: str,
               erasure_seq: int) -> str:
    """The attestation of an erased row: its values as they now stand, its place in the chain and the
    hash it was written with, vouched for by erasure `erasure_seq`."""
    payload = encode_row(table, seq, prev_hash, values)[1]
    return key.mac(b"capsem-proxy audit erased|%s|%s|%d" % (payload, row_hash.encode(), erasure_seq))


@dataclass(frozen=True, slots=True)
class StoredHead:
    """A store's head row. `key_id` is empty (and `mac` too) until a keyed proxy first opens the store."""

    seq: int
    hash: str
    keyed_from: int = 1
    key_id: str = ""
    store_id: str = ""
    mac: str = ""

    def signed(self, key: ChainKey) -> bool:
        return bool(self.key_id) and self.mac == head_mac(key, self.store_id, self.seq, self.hash, self.keyed_from)


def linked_rows(
    entries: Iterable[Entry], last_seq: int, last_hash: str, key: ChainKey
) -> Iterator[tuple[str, int, tuple[Any, ...], str, str]]:
    """Clean queued entries and link them after the store's head (`last_seq`, `last_hash`): for each
    row, its table, seq, cleaned values, prev_hash and hash (the one place rows are chained)."""
    seq, previous = last_seq, last_hash
    mac = key.mac
    for table, values in entries:
        seq += 1
        cleaned, payload = encode_row(table, seq, previous, values)
        digest = mac(payload)
        yield table, seq, cleaned, previous, digest
        previous = digest


def chain_entries(entries: Iterable[Entry], last_seq: int, last_hash: str, key: ChainKey) -> list[ChainRow]:
    """Clean queued entries and link them after the store's head (`last_seq`, `last_hash`)."""
    return [ChainRow(*row) for row in linked_rows(entries, last_seq, last_hash, key)]


@dataclass(slots=True)
class LinkedBatch:
    """Queued entries chained for insertion: per table, the parameters of each row (seq, the
    values, prev_hash, hash), and the head after the last row."""

    params: dict[str, list[tuple[Any, ...]]]
    last_seq: int
    last_hash: str


def link_entries(entries: Iterable[Entry], last_seq: int, last_hash: str, key: ChainKey) -> LinkedBatch:
    """`chain_entries` for the writers: the insert parameters directly, with no object per row
    (this loop runs for every audit row the proxy writes)."""
    params: dict[str, list[tuple[Any, ...]]] = {"requests": [], "decisions": []}
    seq, digest = last_seq, last_hash
    for table, seq, cleaned, previous, digest in linked_rows(entries, last_seq, last_hash, key):
        params[table].append((seq, *cleaned, previous, digest))
    return LinkedBatch(params, seq, digest)


def legacy_chain_entries(entries: Iterable[Entry], last_seq: int, last_hash: str) -> list[ChainRow]:
    """Link rows with plain hashes, as schema version 2 did (its frozen migration step uses this)."""
    chained = []
    seq, previous = last_seq, last_hash
    for table, values in entries:
        seq += 1
        cleaned = clean_values(table, values)
        digest = legacy_row_hash(table, seq, previous, cleaned)
        chained.append(ChainRow(table, seq, cleaned, previous, digest))
        previous = digest
    return chained


@dataclass(frozen=True, slots=True)
class Anchor:
    """A row's hash noted outside the store: by an operator (`--anchor`) or in the exported head."""

    seq: int
    hash: str
    source: str  # for messages: "the anchor given", "the exported head in FILE (written at ...)"


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first row where the chain does not hold, and why."""

    table: str
    seq: int
    request_id: str
    problem: str

    def describe(self) -> str:
        if self.table == "-" and not self.request_id:
            return f"chain broken: {self.problem}"
        return f"chain broken at {self.table} seq {self.seq} (request {self.request_id or '-'}): {self.problem}"


def _missing(first: int, last: int, where: str) -> str:
    return f"row {first} {where} is missing" if first == last else f"rows {first}..{last} {where} are missing"


def _request_id(row: ChainRow) -> str:
    return str(row.values[REQUEST_ID_INDEX[row.table]])


class ChainWalk:
    """Checks rows fed in seq order; `feed` returns the first break, then the walk stops."""

    def __init__(self, key: ChainKey, keyed_from: int = 1, anchors: Iterable[Anchor] = ()) -> None:
        self.key = key
        self.keyed_from = keyed_from
        # Hashes noted outside the store: a store rewritten from some row on, hashes recomputed (with
        # the key, or plain ones on rows claimed to predate it), still chains, but no longer holds these.
        self.anchors: dict[int, list[Anchor]] = {}
        for anchor in anchors:
            self.anchors.setdefault(anchor.seq, []).append(anchor)
        self.rows = 0
        self.legacy_rows = 0
        self.counts: dict[str, int] = {"requests": 0, "decisions": 0}
        self.last_seq = 0
        self.last_hash = GENESIS
        self.last_table = ""
        self.last_request_id = ""

    def begin_after(self, start: ChainStart) -> None:
        """Start the walk after a retention prune: the first row left follows `start`."""
        self.last_seq, self.last_hash = start.seq, start.hash
        for seq in [seq for seq in self.anchors if seq <= start.seq]:
            # Rows named by an anchor may have been pruned since; the checkpoint's own row still counts.
            if seq < start.seq or all(anchor.hash == start.hash for anchor in self.anchors[seq]):
                del self.anchors[seq]

    def _hash_holds(self, row: ChainRow) -> bool:
        if row.erasure is not None:
            erasure_seq, mac = row.erasure
            return erasure_seq > row.seq and mac == erased_mac(
                self.key, row.table, row.seq, row.prev_hash, row.values, row.hash, erasure_seq
            )
        if row.seq >= self.keyed_from:
            return row_hash(self.key, row.table, row.seq, row.prev_hash, row.values) == row.hash
        width = LEGACY_WIDTH[row.table]
        # Columns added since (a decision's count and shadow) have their default on rows older than them.
        added = tuple(row.values[width:])
        if added and added != ADDED_DEFAULTS[row.table][: len(added)]:
            return False
        return legacy_row_hash(row.table, row.seq, row.prev_hash, row.values) == row.hash

    def feed(self, rows: Iterable[ChainRow]) -> ChainBreak | None:
        """Check the next `rows` of the store, in seq order."""
        for row in rows:
            if not self._hash_holds(row):
                return ChainBreak(row.table, row.seq, _request_id(row), "the row's content does not match its hash "
                                  "(changed after it was written)")
            if row.prev_hash != self.last_hash:
                if row.seq != self.last_seq + 1:
                    problem = _missing(self.last_seq + 1, row.seq - 1, "before it")
                else:
                    problem = f"its prev_hash does not match the hash of seq {self.last_seq}"
                return ChainBreak(row.table, row.seq, _request_id(row), problem)
            for anchor in self.anchors.pop(row.seq, ()):
                if anchor.hash != row.hash:
                    return ChainBreak(row.table, row.seq, _request_id(row),
                                      f"its hash is not the {anchor.hash} of {anchor.source}")
            self.rows += 1
            self.legacy_rows += row.seq < self.keyed_from
            self.counts[row.table] += 1
            self.last_seq, self.last_hash, self.last_table = row.seq, row.hash, row.table
            self.last_request_id = _request_id(row)
        return None

    def _at_end(self, problem: str) -> ChainBreak:
        if not self.rows:
            return ChainBreak("-", 0, "", problem)
        return ChainBreak(self.last_table, self.last_seq, self.last_request_id, problem)

    def check_head(self, head: StoredHead | None) -> ChainBreak | None:
        """After the last row: every anchor must have been seen, and the store's head must be that
        row and carry its MAC."""
        if self.anchors:
            seq = min(self.anchors)
            source = self.anchors[seq][0].source
            if seq > self.last_seq:
                return self._at_end(_missing(self.last_seq + 1, seq, "at the end")
                                    + f" (row {seq} is named by {source}): rows were removed")
            return self._at_end(f"row {seq}, named by {source}, is not in the store")
        if head is None:
            return self._at_end("the store's head row is missing") if self.rows else None
        if head.seq > self.last_seq:
            return self._at_end(_missing(self.last_seq + 1, head.seq, "at the end")
                                + f" (the recorded head is seq {head.seq})")
        if (head.seq, head.hash) != (self.last_seq, self.last_hash):
            return self._at_end(f"the store's head (seq {head.seq}) does not match the last row")
        if head.keyed_from != self.keyed_from:
            return self._at_end("the store's head changed while it was read")
        if not head.key_id:
            # A proxy claims the store (key id and MAC) when it opens it, before it writes a row; an
            # unclaimed head over rows is one reset by hand (to pass a rewritten chain off as unkeyed).
            return self._at_end("the store's head names no chain key, yet the store holds rows") if self.rows else None
        if not head.signed(self.key):
            return self._at_end("the store's head was rewritten: its MAC does not match (rows cut off the end?)")
        return None
