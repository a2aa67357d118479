"""Every YAML block of README.md and docs/*.md is a config that `capsem-proxy validate-config`
accepts as written, run from the repository's root as the docs say, with `examples/` on
PYTHONPATH as the README says; the few blocks that are not whole configs say why. (That the
detector examples do what their text says, through a running proxy:
tests/integration/test_docs_examples.py.)"""

from __future__ import annotations

import os

import pytest

from capsem_proxy.cli import main
from tests.docs_blocks import REPO_ROOT, yaml_blocks

BLOCKS = yaml_blocks()
CONFIG_BLOCKS = [block for block in BLOCKS if block.not_a_config is None]
# Exceptions must stay rare: a block the reader cannot use as written is a cost to them.
MAX_EXCEPTIONS = 2


def test_the_docs_have_yaml_blocks_to_check():
    names = {block.path.name for block in CONFIG_BLOCKS}
    assert {"README.md", "detectors.md"} <= names
    assert len(CONFIG_BLOCKS) >= 4


def test_blocks_that_are_not_configs_are_few_and_say_why():
    exceptions = [block for block in BLOCKS if block.not_a_config is not None]
    assert len(exceptions) <= MAX_EXCEPTIONS, [block.name for block in exceptions]
    for block in exceptions:
        assert len(block.not_a_config.split()) >= 5, f"{block.name}: say why it is not a config"


@pytest.mark.parametrize("block", CONFIG_BLOCKS, ids=lambda block: block.name)
def test_yaml_block_is_a_valid_config_as_written(block, tmp_path, monkeypatch, capsys):
    for name in list(os.environ):
        if name.startswith("CAPSEM_PROXY_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(REPO_ROOT)  # where `make run` starts the proxy
    monkeypatch.syspath_prepend(str(REPO_ROOT / "examples"))  # PYTHONPATH=examples, as the README says
    config = tmp_path / "block.yaml"
    config.write_text(block.text, encoding="utf-8")
    status = main(["validate-config", str(config)])
    assert status == 0, f"{block.name} is not a valid config:\n{capsys.readouterr().err}"


# --- the docs and the code describe things alike ---------------------------------------------------


def test_generate_config_and_the_docs_say_the_same_of_a_memory_audit_store():
    from capsem_proxy.config_template import render_config_template

    audit_url_line = next(line for line in render_config_template().splitlines() if line.strip().startswith("url:"))
    assert "memory:// (kept in process memory, lost when it exits)" in audit_url_line
    observability = (REPO_ROOT / "docs" / "observability.md").read_text(encoding="utf-8")
    assert "| `memory://` | kept in process memory" in observability
    assert "nothing kept" not in audit_url_line


def test_every_file_the_examples_name_is_shipped():
    for block in CONFIG_BLOCKS:
        for policy in block.config().get("policies") or []:
            policy_file = (policy.get("options") or {}).get("policy_file")
            if policy_file:
                assert (REPO_ROOT / policy_file).is_file(), f"{block.name} names {policy_file}"
        policy_dir = block.config().get("policy_dir")
        if policy_dir:
            assert list((REPO_ROOT / policy_dir).glob("*.toml")), f"{block.name} names {policy_dir}"
