"""Runs the real HAProxy with the repository's deploy/haproxy.cfg in front of proxy processes."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.proxy_process import free_port

__all__ = ["LoadBalancer", "haproxy_binary", "start_load_balancer"]

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "haproxy.cfg"


def haproxy_binary() -> str:
    """The haproxy executable; skips (fails under CI) when it is not installed."""
    found = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if found is None:
        message = "haproxy is not installed (Debian package haproxy)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; .ci/run installs it")
        pytest.skip(message)
    return found


@dataclass
class LoadBalancer:
    process: subprocess.Popen[bytes]
    port: int
    stats_port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def server_status(self) -> dict[str, str]:
        """Each replica's status as HAProxy sees it (UP, DOWN, ...), from its stats CSV."""
        text = httpx.get(f"http://127.0.0.1:{self.stats_port}/stats;csv", timeout=5).text.lstrip("# ")
        return {row["svname"]: row["status"] for row in csv.DictReader(io.StringIO(text))
                if row["pxname"] == "capsem_proxies" and row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_status(self, server: str, prefix: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server_status().get(server, "").startswith(prefix):
                return
            time.sleep(0.2)
        raise AssertionError(f"{server} never became {prefix}: {self.server_status()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_load_balancer(replica_ports: list[int]) -> LoadBalancer:
    """HAProxy on a free port balancing over the replicas on 127.0.0.1 (at most two, as the config names)."""
    haproxy = haproxy_binary()
    port, stats_port = free_port(), free_port()
    env = {
        **os.environ,
        "CAPSEM_LB_PORT": str(port),
        "CAPSEM_LB_STATS_PORT": str(stats_port),
        **{f"CAPSEM_PROXY_{index}": f"127.0.0.1:{replica}" for index, replica in enumerate(replica_ports, start=1)},
    }
    log_path = Path(tempfile.mkdtemp(prefix="capsem-haproxy-")) / "haproxy.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen([haproxy, "-db", "-f", str(CONFIG)], env=env, stdout=log, stderr=subprocess.STDOUT)
    balancer = LoadBalancer(process, port, stats_port, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"haproxy exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if all(status.startswith("UP") for status in balancer.server_status().values()):
                return balancer
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    balancer.stop()
    raise RuntimeError(f"haproxy never saw every replica up:\n{log_path.read_text()}")
