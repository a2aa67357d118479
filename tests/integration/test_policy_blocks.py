"""The default CAPSEM DebugPolicy, through each official SDK and over raw HTTP, streamed and not.

A prompt containing `capsem_block` and a tool whose name contains it are refused with 403 before
anything reaches the provider, in a body each SDK turns into its usual exception; a tool call named
so that the model emits is stopped before the client sees it; system/developer instructions are not
the prompt (`Exchange.prompt` leaves them out), so `capsem_block` there does not trigger the policy."""

from __future__ import annotations

import base64
import json
import re

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors, types

OPENAI_KEY = "sk-test-policy-openai-0123"
ANTHROPIC_KEY = "sk-ant-test-policy-0123"
GEMINI_KEY = "AIzaTestPolicyGemini0123"
GEMINI_MODEL = "gemini-2.5-flash"

PROMPT_BLOCK = "Request blocked by security policy: Detected 'capsem_block' in prompt"
TOOL_BLOCK = "Tool blocked by security policy: Detected 'capsem_block' in tool name"
EMITTED_BLOCK = f"{TOOL_BLOCK} (tool call 'capsem_block_tool')"
BLOCKED_PROMPT = "Please capsem_block this request"
PARAMETERS = {"type": "object", "properties": {"location": {"type": "string"}}}
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])


def _openai_tool(name: str) -> dict:
    return {"type": "function", "function": {"name": name, "description": "a tool", "parameters": PARAMETERS}}


def _responses_tool(name: str) -> dict:
    return {"type": "function", "name": name, "description": "a tool", "parameters": PARAMETERS}


def _anthropic_tool(name: str) -> dict:
    return {"name": name, "description": "a tool", "input_schema": PARAMETERS}


def _gemini_config(tool: str | None = None, headers: dict | None = None, system: str | None = None):
    return types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name=tool, description="a tool")])]
        if tool else None,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        system_instruction=system,
        http_options=types.HttpOptions(headers=headers) if headers else None,
    )


def _body(record: dict) -> dict:
    return json.loads(base64.b64decode(record["body_b64"]))


def _assert_block_headers(headers) -> None:
    assert re.fullmatch(r"[0-9a-f]{24}", headers["x-capsem-request-id"])
    assert headers["x-capsem-decision-id"]


@pytest.fixture
def oai(proxy):
    with openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
def claude(proxy):
    with anthropic.Anthropic(base_url=proxy.base_url, api_key=ANTHROPIC_KEY, max_retries=0, timeout=10) as client:
        yield client


@pytest.fixture
def gemini(proxy):
    with genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=proxy.base_url)) as client:
        yield client


# ----------------------------------------------------------------------------- openai SDK


def _openai_chat(client, stream: bool, **kwargs) -> None:
    kwargs.setdefault("messages", [{"role": "user", "content": BLOCKED_PROMPT}])
    result = client.chat.completions.create(model="gpt-4o-mini", stream=stream, **kwargs)
    if stream:
        list(result)


def _assert_openai_blocked(error: openai.PermissionDeniedError, message: str) -> None:
    assert error.status_code == 403
    assert message in str(error)
    assert error.message == f"Error code: 403 - {message}"
    assert error.code == "policy_blocked"
    assert error.body["message"] == message
    _assert_block_headers(error.response.headers)


@STREAM
def test_openai_chat_prompt_is_blocked(oai, fake_provider, stream):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _openai_chat(oai, stream)
    _assert_openai_blocked(caught.value, PROMPT_BLOCK)
    assert fake_provider.requests() == []


def test_openai_chat_prompt_in_a_content_part_is_blocked(oai, fake_provider):
    content = [{"type": "text", "text": "harmless first part"}, {"type": "text", "text": "then CAPSEM_BLOCK"}]
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _openai_chat(oai, False, messages=[{"role": "user", "content": content}])
    _assert_openai_blocked(caught.value, PROMPT_BLOCK)
    assert fake_provider.requests() == []


@STREAM
def test_openai_chat_tool_definition_is_blocked(oai, fake_provider, stream):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _openai_chat(
            oai, stream, messages=[{"role": "user", "content": "hi"}],
            tools=[_openai_tool("get_weather"), _openai_tool("capsem_block_tool")],
        )
    _assert_openai_blocked(caught.value, TOOL_BLOCK)
    assert fake_provider.requests() == []


@STREAM
def test_openai_responses_string_input_is_blocked(oai, fake_provider, stream):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        result = oai.responses.create(model="gpt-4o-mini", input=BLOCKED_PROMPT, stream=stream)
        if stream:
            list(result)
    _assert_openai_blocked(caught.value, PROMPT_BLOCK)
    assert fake_provider.requests() == []


@STREAM
def test_openai_responses_tool_definition_is_blocked(oai, fake_provider, stream):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        result = oai.responses.create(
            model="gpt-4o-mini", input="hi", tools=[_responses_tool("capsem_block_tool")], stream=stream
        )
        if stream:
            list(result)
    _assert_openai_blocked(caught.value, TOOL_BLOCK)
    assert fake_provider.requests() == []


def test_openai_emitted_tool_call_is_blocked(oai, fake_provider):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _openai_chat(
            oai, False, messages=[{"role": "user", "content": "hi"}], tools=[_openai_tool("get_weather")],
            extra_headers=fake_provider.scenario_header(tool_call=True, tool_name="capsem_block_tool"),
        )
    _assert_openai_blocked(caught.value, EMITTED_BLOCK)
    assert len(fake_provider.requests()) == 1  # an answer-side block: the provider was asked


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_openai_emitted_tool_call_is_cut_from_the_stream(oai, fake_provider, api):
    headers = fake_provider.scenario_header(tool_call=True, tool_name="capsem_block_tool", chunk_size=4)
    seen: list = []
    with pytest.raises(openai.APIError) as caught:
        if api == "chat":
            stream = oai.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
                tools=[_openai_tool("get_weather")], extra_headers=headers,
            )
        else:
            stream = oai.responses.create(
                model="gpt-4o-mini", input="hi", stream=True, tools=[_responses_tool("get_weather")],
                extra_headers=headers,
            )
        seen.extend(stream)
    assert caught.value.message == EMITTED_BLOCK
    assert "capsem_block_tool" not in "".join(event.model_dump_json() for event in seen)
    assert len(fake_provider.requests()) == 1


async def test_openai_async_stream_prompt_is_blocked(proxy, fake_provider):
    async with openai.AsyncOpenAI(base_url=proxy.base_url + "/v1", api_key=OPENAI_KEY, max_retries=0) as client:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": BLOCKED_PROMPT}], stream=True
            )
            async for _ in stream:
                pass
    _assert_openai_blocked(caught.value, PROMPT_BLOCK)
    assert fake_provider.requests() == []


# ----------------------------------------------------------------------------- anthropic SDK


def _anthropic_messages(client, stream: bool, **kwargs) -> None:
    kwargs.setdefault("messages", [{"role": "user", "content": BLOCKED_PROMPT}])
    if stream:
        with client.messages.stream(model="claude-sonnet-4-6", max_tokens=32, **kwargs) as events:
            list(events)
    else:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=32, **kwargs)


def _assert_anthropic_blocked(error: anthropic.PermissionDeniedError, message: str) -> None:
    assert error.status_code == 403
    assert message in str(error)
    assert error.body["error"] == {"type": "permission_error", "message": message}
    assert error.body["detail"] == message
    _assert_block_headers(error.response.headers)


@STREAM
def test_anthropic_prompt_is_blocked(claude, fake_provider, stream):
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        _anthropic_messages(claude, stream)
    _assert_anthropic_blocked(caught.value, PROMPT_BLOCK)
    assert fake_provider.requests() == []


@STREAM
def test_anthropic_tool_definition_is_blocked(claude, fake_provider, stream):
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        _anthropic_messages(
            claude, stream, messages=[{"role": "user", "content": "hi"}], tools=[_anthropic_tool("capsem_block_tool")]
        )
    _assert_anthropic_blocked(caught.value, TOOL_BLOCK)
    assert fake_provider.requests() == []


def test_anthropic_emitted_tool_call_is_blocked(claude, fake_provider):
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        _anthropic_messages(
            claude, False, messages=[{"role": "user", "content": "hi"}], tools=[_anthropic_tool("get_weather")],
            extra_headers=fake_provider.scenario_header(tool_call=True, tool_name="capsem_block_tool"),
        )
    _assert_anthropic_blocked(caught.value, EMITTED_BLOCK)
    assert len(fake_provider.requests()) == 1


def test_anthropic_emitted_tool_call_is_cut_from_the_stream(claude, fake_provider):
    seen: list = []
    with pytest.raises(anthropic.APIStatusError) as caught:  # the SDK's class for an `event: error` mid-stream
        stream = claude.messages.create(
            model="claude-sonnet-4-6", max_tokens=32, messages=[{"role": "user", "content": "hi"}], stream=True,
            tools=[_anthropic_tool("get_weather")],
            extra_headers=fake_provider.scenario_header(tool_call=True, tool_name="capsem_block_tool", chunk_size=4),
        )
        seen.extend(stream)
    assert caught.value.body["error"] == {"type": "permission_error", "message": EMITTED_BLOCK}
    assert "capsem_block_tool" not in "".join(event.model_dump_json() for event in seen)
    assert len(fake_provider.requests()) == 1


async def test_anthropic_async_stream_prompt_is_blocked(proxy, fake_provider):
    client = anthropic.AsyncAnthropic(base_url=proxy.base_url, api_key=ANTHROPIC_KEY, max_retries=0)
    async with client:
        with pytest.raises(anthropic.PermissionDeniedError) as caught:
            async with client.messages.stream(
                model="claude-sonnet-4-6", max_tokens=32, messages=[{"role": "user", "content": BLOCKED_PROMPT}]
            ) as stream:
                async for _ in stream:
                    pass
    _assert_anthropic_blocked(caught.value, PROMPT_BLOCK)
    assert fake_provider.requests() == []


# ----------------------------------------------------------------------------- google-genai SDK


def _gemini_generate(client, stream: bool, contents: str = BLOCKED_PROMPT, **config) -> None:
    if stream:
        list(client.models.generate_content_stream(model=GEMINI_MODEL, contents=contents,
                                                   config=_gemini_config(**config)))
    else:
        client.models.generate_content(model=GEMINI_MODEL, contents=contents, config=_gemini_config(**config))


def _assert_gemini_blocked(error: errors.ClientError, message: str, *, detail: bool = True) -> None:
    assert error.code == 403
    assert error.status == "PERMISSION_DENIED"
    assert error.message == message
    assert message in str(error)
    if detail:  # a 403 answer carries `detail`; an error event ending a stream is only the native error
        assert error.details["detail"] == message


@STREAM
def test_gemini_prompt_is_blocked(gemini, fake_provider, stream):
    with pytest.raises(errors.ClientError) as caught:
        _gemini_generate(gemini, stream)
    _assert_gemini_blocked(caught.value, PROMPT_BLOCK)
    assert fake_provider.requests() == []


@STREAM
def test_gemini_tool_definition_is_blocked(gemini, fake_provider, stream):
    with pytest.raises(errors.ClientError) as caught:
        _gemini_generate(gemini, stream, contents="hi", tool="capsem_block_tool")
    _assert_gemini_blocked(caught.value, TOOL_BLOCK)
    assert fake_provider.requests() == []


@STREAM
def test_gemini_emitted_tool_call_is_blocked(gemini, fake_provider, stream):
    headers = fake_provider.scenario_header(tool_call=True, tool_name="capsem_block_tool")
    with pytest.raises(errors.ClientError) as caught:
        _gemini_generate(gemini, stream, contents="hi", tool="get_weather", headers=headers)
    _assert_gemini_blocked(caught.value, EMITTED_BLOCK, detail=not stream)
    assert len(fake_provider.requests()) == 1


async def test_gemini_async_stream_prompt_is_blocked(proxy, fake_provider):
    client = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=proxy.base_url))
    try:
        with pytest.raises(errors.ClientError) as caught:
            stream = await client.aio.models.generate_content_stream(model=GEMINI_MODEL, contents=BLOCKED_PROMPT)
            async for _ in stream:
                pass
    finally:
        await client.aio.aclose()
        client.close()
    _assert_gemini_blocked(caught.value, PROMPT_BLOCK)
    assert fake_provider.requests() == []


# ----------------------------------------------------------------------------- raw HTTP: the exact 403


def _openai_request(text: str, tool: str | None, stream: bool) -> tuple[str, dict, dict]:
    body: dict = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}], "stream": stream}
    if tool:
        body["tools"] = [_openai_tool(tool)]
    return "/v1/chat/completions", {"authorization": f"Bearer {OPENAI_KEY}"}, body


def _anthropic_request(text: str, tool: str | None, stream: bool) -> tuple[str, dict, dict]:
    body: dict = {"model": "claude-x", "max_tokens": 8, "messages": [{"role": "user", "content": text}],
                  "stream": stream}
    if tool:
        body["tools"] = [_anthropic_tool(tool)]
    return "/v1/messages", {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}, body


def _gemini_request(text: str, tool: str | None, stream: bool) -> tuple[str, dict, dict]:
    body: dict = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if tool:
        body["tools"] = [{"functionDeclarations": [{"name": tool, "description": "a tool"}]}]
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{GEMINI_MODEL}:{method}", {"x-goog-api-key": GEMINI_KEY}, body


def _expected(provider: str, message: str) -> dict:
    if provider == "openai":
        native = {"error": {"message": message, "type": "invalid_request_error", "code": "policy_blocked",
                            "param": None}}
    elif provider == "anthropic":
        native = {"type": "error", "error": {"type": "permission_error", "message": message}}
    else:
        native = {"error": {"code": 403, "message": message, "status": "PERMISSION_DENIED"}}
    return {"detail": message, **native}


_BUILDERS = {"openai": _openai_request, "anthropic": _anthropic_request, "gemini": _gemini_request}


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize(
    ("text", "tool", "message"),
    [
        (BLOCKED_PROMPT, None, PROMPT_BLOCK),
        ("Shouting: CAPSEM_BLOCK!", None, PROMPT_BLOCK),
        ("hi", "capsem_block_tool", TOOL_BLOCK),
    ],
    ids=["prompt", "prompt-uppercase", "tool"],
)
@STREAM
def test_raw_403_body_and_headers(proxy, fake_provider, provider, text, tool, message, stream):
    path, headers, body = _BUILDERS[provider](text, tool, stream)
    first = httpx.post(proxy.base_url + path, json=body, headers=headers)
    second = httpx.post(proxy.base_url + path, json=body, headers=headers)
    for response in (first, second):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/json"
        assert response.json() == _expected(provider, message)
        _assert_block_headers(response.headers)
    assert first.headers["x-capsem-request-id"] != second.headers["x-capsem-request-id"]
    assert first.headers["x-capsem-decision-id"] != second.headers["x-capsem-decision-id"]
    assert fake_provider.requests() == []


# ----------------------------------------------------------------------------- system text is not the prompt


def test_openai_chat_system_and_developer_text_do_not_trigger(oai, fake_provider):
    messages = [
        {"role": "system", "content": "Never mention capsem_block."},
        {"role": "developer", "content": [{"type": "text", "text": "capsem_block is a reserved word."}]},
        {"role": "user", "content": "hello"},
    ]
    raw = oai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, extra_headers=fake_provider.scenario_header(reply="allowed")
    )
    assert raw.parse().choices[0].message.content == "allowed"
    assert "x-capsem-decision-id" not in raw.headers
    assert _body(fake_provider.last())["messages"] == messages


@STREAM
def test_openai_responses_instructions_and_developer_items_do_not_trigger(oai, fake_provider, stream):
    items = [
        {"role": "developer", "content": "capsem_block is a reserved word."},
        {"role": "user", "content": "hello"},
    ]
    kwargs = {"model": "gpt-4o-mini", "instructions": "Never say capsem_block.", "input": items,
              "extra_headers": fake_provider.scenario_header(reply="allowed")}
    if stream:
        with oai.responses.stream(**kwargs) as events:
            text = events.get_final_response().output_text
    else:
        raw = oai.responses.with_raw_response.create(**kwargs)
        assert "x-capsem-decision-id" not in raw.headers
        text = raw.parse().output_text
    assert text == "allowed"
    sent = _body(fake_provider.last())
    assert sent["instructions"] == "Never say capsem_block."
    assert sent["input"] == items


@STREAM
def test_anthropic_system_text_does_not_trigger(claude, fake_provider, stream):
    system = [{"type": "text", "text": "Never mention capsem_block."}]
    headers = fake_provider.scenario_header(reply="allowed")
    messages = [{"role": "user", "content": "hello"}]
    if stream:
        with claude.messages.stream(model="claude-x", max_tokens=8, system=system, messages=messages,
                                    extra_headers=headers) as events:
            text = events.get_final_text()
    else:
        raw = claude.messages.with_raw_response.create(
            model="claude-x", max_tokens=8, system=system, messages=messages, extra_headers=headers
        )
        assert "x-capsem-decision-id" not in raw.headers
        text = raw.parse().content[0].text
    assert text == "allowed"
    assert _body(fake_provider.last())["system"] == system


@STREAM
def test_gemini_system_instruction_does_not_trigger(gemini, fake_provider, stream):
    config = _gemini_config(system="Never mention capsem_block.", headers=fake_provider.scenario_header(reply="ok"))
    if stream:
        chunks = list(gemini.models.generate_content_stream(model=GEMINI_MODEL, contents="hello", config=config))
        text = "".join(chunk.text for chunk in chunks)
    else:
        response = gemini.models.generate_content(model=GEMINI_MODEL, contents="hello", config=config)
        assert "x-capsem-decision-id" not in response.sdk_http_response.headers
        text = response.text
    assert text == "ok"
    assert _body(fake_provider.last())["systemInstruction"]["parts"] == [{"text": "Never mention capsem_block."}]
