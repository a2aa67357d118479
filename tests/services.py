"""Access to the local Redis and PostgreSQL for tests: skip with a reason on a laptop where the
service is down, fail under CI (CI=true), where it must be running."""

from __future__ import annotations

import os
import socket

import pytest

__all__ = ["REDIS_URL", "require_service"]

REDIS_URL = os.environ.get("CAPSEM_PROXY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail under CI) unless something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError as exc:
        message = f"{name} is not reachable on {host}:{port} ({exc})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must provide it")
        pytest.skip(message)
