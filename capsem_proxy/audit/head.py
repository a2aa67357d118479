"""The chain head exported outside the store: a small JSON file (by default
`<server.data_dir>/audit-head.json`) that the proxy rewrites as it writes rows, carrying a MAC made
with the chain key. `audit verify` checks the store against it by default, so a store emptied, rolled
back or cut short with its head moved back is caught even when every row left still chains: the
exported row must still be there with the same hash.

The file is replaced atomically (write, then rename) and never moved backwards by this process: with
several workers sharing a data dir, a worker whose head is older than the file's leaves the file be.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from capsem_proxy.audit.chain import StoredHead
from capsem_proxy.audit.keys import ChainKey

__all__ = ["FORMAT", "ExportedHead", "HeadFileError", "export_head", "read_exported_head"]

FORMAT = "capsem-proxy audit head v1"
_MAX_FILE_BYTES = 64 * 1024


class HeadFileError(Exception):
    """The exported head cannot be read, or was not written by a proxy holding the chain key."""


@dataclass(frozen=True, slots=True)
class ExportedHead:
    """What the head file holds."""

    store_id: str
    store: str  # the store's description (no password), for people reading the file
    seq: int
    hash: str
    keyed_from: int
    key_id: str
    written_at: float

    def _signed_bytes(self) -> bytes:
        return orjson.dumps({"format": FORMAT, **asdict(self)}, option=orjson.OPT_SORT_KEYS)

    def to_json(self, key: ChainKey) -> bytes:
        document = {"format": FORMAT, **asdict(self), "mac": key.mac(self._signed_bytes())}
        return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


def _parse(data: bytes, key: ChainKey, path: Path) -> ExportedHead:
    try:
        document = orjson.loads(data)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ValueError("not an audit head file")
        head = ExportedHead(
            store_id=str(document["store_id"]), store=str(document["store"]), seq=int(document["seq"]),
            hash=str(document["hash"]), keyed_from=int(document["keyed_from"]), key_id=str(document["key_id"]),
            written_at=float(document["written_at"]),
        )
        mac = str(document["mac"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise HeadFileError(f"the exported head {path} is not readable ({exc})") from None
    if head.key_id != key.key_id:
        raise HeadFileError(
            f"the exported head {path} was written with another chain key (key id {head.key_id}; this key is "
            f"{key.key_id})"
        )
    if key.mac(head._signed_bytes()) != mac:
        raise HeadFileError(f"the exported head {path} was altered: its MAC does not match")
    return head


def read_exported_head(path: Path, key: ChainKey) -> ExportedHead:
    """The head in `path`, checked against `key` (FileNotFoundError when there is none)."""
    with open(path, "rb") as handle:
        data = handle.read(_MAX_FILE_BYTES + 1)
    if len(data) > _MAX_FILE_BYTES:
        raise HeadFileError(f"the exported head {path} is too large to be one")
    return _parse(data, key, path)


def export_head(path: Path, head: StoredHead, store: str, key: ChainKey, written_at: float) -> bool:
    """Write `head` to `path` unless the file already holds a later head of the same store; True if written."""
    with contextlib.suppress(FileNotFoundError, HeadFileError):
        current = read_exported_head(path, key)
        if current.store_id == head.store_id and current.seq > head.seq:
            return False
    exported = ExportedHead(head.store_id, store, head.seq, head.hash, head.keyed_from, head.key_id, written_at)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".audit-head-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(exported.to_json(key))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return True
