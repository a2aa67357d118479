"""The evaluation report as text: one table of headline scores, then per-detector details."""

from __future__ import annotations

from typing import Any

__all__ = ["format_report"]

_COLUMNS = (
    ("detector", 12), ("split", 5), ("items", 5), ("prec", 6), ("recall", 6), ("F1", 6),
    ("FPR ben", 7), ("FPR look", 8), ("p50 ms", 7), ("p99 ms", 7),
)


def _number(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _row(cells: list[str]) -> str:
    return "  ".join(cell.rjust(width) if index else cell.ljust(width)
                     for index, (cell, (_, width)) in enumerate(zip(cells, _COLUMNS, strict=True)))


def _latency_line(label: str, latency: dict[str, Any] | None, target_ms: float) -> str:
    if not latency:
        return f"  {label}: not measured"
    verdict = "within" if latency["p50_ms"] < target_ms else "OVER"
    return (
        f"  {label}: p50 {latency['p50_ms']:.3f} ms, p99 {latency['p99_ms']:.3f} ms "
        f"({verdict} the {target_ms:g} ms target)"
    )


def format_report(report: dict[str, Any]) -> str:
    """Human-readable summary of a report from `eval.harness.run_eval`."""
    lines = [_row([name for name, _ in _COLUMNS])]
    details = []
    targets = report["targets_ms"]
    for name, entry in sorted(report["detectors"].items()):
        if entry["status"] != "ok":
            details.append(f"{name}: skipped ({entry.get('reason', '')})")
            if entry.get("request_latency"):
                details.append(_latency_line("typical request", entry["request_latency"], targets["detector_p50"]))
            continue
        for split in (report["headline_split"], "dev", report.get("cross_split", "cross")):
            scores = entry["splits"].get(split)
            if not scores or not scores["items"]:
                continue
            lines.append(_row([
                name, split, str(scores["items"]), _number(scores["precision"]), _number(scores["recall"]),
                _number(scores["f1"]), _number(scores["benign_fpr"]), _number(scores["lookalike_fpr"]),
                _number(scores["latency_p50_ms"]), _number(scores["latency_p99_ms"]),
            ]))
        headline = entry["splits"][report["headline_split"]]
        details.append(f"{name} ({entry['class']}, {entry['corpus']}, {entry['seconds']:.2f} s):")
        details.append(_latency_line("typical request", entry.get("request_latency"), targets["detector_p50"]))
        perfect = []
        for kind, kind_scores in headline["kinds"].items():
            found = kind_scores["kind_found"]
            if kind_scores["recall"] == 1.0 and found in (1.0, 0.0):
                perfect.append(kind)
                continue
            details.append(
                f"  kind {kind}: recall {_number(kind_scores['recall'])} over {kind_scores['items']} item(s)"
                + (f", reported as {kind} {_number(found)}" if found else "")
            )
        if perfect:
            details.append(f"  recall 1.000 on {len(perfect)} kind(s): {', '.join(perfect)}")
        for hook, hook_scores in headline["hooks"].items():
            details.append(
                f"  {hook}: {hook_scores['items']} item(s), recall {_number(hook_scores['recall'])}, "
                f"FPR {_number(hook_scores['fpr'])}"
            )
        cross = entry["splits"].get(report.get("cross_split", "cross"))
        if cross and cross["items"]:
            for kind, kind_scores in cross["kinds"].items():
                if kind_scores["recall"] != 1.0:
                    details.append(
                        f"  cross-source kind {kind}: recall {_number(kind_scores['recall'])} over "
                        f"{kind_scores['items']} item(s)"
                    )
            for hook, hook_scores in cross["hooks"].items():
                details.append(
                    f"  cross-source {hook}: {hook_scores['items']} item(s), recall {_number(hook_scores['recall'])}, "
                    f"FPR {_number(hook_scores['fpr'])}"
                )
            for source, source_scores in cross.get("sources", {}).items():
                details.append(
                    f"  cross-source from {source}: {source_scores['positives']} positive(s), recall "
                    f"{_number(source_scores['recall'])}; {source_scores['negatives']} negative(s), "
                    f"FPR {_number(source_scores['fpr'])}"
                )
        if entry["corpus_error_count"]:
            count, first = entry["corpus_error_count"], entry["corpus_errors"][0]
            details.append(f"  {count} malformed corpus line(s), first: {first}")
        if entry["item_errors"]:
            details.append(f"  policy errors, first: {entry['item_errors'][0]}")
    default_set = report["default_set"]
    request = report["typical_request"]
    details.append(
        f"default set ({', '.join(default_set['detectors']) or 'none built'}"
        + (f"; missing: {', '.join(default_set['missing'])}" if default_set["missing"] else "")
        + f"), typical request of a {request['prompt_chars']}-char prompt and {request['offered_tools']} tools:"
    )
    details.append(_latency_line("whole request check", default_set.get("request_latency"), targets["default_set_p50"]))
    details.append(f"evaluated in {report['seconds']:.2f} s")
    return "\n".join([*lines, "", *details])
