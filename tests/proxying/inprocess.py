"""The proxy as an ASGI app inside the test's own event loop, driven through `httpx.ASGITransport`:
the request path without a server process (the provider is still the real fake one over HTTP)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from capsem_proxy.app import ProxyApp
from capsem_proxy.config import Settings

__all__ = ["asgi_proxy"]


@asynccontextmanager
async def asgi_proxy(upstream_base_url: str, config: dict[str, Any] | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a proxy built from `config` (merged into a test default), every provider
    pointing at `upstream_base_url`."""
    data_dir = Path(tempfile.mkdtemp(prefix="capsem-proxy-asgi-"))
    values: dict[str, Any] = {
        "server": {"data_dir": str(data_dir), "log_level": "warning"},
        "audit": {"url": "memory://"},
        "providers": {
            "openai": {"base_url": f"{upstream_base_url}/v1"},
            "gemini": {"base_url": upstream_base_url},
            "anthropic": {"base_url": upstream_base_url},
        },
    }
    for section, section_values in (config or {}).items():
        if isinstance(section_values, dict):
            values.setdefault(section, {}).update(section_values)
        else:
            values[section] = section_values
    app = ProxyApp(Settings(**values))
    await app.audit.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
            yield client
    finally:
        await app.aclose()
