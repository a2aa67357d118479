"""Reads and validates the evaluation corpora: one JSON-lines file per detector (eval/README.md).

A malformed line never stops the evaluation: it is reported with its file and line number and
left out, and the detector's result says so (the floors check fails on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["CATEGORIES", "HOOKS", "SPLITS", "Corpus", "Item", "load_corpora", "load_corpus"]

HOOKS = ("on_model_call", "on_tool_call", "on_tool_response", "on_model_response")
# `cross` items come from sources and generators never used to tune or train a detector (eval/cross/).
SPLITS = ("dev", "test", "cross")
CATEGORIES = ("positive", "benign_lookalike", "benign")
# Fields each hook's items must carry, with their JSON type.
_HOOK_FIELDS: dict[str, tuple[tuple[str, type], ...]] = {
    "on_model_call": (("text", str),),
    "on_model_response": (("text", str),),
    "on_tool_call": (("tool", dict), ("args", dict)),
    "on_tool_response": (("tool", dict), ("response", object)),
}
_COMMON_FIELDS: tuple[tuple[str, type], ...] = (
    ("id", str), ("detector", str), ("split", str), ("hook", str), ("label", bool), ("kinds", list),
    ("category", str), ("source", str),
)


@dataclass(frozen=True, slots=True)
class Item:
    """One labelled case; `fields` is the whole JSON object (hook-specific fields included)."""

    id: str
    detector: str
    split: str
    hook: str
    label: bool
    kinds: tuple[str, ...]
    category: str
    source: str
    fields: dict[str, Any]


@dataclass(slots=True)
class Corpus:
    """The valid items of one corpus file and what was wrong with the others."""

    detector: str
    path: Path
    items: list[Item] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _problem(record: Any, detector: str) -> str | None:
    """Why `record` is not a valid item of `detector`'s corpus, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for name, kind in _COMMON_FIELDS:
        if not isinstance(record.get(name), kind):
            return f"'{name}' is missing or not a {kind.__name__}"
    if record["detector"] != detector:
        return f"detector '{record['detector']}' in the corpus of '{detector}'"
    if record["split"] not in SPLITS:
        return f"split '{record['split']}' is not one of {', '.join(SPLITS)}"
    if record["hook"] not in HOOKS:
        return f"hook '{record['hook']}' is not one of {', '.join(HOOKS)}"
    if record["category"] not in CATEGORIES:
        return f"category '{record['category']}' is not one of {', '.join(CATEGORIES)}"
    if record["label"] != (record["category"] == "positive"):
        return f"label {str(record['label']).lower()} does not match category '{record['category']}'"
    if not all(isinstance(kind, str) for kind in record["kinds"]):
        return "'kinds' must hold strings"
    for name, kind in _HOOK_FIELDS[record["hook"]]:
        if name not in record or not isinstance(record[name], kind):
            return f"{record['hook']} items need '{name}'" + ("" if kind is object else f" ({kind.__name__})")
    if "tool" in record and not isinstance(record["tool"].get("name"), str):
        return "'tool' needs a 'name'"
    return None


def load_corpus(path: Path, detector: str | None = None) -> Corpus:
    """Every valid item of one corpus file, in file order; invalid lines become errors."""
    detector = detector or path.stem
    corpus = Corpus(detector, path)
    seen: set[str] = set()
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        corpus.errors.append(f"{path}: {exc.strerror or exc}")
        return corpus
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            corpus.errors.append(f"{path}:{number}: invalid JSON ({exc})")
            continue
        problem = _problem(record, detector)
        if problem is None and record["id"] in seen:
            problem = f"duplicate id '{record['id']}'"
        if problem is not None:
            corpus.errors.append(f"{path}:{number}: {problem}")
            continue
        seen.add(record["id"])
        corpus.items.append(
            Item(
                id=record["id"], detector=detector, split=record["split"], hook=record["hook"],
                label=record["label"], kinds=tuple(record["kinds"]), category=record["category"],
                source=record["source"], fields=record,
            )
        )
    return corpus


def load_corpora(directory: Path) -> dict[str, Corpus]:
    """Every `<detector>.jsonl` of `directory`, by detector name (none when it does not exist).

    A detector may have further files `<detector>.<part>.jsonl` (held-out items written by another
    generator); their items join that detector's corpus, whose `path` stays `<detector>.jsonl`, and
    an id that appears in two of its files is an error."""
    if not directory.is_dir():
        return {}
    corpora: dict[str, Corpus] = {}
    # `<detector>.jsonl` first, then its parts in name order.
    for path in sorted(directory.glob("*.jsonl"), key=lambda p: (p.name.split(".")[0], p.name.count("."), p.name)):
        detector = path.name.split(".")[0]
        part = load_corpus(path, detector)
        corpus = corpora.get(detector)
        if corpus is None:
            corpora[detector] = part
            continue
        ids = {item.id for item in corpus.items}
        corpus.items.extend(item for item in part.items if item.id not in ids)
        corpus.errors.extend(part.errors)
        corpus.errors.extend(f"{path}: duplicate id '{item.id}'" for item in part.items if item.id in ids)
    return corpora
