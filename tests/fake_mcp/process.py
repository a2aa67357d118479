"""Start the fake MCP server in a subprocess and drive its control routes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
_READY = "FAKE_MCP_READY "


class FakeMcpProcess:
    """A running fake MCP server over HTTP."""

    def __init__(self, process: subprocess.Popen[str], base_url: str) -> None:
        self.process = process
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=10.0)

    @property
    def url(self) -> str:
        """The MCP endpoint."""
        return self.base_url + "/mcp"

    def calls(self) -> list[dict[str, Any]]:
        """Every tool call the server received, oldest first."""
        return self.http.get("/_fake/calls").json()

    def headers(self) -> list[dict[str, str]]:
        """The headers of each POST the server received, oldest first."""
        return self.http.get("/_fake/headers").json()

    def reset(self) -> None:
        self.http.post("/_fake/reset").raise_for_status()

    def misbehave(self, mode: str, delay: float = 0.0) -> None:
        self.http.post("/_fake/mode", json={"mode": mode, "delay": delay}).raise_for_status()

    def script(self, method: str, result: Any) -> None:
        """Answer every request of `method` with `result` (until reset)."""
        self.http.post("/_fake/script", json={"method": method, "result": result}).raise_for_status()

    def set_echo_description(self, description: str) -> None:
        self.http.post("/_fake/echo_description", json={"description": description}).raise_for_status()

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_fake_mcp(*options: str, timeout: float = 30.0) -> FakeMcpProcess:
    """Start `python -m tests.fake_mcp` with `options` (--json, --stateless) and wait until it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_mcp", *options], cwd=REPO_ROOT, stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = process.stdout.readline()
    if not line.startswith(_READY):
        process.kill()
        raise RuntimeError(f"the fake MCP server did not start: {line!r}")
    fake = FakeMcpProcess(process, line[len(_READY):].strip())
    while time.monotonic() < deadline:
        try:
            fake.http.get("/_fake/calls")
            return fake
        except httpx.HTTPError:
            time.sleep(0.05)
    fake.stop()
    raise RuntimeError("the fake MCP server did not answer")
