"""Streams through the real proxy: relayed as they arrive, cancelled with the client, ended
cleanly when the provider breaks off, intact under concurrency."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import orjson
import pytest

OPENAI_KEY = "sk-test-openai-0123456789"
CHAT_STREAM = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}'
CHAT_WHOLE = CHAT_STREAM.replace(b'"stream":true,', b"")
MESSAGES_STREAM = b'{"model":"claude-x","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
GEMINI_BODY = b'{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}'
GEMINI_STREAM_PATH = "/v1beta/models/gemini-2.0-flash:streamGenerateContent"


def _scenario(**fields) -> dict[str, str]:
    return {"x-fake-scenario": orjson.dumps(fields).decode()}


def test_stream_is_identical_to_direct(proxy, fake_provider):
    headers = {"authorization": f"Bearer {OPENAI_KEY}", **_scenario(events=12, chunk_size=3)}
    direct = httpx.post(f"{fake_provider.base_url}/v1/chat/completions", content=CHAT_STREAM, headers=headers)
    via_proxy = httpx.post(f"{proxy.base_url}/v1/chat/completions", content=CHAT_STREAM, headers=headers)
    assert via_proxy.status_code == 200
    assert via_proxy.headers["content-type"] == direct.headers["content-type"]
    # ids and timestamps differ per answer; the framing and event count must not.
    assert via_proxy.text.count("\n\n") == direct.text.count("\n\n")
    assert via_proxy.text.rstrip().endswith("data: [DONE]")


def test_first_event_arrives_before_the_stream_ends(proxy):
    headers = {"authorization": f"Bearer {OPENAI_KEY}", **_scenario(events=4, delay_ms=600)}
    started = time.monotonic()
    with httpx.stream("POST", f"{proxy.base_url}/v1/chat/completions", content=CHAT_STREAM, headers=headers) as r:
        iterator = r.iter_raw()
        first = next(iterator)
        first_at = time.monotonic() - started
        rest = b"".join(iterator)
        total = time.monotonic() - started
    assert first.startswith(b"data: ")
    assert b"[DONE]" in rest
    assert total >= 1.8
    assert first_at < total - 1.0, (first_at, total)


def test_gemini_json_array_stream_is_relayed_element_by_element(proxy, fake_provider):
    headers = {"x-goog-api-key": "AIzaKey123", **_scenario(events=5)}
    direct = httpx.post(f"{fake_provider.base_url}{GEMINI_STREAM_PATH}", content=GEMINI_BODY, headers=headers)
    via_proxy = httpx.post(f"{proxy.base_url}{GEMINI_STREAM_PATH}", content=GEMINI_BODY, headers=headers)
    assert via_proxy.status_code == 200
    elements = orjson.loads(via_proxy.content)
    assert len(elements) == len(orjson.loads(direct.content))
    assert "".join(
        part.get("text", "") for element in elements for part in element["candidates"][0]["content"]["parts"]
    )


def _raw_stream_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port))
    head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    connection.sendall(head.encode() + b"\r\n" + body)
    return connection


def _wait_for_outcome(fake_provider, outcome: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in fake_provider.stream_events():
            if event["outcome"] == outcome:
                return event
        time.sleep(0.05)
    raise AssertionError(f"no stream ended {outcome}: {fake_provider.stream_events()}")


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/v1/chat/completions", CHAT_STREAM, {"authorization": f"Bearer {OPENAI_KEY}"}),
        ("/v1/messages", MESSAGES_STREAM, {"x-api-key": "sk-ant-1", "anthropic-version": "2023-06-01"}),
        (GEMINI_STREAM_PATH + "?alt=sse", GEMINI_BODY, {"x-goog-api-key": "AIzaKey123"}),
    ],
)
def test_client_disconnect_cancels_the_upstream_stream(proxy, fake_provider, path, body, headers):
    connection = _raw_stream_request(proxy.port, path, body, {**headers, **_scenario(events=50, delay_ms=200)})
    first = connection.recv(65536)
    assert b" 200 " in first.split(b"\r\n", 1)[0]
    connection.close()
    # Cancelled with its client: before its natural end, ten seconds and fifty events away.
    event = _wait_for_outcome(fake_provider, "cancelled", timeout=60)
    assert event["events_sent"] < 50


def test_a_quick_whole_answer_is_unaffected_by_the_disconnect_watch(proxy):
    headers = {"authorization": f"Bearer {OPENAI_KEY}", **_scenario(first_byte_delay_ms=400)}
    answer = httpx.post(f"{proxy.base_url}/v1/chat/completions", content=CHAT_WHOLE, headers=headers)
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize(
    ("path", "body", "headers", "check_end"),
    [
        ("/v1/chat/completions", CHAT_STREAM, {"authorization": f"Bearer {OPENAI_KEY}"},
         lambda text: orjson.loads(text.strip().splitlines()[-1][6:])["error"]["message"]),
        ("/v1/messages", MESSAGES_STREAM, {"x-api-key": "sk-ant-1", "anthropic-version": "2023-06-01"},
         lambda text: "event: error" in text.strip().split("\n\n")[-1]),
        (GEMINI_STREAM_PATH + "?alt=sse", GEMINI_BODY, {"x-goog-api-key": "AIzaKey123"},
         lambda text: orjson.loads(text.strip().split("data: ")[-1])["error"]["code"] == 502),
        (GEMINI_STREAM_PATH, GEMINI_BODY, {"x-goog-api-key": "AIzaKey123"},
         lambda text: orjson.loads(text)[-1]["error"]["code"] == 502),
    ],
)
def test_broken_upstream_stream_ends_with_a_provider_error_event(proxy, path, body, headers, check_end):
    response = httpx.post(
        f"{proxy.base_url}{path}", content=body, headers={**headers, **_scenario(events=10, break_after=3)}, timeout=10
    )
    assert response.status_code == 200
    assert check_end(response.text)


async def test_two_hundred_concurrent_streams_complete_intact(proxy):
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    headers = {"authorization": f"Bearer {OPENAI_KEY}", **_scenario(events=10, delay_ms=20)}
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(index: int) -> str:
            body = CHAT_STREAM.replace(b'"hi"', f'"hi {index}"'.encode())
            response = await client.post(f"{proxy.base_url}/v1/chat/completions", content=body, headers=headers)
            assert response.status_code == 200
            return response.text

        texts = await asyncio.gather(*(one(index) for index in range(200)))
    for text in texts:
        events = [line for line in text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]"
        content = "".join(
            choice["delta"].get("content") or ""
            for line in events[:-1]
            for choice in orjson.loads(line[6:]).get("choices", [])
        )
        assert content
