"""Start and stop the processes the benchmark talks to: fake provider, pass-through baseline, capsem-proxy."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TASKSET = shutil.which("taskset")

__all__ = ["REPO_ROOT", "CpuPlan", "Server", "start_canned", "start_capsem_proxy", "start_fake", "start_passthrough"]


@dataclass(frozen=True, slots=True)
class CpuPlan:
    """Which core each process is pinned to (None = not pinned)."""

    fake: int | None
    server: int | None
    loadgen: int | None

    @classmethod
    def detect(cls, enabled: bool = True) -> CpuPlan:
        """Fake provider, server under test and load generator on separate cores where there are enough."""
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if not enabled or TASKSET is None or len(cpus) < 2:
            return cls(None, None, None)
        if len(cpus) == 2:
            return cls(cpus[0], cpus[1], cpus[0])
        return cls(cpus[0], cpus[1], cpus[2])


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """``command`` prefixed with ``taskset -c CPU`` when pinning is possible."""
    if cpu is None or TASKSET is None:
        return command
    return [TASKSET, "-c", str(cpu), *command]


@dataclass
class Server:
    """A running HTTP server the load generator can target."""

    name: str
    base_url: str
    pid: int
    stop: Callable[[], None]
    log: Callable[[], str] = field(default=lambda: "")
    handle: object = None
    api_key: str | None = None  # sent instead of the bench's provider key (a gateway key)
    upstream_pid: int | None = None  # the upstream it talks to, when not the shared fake provider


def _stop_popen(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _start_with_ready_line(command: list[str], prefix: bytes, log_path: Path, timeout: float = 30.0
                           ) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``command`` (stderr to ``log_path``) and wait for ``PREFIX http://host:port`` on stdout."""
    log_file = open(log_path, "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log_file,
                            stdin=subprocess.DEVNULL)
    log_file.close()
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            _stop_popen(proc)
            log = log_path.read_text(errors="replace")
            raise RuntimeError(f"{command} did not start (exit={proc.returncode}, output={buf!r}):\n{log}")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.1))
        if ready:
            chunk = os.read(fd, 4096)
            if chunk:
                buf += chunk
    line = buf.split(b"\n", 1)[0]
    if not line.startswith(prefix):
        _stop_popen(proc)
        raise RuntimeError(f"unexpected output from {command}: {line!r}")
    return proc, line.split()[-1].decode()


def start_fake(cpu: int | None, workdir: Path) -> Server:
    """The fake provider (tests/fake_provider), pinned to ``cpu``."""
    from tests.fake_provider.process import FakeProviderProcess

    command = pinned([sys.executable, "-m", "tests.fake_provider", "--host", "127.0.0.1", "--port", "0"], cpu)
    log_path = workdir / "fake_provider.log"
    proc, url = _start_with_ready_line(command, b"FAKE_PROVIDER_READY ", log_path)
    port = int(url.rsplit(":", 1)[1])
    fake = FakeProviderProcess(proc, "127.0.0.1", port)
    return Server("direct", fake.base_url, proc.pid, fake.stop, lambda: log_path.read_text(errors="replace"), fake)


def start_canned(answers: dict[str, tuple[str, bytes]], cpu: int | None, workdir: Path, name: str) -> Server:
    """bench/canned.py answering `answers["json"]` and `answers["stream"]` ((content type, body) each)."""
    from bench.canned import response_bytes

    files = []
    for kind in ("json", "stream"):
        path = workdir / f"{name}-{kind}.http"
        path.write_bytes(response_bytes(*answers[kind]))
        files += [f"--{kind}", str(path)]
    command = pinned([sys.executable, "-m", "bench.canned", *files, "--port", "0"], cpu)
    log_path = workdir / f"{name}.log"
    proc, url = _start_with_ready_line(command, b"CANNED_READY ", log_path)
    return Server(name, url, proc.pid, lambda: _stop_popen(proc), lambda: log_path.read_text(errors="replace"))


def start_passthrough(upstream: str, cpu: int | None, workdir: Path, client: str = "aiohttp",
                      name: str = "baseline") -> Server:
    """The bare pass-through (bench/passthrough.py) in front of ``upstream``."""
    command = pinned([sys.executable, "-m", "bench.passthrough", "--upstream", upstream, "--port", "0",
                      "--client", client], cpu)
    log_path = workdir / f"{name}.log"
    proc, url = _start_with_ready_line(command, b"PASSTHROUGH_READY ", log_path)
    return Server(name, url, proc.pid, lambda: _stop_popen(proc), lambda: log_path.read_text(errors="replace"))


def start_capsem_proxy(upstream: str, cpu: int | None, *, workers: int = 1, config: dict | None = None,
                       name: str = "proxy", importable: bool = False, env: dict[str, str] | None = None) -> Server:
    """capsem-proxy with its default config (CAPSEM DebugPolicy), access log off, log level warning.

    ``config`` overrides sections of it; ``importable`` puts the repository root on the proxy's
    ``PYTHONPATH`` so that its configuration can name classes in ``bench`` (``bench.policies``).
    """
    from tests.proxy_process import start_proxy

    settings: dict = {"server": {"access_log": False}}
    for section, values in (config or {}).items():
        if isinstance(values, dict) and isinstance(settings.get(section), dict):
            settings[section].update(values)
        else:
            settings[section] = values
    env = dict(env or {})
    if importable:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proxy = start_proxy(upstream, settings, env=env, log_level="warning", workers=workers, cpu=cpu)
    return Server(name, proxy.base_url, proxy.process.pid, proxy.stop, proxy.log_text, proxy)
