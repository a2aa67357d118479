"""Packaging: every module the package imports is declared, optional backends are extras, the core
install serves the defaults without them, and a config that needs a missing extra stops at start-up
with one line naming it.

A missing extra is simulated in a child process: a `sitecustomize` on its PYTHONPATH puts a finder
first on `sys.meta_path` that refuses the extra's modules (and notes every refused import)."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement

from capsem_proxy.extras import EXTRA_MODULES
from tests.fake_provider.process import FakeProviderProcess
from tests.proxy_process import start_proxy

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
BACKEND_EXTRAS = ("postgres", "redis", "otel", "detectors", "ner", "rego")

_BLOCKER = '''
import os
import sys
from importlib.abc import MetaPathFinder

_REFUSED = frozenset(os.environ["CAPSEM_TEST_REFUSED_MODULES"].split(","))
_LOG = os.environ["CAPSEM_TEST_REFUSED_LOG"]


class _RefuseModules(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _REFUSED:
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(name + "\\n")
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _RefuseModules())
'''


def _name(requirement: str) -> str:
    return Requirement(requirement).name.lower().replace("_", "-")


def _declared(requirements: list[str]) -> set[str]:
    return {_name(requirement) for requirement in requirements}


def _imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for path in (ROOT / "capsem_proxy").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.partition(".")[0])
    return {module for module in modules if module not in sys.stdlib_module_names and module != "capsem_proxy"}


@cache
def _packages_distributions() -> dict[str, list[str]]:
    """Module name -> distributions, read once: each reading walks every installed distribution's
    file list (about a fifth of a second, asked for each of some forty modules)."""
    return importlib.metadata.packages_distributions()


def _distributions(module: str) -> set[str]:
    names = _packages_distributions().get(module, [])
    return {name.lower().replace("_", "-") for name in names}


def test_every_imported_module_is_declared_where_it_belongs() -> None:
    core = _declared(PYPROJECT["dependencies"])
    extras = {extra: _declared(PYPROJECT["optional-dependencies"][extra]) for extra in BACKEND_EXTRAS}
    modules = _imported_top_level_modules()
    assert {"httptools", "referencing", "phonenumbers"} <= modules  # the walk sees direct imports
    misplaced = {}
    for module in sorted(modules):
        where = extras[EXTRA_MODULES[module]] if module in EXTRA_MODULES else core
        dists = _distributions(module)
        assert dists, f"{module} is imported but no installed distribution provides it"
        if not dists & where:
            misplaced[module] = (sorted(dists), EXTRA_MODULES.get(module, "dependencies"))
    assert not misplaced, f"imported but not declared in pyproject.toml (module: (dists, where)): {misplaced}"


def test_every_extra_module_is_provided_by_its_extra() -> None:
    for module, extra in EXTRA_MODULES.items():
        declared = _declared(PYPROJECT["optional-dependencies"][extra])
        assert _distributions(module) & declared, f"{module}: no distribution of extra {extra!r} provides it"


def test_extras_stay_out_of_the_core_dependencies_and_all_names_each() -> None:
    core = _declared(PYPROJECT["dependencies"])
    for extra in BACKEND_EXTRAS:
        assert not _declared(PYPROJECT["optional-dependencies"][extra]) & core, extra
    (everything,) = PYPROJECT["optional-dependencies"]["all"]
    assert Requirement(everything).name == "capsem-proxy"
    assert Requirement(everything).extras == set(BACKEND_EXTRAS)


def _without_extras(tmp_path: Path, modules: set[str]) -> dict[str, str]:
    """Environment of a child process in which `modules` cannot be imported."""
    (tmp_path / "sitecustomize.py").write_text(_BLOCKER, encoding="utf-8")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "CAPSEM_TEST_REFUSED_MODULES": ",".join(sorted(modules)),
        "CAPSEM_TEST_REFUSED_LOG": str(tmp_path / "refused.log"),
    }


def _modules_of(extra: str) -> set[str]:
    return {module for module, owner in EXTRA_MODULES.items() if owner == extra}


ALL_EXTRA_MODULES = set(EXTRA_MODULES)


@pytest.mark.parametrize(
    ("config", "needs"),
    # `needs` is (what needs it, the extra): one parameter, so that the extra's name alone (redis,
    # postgres) does not mark the test as needing the service, which it never reaches.
    [
        ("audit:\n  url: postgresql://127.0.0.1:5432/test\n", ("audit.url postgresql://", "postgres")),
        ("confirm:\n  store_url: redis://127.0.0.1:6379/0\n", ("confirm.store_url redis://", "redis")),
        ("tracing:\n  enabled: true\n", ("tracing.enabled", "otel")),
        ("policies:\n  - class: pii_detect\n", ("policies[0].class: the pii_detect policy", "detectors")),
        ("policies:\n  - class: injection\n", ("policies[0].class: the injection policy", "detectors")),
        ("policies:\n  - class: egress\n", ("policies[0].class: the egress policy", "detectors")),
        (
            "policies:\n  - class: rego\n    options:\n      policy: \"package p\\nallow := true\"\n",
            ("policies[0].class: the rego policy", "rego"),
        ),
    ],
    ids=["postgres", "redis", "otel", "pii_detect", "injection", "egress", "rego"],
)
def test_a_config_needing_a_missing_extra_stops_with_one_line_naming_it(
    tmp_path: Path, config: str, needs: tuple[str, str]
) -> None:
    feature, extra = needs
    config_path = tmp_path / "proxy.yaml"
    config_path.write_text(config, encoding="utf-8")
    env = _without_extras(tmp_path, _modules_of(extra))
    done = subprocess.run(
        [sys.executable, "-m", "capsem_proxy.cli", "validate-config", str(config_path)],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    prefix = f"config {config_path}: " if feature.startswith("policies") else ""
    expected = (
        f"capsem-proxy: {prefix}{feature} needs the optional '{extra}' dependencies: "
        f"pip install 'capsem-proxy[{extra}]'\n"
    )
    assert done.stderr == expected
    assert (tmp_path / "refused.log").read_text(encoding="utf-8")  # the refusal is what stopped it


def test_the_audit_tools_name_the_extra_a_postgresql_store_needs(tmp_path: Path) -> None:
    env = {**_without_extras(tmp_path, _modules_of("postgres")), "CAPSEM_PROXY_SERVER__TENANT_SECRET": "s" * 43}
    done = subprocess.run(
        [sys.executable, "-m", "capsem_proxy.cli", "audit", "verify", "--url", "postgresql://127.0.0.1:5432/test"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "capsem-proxy: a postgresql:// audit store needs the optional 'postgres' dependencies: "
        "pip install 'capsem-proxy[postgres]'\n"
    )


def test_ner_without_spacy_names_the_ner_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from capsem_proxy.policies.pii_detect import PIIDetectPolicy

    # None in sys.modules is how Python itself marks a module absent: find_spec gives None, import fails.
    monkeypatch.setitem(sys.modules, "spacy", None)
    with pytest.raises(ValueError, match=re.escape("spaCy is not installed (pip install 'capsem-proxy[ner]')")):
        PIIDetectPolicy.from_config({"ner": True})


@pytest.mark.parametrize("policy", ["secrets", "tool_rules", "regex_redact", "usage_rules"])
def test_core_policies_load_without_any_extra(tmp_path: Path, policy: str) -> None:
    options = {"regex_redact": "    options:\n      patterns: {card: '\\d{16}'}\n"}.get(policy, "")
    config_path = tmp_path / "proxy.yaml"
    config_path.write_text(f"policies:\n  - class: {policy}\n{options}", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "capsem_proxy.cli", "validate-config", str(config_path)],
        env=_without_extras(tmp_path, ALL_EXTRA_MODULES), capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "refused.log").exists()


def test_the_core_install_serves_the_defaults_without_importing_any_extra(
    tmp_path: Path, fake_provider: FakeProviderProcess
) -> None:
    env = _without_extras(tmp_path, ALL_EXTRA_MODULES)
    proxy = start_proxy(fake_provider.base_url, env=env)
    try:
        headers = {"authorization": "Bearer sk-test-0123456789", "content-type": "application/json"}
        allowed = httpx.post(
            f"{proxy.base_url}/v1/chat/completions", headers=headers,
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]},
        )
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["choices"][0]["message"]["content"]
        blocked = httpx.post(
            f"{proxy.base_url}/v1/chat/completions", headers=headers,
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "please capsem_block this"}]},
        )
        assert blocked.status_code == 403  # the default policy is in force
    finally:
        proxy.stop()
    refused = tmp_path / "refused.log"
    assert not refused.exists(), f"the default config tried to import: {refused.read_text(encoding='utf-8')}"
