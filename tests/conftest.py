"""Shared fixtures: a real fake provider and a real proxy, both over HTTP on 127.0.0.1."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.fake_provider.process import FakeProviderProcess, start_fake_provider
from tests.proxy_process import ProxyProcess, start_proxy


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
def _fresh_fake_provider(request: pytest.FixtureRequest) -> None:
    """Every test that talks to the fake provider starts with no script and no records."""
    if "fake_provider" in request.fixturenames:
        request.getfixturevalue("fake_provider").reset()


# --- markers: `integration` (a real proxy or real servers over HTTP) and `needs_services` (Redis or
# PostgreSQL), applied at collection so `make test-fast` can leave them out ------------------------

_INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"
_SERVICE_WORDS = ("redis", "postgres")
_SERVICE_CALLS = ("require_service(", "new_schema_url(", "running_private_postgres(")


@cache
def _calls_a_service(function: Callable[..., Any]) -> bool:
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    return any(call in source for call in _SERVICE_CALLS)


def _needs_services(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and any(str(value) in _SERVICE_WORDS for value in callspec.params.values()):
        return True
    function = getattr(item, "function", None)
    if function is not None and _calls_a_service(function):
        return True
    fixture_info = getattr(item, "_fixtureinfo", None)
    if fixture_info is None:
        return False
    return any(
        _calls_a_service(definition.func)
        for name in fixture_info.names_closure
        for definition in fixture_info.name2fixturedefs.get(name, ())
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _INTEGRATION_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)
        if _needs_services(item):
            item.add_marker(pytest.mark.needs_services)
