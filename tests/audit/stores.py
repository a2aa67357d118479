"""Helpers for audit tests: rows to record, a PostgreSQL schema of their own per test, and a private
PostgreSQL server that tests may stop and start (the shared one must stay up for everyone else)."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg

from capsem_proxy.audit.keys import ChainKey
from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext
from capsem_proxy.records import RequestRecord
from tests.proxy_process import free_port
from tests.services import require_service

__all__ = [
    "KEY",
    "PG_HOST",
    "PG_PORT",
    "PrivatePostgres",
    "context",
    "decision",
    "drop_schema",
    "new_schema_url",
    "psql",
    "request",
    "require_private_postgres",
    "running_private_postgres",
    "sqlite_executor",
    "store_under_test",
]

PG_HOST, PG_PORT = "127.0.0.1", 5432
KEY = ChainKey.derive(b"capsem-proxy test secret")  # the chain key of the stores tests write
PG_BASE_URL = os.environ.get("CAPSEM_PROXY_TEST_POSTGRES_URL", f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test")


def context(request_id: str = "req-1", tenant_id: str = "tenant-1", *, session_id: str = "", agent_id: str = "",
            provider: str = "openai", model: str = "m") -> RequestContext:
    return RequestContext(request_id, tenant_id, provider, "chat", Exchange(provider, "chat", model=model),
                          agent_id=agent_id, session_id=session_id)


def decision(verdict: Verdict = Verdict.ALLOW, policy: str = "p", **fields) -> Decision:
    return Decision(verdict, policy, fields.pop("hook", "on_model_call"), **fields)


def request(request_id: str = "req-1", tenant_id: str = "tenant-1", **fields) -> RequestRecord:
    fields.setdefault("started_at", time.time())
    return RequestRecord(request_id, tenant_id=tenant_id, **fields)


def new_schema_url() -> str:
    """A URL naming a schema no other test (or parallel run) uses; requires the shared server."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    return f"{PG_BASE_URL}?schema=capsem_test_{os.getpid()}_{os.urandom(4).hex()}"


def drop_schema(url: str) -> None:
    base, _, query = url.partition("?schema=")

    async def drop() -> None:
        connection = await asyncpg.connect(base)
        try:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{query}" CASCADE')
        finally:
            await connection.close()

    asyncio.run(drop())


def sqlite_executor(path: Path) -> Callable[[str], None]:
    """A function running SQL on the SQLite file at `path`, around the proxy."""

    def execute(sql: str) -> None:
        with sqlite3.connect(path) as connection:
            connection.executescript(sql)

    return execute


def store_under_test(kind: str, tmp_path: Path, request: object) -> tuple[str, Callable[[str], None]]:
    """(audit URL, SQL runner) of a `sqlite` store in `tmp_path` or of the `postgres_url` fixture's schema."""
    if kind == "sqlite":
        path = tmp_path / "audit.db"
        return f"sqlite:///{path}", sqlite_executor(path)
    url = request.getfixturevalue("postgres_url")  # type: ignore[attr-defined]
    return url, psql(url)


def psql(url: str) -> Callable[[str], None]:
    """A function running SQL with psql in the URL's schema, around the proxy."""
    import pytest

    base, _, schema = url.partition("?schema=")
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed")

    def execute(sql: str) -> None:
        subprocess.run(["psql", base, "-v", "ON_ERROR_STOP=1", "-q", "-c", f'SET search_path TO "{schema}"; {sql}'],
                       check=True, capture_output=True, timeout=30)

    return execute


def _postgres_bin() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    return None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, in a temporary directory; `stop()` / `start()` at will."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="capsem-pg-"))
        self.data = self.root / "data"
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]

    @property
    def available(self) -> bool:
        return self.bin is not None and (not self.as_postgres or shutil.which("runuser") is not None)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        assert self.bin is not None
        subprocess.run([*self.as_postgres, str(self.bin / command[0]), *command[1:]], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.root / "log"),
                  "-o", options)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data))

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def require_private_postgres(server: PrivatePostgres) -> None:
    """Skip (fail under CI) when PostgreSQL's server binaries are not installed here."""
    import pytest

    if server.available:
        return
    message = "PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin) are not installed"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; CI must provide them")
    pytest.skip(message)


@contextlib.contextmanager
def running_private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh private PostgreSQL server, started for the block and destroyed after it."""
    server = PrivatePostgres()
    require_private_postgres(server)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()
