"""Instructions per request of the proxy's own code, counted by callgrind: repeatable to ~0.1 %.

Wall-clock CPU on a shared or frequency-scaling machine drifts by tens of percent between runs;
instruction counts do not. This runs ``python -m bench.inprocess`` under ``valgrind --tool=callgrind``
twice, with the same warm-up and two request counts, and divides the difference of the totals by the
difference of the counts, so start-up, imports and warm-up cancel out::

    python -m bench.instructions --kind json                   # default config, OpenAI chat
    python -m bench.instructions --kind openai-stream --detectors
    python -m bench.instructions --target baseline --kind gemini-stream

The event-loop thread and the other threads (the audit writer) are reported apart. Needs valgrind;
the fake provider runs in its own process and is not counted.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["count_instructions", "main"]

_TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def _thread_totals(outdir: Path) -> dict[int, int]:
    """Instructions by thread number, from the files of one ``--separate-threads=yes`` run."""
    totals: dict[int, int] = {}
    for path in outdir.glob("callgrind.out*"):
        match = re.search(r"-(\d+)$", path.name)
        thread = int(match.group(1)) if match else 1
        found = _TOTALS.search(path.read_bytes())
        if found:
            totals[thread] = totals.get(thread, 0) + int(found.group(1))
    return totals


def count_instructions(inprocess_args: list[str], requests: int) -> dict[int, int]:
    """Run ``bench.inprocess`` with *requests* measured requests under callgrind; totals by thread."""
    outdir = Path(tempfile.mkdtemp(prefix="capsem-callgrind-"))
    try:
        command = ["valgrind", "--tool=callgrind", "--separate-threads=yes",
                   f"--callgrind-out-file={outdir}/callgrind.out", sys.executable, "-m", "bench.inprocess",
                   *inprocess_args, "--requests", str(requests)]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return _thread_totals(outdir)
    finally:
        shutil.rmtree(outdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("proxy", "baseline"), default="proxy")
    parser.add_argument("--kind", default="json", help="json, openai-stream, anthropic-stream or gemini-stream")
    parser.add_argument("--detectors", action="store_true", help="the four text detectors on")
    parser.add_argument("--config", default="{}", help="JSON of configuration sections over the defaults")
    parser.add_argument("--requests", type=int, default=400, help="the extra requests of the second run")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed")
    common = ["--target", args.target, "--kind", args.kind, "--config", args.config,
              "--warmup", str(args.warmup), "--concurrency", "16", *(["--detectors"] if args.detectors else [])]
    base = 100
    first = count_instructions(common, base)
    second = count_instructions(common, base + args.requests)
    loop = (second.get(1, 0) - first.get(1, 0)) / args.requests
    others = (sum(second.values()) - second.get(1, 0) - sum(first.values()) + first.get(1, 0)) / args.requests
    label = f"{args.target} {args.kind}{' +detectors' if args.detectors else ''}"
    print(f"{label}: {loop / 1000:.1f}k instructions/request on the event loop, "
          f"{others / 1000:.1f}k in other threads, {(loop + others) / 1000:.1f}k in all", flush=True)


if __name__ == "__main__":
    main()
