"""docs/writing-policies.md: its worked example is examples/ticket_guard.py as it is, and does what
the page says through the proxy."""

from __future__ import annotations

import re

import orjson
import pytest

from capsem_proxy.config import ConfigError
from tests.docs_blocks import REPO_ROOT
from tests.proxying.inprocess import asgi_proxy

DOC = REPO_ROOT / "docs" / "writing-policies.md"
EXAMPLE = REPO_ROOT / "examples" / "ticket_guard.py"
CONFIG = {"policies": [{"class": "ticket_guard.TicketGuard", "options": {"projects": ["OPS", "SEC"]}}]}
KEY = {"authorization": "Bearer sk-ticket-guard-tenant"}


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT / "examples"))  # PYTHONPATH=examples, as the page says


def _chat(prompt: str, reply: str, stream: bool = False) -> dict:
    return {
        "json": {"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": prompt}]},
        "headers": {**KEY, "x-fake-scenario": orjson.dumps({"reply": reply}).decode()},
    }


def test_the_page_shows_the_example_file_as_it_is():
    blocks = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    assert blocks == [EXAMPLE.read_text(encoding="utf-8")]


async def test_a_prompt_naming_an_internal_ticket_is_refused(fake_provider, on_path):
    async with asgi_proxy(fake_provider.base_url, CONFIG) as client:
        response = await client.post("/v1/chat/completions", **_chat("what is the status of OPS-1234?", "ok"))
    assert response.status_code == 403
    assert response.json()["detail"] == "Request blocked by security policy: the prompt names an internal ticket"
    assert response.headers["x-capsem-decision-id"]
    assert fake_provider.requests() == []


async def test_internal_ticket_ids_are_redacted_from_answers(fake_provider, on_path):
    async with asgi_proxy(fake_provider.base_url, CONFIG) as client:
        whole = await client.post("/v1/chat/completions", **_chat("any news?", "fixed in SEC-77, see WEB-5"))
        streamed = await client.post("/v1/chat/completions", **_chat("any news?", "fixed in SEC-77", stream=True))
    assert whole.status_code == 200
    assert whole.json()["choices"][0]["message"]["content"] == "fixed in [ticket], see WEB-5"
    assert streamed.status_code == 200
    text = "".join(
        choice["delta"].get("content") or ""
        for line in streamed.text.splitlines()
        if line.startswith("data: {")
        for choice in orjson.loads(line[6:])["choices"]
    )
    assert text == "fixed in [ticket]"


async def test_a_bad_option_stops_the_proxy_at_start_up(fake_provider, on_path):
    config = {"policies": [{"class": "ticket_guard.TicketGuard", "options": {"project": ["OPS"]}}]}
    with pytest.raises(ConfigError, match="options"):
        async with asgi_proxy(fake_provider.base_url, config):
            pass
