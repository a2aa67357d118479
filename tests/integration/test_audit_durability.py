"""Nothing answered goes unaudited: a proxy stopped with SIGTERM under load writes a row for every
request it answered before it exits, and a PostgreSQL restart under load loses no row (they wait in
the queue). The restart uses a private PostgreSQL server; the shared one stays up."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from capsem_proxy.audit.head import read_exported_head
from capsem_proxy.audit.keys import chain_key_for, default_head_path
from capsem_proxy.audit.tools import open_reader, verify_chain
from capsem_proxy.config import load_settings
from tests.audit.stores import PrivatePostgres, running_private_postgres
from tests.proxy_process import ProxyProcess, start_proxy

ROOT = Path(__file__).resolve().parents[2]
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}


async def _stored_request_ids(url: str) -> list[str]:
    from capsem_proxy.audit.tools import export_rows

    reader = open_reader(url)
    await reader.open()
    try:
        return [row["request_id"] async for row in export_rows(reader, "requests")]
    finally:
        await reader.close()


async def _verify(url: str, proxy: ProxyProcess) -> str | None:
    """The store checked with the proxy's chain key, against the head it exported."""
    settings = load_settings(proxy.workdir / "proxy.yaml")
    key = chain_key_for(settings)
    reader = open_reader(url)
    await reader.open()
    try:
        report = await verify_chain(reader, key, exported=read_exported_head(default_head_path(settings), key))
        return None if report.broken is None else report.describe()
    finally:
        await reader.close()


class Load:
    """Requests sent `concurrency` at a time until `total` are sent, `stop()` is called or the proxy
    stops answering; `answered` holds the request id of every answer received."""

    def __init__(self, proxy: ProxyProcess, total: int, concurrency: int, scenario: str) -> None:
        self.proxy, self.total, self.concurrency = proxy, total, concurrency
        self.headers = {"authorization": "Bearer sk-durability", "x-fake-scenario": scenario}
        self.answered: list[str] = []
        self.refused = 0
        self._next = 0
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    async def _worker(self, client: httpx.AsyncClient) -> None:
        while self._next < self.total and not self._stopped:
            self._next += 1
            try:
                response = await client.post("/v1/chat/completions", json=BODY, headers=self.headers)
            except httpx.HTTPError:
                self.refused += 1
                if self.proxy.process.poll() is not None:
                    return
                await asyncio.sleep(0.01)
                continue
            if "x-capsem-request-id" in response.headers:
                self.answered.append(response.headers["x-capsem-request-id"])

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(base_url=self.proxy.base_url, timeout=30, limits=limits) as client:
            await asyncio.gather(*(self._worker(client) for _ in range(self.concurrency)))


async def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.1)
    return bool(await condition())


@pytest.fixture
def store_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="capsem-audit-durability-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_under_load_loses_no_answered_request(fake_provider, store_dir, workers):
    url = f"sqlite:///{store_dir / 'audit.db'}"
    # A long flush interval: at SIGTERM most rows are still queued, and only the drain at shutdown saves them.
    proxy = start_proxy(fake_provider.base_url, {"audit": {"url": url, "flush_interval_ms": 5000}},
                        log_level="info", workers=workers)
    try:
        load = Load(proxy, total=2000, concurrency=24, scenario='{"delay_ms": 5}')
        sender = asyncio.create_task(load.run())
        assert await _wait_for(lambda: _at_least(load, 150), 60)
        proxy.process.send_signal(signal.SIGTERM)
        await sender
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert await asyncio.to_thread(proxy.process.wait, 30) in (0, -signal.SIGTERM)
    finally:
        proxy.stop()
    assert "Application shutdown complete" in proxy.log_text()
    assert len(load.answered) < load.total, "the proxy answered everything: SIGTERM came too late to test anything"
    stored = await _stored_request_ids(url)
    assert len(stored) == len(set(stored))
    missing = set(load.answered) - set(stored)
    assert not missing, f"{len(missing)} answered requests have no audit row:\n{proxy.log_text()[-3000:]}"
    assert len(stored) == len(load.answered)
    assert await _verify(url, proxy) is None


async def _at_least(load: Load, count: int) -> bool:
    return len(load.answered) >= count


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    with running_private_postgres() as server:
        yield server


async def test_a_postgres_restart_under_load_loses_no_row(fake_provider, private_postgres):
    url = private_postgres.url + "?schema=restart"
    config = {"audit": {"url": url, "flush_interval_ms": 20, "queue_max": 100_000}}
    proxy = start_proxy(fake_provider.base_url, config, log_level="info")
    readiness: list[int] = []
    try:
        load = Load(proxy, total=1_000_000, concurrency=12, scenario='{"delay_ms": 2}')
        sender = asyncio.create_task(load.run())
        assert await _wait_for(lambda: _at_least(load, 200), 60)
        await asyncio.to_thread(private_postgres.stop)
        try:
            async with httpx.AsyncClient(base_url=proxy.base_url) as client:
                for _ in range(20):  # the proxy keeps answering, and says its store is down
                    readiness.append((await client.get("/readyz")).status_code)
                    await asyncio.sleep(0.05)
            answered_while_down = len(load.answered)
            await asyncio.sleep(0.5)
            assert len(load.answered) > answered_while_down
        finally:
            await asyncio.to_thread(private_postgres.start)
        back_at = len(load.answered)
        assert await _wait_for(lambda: _at_least(load, back_at + 200), 60)
        load.stop()
        await sender

        async def all_stored() -> bool:
            try:
                return len(await _stored_request_ids(url)) >= len(load.answered)
            except Exception:
                return False

        assert await _wait_for(all_stored, 30)
        assert httpx.get(f"{proxy.base_url}/readyz").status_code == 200
    finally:
        proxy.stop()
    assert 503 in readiness
    stored = await _stored_request_ids(url)
    assert load.refused == 0  # the store's outage never reached the callers
    assert sorted(stored) == sorted(load.answered)
    assert await _verify(url, proxy) is None
    assert "rows lost" not in proxy.log_text()
    result = subprocess.run([sys.executable, "-m", "capsem_proxy.cli", "audit", "verify", "--config",
                             str(proxy.workdir / "proxy.yaml")],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
