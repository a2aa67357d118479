"""Regression floors: the scores each detector must keep (eval/floors.json), checked by
`python -m eval --check` and by the test suite, and rewritten from a report by `--write-floors`.

Floors sit a margin under the scores measured on the `test` split: quality scores (precision,
recall, F1) `margin` below, false-positive rates `margin` above (`2 * margin` for the small
look-alike sets), and latency on the typical request at `LATENCY_FACTOR` times the measured p50
(at least `LATENCY_SLACK_MS` more), since CI machines are slower and noisier than a workstation.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "CROSS_KEY",
    "DEFAULT_FLOORS_FILE",
    "DEFAULT_MARGIN",
    "LATENCY_FACTOR",
    "LATENCY_SLACK_MS",
    "check_floors",
    "load_floors",
    "make_floors",
    "write_floors",
]

DEFAULT_FLOORS_FILE = Path(__file__).resolve().parent / "floors.json"
DEFAULT_MARGIN = 0.02
LATENCY_FACTOR = 5.0
LATENCY_SLACK_MS = 1.0
# Key, in a detector's floors, of the floors on the held-out (`cross`) sources.
CROSS_KEY = "cross"
# floor key -> (score in the headline split, True when the score must stay at or above the floor)
_QUALITY = {
    "min_precision": ("precision", True),
    "min_recall": ("recall", True),
    "min_f1": ("f1", True),
    "max_benign_fpr": ("benign_fpr", False),
    "max_lookalike_fpr": ("lookalike_fpr", False),
}


# Rounded to 6 places before flooring, so that 0.75 - 0.02 floors to 0.730, not 0.729.
def _down(value: float, margin: float) -> float:
    return max(0.0, math.floor(round((value - margin) * 1000, 6)) / 1000)


def _up(value: float, margin: float) -> float:
    return min(1.0, math.ceil(round((value + margin) * 1000, 6)) / 1000)


def _latency_ceiling(p50_ms: float) -> float:
    return math.ceil(max(p50_ms * LATENCY_FACTOR, p50_ms + LATENCY_SLACK_MS) * 10) / 10


def _quality_floors(scores: dict[str, Any], margin: float) -> dict[str, Any]:
    floors: dict[str, Any] = {}
    for key, (score, at_least) in _QUALITY.items():
        value = scores.get(score)
        if value is None:
            continue
        extra = margin * 2 if score == "lookalike_fpr" else margin
        floors[key] = _down(value, extra) if at_least else _up(value, extra)
    return floors


def make_floors(report: dict[str, Any], margin: float = DEFAULT_MARGIN) -> dict[str, Any]:
    """Floors a margin under the report's scores, for every detector it evaluated: on the headline
    split, and under `cross` on the held-out sources when the detector has items from them."""
    split = report["headline_split"]
    cross_split = report.get("cross_split", "cross")
    detectors: dict[str, Any] = {}
    for name, entry in sorted(report["detectors"].items()):
        if entry.get("status") != "ok":
            continue
        floors = _quality_floors(entry["splits"][split], margin)
        latency = entry.get("request_latency")
        if latency:
            floors["max_p50_ms"] = _latency_ceiling(latency["p50_ms"])
        cross = entry["splits"].get(cross_split)
        if cross and cross["items"]:
            floors[CROSS_KEY] = _quality_floors(cross, margin)
        detectors[name] = floors
    result: dict[str, Any] = {
        "about": (
            f"Regression floors on the '{split}' split, written by `python -m eval --write-floors` "
            f"(margin {margin}; latency x{LATENCY_FACTOR:g}, at least +{LATENCY_SLACK_MS:g} ms). "
            "Checked by `python -m eval --check` and tests/test_eval_regression.py."
        ),
        "split": split,
        "cross_split": cross_split,
        "detectors": detectors,
    }
    default_latency = report.get("default_set", {}).get("request_latency")
    if default_latency:
        result["default_set"] = {
            "detectors": report["default_set"]["detectors"],
            "max_p50_ms": _latency_ceiling(default_latency["p50_ms"]),
        }
    return result


def check_floors(
    report: dict[str, Any], floors: dict[str, Any], only: set[str] | None = None, *, latency: bool = True
) -> list[str]:
    """Every floor the report breaks, as readable lines naming the detector and the score. With
    `latency=False` the p50 ceilings are left out: wall-clock time on a shared machine says nothing
    about a regression, so the test suite checks quality and `python -m eval --check` checks both."""
    failures = []
    split = floors.get("split", report["headline_split"])
    for name, limits in sorted(floors.get("detectors", {}).items()):
        if only and name not in only:
            continue
        entry = report["detectors"].get(name)
        if entry is None or entry.get("status") != "ok":
            reason = "not in the report" if entry is None else entry.get("reason", entry.get("status"))
            failures.append(f"{name}: not evaluated ({reason})")
            continue
        if entry.get("corpus_error_count"):
            failures.append(f"{name}: {entry['corpus_error_count']} malformed corpus line(s), first: "
                            f"{entry['corpus_errors'][0]}")
        scores = entry["splits"][split]
        if entry.get("item_errors"):
            errors = entry["splits"]["all"]["errors"]
            failures.append(f"{name}: the policy raised on {errors} item(s), first: {entry['item_errors'][0]}")
        failures.extend(_quality_failures(name, split, scores, limits))
        cross_split = floors.get("cross_split", "cross")
        if CROSS_KEY in limits:
            cross = entry["splits"].get(cross_split) or {"items": 0}
            failures.extend(_quality_failures(f"{name} (cross-source)", cross_split, cross, limits[CROSS_KEY]))
        measured = entry.get("request_latency")
        if latency and "max_p50_ms" in limits and measured and measured["p50_ms"] > limits["max_p50_ms"]:
            failures.append(f"{name}: p50 latency {measured['p50_ms']:.3f} ms > ceiling {limits['max_p50_ms']} ms")
    default_limits = floors.get("default_set")
    default_latency = report.get("default_set", {}).get("request_latency")
    if (latency and default_limits and not only and default_latency
            and default_latency["p50_ms"] > default_limits["max_p50_ms"]):
        failures.append(
            f"default set: p50 latency {default_latency['p50_ms']:.3f} ms > ceiling {default_limits['max_p50_ms']} ms"
        )
    return failures


def _quality_failures(name: str, split: str, scores: dict[str, Any], limits: dict[str, Any]) -> list[str]:
    failures = []
    for key, (score, at_least) in _QUALITY.items():
        if key not in limits:
            continue
        value = scores.get(score)
        if value is None:
            failures.append(f"{name}: {score} is undefined on '{split}' (floor {key} {limits[key]})")
        elif at_least and value < limits[key]:
            failures.append(f"{name}: {score} {value:.4f} < floor {limits[key]:.4f}")
        elif not at_least and value > limits[key]:
            failures.append(f"{name}: {score} {value:.4f} > ceiling {limits[key]:.4f}")
    return failures


def load_floors(path: Path = DEFAULT_FLOORS_FILE) -> dict[str, Any]:
    """The floors file; empty floors when it does not exist yet."""
    if not path.exists():
        return {"detectors": {}}
    return orjson.loads(path.read_bytes())  # type: ignore[no-any-return]


def write_floors(floors: dict[str, Any], path: Path = DEFAULT_FLOORS_FILE) -> None:
    path.write_bytes(orjson.dumps(floors, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
