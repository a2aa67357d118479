"""Start the fake provider in a subprocess on a free port and talk to its control endpoints."""

from __future__ import annotations

import base64
import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson

from .scenarios import SCENARIO_HEADER

READY_PREFIX = b"FAKE_PROVIDER_READY "
REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeProviderProcess:
    """A running fake provider; use as a context manager or call :meth:`stop`."""

    def __init__(self, proc: subprocess.Popen[bytes], host: str, port: int) -> None:
        self.proc = proc
        self.host = host
        self.port = port
        self._http: httpx.Client | None = None

    @property
    def base_url(self) -> str:
        """Root URL (Gemini and Anthropic SDK base URL)."""
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """OpenAI SDK base URL (``.../v1``)."""
        return self.base_url + "/v1"

    @staticmethod
    def scenario_header(**fields: Any) -> dict[str, str]:
        """Headers selecting a per-request scenario, e.g. ``extra_headers=fp.scenario_header(reply="x")``."""
        return {SCENARIO_HEADER: orjson.dumps(fields).decode()}

    @property
    def http(self) -> httpx.Client:
        """An httpx client bound to the server root."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.base_url, timeout=10.0)
        return self._http

    def _get(self, path: str) -> Any:
        resp = self.http.get(path)
        resp.raise_for_status()
        return resp.json()

    def requests(self) -> list[dict[str, Any]]:
        """Recorded requests, oldest first."""
        return self._get("/_fake/requests")  # type: ignore[no-any-return]

    def last(self) -> dict[str, Any] | None:
        """The last recorded request, or None."""
        resp = self.http.get("/_fake/last")
        return None if resp.status_code == 404 else resp.json()

    @staticmethod
    def body_of(record: dict[str, Any]) -> bytes:
        """The exact body bytes of a recorded request."""
        return base64.b64decode(record["body_b64"])

    def reset(self) -> None:
        """Clear recorded requests, stream events, sticky script and counters."""
        self.http.post("/_fake/reset").raise_for_status()

    def script(self, **fields: Any) -> dict[str, Any]:
        """Set the sticky scenario (no fields clears it)."""
        resp = self.http.post("/_fake/script", content=orjson.dumps(fields))
        resp.raise_for_status()
        return resp.json()  # type: ignore[no-any-return]

    def stream_events(self) -> list[dict[str, Any]]:
        """Recorded stream outcomes."""
        return self._get("/_fake/stream_events")  # type: ignore[no-any-return]

    def wait_stream_events(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Poll until at least ``count`` stream outcomes are recorded (or timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            events = self.stream_events()
            if len(events) >= count or time.monotonic() > deadline:
                return events
            time.sleep(0.01)

    def stats(self) -> dict[str, Any]:
        """Server CPU time and request count (for checking it is not the benchmark's bottleneck)."""
        return self._get("/_fake/stats")  # type: ignore[no-any-return]

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server process (kill if it does not exit in time)."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> FakeProviderProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_fake_provider(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    timeout: float = 15.0,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> FakeProviderProcess:
    """Start ``python -m tests.fake_provider`` and wait for its ready line (port 0 = any free port)."""
    cmd = [sys.executable, "-m", "tests.fake_provider", "--host", host, "--port", str(port), *extra_args]
    proc_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=proc_env)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"fake provider did not start (exit={proc.returncode}, output={buf!r})")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.1))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                continue
            buf += chunk
    line = buf.split(b"\n", 1)[0]
    if not line.startswith(READY_PREFIX):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"unexpected fake provider output: {line!r}")
    actual_port = int(line.rsplit(b":", 1)[1])
    return FakeProviderProcess(proc, host, actual_port)
