"""`logging.json: true` on a real proxy: every line it writes is one JSON object, the access log
line carries the request's fields, and no key or prompt text is written."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.proxy_process import ProxyProcess, start_proxy

OPENAI_KEY = "sk-proj-jsonLogsCheck" + "Z9y8X7w6" * 4
GEMINI_KEY = "AIzaSyJsonLogsCheck" + "k1l2m3n4o5p6q7r8s9t0u"
PROMPT = "a prompt that must stay out of logs: papaya-53"


@pytest.fixture(scope="module")
def proxy(fake_provider):
    process = start_proxy(fake_provider.base_url, {"logging": {"json": True}}, log_level="info")
    yield process
    process.stop()


def _lines(proxy: ProxyProcess) -> list[dict]:
    text = proxy.log_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON line: {line!r}")
    return parsed


def _access_line(proxy: ProxyProcess, request_id: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        found = [line for line in _lines(proxy) if line.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.05)


def test_every_line_is_a_json_object_with_the_common_fields(proxy) -> None:
    for line in _lines(proxy):
        assert {"time", "level", "logger", "message"} <= set(line), line
    assert any(line["logger"].startswith("uvicorn") for line in _lines(proxy))


def test_access_line_carries_request_fields(proxy) -> None:
    response = httpx.post(
        f"{proxy.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {OPENAI_KEY}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
    )
    assert response.status_code == 200
    line = _access_line(proxy, response.headers["x-capsem-request-id"])
    assert line["logger"] == "capsem_proxy.access"
    assert line["method"] == "POST"
    assert line["route"] == "/v1/chat/completions"
    assert line["status"] == 200
    assert isinstance(line["latency_ms"], int | float) and line["latency_ms"] > 0
    assert line["tenant_id"]


def test_access_line_of_a_blocked_request_has_its_status_and_the_callers_tenant(proxy) -> None:
    lines = {}
    for prompt in (PROMPT, "capsem_block " + PROMPT):
        response = httpx.post(
            f"{proxy.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {OPENAI_KEY}"},
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]},
        )
        lines[response.status_code] = _access_line(proxy, response.headers["x-capsem-request-id"])
    assert sorted(lines) == [200, 403]
    assert lines[403]["status"] == 403
    assert lines[403]["tenant_id"] == lines[200]["tenant_id"]  # same key, same tenant


def test_access_line_of_a_blocked_request_names_its_decision_as_the_answer_does(proxy) -> None:
    response = httpx.post(
        f"{proxy.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {OPENAI_KEY}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "capsem_block " + PROMPT}]},
    )
    assert response.status_code == 403
    line = _access_line(proxy, response.headers["x-capsem-request-id"])
    assert line["decision_id"] == response.headers["x-capsem-decision-id"]
    assert line["verdict"] == "BLOCK"
    allowed = httpx.post(
        f"{proxy.base_url}/v1/chat/completions", headers={"authorization": f"Bearer {OPENAI_KEY}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]},
    )
    line = _access_line(proxy, allowed.headers["x-capsem-request-id"])
    assert (line["verdict"], line["decision_id"]) == ("ALLOW", None)


def test_gemini_route_is_logged_as_a_template_and_the_query_key_never(proxy) -> None:
    response = httpx.post(
        f"{proxy.base_url}/v1beta/models/gemini-2.0-flash:generateContent", params={"key": GEMINI_KEY},
        json={"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]},
    )
    assert response.status_code == 200
    line = _access_line(proxy, response.headers["x-capsem-request-id"])
    assert line["route"] == "/v1beta/models/{model}:generateContent"
    assert line["status"] == 200


def test_no_key_or_prompt_anywhere_in_the_log(proxy) -> None:
    for headers in ({"authorization": f"Bearer {OPENAI_KEY}"}, {"authorization": f"Bearer {OPENAI_KEY}x"}):
        httpx.post(f"{proxy.base_url}/v1/chat/completions", headers=headers, content=b"{not json " + PROMPT.encode())
    httpx.get(f"{proxy.base_url}/v1/unknown/{OPENAI_KEY}", headers={"authorization": f"Bearer {OPENAI_KEY}"})
    time.sleep(0.2)
    # The start-up line describes the debug policy, keyword included; no other line may quote a prompt.
    text = "\n".join(line for line in proxy.log_text().splitlines() if '"startup":' not in line)
    for secret in (OPENAI_KEY, GEMINI_KEY, "papaya", "capsem_block"):
        assert secret not in text
