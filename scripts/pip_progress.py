"""Run a pip command and show what it is doing in a few lines instead of hundreds.

    python3 scripts/pip_progress.py --log .venv/install.log --label "installing" -- .venv/bin/pip install -e .

pip's whole output goes to the log file. On a terminal one status line is redrawn in place (the
phase, the package at hand, how many so far, the time spent); otherwise (CI logs, pipes) a line
is printed when the phase changes and every 20 seconds of one phase. When pip fails, its last
lines are printed and its exit status is returned, so nothing needed to fix it is hidden.

Standard library only: it runs with the system Python, before the virtualenv has anything in it.
pip has no option between --quiet (nothing) and its normal output (a few lines per package), so
its output is condensed here.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections import deque
from typing import IO

_COLLECTING = re.compile(r"^Collecting (?P<name>[A-Za-z0-9_.\-\[\]]+)")
_SATISFIED = re.compile(r"^Requirement already satisfied: (?P<name>[A-Za-z0-9_.\-\[\]]+)")
_DOWNLOADING = re.compile(r"^\s*Downloading (?P<what>\S+)(?: \((?P<size>[^)]+)\))?")
_BUILDING = re.compile(r"^\s*Building (?:wheel|editable) for (?P<name>\S+)")
_INSTALLING = re.compile(r"^Installing collected packages: (?P<names>.+)$")
_INSTALLED = re.compile(r"^Successfully installed (?P<names>.+)$")
_WARNING = re.compile(r"^\s*(WARNING|DEPRECATION):")
_HEARTBEAT_S = 20.0
_TAIL_LINES = 40


class Progress:
    """What pip has done so far, read line by line from its output."""

    def __init__(self, label: str, out: IO[str], on_terminal: bool) -> None:
        self.label = label
        self.out = out
        self.on_terminal = on_terminal
        self.started = time.monotonic()
        self.phase = "preparing"
        self.detail = ""
        self.packages: set[str] = set()
        self.installed = 0
        self.warnings = 0
        self._last_printed = 0.0
        self._printed_phase = ""

    def feed(self, line: str) -> None:
        """Update the state from one line of pip's output, then show it."""
        if (match := _COLLECTING.match(line)) or (match := _SATISFIED.match(line)):
            self._enter("resolving dependencies")
            self.packages.add(match["name"].lower())
            self.detail = match["name"]
        elif match := _DOWNLOADING.match(line):
            self._enter("resolving dependencies")
            name = match["what"].rsplit("/", 1)[-1]
            self.detail = f"downloading {name}" + (f" ({match['size']})" if match["size"] else "")
        elif match := _BUILDING.match(line):
            self._enter("building")
            self.detail = match["name"]
        elif match := _INSTALLING.match(line):
            self._enter("installing")
            self.detail = _count(len(match["names"].split(",")), "package")
        elif match := _INSTALLED.match(line):
            self.installed = len(match["names"].split())
        elif _WARNING.match(line):
            self.warnings += 1
        self._show()

    def _enter(self, phase: str) -> None:
        if phase != self.phase:
            self.phase = phase
            self.detail = ""

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.0f} s"

    def _status(self) -> str:
        """`phase, detail (count, time)`: the package at hand only where the line is redrawn."""
        if self.phase == "resolving dependencies" and self.packages:
            facts = f"{_count(len(self.packages), 'package')} so far, {self._elapsed()}"
        else:
            facts = self._elapsed()
        shown = self.detail if self.on_terminal or self.phase != "resolving dependencies" else ""
        return f"{self.phase}{', ' + shown if shown else ''} ({facts})"

    def _show(self) -> None:
        if self.on_terminal:
            width = max(20, _terminal_width() - 1)
            self.out.write("\r\x1b[K" + f"  {self.label}: {self._status()}"[:width])
            self.out.flush()
            return
        now = time.monotonic()
        if self.phase != self._printed_phase or now - self._last_printed >= _HEARTBEAT_S:
            still = "still " if self.phase == self._printed_phase else ""
            self.out.write(f"  {self.label}: {still}{self._status()}\n")
            self.out.flush()
            self._printed_phase, self._last_printed = self.phase, now

    def finish(self, status: int, log_path: str, tail: deque[str]) -> None:
        """The closing line; on failure, pip's last lines."""
        if self.on_terminal:
            self.out.write("\r\x1b[K")
        if status == 0:
            done = f"{_count(self.installed, 'package')} installed" if self.installed else "nothing new to install"
            warnings = f", {_count(self.warnings, 'warning')} in the log" if self.warnings else ""
            self.out.write(f"  {self.label}: done, {done} in {self._elapsed()}{warnings} (pip's output: {log_path})\n")
        else:
            self.out.write(f"  {self.label}: pip failed with exit status {status}; its last lines:\n")
            self.out.writelines(f"    {line}\n" for line in tail)
            self.out.write(f"  pip's whole output: {log_path}\n")
        self.out.flush()


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 100


def run(command: list[str], log_path: str, label: str, out: IO[str], on_terminal: bool) -> int:
    """Run `command`, logging everything it prints and showing its progress; its exit status."""
    progress = Progress(label, out, on_terminal)
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    environment = {**os.environ, "PIP_PROGRESS_BAR": "off", "PYTHONUNBUFFERED": "1"}
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        try:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                env=environment,
            )
        except OSError as exc:
            out.write(f"  {label}: cannot run {command[0]}: {exc.strerror or exc}\n")
            return 127
        assert process.stdout is not None
        for raw in process.stdout:
            line = raw.rstrip("\n")
            log.write(line + "\n")
            tail.append(line)
            progress.feed(line)
        status = process.wait()
    progress.finish(status, log_path, tail)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a pip command, showing its progress in a few lines.")
    parser.add_argument("--log", required=True, help="file that receives pip's whole output (appended)")
    parser.add_argument("--label", default="pip", help="what the command does, shown on each line")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    arguments = parser.parse_args(argv)
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    if not command:
        parser.error("give the command to run after --")
    return run(command, arguments.log, arguments.label, sys.stdout, sys.stdout.isatty())


if __name__ == "__main__":
    sys.exit(main())
