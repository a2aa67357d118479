"""Fixtures for audit tests: one PostgreSQL schema per test, on the shared server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.audit.stores import drop_schema, new_schema_url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = new_schema_url()
    yield url
    drop_schema(url)
