"""Starts the real proxy (`capsem-proxy run`) in a subprocess for integration tests and the benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

__all__ = ["ProxyProcess", "free_port", "start_proxy"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ProxyProcess:
    """A running proxy; `log_path` holds everything it printed."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL if the proxy has not exited after `timeout` seconds."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_proxy(
    upstream_base_url: str,
    config: dict | None = None,
    *,
    env: dict[str, str] | None = None,
    log_level: str = "debug",
    workers: int = 1,
    cpu: int | None = None,
    cwd: Path | None = None,
) -> ProxyProcess:
    """Start the proxy pointing every provider at `upstream_base_url`; wait until it is ready.
    It runs in a fresh temporary directory unless `cwd` names another (relative paths in a
    config are read from there)."""
    workdir = Path(tempfile.mkdtemp(prefix="capsem-proxy-test-"))
    port = free_port()
    settings = {"server": {"data_dir": str(workdir / "data"), "log_level": log_level, "access_log": True}}
    for section, values in (config or {}).items():
        if isinstance(values, dict):
            settings.setdefault(section, {}).update(values)
        else:
            settings[section] = values
    config_path = workdir / "proxy.yaml"
    config_path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    process_env = {
        **os.environ,
        "CAPSEM_PROXY_OPENAI_BASE_URL": f"{upstream_base_url}/v1",
        "CAPSEM_PROXY_GEMINI_BASE_URL": upstream_base_url,
        "CAPSEM_PROXY_ANTHROPIC_BASE_URL": upstream_base_url,
        **(env or {}),
    }
    command = [
        sys.executable, "-m", "capsem_proxy.cli", "run", "--config", str(config_path), "--port", str(port),
        "--workers", str(workers),
    ]
    if cpu is not None and Path("/usr/bin/taskset").exists():
        command = ["taskset", "-c", str(cpu), *command]
    log_path = workdir / "proxy.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - handed to the child process
    process = subprocess.Popen(
        command, stdout=log_file, stderr=subprocess.STDOUT, env=process_env, cwd=cwd or workdir
    )
    proxy = ProxyProcess(port=port, process=process, log_path=log_path, workdir=workdir, env=process_env)
    deadline = time.monotonic() + 60  # detectors load their tables at start: slow on a busy machine
    # One client for all the polls: a client per poll would cost more CPU than the proxy's start-up.
    with httpx.Client(timeout=0.5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"proxy exited with {process.returncode}:\n{proxy.log_text()}")
            try:
                if client.get(f"{proxy.base_url}/healthz").status_code == 200:
                    return proxy
            except httpx.HTTPError:
                time.sleep(0.05)
    proxy.stop()
    raise RuntimeError(f"proxy did not become ready:\n{proxy.log_text()}")
