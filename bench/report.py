"""Result rows, verdicts, the printed table and the JSON file."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

__all__ = ["Row", "Verdict", "paired_ratio", "render_table", "render_verdicts", "round_ratios", "write_json"]


@dataclass(slots=True)
class Row:
    """One table row: a metric measured on several targets.

    ``compare`` is ``("diff", a, b)`` for ``a - b`` or ``("ratio", a, b)`` for ``a ÷ b``, shown in
    the last column.
    """

    section: str
    label: str
    unit: str
    values: dict[str, float | None]
    compare: tuple[str, str, str] | None = None
    digits: int = 3
    key: str = ""

    def compared(self) -> float | None:
        """The value of the last column."""
        if self.compare is None:
            return None
        kind, a, b = self.compare
        va, vb = self.values.get(a), self.values.get(b)
        if va is None or vb is None or not math.isfinite(va) or not math.isfinite(vb):
            return None
        if kind == "diff":
            return va - vb
        return va / vb if vb else None


def round_ratios(rounds: Sequence[Any], base_rounds: Sequence[Any], value: Callable[[Any], Any]) -> list[float]:
    """``value`` of each round of one target ÷ that of the same round of another.

    The runner measures the two one after the other in every round (alternating their order), so a
    slow drift of the machine lands on both sides of each ratio; the ratio of the two medians can
    pair one target's quiet round with the other's busy one. Rounds where either value is missing
    or zero are left out.
    """
    out = []
    for item, base in zip(rounds, base_rounds, strict=False):
        a, b = value(item), value(base)
        if isinstance(a, int | float) and isinstance(b, int | float) and a and b:
            out.append(a / b)
    return out


def paired_ratio(
    ratios: Sequence[float], value: float | None = None, base: float | None = None
) -> tuple[float | None, str]:
    """The median of per-round ratios (`round_ratios`) and their range ("1.02 to 1.17", empty with
    fewer than two); without any, ``value ÷ base`` (the ratio of the medians) when both are given."""
    if not ratios:
        return (value / base if value is not None and base else None), ""
    spread = f"{min(ratios):.2f} to {max(ratios):.2f}" if len(ratios) > 1 else ""
    return statistics.median(ratios), spread


@dataclass(slots=True)
class Verdict:
    """One target check: ``value`` against ``limit`` (lower is better)."""

    name: str
    value: float | None
    limit: float
    unit: str
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.value is None or not math.isfinite(self.value):
            return "N/A"
        return "PASS" if self.value <= self.limit else "MISS"


def _fmt(value: float | None, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _fmt_compare(row: Row) -> str:
    value = row.compared()
    if row.compare is None or value is None:
        return ""
    kind, a, b = row.compare
    if kind == "diff":
        return f"{value:+.{row.digits}f} ({a}-{b})"
    return f"{value:.2f}x ({a}÷{b})"


def columns_of(rows: Iterable[Row], order: Sequence[str]) -> list[str]:
    """Targets that have a value in some row, in ``order``."""
    present = {t for r in rows for t, v in r.values.items() if v is not None}
    return [t for t in order if t in present]


def render_table(rows: list[Row], order: Sequence[str]) -> str:
    """Fixed-width table: metric | one column per target | comparison."""
    targets = columns_of(rows, order)
    labels = [f"{r.label} ({r.unit})" if r.unit else r.label for r in rows]
    width = max([len("metric"), *(len(x) for x in labels)]) + 2
    col = max(10, *(len(t) + 2 for t in targets))
    header = "metric".ljust(width) + "".join(t.rjust(col) for t in targets) + "   compare"
    lines = [header, "-" * (len(header) + 24)]
    section = None
    for row, label in zip(rows, labels, strict=True):
        if row.section != section:
            section = row.section
            lines.append(f"[{section}]")
        cells = "".join(_fmt(row.values.get(t), row.digits).rjust(col) for t in targets)
        lines.append(label.ljust(width) + cells + "   " + _fmt_compare(row))
    return "\n".join(lines)


def render_verdicts(verdicts: list[Verdict]) -> str:
    """One line per target check."""
    lines = []
    for v in verdicts:
        value = "—" if v.value is None else f"{v.value:.3f}"
        detail = f"  [{v.detail}]" if v.detail else ""
        lines.append(f"{v.status:4}  {v.name}: {value} {v.unit} (target ≤ {v.limit:g} {v.unit}){detail}")
    return "\n".join(lines)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def write_json(path: Path, meta: dict, raw: dict, rows: list[Row], verdicts: list[Verdict]) -> None:
    """Everything measured, as JSON (non-finite numbers become null)."""
    data = {
        "meta": meta,
        "rows": [{**asdict(r), "compared": r.compared()} for r in rows],
        "verdicts": [{**asdict(v), "status": v.status} for v in verdicts],
        "raw": raw,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(_clean(data), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")
