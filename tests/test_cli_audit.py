"""`capsem-proxy audit verify | export | tail`, run as an operator runs them."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from capsem_proxy.audit import open_audit_sink
from capsem_proxy.decisions import Verdict
from tests.audit.stores import KEY, context, decision, drop_schema, new_schema_url, psql, request
from tests.cli_runs import run_cli

ROOT = Path(__file__).resolve().parents[1]
SECRET = "capsem-proxy test secret"  # the server secret KEY derives from


def _cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, process: bool = False
         ) -> subprocess.CompletedProcess[str]:
    """`capsem-proxy audit ARGS`, in this process (`tests.cli_runs`), or with `process` as a command
    of its own."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CAPSEM_PROXY_")}
    environment = {**environment, "PYTHONPATH": str(ROOT), **(env or {})}
    if not process:
        return run_cli(["audit", *args], cwd=cwd or ROOT, env=environment)
    return subprocess.run([sys.executable, "-m", "capsem_proxy.cli", "audit", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120, env=environment)


def _fill(url: str, count: int, *, start: int = 0, started_at: float | None = None, head_file: Path | None = None
          ) -> None:
    """`count` requests (r<start>.. ), each after one decision (every third one BLOCK), written as the
    proxy writes them (exporting its head to `head_file`)."""

    async def fill() -> None:
        sink = open_audit_sink(url, KEY, head_file=head_file)
        await sink.start()
        for index in range(start, start + count):
            verdict = Verdict.BLOCK if index % 3 == 0 else Verdict.ALLOW
            sink.record(context(f"r{index}"), [decision(verdict)])
            sink.record_request(request(f"r{index}", started_at=started_at or time.time(), verdict=verdict.value,
                                        status=403 if verdict is Verdict.BLOCK else 200))
        await sink.close()

    asyncio.run(fill())


def _proxy_config(tmp_path: Path, url: str) -> Path:
    """The files a proxy leaves: its config, and in its data dir the server secret (and the head, once written)."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "tenant-secret").write_text(SECRET)
    config = tmp_path / "proxy.yaml"
    config.write_text(f"server: {{data_dir: '{data}'}}\naudit: {{url: '{url}'}}\n")
    return config


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = new_schema_url()
    yield url
    drop_schema(url)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _proxy_config(tmp_path, url)
    _fill(url, 6, head_file=tmp_path / "data" / "audit-head.json")
    return url


@pytest.fixture
def config(sqlite_url, tmp_path) -> str:
    return str(tmp_path / "proxy.yaml")


def test_verify_passes_on_an_intact_store_and_names_the_head(config):
    result = _cli("verify", "--config", config, process=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("audit chain intact: 12 rows (requests 6, decisions 6); head 12:")
    assert "the exported head (seq 12, written " in result.stdout


def test_verify_names_the_first_tampered_row_and_fails(config, tmp_path):
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        connection.execute("UPDATE decisions SET verdict = 'ALLOW' WHERE seq = 7")  # r3's BLOCK
    result = _cli("verify", "--config", config, process=True)
    assert result.returncode == 1
    assert result.stderr.startswith("chain broken at decisions seq 7 (request r3): the row's content")


def test_verify_finds_a_deleted_row(config, tmp_path):
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        connection.execute("DELETE FROM requests WHERE seq = 4")
    result = _cli("verify", "--config", config)
    assert result.returncode == 1
    assert "chain broken at decisions seq 5 (request r2): row 4 before it is missing" in result.stderr


def test_verify_catches_rows_cut_off_with_the_head_moved_back_by_default(config, tmp_path):
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        (last_kept,) = connection.execute("SELECT hash FROM requests WHERE seq = 10").fetchone()
        connection.execute("DELETE FROM decisions WHERE seq = 11")
        connection.execute("DELETE FROM requests WHERE seq = 12")
        connection.execute(f"UPDATE chain_head SET seq = 10, hash = '{last_kept}'")
    result = _cli("verify", "--config", config)
    assert result.returncode == 1
    assert "rows 11..12 at the end are missing (row 12 is named by the exported head in " in result.stderr
    alone = _cli("verify", "--config", config, "--no-head")  # even without the file, the head's MAC fails
    assert alone.returncode == 1 and "its MAC does not match" in alone.stderr


def test_verify_catches_an_emptied_store(config, tmp_path):
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        connection.execute("DELETE FROM decisions")
        connection.execute("DELETE FROM requests")
        connection.execute(f"UPDATE chain_head SET seq = 0, hash = '{'0' * 64}'")
    result = _cli("verify", "--config", config)
    assert result.returncode == 1
    assert result.stderr.startswith("chain broken: rows 1..12 at the end are missing (row 12 is named by the exported")


def test_a_missing_or_altered_head_file_fails_verify(config, tmp_path):
    head = tmp_path / "data" / "audit-head.json"
    document = json.loads(head.read_text())
    head.write_text(json.dumps({**document, "seq": 10}))
    altered = _cli("verify", "--config", config)
    assert altered.returncode == 1 and "was altered: its MAC does not match" in altered.stderr
    head.unlink()
    missing = _cli("verify", "--config", config)
    assert missing.returncode == 1 and missing.stderr.startswith("chain not anchored: there is no exported head at")
    assert _cli("verify", "--config", config, "--no-head").returncode == 0


def test_verify_checks_anchors_noted_earlier(config):
    head = _cli("verify", "--config", config).stdout.split("head ", 1)[1].split(";")[0].strip()
    assert _cli("verify", "--config", config, "--anchor", head).returncode == 0
    wrong = head.split(":")[0] + ":" + "0" * 64
    result = _cli("verify", "--config", config, "--anchor", wrong)
    assert result.returncode == 1 and "of the anchor" in result.stderr
    assert _cli("verify", "--config", config, "--anchor", "nonsense").returncode == 2


def test_the_key_comes_from_the_environment_and_the_store_from_the_url(sqlite_url, tmp_path):
    env = {"CAPSEM_PROXY_SERVER__TENANT_SECRET": SECRET}
    result = _cli("verify", "--url", sqlite_url, "--head", str(tmp_path / "data" / "audit-head.json"), env=env)
    assert result.returncode == 0 and "12 rows" in result.stdout
    wrong = _cli("verify", "--url", sqlite_url, "--no-head", env={"CAPSEM_PROXY_SERVER__TENANT_SECRET": "other"})
    assert wrong.returncode == 1 and f"keyed with key id {KEY.key_id}, not with this key" in wrong.stderr


def test_verify_without_the_server_secret_says_where_it_looked(sqlite_url, tmp_path):
    result = _cli("verify", "--url", sqlite_url, cwd=tmp_path)
    assert result.returncode == 2
    assert "the audit chain is keyed with the proxy's server secret, and capsem-data/tenant-secret" in result.stderr
    assert not (tmp_path / "capsem-data").exists()  # reading never creates a secret


def test_unreadable_stores_exit_with_2(tmp_path):
    env = {"CAPSEM_PROXY_SERVER__TENANT_SECRET": SECRET}
    missing = _cli("verify", "--url", f"sqlite:///{tmp_path / 'none.db'}", "--no-head", env=env)
    assert missing.returncode == 2 and "no audit store" in missing.stderr
    assert not (tmp_path / "none.db").exists()  # reading never creates a store
    memory = _cli("verify", "--url", "memory://", env=env)
    assert memory.returncode == 2 and "nothing is kept" in memory.stderr


def test_export_writes_json_lines_in_seq_order(sqlite_url):
    result = _cli("export", "--url", sqlite_url, "--since", "1h")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["request_id"] for row in rows] == [f"r{index}" for index in range(6)]
    assert [row["seq"] for row in rows] == [2, 4, 6, 8, 10, 12] and all(len(row["hash"]) == 64 for row in rows)
    decisions = _cli("export", "--url", sqlite_url, "--table", "decisions").stdout.splitlines()
    assert [json.loads(line)["verdict"] for line in decisions] == ["BLOCK", "ALLOW", "ALLOW"] * 2


def test_export_selects_a_time_window(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _fill(url, 2, started_at=time.time() - 7200)
    _fill(url, 3, start=2)
    recent = _cli("export", "--url", url, "--since", "1h").stdout.splitlines()
    assert [json.loads(line)["request_id"] for line in recent] == ["r2", "r3", "r4"]
    older = _cli("export", "--url", url, "--until", "30m").stdout.splitlines()
    assert [json.loads(line)["request_id"] for line in older] == ["r0", "r1"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 3600))
    assert len(_cli("export", "--url", url, "--since", iso).stdout.splitlines()) == 3
    bad = _cli("export", "--url", url, "--since", "yesterday-ish")
    assert bad.returncode == 2 and "neither an ISO 8601 time nor a duration" in bad.stderr


def test_export_writes_csv_to_a_file(sqlite_url, tmp_path):
    output = tmp_path / "out.csv"
    result = _cli("export", "--url", sqlite_url, "--format", "csv", "--table", "decisions", "--output", str(output))
    assert result.returncode == 0 and "wrote 6 decisions rows" in result.stderr
    rows = list(csv.DictReader(io.StringIO(output.read_text())))
    assert len(rows) == 6 and rows[0]["verdict"] == "BLOCK" and rows[0]["seq"] == "1"
    assert list(rows[0])[:3] == ["seq", "decision_id", "request_id"] and list(rows[0])[-2:] == ["prev_hash", "hash"]


def test_tail_prints_the_newest_rows_oldest_first(sqlite_url):
    lines = _cli("tail", "--url", sqlite_url, "-n", "3").stdout.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [(row["type"], row["seq"]) for row in rows] == [("request", 10), ("decision", 11), ("request", 12)]
    only = [json.loads(line) for line in _cli("tail", "--url", sqlite_url, "-n", "2", "--table", "decisions")
            .stdout.splitlines()]
    assert [(row["type"], row["seq"]) for row in only] == [("decision", 9), ("decision", 11)]


def test_tail_follow_prints_rows_as_they_land(sqlite_url):
    process = subprocess.Popen(
        [sys.executable, "-m", "capsem_proxy.cli", "audit", "tail", "--url", sqlite_url, "-n", "1", "--follow",
         "--interval", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["seq"] == 12
        _fill(sqlite_url, 2, start=6)
        followed = [json.loads(process.stdout.readline()) for _ in range(4)]
        assert [(row["type"], row["request_id"]) for row in followed] == [
            ("decision", "r6"), ("request", "r6"), ("decision", "r7"), ("request", "r7")
        ]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_postgres_stores_are_verified_and_exported_too(postgres_url, tmp_path):
    config = str(_proxy_config(tmp_path, postgres_url))
    _fill(postgres_url, 4, head_file=tmp_path / "data" / "audit-head.json")
    assert _cli("verify", "--config", config).returncode == 0
    exported = _cli("export", "--url", postgres_url, "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["request_id"] for line in exported] == ["r0", "r1", "r2", "r3"]
    psql(postgres_url)("UPDATE requests SET status = 200 WHERE seq = 2")
    result = _cli("verify", "--config", config)
    assert result.returncode == 1 and "chain broken at requests seq 2 (request r0)" in result.stderr


def _fill_with_content(url: str, count: int, started_at: float) -> None:
    async def fill() -> None:
        sink = open_audit_sink(url, KEY)
        await sink.start()
        for index in range(count):
            sink.record(context(f"c{index}"), [decision(Verdict.LOG, details=f"matched text {index}")])
            sink.record_request(request(f"c{index}", started_at=started_at, prompt=f"prompt {index}"))
        await sink.close()

    asyncio.run(fill())


def test_erase_a_tenant_then_prune_then_verify_and_export_from_the_command_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _fill_with_content(url, 4, started_at=1000.0)  # long ago
    _fill(url, 2, start=4)
    config = _proxy_config(tmp_path, url)
    erased = _cli("erase", "--config", str(config), "--tenant", "tenant-1")
    assert erased.returncode == 0, erased.stderr
    assert "erased the content of 4 request and 4 decision rows of tenant tenant-1" in erased.stdout
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        assert connection.execute("SELECT COUNT(*) FROM requests WHERE prompt IS NOT NULL").fetchone() == (0,)
        connection.execute("UPDATE decisions SET recorded_at = 1000 WHERE request_id LIKE 'c%'")
    pruned = _cli("prune", "--config", str(config), "--before", "1d")
    assert pruned.returncode == 0, pruned.stderr
    assert "pruned 4 request and 4 decision rows" in pruned.stdout
    verified = _cli("verify", "--config", str(config), "--no-head")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "removed by retention" in verified.stdout
    exported = _cli("export", "--config", str(config), "--table", "decisions", "--tenant", "tenant-1")
    assert exported.returncode == 0, exported.stderr
    hooks = [json.loads(line)["hook"] for line in exported.stdout.splitlines()]
    assert "erasure" in hooks and "retention" not in hooks  # the retention row names no tenant
    assert _cli("export", "--config", str(config), "--tenant", "nobody").stdout == ""


def test_erase_in_bounded_steps_from_the_command_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _fill_with_content(url, 4, started_at=1000.0)
    config = _proxy_config(tmp_path, url)
    erased = _cli("erase", "--config", str(config), "--tenant", "tenant-1", "--max-rows", "3")
    assert erased.returncode == 0, erased.stderr
    assert "erased the content of 4 request and 4 decision rows of tenant tenant-1; in 3 steps" in erased.stdout
    verified = _cli("verify", "--config", str(config), "--no-head")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_erase_needs_a_scope_and_prune_a_cut_off(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _fill(url, 1)
    config = _proxy_config(tmp_path, url)
    assert _cli("erase", "--config", str(config)).returncode == 2
    no_cut_off = _cli("prune", "--config", str(config))
    assert no_cut_off.returncode == 2 and "retention_days" in no_cut_off.stderr
