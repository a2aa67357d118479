"""Shared pieces of the team gateway's integration tests: a proxy in gateway mode, keys made through
the admin API, and what the fake provider received."""

from __future__ import annotations

from typing import Any

import httpx

from tests.proxy_process import ProxyProcess, start_proxy

ADMIN_TOKEN = "admin-token-for-gateway-tests-0123456789"
MASTER_KEY = "master-key-for-gateway-tests-0123456789abcdef"
HELD_KEYS = {"openai": "sk-held-openai-0123456789", "anthropic": "sk-ant-held-0123456789",
             "gemini": "AIzaHeldGemini0123456789"}


def start_gateway(fake_provider, config: dict | None = None, env: dict[str, str] | None = None) -> ProxyProcess:
    settings: dict[str, Any] = {"admin": {"token": ADMIN_TOKEN}, "auth": {"mode": "gateway"},
                                "audit": {"url": "sqlite:///./data/audit.db"}}
    settings.update(config or {})
    return start_proxy(fake_provider.base_url, settings, env={"CAPSEM_PROXY_MASTER_KEY": MASTER_KEY, **(env or {})})


def admin(proxy: ProxyProcess, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN) -> httpx.Response:
    return httpx.request(method, proxy.base_url + path, json=body, headers={"authorization": f"Bearer {token}"},
                         timeout=10)


def create_key(proxy: ProxyProcess, **fields: Any) -> dict[str, Any]:
    fields.setdefault("tenant", "team-a")
    fields.setdefault("provider_keys", HELD_KEYS)
    answer = admin(proxy, "POST", "/admin/keys", fields)
    assert answer.status_code == 201, answer.text
    return answer.json()


def header(record: dict, name: str) -> list[str]:
    return [value for key, value in record["headers"] if key.lower() == name]


def all_header_values(record: dict) -> str:
    return " ".join(f"{key}: {value}" for key, value in record["headers"]) + " " + record["path"]
