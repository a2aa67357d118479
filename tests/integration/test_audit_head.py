"""The running proxy exports its chain head (a MAC'd file in its data dir, and a log line), and
`capsem-proxy audit verify --config` checks the store against it by default: rows cut off the end with
the head moved back, or the whole store emptied, fail verification without anyone passing --anchor.
On SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from capsem_proxy.audit.head import read_exported_head
from capsem_proxy.audit.keys import chain_key_for
from capsem_proxy.config import load_settings
from tests.audit.stores import drop_schema, new_schema_url, psql
from tests.proxy_process import ProxyProcess, start_proxy

ROOT = Path(__file__).resolve().parents[2]
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def _verify(proxy: ProxyProcess, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CAPSEM_PROXY_")}
    return subprocess.run(
        [sys.executable, "-m", "capsem_proxy.cli", "audit", "verify", "--config", str(proxy.workdir / "proxy.yaml"),
         *args], capture_output=True, text=True, cwd=ROOT, timeout=60, env={**environment, "PYTHONPATH": str(ROOT)},
    )


# The tables the tests below cut rows from or empty; each test starts from the store as the proxy left it.
_TABLES = ("requests", "decisions", "chain_head")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def recorded_proxy(request: pytest.FixtureRequest, fake_provider) -> Iterator[tuple[ProxyProcess, str]]:
    """A proxy that answered 5 requests (6 rows: the ALLOWs are folded into their request rows, the BLOCK of
    the third request has a row of its own, seq 3) and was stopped; started once per store for the module."""
    directory = Path(tempfile.mkdtemp(prefix="capsem-audit-head-"))
    url = f"sqlite:///{directory / 'audit.db'}" if request.param == "sqlite" else new_schema_url()
    proxy = start_proxy(fake_provider.base_url, {"audit": {"url": url, "flush_interval_ms": 20}}, log_level="info")
    try:
        with httpx.Client(base_url=proxy.base_url, headers={"authorization": "Bearer sk-head"}) as client:
            for index in range(5):
                prompt = "capsem_block" if index == 2 else "hello"
                client.post("/v1/chat/completions", json={**BODY, "messages": [{"role": "user", "content": prompt}]})
        head_file = proxy.workdir / "data" / "audit-head.json"
        key = chain_key_for(load_settings(proxy.workdir / "proxy.yaml"))
        deadline = time.monotonic() + 20
        while not head_file.exists() or read_exported_head(head_file, key).seq < 6:  # exported as rows land
            assert time.monotonic() < deadline, "the proxy never exported its head"
            time.sleep(0.1)
    finally:
        proxy.stop()
    _execute(url)(";".join(f"CREATE TABLE saved_{table} AS SELECT * FROM {table}" for table in _TABLES))
    yield proxy, url
    if request.param == "postgres":
        drop_schema(url)


@pytest.fixture
def stopped_proxy(recorded_proxy: tuple[ProxyProcess, str]) -> tuple[ProxyProcess, str]:
    """The module's stopped proxy, its store's tables put back as the proxy wrote them (a test before this
    one may have cut them)."""
    _, url = recorded_proxy
    _execute(url)(";".join(f"DELETE FROM {table}; INSERT INTO {table} SELECT * FROM saved_{table}"
                           for table in _TABLES))
    return recorded_proxy


def _execute(url: str):
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")

        def execute(sql: str) -> None:
            with sqlite3.connect(path) as connection:
                connection.executescript(sql)

        return execute
    return psql(url)


def test_the_proxy_exports_and_logs_its_head_and_verify_checks_it(stopped_proxy):
    proxy, _ = stopped_proxy
    result = _verify(proxy)
    assert result.returncode == 0, result.stderr
    assert "audit chain intact: 6 rows (requests 5, decisions 1); head 6:" in result.stdout
    assert "the exported head (seq 6, written" in result.stdout
    logged = re.findall(r"audit chain head (\d+:[0-9a-f]{64})", proxy.log_text())
    assert logged and logged[-1].startswith("6:")  # the last line, at shutdown, names the last row
    assert _verify(proxy, "--anchor", logged[-1]).returncode == 0


def test_rows_cut_off_with_the_head_moved_back_fail_verify_by_default(stopped_proxy):
    proxy, url = stopped_proxy
    execute = _execute(url)
    execute("DELETE FROM requests WHERE seq >= 4; DELETE FROM decisions WHERE seq >= 4; "
            "UPDATE chain_head SET seq = 3, hash = (SELECT hash FROM decisions WHERE seq = 3)")
    result = _verify(proxy)
    assert result.returncode == 1
    assert "rows 4..6 at the end are missing (row 6 is named by the exported head in" in result.stderr


def test_an_emptied_store_fails_verify_by_default(stopped_proxy):
    proxy, url = stopped_proxy
    _execute(url)(f"DELETE FROM requests; DELETE FROM decisions; UPDATE chain_head SET seq = 0, hash = '{'0' * 64}'")
    result = _verify(proxy)
    assert result.returncode == 1 and "rows 1..6 at the end are missing" in result.stderr
