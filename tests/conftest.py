"""Shared fixtures: a real fake provider and a real proxy, both over HTTP on 127.0.0.1."""

from __future__ import annotations

import inspect
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from capsem_proxy.detectors.phrase_build import CACHE_ENV_VAR
from tests.client_tls import share_default_tls_context
from tests.fake_provider.process import FakeProviderProcess, start_fake_provider
from tests.proxy_process import ProxyProcess, start_proxy
from tests.scheduling import FileTimes, compile_sources, order_by_cost

# Every HTTP client of the tests' own process shares one TLS context (tests/client_tls.py).
share_default_tls_context()


@pytest.fixture(scope="session")
def fake_provider() -> Iterator[FakeProviderProcess]:
    provider = start_fake_provider()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def proxy(fake_provider: FakeProviderProcess) -> Iterator[ProxyProcess]:
    process = start_proxy(fake_provider.base_url)
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _fresh_fake_provider(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that talks to the fake provider starts with no script and no records, and leaves none:
    a module-scoped fixture of the next file sends its traffic before that file's first test resets."""
    provider = request.getfixturevalue("fake_provider") if "fake_provider" in request.fixturenames else None
    if provider is not None:
        provider.reset()
    yield
    if provider is not None:
        provider.reset()


# --- markers: `integration` (tests/integration, and tests that start the proxy or the CLI as a real
# process) and `needs_services` (Redis or PostgreSQL), applied at collection so `make test-fast` can
# leave them out ------------------------------------------------------------------------------------

_INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"
_PROCESS_CALLS = ("start_proxy(", "subprocess.run(", "subprocess.Popen(")
_SERVICE_WORDS = ("redis", "postgres")
_SERVICE_CALLS = ("require_service(", "new_schema_url(", "running_private_postgres(")


@cache
def _source(function: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def _fixture_functions(item: pytest.Item) -> list[Callable[..., Any]]:
    fixture_info = getattr(item, "_fixtureinfo", None)
    if fixture_info is None:
        return []
    return [
        definition.func
        for name in fixture_info.names_closure
        for definition in fixture_info.name2fixturedefs.get(name, ())
    ]


@cache
def _process_calls(module: Any) -> tuple[str, ...]:
    """What starts a process in `module`: the calls themselves, and its own helpers that make them
    (directly or through another helper)."""
    functions = {
        name: _source(value)
        for name, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module.__name__
    }
    calls = _PROCESS_CALLS
    while True:
        found = tuple(
            f"{name}(" for name, source in functions.items()
            if f"{name}(" not in calls and any(call in source for call in calls)
        )
        if not found:
            return calls
        calls += found


def _mentions(item: pytest.Item, calls: tuple[str, ...]) -> bool:
    function = getattr(item, "function", None)
    functions = ([function] if function is not None else []) + _fixture_functions(item)
    return any(call in _source(each) for each in functions for call in calls)


def _starts_processes(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    return module is not None and _mentions(item, _process_calls(module))


def _needs_services(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and any(str(value) in _SERVICE_WORDS for value in callspec.params.values()):
        return True
    return _mentions(item, _SERVICE_CALLS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    starting: set[str] = set()
    for item in items:
        if _INTEGRATION_DIR in Path(str(item.path)).parents or _starts_processes(item):
            item.add_marker(pytest.mark.integration)
            starting.add(item.nodeid.split("::", 1)[0])
        if _needs_services(item):
            item.add_marker(pytest.mark.needs_services)
    order_by_cost(config, items, starting)


# --- scheduling (tests/scheduling.py): bytecode compiled once, slowest files first ------------------


def pytest_configure(config: pytest.Config) -> None:
    # pytest keeps the modules whose assertions it rewrote (the test files, its plugins) as bytecode,
    # unless told to write none: with PYTHONDONTWRITEBYTECODE set, each worker would rewrite them all
    # again on every run, some 5 s of CPU. The processes the tests start still honour the variable.
    sys.dont_write_bytecode = False
    if not hasattr(config, "workerinput"):  # the main process: before any worker or test process starts
        compile_sources()
        config.pluginmanager.register(FileTimes(config), "capsem-file-times")
        # Every proxy the tests start with the injection or egress detectors loads the phrase tables
        # the first one built (capsem_proxy/detectors/phrase_build.py), from a directory of this run's.
        if CACHE_ENV_VAR not in os.environ:
            os.environ[CACHE_ENV_VAR] = config.stash[_TABLE_CACHE] = tempfile.mkdtemp(prefix="capsem-proxy-tables-")


def pytest_unconfigure(config: pytest.Config) -> None:
    directory = config.stash.get(_TABLE_CACHE, None)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
        os.environ.pop(CACHE_ENV_VAR, None)


_TABLE_CACHE = pytest.StashKey[str]()
