"""Azure OpenAI's own answer shapes through the proxy with an answer policy reading them: the
`prompt_filter_results` chunk with no choices that opens an Azure stream, `content_filter_results`
on every choice, and the same fields on whole answers reach `openai.AzureOpenAI` as Azure sent them."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiohttp import web
from openai import AzureOpenAI

from tests.proxy_process import ProxyProcess, free_port, start_proxy

pytestmark = pytest.mark.integration  # a real proxy and real fake upstreams over HTTP

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "azure-shapes-key-0123456789"
FILTERS = {"hate": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}}
PROMPT_FILTERS = [{"prompt_index": 0, "content_filter_results": FILTERS}]


def _chunk(choices: list, **extra: object) -> bytes:
    body = {"id": "chatcmpl-az", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-2024-11-20",
            "choices": choices, **extra}
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def _chat(request: web.Request) -> web.StreamResponse:
    assert request.headers["api-key"] == KEY
    payload = await request.json()
    if not payload.get("stream"):
        return web.json_response({
            "id": "chatcmpl-az", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-11-20",
            "prompt_filter_results": PROMPT_FILTERS,
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None, "content_filter_results": FILTERS,
                         "message": {"role": "assistant", "content": "Hello from Azure."}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
        })
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    await response.write(_chunk([], prompt_filter_results=PROMPT_FILTERS))
    for index, piece in enumerate(["Hello", " from", " Azure."]):
        delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
        await response.write(_chunk([{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None,
                                      "content_filter_results": FILTERS}]))
    await response.write(_chunk([{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None,
                                  "content_filter_results": {}}]))
    await response.write(b"data: [DONE]\n\n")
    return response


@pytest.fixture(scope="module")
def azure_like() -> Iterator[str]:
    """An Azure-shaped OpenAI server on its own event loop thread."""
    port = free_port()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/openai/deployments/{deployment}/chat/completions", _chat)
    runner = web.AppRunner(app)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


@pytest.fixture(scope="module")
def proxy_to_azure(azure_like: str) -> Iterator[ProxyProcess]:
    config = {
        "upstreams": [{"name": "azure", "type": "azure_openai", "base_url": azure_like}],
        "policies": [{"class": "tests.integration.policies.ResponseGuardPolicy", "options": {"keyword": "FORBIDDEN"}}],
    }
    process = start_proxy(azure_like, config, env={"PYTHONPATH": str(REPO_ROOT)})
    yield process
    process.stop()


def _client(proxy: ProxyProcess) -> AzureOpenAI:
    return AzureOpenAI(azure_endpoint=proxy.base_url, api_key=KEY, api_version="2024-10-21", max_retries=0)


def test_whole_answer_keeps_azure_filter_results(proxy_to_azure):
    with _client(proxy_to_azure) as client:
        completion = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "Hello from Azure."
    assert completion.prompt_filter_results == PROMPT_FILTERS
    assert completion.choices[0].content_filter_results == FILTERS


def test_stream_opening_with_prompt_filter_results_reaches_the_client_whole(proxy_to_azure):
    with _client(proxy_to_azure) as client:
        chunks = list(client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        ))
    assert chunks[0].choices == [] and chunks[0].prompt_filter_results == PROMPT_FILTERS
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Azure."
    assert chunks[1].choices[0].content_filter_results == FILTERS
    assert chunks[-1].choices[0].finish_reason == "stop"
