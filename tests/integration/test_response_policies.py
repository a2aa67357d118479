"""Response-side policies through the real proxy: whole answers, guarded streams and the tool
calls a model emits; blocked content never reaches the client."""

from __future__ import annotations

from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors

from tests.integration.policies import TRIGGER
from tests.proxy_process import start_proxy

REPO_ROOT = Path(__file__).resolve().parents[2]
REPLY = "The answer starts harmlessly and runs on for a good while, and then it says " + TRIGGER + " and more."
SAFE_PREFIX = REPLY[: REPLY.index(TRIGGER)]
_COMMAND_SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}}
TOOLS = [{"type": "function",
          "function": {"name": "shell", "description": "run a command", "parameters": _COMMAND_SCHEMA}}]


@pytest.fixture(scope="module")
def guarded_proxy(fake_provider):
    config = {
        "policies": [
            {"class": "capsem.policies.debug_policy.DebugPolicy"},
            {"class": "tests.integration.policies.ResponseGuardPolicy", "options": {"keyword": TRIGGER}},
        ],
        "streaming": {"mode": "guard", "holdback_chars": 32},
    }
    process = start_proxy(fake_provider.base_url, config, env={"PYTHONPATH": str(REPO_ROOT)})
    yield process
    process.stop()


def _openai(proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key="sk-test-guard", max_retries=0)


def test_blocked_whole_answer_is_a_403_the_sdk_raises(guarded_proxy, fake_provider):
    fake_provider.script(reply=REPLY)
    with pytest.raises(openai.PermissionDeniedError) as error:
        _openai(guarded_proxy).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert f"Response blocked by security policy: Detected '{TRIGGER}'" in str(error.value)
    assert error.value.response.headers["x-capsem-decision-id"]


def test_clean_answer_passes_unchanged(guarded_proxy, fake_provider):
    completion = _openai(guarded_proxy).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "Hello from the fake provider."


@pytest.mark.parametrize("chunk_size", [1, 3, 7])
def test_openai_stream_blocked_mid_way_delivers_only_text_before_the_window(guarded_proxy, fake_provider, chunk_size):
    fake_provider.script(reply=REPLY, chunk_size=chunk_size)
    received = ""
    with pytest.raises(openai.APIError) as error:
        stream = _openai(guarded_proxy).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received += chunk.choices[0].delta.content
    assert "Response blocked by security policy" in str(error.value)
    assert SAFE_PREFIX.startswith(received)
    assert received  # text before the window did flow
    assert TRIGGER[:2] not in received[len(SAFE_PREFIX) - 1 :]


def test_clean_stream_arrives_whole(guarded_proxy, fake_provider):
    fake_provider.script(reply="A perfectly ordinary answer " * 20, chunk_size=5)
    stream = _openai(guarded_proxy).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "A perfectly ordinary answer " * 20


def test_anthropic_stream_blocked_mid_way(guarded_proxy, fake_provider):
    fake_provider.script(reply=REPLY, chunk_size=4)
    client = anthropic.Anthropic(base_url=guarded_proxy.base_url, api_key="sk-ant-guard", max_retries=0)
    received = ""
    request = {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(anthropic.APIStatusError) as error, client.messages.stream(**request) as stream:
        for text in stream.text_stream:
            received += text
    assert "Response blocked by security policy" in str(error.value)
    assert SAFE_PREFIX.startswith(received)


def test_gemini_stream_blocked_mid_way(guarded_proxy, fake_provider):
    fake_provider.script(reply=REPLY, chunk_size=4)
    client = genai.Client(api_key="AIza-guard", http_options={"base_url": guarded_proxy.base_url})
    received = ""
    with pytest.raises(genai_errors.APIError) as error:
        for chunk in client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"):
            received += chunk.text or ""
    assert "Response blocked by security policy" in str(error.value)
    assert SAFE_PREFIX.startswith(received)


def test_streamed_tool_call_with_forbidden_arguments_never_reaches_the_client(guarded_proxy, fake_provider):
    fake_provider.script(tool_call=True, tool_args={"command": "rm -rf /"})
    tool_chunks = []
    with pytest.raises(openai.APIError) as error:
        stream = _openai(guarded_proxy).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "clean up"}], tools=TOOLS, stream=True
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.tool_calls:
                tool_chunks.append(chunk)
    assert tool_chunks == []
    assert "Tool blocked by security policy: destructive command (tool call 'shell')" in str(error.value)


def test_non_streamed_tool_call_with_forbidden_arguments_is_a_403(guarded_proxy, fake_provider):
    fake_provider.script(tool_call=True, tool_args={"command": "rm -rf /"})
    with pytest.raises(openai.PermissionDeniedError) as error:
        _openai(guarded_proxy).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "clean up"}], tools=TOOLS
        )
    assert "Tool blocked by security policy: destructive command" in str(error.value)


def test_allowed_streamed_tool_call_is_assembled_by_the_sdk(guarded_proxy, fake_provider):
    fake_provider.script(tool_call=True, tool_args={"command": "ls -la"})
    stream = _openai(guarded_proxy).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "list"}], tools=TOOLS, stream=True
    )
    name, arguments = "", ""
    for chunk in stream:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            name += call.function.name or ""
            arguments += call.function.arguments or ""
    assert name == "shell"
    assert arguments.replace(" ", "") == '{"command":"ls-la"}'


def test_stream_decisions_reach_the_audit_store(guarded_proxy, fake_provider):
    import sqlite3
    import time

    fake_provider.script(reply=REPLY, chunk_size=6)
    response = httpx.post(
        f"{guarded_proxy.base_url}/v1/chat/completions",
        json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": "Bearer sk-audit"},
    )
    request_id = response.headers["x-capsem-request-id"]
    database = guarded_proxy.workdir / "capsem-data" / "audit.db"
    rows: list = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not rows:
        if database.exists():
            with sqlite3.connect(database) as connection:
                rows = connection.execute(
                    "SELECT hook, policy, verdict, details FROM decisions WHERE request_id = ? AND verdict = 'BLOCK'",
                    (request_id,),
                ).fetchall()
        time.sleep(0.05)
    assert rows == [("on_model_response", "ResponseGuard", "BLOCK", f"Detected '{TRIGGER}'")]


@pytest.mark.parametrize("stream", [False, True])
def test_default_policy_checks_emitted_tool_calls_without_holding_text(proxy, fake_provider, stream):
    fake_provider.script(tool_call=True, tool_name="capsem_block_exec", tool_args={"cmd": "x"})
    client = openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key="sk-default", max_retries=0)
    with pytest.raises(openai.APIError) as error:
        result = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "go"}], tools=TOOLS, stream=stream
        )
        if stream:
            for _ in result:
                pass
    assert "Tool blocked by security policy: Detected 'capsem_block' in tool name" in str(error.value)
    assert "capsem_block_exec" in str(error.value)


def test_default_policy_streams_text_without_holdback(proxy, fake_provider):
    fake_provider.script(reply="x" * 400, chunk_size=4, delay_ms=30)
    with httpx.stream("POST", f"{proxy.base_url}/v1/chat/completions",
                      json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
                      headers={"authorization": "Bearer k"}) as response:
        chunks = list(response.iter_raw())
    # Each upstream event reaches the client on its own: nothing is held back and merged.
    assert sum(chunk.count(b"data: ") for chunk in chunks) >= 100
    assert len(chunks) >= 50


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def test_two_hundred_concurrent_guarded_streams_complete_with_bounded_memory(guarded_proxy, fake_provider):
    import asyncio

    reply = "An ordinary sentence of a long streamed answer. " * 40
    fake_provider.script(reply=reply, chunk_size=16, delay_ms=5)
    client = openai.AsyncOpenAI(base_url=f"{guarded_proxy.base_url}/v1", api_key="sk-many", max_retries=0,
                                http_client=openai.DefaultAsyncHttpxClient(
                                    limits=httpx.Limits(max_connections=200), timeout=60))

    async def one() -> str:
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])

    await one()
    before = _rss_bytes(guarded_proxy.process.pid)
    texts = await asyncio.gather(*(one() for _ in range(200)))
    after = _rss_bytes(guarded_proxy.process.pid)
    assert all(text == reply for text in texts)
    assert after - before < 64 * 1024 * 1024, (before, after)


def test_policy_needing_the_whole_answer_streams_in_buffer_mode(fake_provider):
    config = {"policies": [{"class": "tests.integration.policies.WholeAnswerPolicy"}],
              "streaming": {"mode": "pass"}}
    process = start_proxy(fake_provider.base_url, config, env={"PYTHONPATH": str(REPO_ROOT)})
    try:
        fake_provider.script(reply="harmless start " * 30 + TRIGGER, chunk_size=10)
        with httpx.stream("POST", f"{process.base_url}/v1/chat/completions",
                          json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]},
                          headers={"authorization": "Bearer k"}) as response:
            body = response.read().decode()
        # Nothing of the answer went out before the whole of it was checked.
        assert "harmless" not in body
        assert "Response blocked by security policy" in body
    finally:
        process.stop()


def test_capsem_config_directory_runs_through_the_proxy(fake_provider, tmp_path):
    (tmp_path / "debug.toml").write_text("enabled = true\n")
    (tmp_path / "guard.toml").write_text('class = "tests.integration.policies.ResponseGuardPolicy"\n')
    process = start_proxy(fake_provider.base_url, {"policies": [], "policy_dir": str(tmp_path)},
                          env={"PYTHONPATH": str(REPO_ROOT)})
    try:
        blocked = httpx.post(f"{process.base_url}/v1/chat/completions", headers={"authorization": "Bearer k"},
                             json={"model": "m", "messages": [{"role": "user", "content": "capsem_block"}]})
        assert blocked.json()["detail"] == "Request blocked by security policy: Detected 'capsem_block' in prompt"
        fake_provider.script(reply=f"it says {TRIGGER}")
        answer = httpx.post(f"{process.base_url}/v1/chat/completions", headers={"authorization": "Bearer k"},
                            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert answer.status_code == 403
        assert answer.json()["detail"].startswith("Response blocked by security policy")
    finally:
        process.stop()
