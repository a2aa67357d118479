"""`python -m eval`: score the detectors on their corpora, write the JSON report, and optionally
check or rewrite the regression floors (see eval/README.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from eval.docs_table import DEFAULT_DOC, write_table
from eval.floors import DEFAULT_FLOORS_FILE, DEFAULT_MARGIN, check_floors, load_floors, make_floors, write_floors
from eval.harness import DEFAULT_CORPUS_DIR, DEFAULT_DETECTORS_FILE, EVAL_DIR, EvalConfigError, run_eval
from eval.report import format_report
from eval.sources import DEFAULT_SOURCES_FILE, write_sources

DEFAULT_OUTPUT = EVAL_DIR / "reports" / "latest.json"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__)
    parser.add_argument("--corpus-dir", type=Path, default=DEFAULT_CORPUS_DIR, help="folder of <detector>.jsonl")
    parser.add_argument(
        "--cross-dir", type=Path, default=None,
        help="folder of held-out <detector>.jsonl (split cross); default eval/cross with the default corpus",
    )
    parser.add_argument("--detectors", type=Path, default=DEFAULT_DETECTORS_FILE, help="detector -> policy config")
    parser.add_argument("--only", action="append", metavar="DETECTOR", help="evaluate only this detector (repeatable)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where the JSON report goes")
    parser.add_argument("--floors", type=Path, default=DEFAULT_FLOORS_FILE, help="the regression floors file")
    parser.add_argument("--check", action="store_true", help="exit 1 when a score falls below its floor")
    parser.add_argument("--write-floors", action="store_true", help="rewrite the floors a margin under today's scores")
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN, help="margin for --write-floors")
    parser.add_argument("--repetitions", type=int, default=300, help="timed runs of the typical request")
    parser.add_argument("--write-sources", action="store_true", help="regenerate eval/SOURCES.md and exit")
    parser.add_argument(
        "--write-docs", action="store_true", help="rewrite the precision/recall table of docs/detectors.md"
    )
    parser.add_argument("--quiet", action="store_true", help="print only problems")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    if arguments.write_sources:
        changed = write_sources()
        print(f"{DEFAULT_SOURCES_FILE}: {'rewritten' if changed else 'already up to date'}")
        return 0
    only = set(arguments.only) if arguments.only else None
    if arguments.write_docs and only:
        print("python -m eval: --write-docs needs every detector's scores; run it without --only", file=sys.stderr)
        return 2
    try:
        report = run_eval(
            arguments.corpus_dir, arguments.detectors, only=only, repetitions=arguments.repetitions,
            cross_dir=arguments.cross_dir,
        )
    except EvalConfigError as exc:
        print(f"python -m eval: {exc}", file=sys.stderr)
        return 2
    if not arguments.quiet:
        print(format_report(report))
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
    if not arguments.quiet:
        print(f"report: {arguments.output}")
    status = 0
    if arguments.write_docs:
        changed = write_table(report)
        print(f"{DEFAULT_DOC}: table {'rewritten' if changed else 'already up to date'}")
    if arguments.write_floors:
        previous = load_floors(arguments.floors)
        floors = make_floors(report, arguments.margin)
        for name, limits in previous.get("detectors", {}).items():
            if name not in floors["detectors"]:
                # A detector that could not be evaluated today keeps its floors rather than losing them.
                floors["detectors"][name] = limits
                print(f"warning: {name} was not evaluated; its previous floors are kept", file=sys.stderr)
        write_floors(floors, arguments.floors)
        print(f"floors: {arguments.floors} ({', '.join(sorted(floors['detectors'])) or 'no detector'})")
    if arguments.check:
        failures = check_floors(report, load_floors(arguments.floors), only)
        for failure in failures:
            print(f"REGRESSION {failure}", file=sys.stderr)
        if failures:
            status = 1
        elif not arguments.quiet:
            print("floors: all met")
    return status


if __name__ == "__main__":
    sys.exit(main())
