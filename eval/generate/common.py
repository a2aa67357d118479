"""What every corpus generator does once its items are made: number them, split them into dev and
test by a hash of their group, write them as JSONL and summarize what was written."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).resolve().parents[1] / "corpus"
DEV_PERCENT = 35
"""Share of groups (not items) that go to `dev`; the rest are `test`."""

GROUP_KEY = "_group"
"""Key a generator puts on each item to name its group; removed when the item is numbered."""


def split_of(group: str, dev_percent: int = DEV_PERCENT, salt: str = "") -> str:
    """`dev` or `test` for a group, from a hash of the group (prefixed by `salt:` when a salt is given)."""
    key = f"{salt}:{group}" if salt else group
    bucket = int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % 100
    return "dev" if bucket < dev_percent else "test"


def number_items(detector: str, items: Iterable[dict[str, Any]],
                 split: Callable[[str], str] = split_of) -> list[dict[str, Any]]:
    """Each item as a corpus record: its id, detector and split first, then its own fields.

    The split comes from the item's `GROUP_KEY`, which the record does not keep.
    """
    records = []
    for number, item in enumerate(items, start=1):
        fields = {key: value for key, value in item.items() if key != GROUP_KEY}
        records.append({"id": f"{detector}-{number:05d}", "detector": detector, "split": split(item[GROUP_KEY]),
                        **fields})
    return records


def number_cross_items(detector: str, items: Iterable[dict[str, Any]],
                       key: Callable[[dict[str, Any]], str], prefix: str = "x") -> list[dict[str, Any]]:
    """Items of a held-out (`cross`) corpus as records numbered `{detector}-x00001`…, keeping the
    first of items that share a `key` (their text, or their response when they have none). A
    detector's second held-out file takes another `prefix`, so ids stay unique across its files."""
    seen: set[str] = set()
    records = []
    for item in items:
        item_key = key(item)
        if item_key in seen:
            continue
        seen.add(item_key)
        number = len(records) + 1
        records.append({"id": f"{detector}-{prefix}{number:05d}", "detector": detector, "split": "cross", **item})
    return records


def write_labelled_corpus(path: Path, items: list[dict[str, Any]]) -> None:
    """Write a corpus and print how many items it holds, positive and negative."""
    write_corpus(path, items)
    positives = sum(item["label"] for item in items)
    print(f"{path}: {len(items)} items, {positives} positive, {len(items) - positives} negative")


def write_corpus(path: Path, items: Iterable[dict[str, Any]]) -> None:
    """Write items as JSONL, one per line with `\\n` endings, so a rebuilt corpus is byte-identical."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for item in items:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")


def lookalike_summary(path: Path, items: list[dict[str, Any]]) -> str:
    """One line counting positives, benign items, look-alikes (the rest) and test items."""
    positives = sum(item["label"] for item in items)
    benign = sum(item["category"] == "benign" for item in items)
    test = sum(item["split"] == "test" for item in items)
    return (f"{path}: {len(items)} items, {positives} positive, {benign} benign, "
            f"{len(items) - positives - benign} look-alike, {test} in test")


def category_summary(path: Path, items: list[dict[str, Any]]) -> str:
    """One line counting items per category and the share that went to test."""
    test = sum(item["split"] == "test" for item in items)
    by_category = {c: sum(item["category"] == c for item in items) for c in ("positive", "benign_lookalike", "benign")}
    return f"wrote {len(items)} items to {path} ({by_category}; {test / len(items):.1%} test)"
