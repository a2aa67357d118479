"""What a guarded stream releases, through the real proxy: the same events release the same text
however the provider's bytes are cut into reads, an event whose text is only partly approved goes
out split in two events of its format, and every SDK reads the split stream."""

from __future__ import annotations

from pathlib import Path

import anthropic
import httpx
import openai
import orjson
import pytest
from google import genai

from tests.integration.policies import TRIGGER
from tests.proxy_process import start_proxy

REPO_ROOT = Path(__file__).resolve().parents[2]
SAFE = ("The report covers the quarter in detail and every figure in it was checked twice. " * 13)[:1014]
REPLY = SAFE + TRIGGER + " and more after it."
PROSE = "The committee met on a quiet morning, read the minutes and agreed on the plan for spring. " * 4

CHAT = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude-x", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "m", "stream": True, "input": "hi"}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
GEMINI_PATH = "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
# (path, body, key header) of each streamed format.
FORMATS = {
    "openai-chat": ("/v1/chat/completions", CHAT, {"authorization": "Bearer sk-test"}),
    "openai-responses": ("/v1/responses", RESPONSES, {"authorization": "Bearer sk-test"}),
    "anthropic": ("/v1/messages", MESSAGES, {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}),
    "gemini-sse": (f"{GEMINI_PATH}?alt=sse", GEMINI, {"x-goog-api-key": "AIza-test"}),
    "gemini-array": (GEMINI_PATH, GEMINI, {"x-goog-api-key": "AIza-test"}),
}
CHUNKINGS = [{}, {"rechunk": "bytes"}, {"rechunk": "whole"}, {"rechunk": "random", "rechunk_seed": 1},
             {"rechunk": "random", "rechunk_seed": 2}]


@pytest.fixture(scope="module")
def marker_proxy(fake_provider):
    """A whole-answer reader (a CAPSEM policy) that blocks on a marker: it holds a fixed window."""
    config = {
        "policies": [{"class": "tests.integration.policies.ResponseGuardPolicy", "options": {"keyword": TRIGGER}}],
        "streaming": {"mode": "guard", "holdback_chars": 64},
    }
    process = start_proxy(fake_provider.base_url, config, env={"PYTHONPATH": str(REPO_ROOT)})
    yield process
    process.stop()


@pytest.fixture(scope="module")
def detector_proxy(fake_provider):
    """The built-in detectors reading answers: they hold only what may still become a finding."""
    config = {"policies": [{"class": "secrets"}, {"class": "pii_detect"}, {"class": "egress"}]}
    process = start_proxy(fake_provider.base_url, config)
    yield process
    process.stop()


def _texts(kind: str, body: bytes) -> tuple[list[str], bool]:
    """The text of each event of a streamed answer, and whether it ended with an error."""
    if kind == "gemini-array":
        documents = orjson.loads(body)
    else:
        documents = [orjson.loads(line[5:]) for line in body.splitlines()
                     if line.startswith(b"data:") and line[5:].strip() != b"[DONE]"]
    texts, failed = [], False
    for document in documents:
        if "error" in document or document.get("type") in ("error", "response.failed"):
            failed = True
        elif kind == "openai-chat":
            texts.extend(choice["delta"].get("content") or "" for choice in document.get("choices", []))
        elif kind == "openai-responses":
            if document.get("type") == "response.output_text.delta":
                texts.append(document["delta"])
        elif kind == "anthropic":
            if document.get("type") == "content_block_delta":
                texts.append(document["delta"].get("text", ""))
        else:
            for candidate in document.get("candidates", []):
                texts.extend(part.get("text", "") for part in candidate.get("content", {}).get("parts", []))
    return [text for text in texts if text], failed


def _post(proxy, kind: str, **scenario) -> bytes:
    path, body, headers = FORMATS[kind]
    headers = {**headers, "x-fake-scenario": orjson.dumps(scenario).decode()}
    response = httpx.post(f"{proxy.base_url}{path}", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.content


@pytest.mark.parametrize("kind", list(FORMATS))
def test_a_block_releases_the_same_text_however_the_bytes_are_cut(marker_proxy, kind):
    releases = []
    for chunking in CHUNKINGS:
        texts, failed = _texts(kind, _post(marker_proxy, kind, reply=REPLY, chunk_size=6, **chunking))
        assert failed, chunking
        releases.append(texts)
    assert all(release == releases[0] for release in releases), [len("".join(r)) for r in releases]
    released = "".join(releases[0])
    assert SAFE.startswith(released)
    # A whole-text reader is checked as the text grows by an eighth: all but that, the window and an event.
    assert len(released) >= len(SAFE) * 7 // 8 - 64 - 6


@pytest.mark.parametrize("kind", list(FORMATS))
def test_text_approved_inside_an_event_goes_out_as_an_event_of_its_own(detector_proxy, fake_provider, kind):
    path, body, headers = FORMATS[kind]
    scenario = {"reply": PROSE, "chunk_size": 50}
    texts, failed = _texts(kind, _post(detector_proxy, kind, **scenario))
    direct = httpx.post(f"{fake_provider.base_url}{path}", json=body,
                        headers={**headers, "x-fake-scenario": orjson.dumps(scenario).decode()}).content
    upstream, _ = _texts(kind, direct)
    assert not failed and "".join(texts) == PROSE
    # Each 50-character event ends inside a word: the words before it went out at once, on their own.
    assert len(texts) > len(upstream)
    assert texts[0] == upstream[0][: upstream[0].rindex(" ") + 1]


def test_sdks_read_split_events(detector_proxy, fake_provider):
    secret = "sk-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0h"
    reply = PROSE + f"Use {secret} to deploy. " + PROSE
    expected = PROSE + "Use [REDACTED:openai_api_key] to deploy. " + PROSE
    fake_provider.script(reply=reply, chunk_size=37)
    base = detector_proxy.base_url
    messages = [{"role": "user", "content": "hi"}]

    client = openai.OpenAI(base_url=f"{base}/v1", api_key="sk-test", max_retries=0)
    chunks = client.chat.completions.create(model="m", messages=messages, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == expected
    with client.chat.completions.stream(model="m", messages=messages) as stream:
        assert stream.get_final_completion().choices[0].message.content == expected
    with client.responses.stream(model="m", input="hi") as stream:
        deltas = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        assert deltas == expected
        assert stream.get_final_response().output_text == expected

    claude = anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0)
    with claude.messages.stream(model="claude-x", max_tokens=500, messages=messages) as stream:
        assert "".join(stream.text_stream) == expected
        assert stream.get_final_message().content[0].text == expected

    gemini = genai.Client(api_key="AIza-test", http_options={"base_url": base})
    parts = list(gemini.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"))
    assert "".join(chunk.text or "" for chunk in parts) == expected
    assert parts[-1].candidates[0].finish_reason is not None
    assert parts[-1].usage_metadata is not None
