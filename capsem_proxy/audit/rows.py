"""The two kinds of audit row (requests, decisions): their columns, and how their values are cleaned
and encoded before they are chained and stored (bounds.py builds them on the request path)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from enum import Enum
from itertools import product
from typing import Any

import orjson

from capsem_proxy.records import RequestRecord

__all__ = [
    "ADDED_DEFAULTS",
    "COLUMNS",
    "COLUMN_NAMES",
    "DECISION_COLUMNS",
    "LEGACY_WIDTH",
    "REQUEST_COLUMNS",
    "Entry",
    "Kind",
    "clean_values",
    "encode_row",
    "row_dict",
]


class Kind(Enum):
    """A column's type; `nullable` kinds end in _OR_NULL."""

    TEXT = "text"
    REAL = "real"
    INT = "int"
    BOOL = "bool"
    TEXT_OR_NULL = "text?"
    REAL_OR_NULL = "real?"
    INT_OR_NULL = "int?"


REQUEST_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("request_id", Kind.TEXT),
    ("started_at", Kind.REAL),
    ("tenant_id", Kind.TEXT),
    ("session_id", Kind.TEXT),
    ("agent_id", Kind.TEXT),
    ("provider", Kind.TEXT),
    ("operation", Kind.TEXT),
    ("route", Kind.TEXT),
    ("model", Kind.TEXT),
    ("stream", Kind.BOOL),
    ("status", Kind.INT),
    ("verdict", Kind.TEXT),
    ("decision_id", Kind.TEXT),
    ("reason", Kind.TEXT),
    ("latency_ms", Kind.REAL),
    ("upstream_ms", Kind.REAL_OR_NULL),
    ("ttfb_ms", Kind.REAL_OR_NULL),
    ("input_tokens", Kind.INT_OR_NULL),
    ("output_tokens", Kind.INT_OR_NULL),
    ("prompt", Kind.TEXT_OR_NULL),
    ("answer", Kind.TEXT_OR_NULL),
    # The content-free ALLOW decisions folded into the row (folding.py), or NULL (schema version 6).
    ("allowed", Kind.TEXT_OR_NULL),
)
# A request row holds every RequestRecord field, in the record's order.
assert tuple(name for name, _ in REQUEST_COLUMNS) == tuple(f.name for f in dataclasses.fields(RequestRecord))

DECISION_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("decision_id", Kind.TEXT),
    ("request_id", Kind.TEXT),
    ("tenant_id", Kind.TEXT),
    ("session_id", Kind.TEXT),
    ("agent_id", Kind.TEXT),
    ("provider", Kind.TEXT),
    ("operation", Kind.TEXT),
    ("model", Kind.TEXT),
    ("hook", Kind.TEXT),
    ("policy", Kind.TEXT),
    ("verdict", Kind.TEXT),
    ("reason", Kind.TEXT),
    ("details", Kind.TEXT),
    ("subject", Kind.TEXT),
    ("latency_ms", Kind.REAL),
    ("recorded_at", Kind.REAL),
    # How many decisions the row stands for: 1, or more when decisions were folded (bounds.py).
    ("count", Kind.INT),
    # Taken by a policy in shadow mode: recorded, never enforced (schema version 4).
    ("shadow", Kind.BOOL),
)
# Columns each table had before the chain was keyed (schema version 2): rows written then were hashed
# over these only.
LEGACY_WIDTH: dict[str, int] = {"requests": len(REQUEST_COLUMNS) - 1, "decisions": len(DECISION_COLUMNS) - 2}
# Values of the columns added since schema version 2 on rows older than them (`allowed`; `count`, `shadow`).
ADDED_DEFAULTS: dict[str, tuple[Any, ...]] = {"requests": (None,), "decisions": (1, False)}
# The trailing column left out of a row's hash while it holds its default, so that rows written before
# the column existed verify as they were hashed: a request's `allowed` (None), a decision's `shadow` (False).
_OPTIONAL_TAIL: dict[str, Any] = {"requests": None, "decisions": False}

COLUMNS: dict[str, tuple[tuple[str, Kind], ...]] = {"requests": REQUEST_COLUMNS, "decisions": DECISION_COLUMNS}
COLUMN_NAMES: dict[str, tuple[str, ...]] = {table: tuple(n for n, _ in cols) for table, cols in COLUMNS.items()}

# One queued row: its table and its values in column order (no seq or hashes yet: the writer adds them).
Entry = tuple[str, tuple[Any, ...]]


def _clean_text(value: Any) -> str:
    """Text any store accepts: PostgreSQL refuses NUL, no store takes a lone surrogate."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        return text.replace("\x00", "\ufffd") if "\x00" in text else text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text.replace("\x00", "\ufffd")


def _text(value: Any) -> str:
    if type(value) is str and value.isascii() and "\x00" not in value:
        return value
    return "" if value is None else _clean_text(value)


def _real(value: Any) -> float:
    number = 0.0 if value is None else float(value)
    return number if math.isfinite(number) else 0.0


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


def _text_or_null(value: Any) -> str | None:
    return None if value is None else _text(value)


def _real_or_null(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _int_or_null(value: Any) -> int | None:
    return None if value is None else int(value)


_CLEANERS: dict[Kind, Callable[[Any], Any]] = {
    Kind.TEXT: _text,
    Kind.REAL: _real,
    Kind.INT: _int,
    Kind.BOOL: bool,
    Kind.TEXT_OR_NULL: _text_or_null,
    Kind.REAL_OR_NULL: _real_or_null,
    Kind.INT_OR_NULL: _int_or_null,
}
_TABLE_CLEANERS = {table: tuple(_CLEANERS[kind] for _, kind in columns) for table, columns in COLUMNS.items()}


def clean_values(table: str, values: Sequence[Any]) -> tuple[Any, ...]:
    """`values` as stored and hashed: typed exactly as each column says (bools as bools, reals as
    floats), so a row read back from any store hashes as it did when written."""
    return tuple([clean(value) for clean, value in zip(_TABLE_CLEANERS[table], values, strict=True)])


_NONE = type(None)
_TYPES: dict[Kind, tuple[type, ...]] = {
    Kind.TEXT: (str,), Kind.REAL: (float,), Kind.INT: (int,), Kind.BOOL: (bool,),
    Kind.TEXT_OR_NULL: (str, _NONE), Kind.REAL_OR_NULL: (float, _NONE), Kind.INT_OR_NULL: (int, _NONE),
}


def _nulls_hashed(table: str, types: tuple[type, ...]) -> int:
    """How many nulls the hashed encoding of a row with values of `types` holds: one per None, but a
    request's trailing `allowed` is left out of the hash while it is None (see `_hashed`)."""
    return types.count(_NONE) - (table == "requests" and types[-1] is _NONE)


# Every combination of value types a row may already have exactly (nullable columns give several),
# with how many nulls its hashed encoding holds: one lookup answers both.
_CLEAN_TYPES: dict[str, dict[tuple[type, ...], int]] = {
    table: {types: _nulls_hashed(table, types) for types in product(*(_TYPES[kind] for _, kind in columns))}
    for table, columns in COLUMNS.items()
}


def encode_row(table: str, seq: int, prev_hash: str, values: tuple[Any, ...]) -> tuple[tuple[Any, ...], bytes]:
    """The row's values as stored (see `clean_values`) and the bytes its hash covers: the orjson
    encoding of [table, seq, prev_hash, *values].

    Rows built by the proxy are nearly always clean already; checking that with a few C-level calls
    (the types as one tuple, the encoding orjson makes anyway) costs a fraction of cleaning column by
    column. orjson refuses lone surrogates, writes NUL as \\u0000 and a non-finite float as null, so an
    encoding without those markers (and with one null per None it encodes) is the encoding of the
    cleaned row."""
    nulls = _CLEAN_TYPES[table].get(tuple(map(type, values)))
    if nulls is not None:
        # `_hashed`, inline (this runs for every row written and verified): the row has all its columns.
        hashed = values[:-1] if values[-1] is _OPTIONAL_TAIL[table] else values
        try:
            payload = orjson.dumps([table, seq, prev_hash, *hashed])
        except orjson.JSONEncodeError:
            pass
        else:
            # find, not `in`: `bytes in bytes` raises and clears a TypeError inside CPython each time.
            if payload.find(b"\\u0000") == -1 and payload.count(b"null") == nulls:
                return values, payload
    cleaned = clean_values(table, values)
    return cleaned, orjson.dumps([table, seq, prev_hash, *_hashed(table, cleaned)])


def _hashed(table: str, values: tuple[Any, ...]) -> tuple[Any, ...]:
    """The values a row's hash covers: all, but a trailing optional column while it holds its default
    (a request's `allowed` None, a decision's `shadow` False: rows written before the column existed
    were hashed without it; any other value is covered, so changing it either way changes the hash)."""
    if values and values[-1] is _OPTIONAL_TAIL[table]:
        return values[:-1]
    return values


def row_dict(table: str, seq: int, values: tuple[Any, ...], prev_hash: str, row_hash: str) -> dict[str, Any]:
    """A row as queries return it: seq, the fields, prev_hash and hash; unstored content is left out."""
    row: dict[str, Any] = {"seq": seq}
    row.update(zip(COLUMN_NAMES[table], values, strict=True))
    if table == "requests":
        if row["prompt"] is None:
            del row["prompt"]
        if row["answer"] is None:
            del row["answer"]
        # Folded decisions are read as decisions (folding.py), not as a field of their request.
        del row["allowed"]
    row["prev_hash"] = prev_hash
    row["hash"] = row_hash
    return row
