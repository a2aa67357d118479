"""A headless Chromium for browser tests: the system's own build (Debian's `chromium` package) driven
by Playwright, offline, with a fresh profile each time. Missing Chromium skips the test on a laptop
and fails it under CI (CI=true)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = ["CHROMIUM_ARGS", "artifact_path", "chromium_context", "find_chromium", "require_chromium"]

REPO_ROOT = Path(__file__).resolve().parents[1]
# No network of its own (updates, sync, QUIC probes), no GPU, no sandbox (containers run as root).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def find_chromium() -> str | None:
    """The Chromium executable: $CAPSEM_PROXY_CHROMIUM, else the distribution's package."""
    configured = os.environ.get("CAPSEM_PROXY_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for candidate in _CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return shutil.which("chromium")


def require_chromium() -> str:
    """The Chromium executable, or skip (fail under CI) with the command that installs it."""
    executable = find_chromium()
    if executable is not None:
        return executable
    message = "Chromium is not installed (apt-get install -y chromium, or set CAPSEM_PROXY_CHROMIUM)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI must provide it")
    pytest.skip(message)


@contextmanager
def chromium_context(executable: str, **options: object) -> Iterator[object]:
    """A Playwright BrowserContext of a headless Chromium with a throw-away profile; `options` go to
    Playwright's launch_persistent_context (timezone_id, locale, accept_downloads, ...)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="capsem-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS, **options
        )
        try:
            yield context
        finally:
            context.close()


def artifact_path(name: str) -> Path:
    """Where a test keeps a file for people to look at: $CAPSEM_PROXY_TEST_ARTIFACTS (default
    ./test-artifacts, git-ignored)."""
    folder = Path(os.environ.get("CAPSEM_PROXY_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
