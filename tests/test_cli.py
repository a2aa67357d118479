"""The `capsem-proxy` command line as a user meets it: every option described in --help, --version on
every command, one spelling of the config file for every command, config errors that say what to
do (no pydantic links, "did you mean" for near misses), and no traceback when a pipe closes early."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capsem_proxy import __version__
from capsem_proxy.audit import open_audit_sink
from capsem_proxy.cli import _parser, main
from capsem_proxy.decisions import Verdict
from tests.audit.stores import KEY, context, decision, request
from tests.cli_runs import run_cli

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, process: bool = False
         ) -> subprocess.CompletedProcess[str]:
    """`capsem-proxy ARGS`, in this process (`tests.cli_runs`), or with `process` as a command of its own."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if not process:
        return run_cli(list(args), cwd=cwd or ROOT, env=environment)
    return subprocess.run(
        [sys.executable, "-m", "capsem_proxy.cli", *args], capture_output=True, text=True, cwd=cwd or ROOT,
        timeout=120, env=environment,
    )


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every (command words, parser) pair, the top level included, depth first."""
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _commands(child, (*prefix, name))


COMMANDS = [words for words, _ in _commands(_parser())]


# --- help and version ---------------------------------------------------------------------------


def test_every_option_and_argument_of_every_command_is_described():
    undescribed = []
    for words, parser in _commands(_parser()):
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:
                continue
            if not (action.help or "").strip():
                undescribed.append(f"capsem-proxy {' '.join(words)}: {action.option_strings or action.dest}")
    assert undescribed == []


def test_run_help_describes_its_options_with_their_defaults():
    result = _cli("run", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for described in (
        "--host HOST address to listen on (default: server.host, 127.0.0.1)",
        "--port PORT TCP port to listen on (default: server.port, 8000)",
        "--config FILE YAML config file (default: $CAPSEM_PROXY_CONFIG",
        "--workers N worker processes",
        "--version print the version and exit",
        "CAPSEM_PROXY_<SECTION>__<KEY>",
    ):
        assert described in text


@pytest.mark.parametrize("words", COMMANDS, ids=lambda words: " ".join(words) or "top level")
def test_version_is_answered_by_every_command(words, capsys):
    with pytest.raises(SystemExit) as stopped:
        main([*words, "--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"capsem-proxy {__version__}"


def test_version_from_the_installed_command():
    result = _cli("audit", "export", "--version", process=True)
    assert (result.returncode, result.stdout.strip()) == (0, f"capsem-proxy {__version__}")


# --- one spelling of the config file -----------------------------------------------------------


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "proxy.yaml"
    path.write_text(f"server: {{data_dir: {tmp_path / 'data'}}}\naudit: {{url: 'memory://'}}\n")
    return path


def test_validate_config_takes_the_file_as_an_argument_or_as_run_spells_it(config_file, capsys, monkeypatch):
    monkeypatch.delenv("CAPSEM_PROXY_CONFIG", raising=False)
    assert main(["validate-config", str(config_file)]) == 0
    assert main(["validate-config", "--config", str(config_file)]) == 0
    assert main(["validate-config", str(config_file), "--config", str(config_file)]) == 0
    assert capsys.readouterr().out.count(f"{config_file}: configuration is valid") == 3


def test_validate_config_reads_the_file_the_environment_names_as_run_does(config_file, capsys, monkeypatch):
    monkeypatch.setenv("CAPSEM_PROXY_CONFIG", str(config_file))
    assert main(["validate-config"]) == 0
    assert f"{config_file}: configuration is valid" in capsys.readouterr().out


def test_validate_config_without_a_file_or_with_two_says_what_to_give(config_file, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CAPSEM_PROXY_CONFIG", raising=False)
    assert main(["validate-config"]) == 2
    assert "no config file given: capsem-proxy validate-config FILE" in capsys.readouterr().err
    other = tmp_path / "other.yaml"
    other.write_text("{}")
    assert main(["validate-config", str(config_file), "--config", str(other)]) == 2
    assert "two config files given" in capsys.readouterr().err


# --- config errors that say what to do ---------------------------------------------------------


def _validate(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return _cli("validate-config", str(path))


def test_an_unknown_policy_name_suggests_the_closest_built_in_and_lists_them_all(tmp_path):
    result = _validate(tmp_path, "policies:\n  - class: secret\n")
    assert result.returncode == 2
    assert "policies[0].class: unknown policy 'secret' (did you mean `secrets`?)" in result.stderr
    assert "built-in policies: debug, pii, regex_redact, secrets, pii_detect, injection, tool_rules, egress, " \
        "usage_rules, rego" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_near_miss_in_an_import_path_suggests_the_module_or_class_that_exists(tmp_path):
    result = _validate(tmp_path, "policies:\n  - class: capsem_proxy.policies.secret.SecretsPolicy\n")
    assert "(did you mean `capsem_proxy.policies.secrets`?)" in result.stderr
    result = _validate(tmp_path, "policies:\n  - class: capsem_proxy.policies.secrets.SecretPolicy\n")
    assert "module 'capsem_proxy.policies.secrets' has no 'SecretPolicy' (did you mean `SecretsPolicy`?)" in \
        result.stderr
    result = _validate(tmp_path, "policies:\n  - class: my_policies.ForbiddenWords\n")
    assert "No module named 'my_policies' (is the folder that holds it on PYTHONPATH?)" in result.stderr


def test_option_errors_name_each_key_without_pydantic_links(tmp_path):
    result = _validate(tmp_path, "policies:\n  - class: secrets\n    options: {action: nope, scan: [bogus]}\n"
                                 "  - class: rego\n    options: {}\n")
    assert result.returncode == 2
    assert "For further information" not in result.stderr and "errors.pydantic.dev" not in result.stderr
    assert "policies[0].options: SecretsPolicy rejected its options:\n" \
        "  options.action: Input should be 'log', 'block', 'confirm' or 'redact' (got 'nope')\n" \
        "  options.scan[0]: Input should be " in result.stderr
    assert "[type=" not in result.stderr


def test_unknown_keys_suggest_the_key_meant(tmp_path):
    result = _validate(tmp_path, "server: {prot: 9000}\npolicies:\n  - klass: secrets\nadmin: {tokn: x}\n")
    assert result.returncode == 2
    for line in (
        "  server.prot: unknown key (did you mean `port`?)",
        "  policies[0].klass: unknown key (did you mean `class`?)",
        "  admin.tokn: unknown key (did you mean `token`?)",
    ):
        assert line in result.stderr.splitlines()


def test_a_rejected_secret_is_never_echoed(tmp_path):
    result = _validate(tmp_path, "admin: {token: [sk-not-echoed-0123456789]}\n")
    assert result.returncode == 2
    assert "admin.token: Input should be a valid string" in result.stderr
    assert "sk-not-echoed" not in result.stderr


# --- pipes -------------------------------------------------------------------------------------


def _fill(url: str, count: int) -> None:
    async def fill() -> None:
        sink = open_audit_sink(url, KEY)
        await sink.start()
        for index in range(count):
            sink.record(context(f"r{index}"), [decision(Verdict.BLOCK, details="a reason " * 8)])
            sink.record_request(request(f"r{index}", started_at=time.time(), verdict="BLOCK", status=403))
        await sink.close()

    asyncio.run(fill())


def test_audit_export_into_a_pipe_closed_early_exits_without_a_traceback(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _fill(url, 1500)  # about 700 KB of JSON lines: far more than a pipe holds
    reader = subprocess.Popen(
        [sys.executable, "-m", "capsem_proxy.cli", "audit", "export", "--url", url, "--table", "decisions"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert reader.stdout is not None and reader.stderr is not None
    first_line = reader.stdout.readline()  # what `head -n 1` reads before it exits
    reader.stdout.close()
    errors = reader.stderr.read().decode()
    status = reader.wait(timeout=60)
    assert first_line.startswith(b"{")
    assert errors == ""
    assert status == 141  # as a shell reports a command ended by SIGPIPE


def test_audit_export_piped_into_head_prints_no_error(tmp_path):
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    _fill(url, 1500)
    command = f"'{sys.executable}' -m capsem_proxy.cli audit export --url '{url}' | head -n 2"
    result = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=ROOT, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr == ""
