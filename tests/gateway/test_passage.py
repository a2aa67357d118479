"""The gateway's hook, in process: a spent budget downgrades a Gemini request in its path and an
OpenAI request in its body; credentials are swapped for the held key and the query's key dropped."""

from __future__ import annotations

import orjson
import pytest

from capsem_proxy.gateway.gateway import Gateway, Grant
from capsem_proxy.gateway.hook import Passage
from capsem_proxy.gateway.settings import AuthSettings, LimitsSettings
from capsem_proxy.gateway.store import MemoryKeyStore
from capsem_proxy.routing import Route

BUDGET = {"budget_usd_per_day": 0.000001, "on_budget": {"downgrade": "gemini-2.5-flash-lite"}}


@pytest.fixture
def gateway() -> Gateway:
    return Gateway(AuthSettings(mode="both"), LimitsSettings(defaults=BUDGET), MemoryKeyStore())


def _spend(gateway: Gateway, tenant: str, model: str) -> None:
    """Charge the tenant's whole daily budget."""
    checks = gateway._checks(gateway._limits_of(Grant(tenant, held=False), tenant, model), False)
    assert gateway._inline is not None
    gateway._inline.settle_now({check.key: (10**6, check.ttl_s) for check in checks if check.kind == "usd"})


async def test_gemini_downgrade_rewrites_the_path(gateway):
    route = Route("gemini", "generate", "/v1beta/models/gemini-2.5-pro:generateContent", "gemini-2.5-pro")
    _spend(gateway, "t", "gemini-2.5-pro")
    passage = Passage(gateway)
    await passage.authenticate("AIza-callers-own-key-0123456789", "gemini")
    headers: list[tuple[bytes, bytes]] = []
    body, new_route, model = await passage.admit("t", route, "gemini-2.5-pro", b"{}", False, headers)
    assert model == "gemini-2.5-flash-lite" and body == b"{}"
    assert new_route.upstream_path == "/v1beta/models/gemini-2.5-flash-lite:generateContent"
    assert (b"x-capsem-downgraded-from", b"gemini-2.5-pro") in headers


async def test_openai_downgrade_rewrites_the_body(gateway):
    route = Route("openai", "chat", "/chat/completions")
    _spend(gateway, "t", "gpt-4o")
    passage = Passage(gateway)
    await passage.authenticate("sk-callers-own-key-0123456789", "openai")
    body, _route, model = await passage.admit("t", route, "gpt-4o", b'{"model": "gpt-4o", "x": 1}', False, [])
    assert model == "gemini-2.5-flash-lite" and orjson.loads(body) == {"model": "gemini-2.5-flash-lite", "x": 1}


def test_credentials_are_swapped(gateway):
    grant = Grant("t", "gk_1", provider_keys={"gemini": "AIza-held"})
    forwarded = [("x-goog-api-key", "cpk-x"), ("authorization", "Bearer cpk-x"), ("content-type", "application/json")]
    headers, query = gateway.upstream_credentials(grant, "gemini", forwarded, b"alt=sse&key=cpk-x&%6Bey=cpk-x")
    assert headers == [("content-type", "application/json"), ("x-goog-api-key", "AIza-held")]
    assert query == b"alt=sse"
