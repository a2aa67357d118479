"""How the suite spends its two workers: bytecode compiled once for the many processes the tests start,
and the slowest test files handed out first.

`pytest -n 2 --dist loadfile` gives each worker whole files in collection order; a slow file collected
last runs alone while the other worker idles. Files are therefore ordered by the seconds they took in
the previous run (kept in pytest's cache), longest first; a file without that record goes first if it
starts processes or servers, last if it runs in-process. The order of the tests inside a file never
changes.
"""

from __future__ import annotations

import compileall
from collections import defaultdict
from pathlib import Path

import pytest

__all__ = ["FileTimes", "compile_sources", "order_by_cost"]

ROOT = Path(__file__).resolve().parents[1]
CACHE_KEY = "capsem/file_seconds"


def compile_sources() -> None:
    """Write the bytecode of the package and of the test helpers once, before the workers start.

    Every proxy, fake provider and command line the tests start is a new Python process; with
    PYTHONDONTWRITEBYTECODE set (or a fresh checkout raced by two workers) each of them would compile
    the package's sources again (~0.2 s of CPU a start). Up-to-date files are skipped."""
    for package in ("capsem_proxy", "tests", "examples"):
        compileall.compile_dir(ROOT / package, quiet=2, workers=1)


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def order_by_cost(config: pytest.Config, items: list[pytest.Item], starts_processes: set[str]) -> None:
    """Reorder `items` in place, file by file, longest file first (see the module's docstring).

    `starts_processes` names the files with a test that starts a process or a server."""
    cache = getattr(config, "cache", None)  # None with -p no:cacheprovider
    recorded: dict[str, float] = cache.get(CACHE_KEY, {}) if cache is not None else {}
    first_seen: dict[str, int] = {}
    for index, item in enumerate(items):
        first_seen.setdefault(_file_of(item.nodeid), index)

    def cost(item: pytest.Item) -> tuple[float, int]:
        path = _file_of(item.nodeid)
        # A file not timed yet: first if it starts processes (likely slow), else last.
        unknown = float("inf") if path in starts_processes else 0.0
        return (-recorded.get(path, unknown), first_seen[path])

    items.sort(key=cost)


class FileTimes:
    """Sums each file's test durations as the reports arrive (from every worker) and keeps them in the
    cache at the end of the session, for the next run's order."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[_file_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # A run narrowed by -m or -k, stopped early or interrupted timed only part of some files.
        narrowed = self.config.option.markexpr or self.config.option.keyword or session.shouldstop
        finished = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        cache = getattr(self.config, "cache", None)
        if cache is None or not self.seconds or narrowed or not finished:
            return
        recorded: dict[str, float] = cache.get(CACHE_KEY, {})
        recorded.update({path: round(seconds, 2) for path, seconds in self.seconds.items()})
        cache.set(CACHE_KEY, recorded)
