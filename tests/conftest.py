"""Shared fixtures: a real fake provider and a real proxy, both over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

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
