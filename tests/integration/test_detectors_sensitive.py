"""The `secrets` and `pii_detect` policies through the real proxy, driven by each provider's SDK:
prompts and tool results reach the provider with only the sensitive spans rewritten (or are
refused with the provider's own 403), secrets in streamed answers are caught across chunk
boundaries, emitted tool calls carrying secrets never reach the client, look-alikes pass
untouched, reversible PII placeholders come back as the caller's data, and bad options stop
the proxy at start-up."""

from __future__ import annotations

import random
import string
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.proxy_process import start_proxy

_RANDOM = random.Random(2024)
ALNUM = string.ascii_letters + string.digits


def token(length: int, alphabet: str = ALNUM) -> str:
    return "".join(_RANDOM.choice(alphabet) for _ in range(length))


# Credentials are generated from a fixed seed: random bodies in the real formats.
GITHUB_TOKEN = "ghp_" + token(36)
AWS_KEY_ID = "AKIA" + token(16, string.ascii_uppercase + "234567")
STRIPE_KEY = "sk_live_" + token(24)
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(token(64, ALNUM + "+/") for _ in range(8))
    + "\n-----END RSA PRIVATE KEY-----"
)
EMAIL = "maria.lopez@acme-corp.io"
PHONE = "+1 415-555-0132"
PROVIDERS = ["openai", "anthropic", "gemini"]
NEAR_MISSES = (
    "Set OPENAI_API_KEY=sk-... (AWS docs use AKIAIOSFODNN7EXAMPLE); request 123e4567-e89b-12d3-a456-426614174000 "
    "at commit a94a8fe5ccb19ba61c4c0873d391e987982fbbd3 mailed to alice@example.com, version 10.1.0.2, "
    "password: ******** and postgres://user:password@localhost/db"
)


@pytest.fixture(scope="module")
def redacting_proxy(fake_provider):
    config = {"policies": [{"class": "secrets"}, {"class": "pii_detect", "options": {"reversible": True}}]}
    process = start_proxy(fake_provider.base_url, config)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def blocking_proxy(fake_provider):
    config = {"policies": [
        {"class": "secrets", "options": {"action": "block"}},
        {"class": "pii_detect", "options": {"action": "block"}},
    ]}
    process = start_proxy(fake_provider.base_url, config)
    yield process
    process.stop()


class Sent:
    """The exact request bodies an SDK sent (an httpx request hook)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def hook(self, request: Any) -> None:
        self.bodies.append(request.read())

    def client(self) -> httpx.Client:
        return httpx.Client(event_hooks={"request": [self.hook]}, timeout=20)

    def anthropic_client(self) -> anthropic.DefaultHttpxClient:
        # The anthropic SDK runs on its own fork of httpx and takes only its client class.
        return anthropic.DefaultHttpxClient(event_hooks={"request": [self.hook]}, timeout=20)


@pytest.fixture
def sent() -> Iterator[Sent]:
    yield Sent()


def _openai(proxy, sent: Sent | None = None) -> openai.OpenAI:
    http_client = sent.client() if sent else None
    return openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key="sk-test-detectors", max_retries=0,
                         http_client=http_client)


def _anthropic(proxy, sent: Sent | None = None) -> anthropic.Anthropic:
    http_client = sent.anthropic_client() if sent else None
    return anthropic.Anthropic(base_url=proxy.base_url, api_key="sk-ant-test", max_retries=0, http_client=http_client)


def _gemini(proxy, sent: Sent | None = None) -> genai.Client:
    options = types.HttpOptions(base_url=proxy.base_url, httpx_client=sent.client() if sent else None)
    return genai.Client(api_key="AIza-test-detectors", http_options=options)


def ask(provider: str, proxy, prompt: str, *, stream: bool = False, sent: Sent | None = None) -> str:
    """Send `prompt` with the provider's SDK and return the answer's text."""
    if provider == "openai":
        client = _openai(proxy, sent)
        messages = [{"role": "user", "content": prompt}]
        if not stream:
            return client.chat.completions.create(model="gpt-4o", messages=messages).choices[0].message.content
        chunks = client.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    if provider == "anthropic":
        client = _anthropic(proxy, sent)
        request = {"model": "claude-x", "max_tokens": 256, "messages": [{"role": "user", "content": prompt}]}
        if not stream:
            return "".join(block.text for block in client.messages.create(**request).content)
        with client.messages.stream(**request) as events:
            return "".join(events.text_stream)
    client = _gemini(proxy, sent)
    if not stream:
        return client.models.generate_content(model="gemini-2.0-flash", contents=prompt).text
    return "".join(chunk.text or "" for chunk in client.models.generate_content_stream(
        model="gemini-2.0-flash", contents=prompt))


BLOCKED_ERRORS: dict[str, type[Exception]] = {
    "openai": openai.PermissionDeniedError,
    "anthropic": anthropic.PermissionDeniedError,
    "gemini": genai_errors.ClientError,
}
STREAM_ERRORS: dict[str, type[Exception]] = {
    "openai": openai.APIError,
    "anthropic": anthropic.APIStatusError,
    "gemini": genai_errors.APIError,
}


def _forwarded(fake_provider) -> bytes:
    return fake_provider.body_of(fake_provider.last())


# --- prompts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_secret_and_pii_in_the_prompt_are_rewritten_and_every_other_byte_is_kept(
    provider, redacting_proxy, fake_provider, sent
):
    prompt = f"Deploy with {GITHUB_TOKEN} — then mail {EMAIL} (café ✓)."
    answer = ask(provider, redacting_proxy, prompt, sent=sent)
    assert answer == "Hello from the fake provider."
    [sent_body] = sent.bodies
    assert GITHUB_TOKEN.encode() in sent_body and EMAIL.encode() in sent_body
    expected = sent_body.replace(GITHUB_TOKEN.encode(), b"[REDACTED:github_token]").replace(
        EMAIL.encode(), b"[REDACTED:email_1]"
    )
    assert _forwarded(fake_provider) == expected


def test_raw_body_keeps_its_own_formatting_around_the_redacted_spans(redacting_proxy, fake_provider):
    body = ('{ "model":"gpt-4o",\n  "messages":[{"role":"user","content":"key ' + STRIPE_KEY
            + ' card 4111 1111 1111 1111 \\u00e9t\\u00e9"}], "x_extra": {"keep": [1.50, null]} }').encode()
    response = httpx.post(f"{redacting_proxy.base_url}/v1/chat/completions", content=body,
                          headers={"authorization": "Bearer sk-raw"})
    assert response.status_code == 200
    assert response.headers["x-capsem-decision-id"]
    assert _forwarded(fake_provider) == body.replace(STRIPE_KEY.encode(), b"[REDACTED:stripe_key]").replace(
        b"4111 1111 1111 1111", b"[REDACTED:credit_card_1]"
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_secret_in_the_prompt_is_refused_with_the_providers_own_error(provider, blocking_proxy, fake_provider):
    with pytest.raises(BLOCKED_ERRORS[provider]) as error:
        ask(provider, blocking_proxy, f"here is my key {AWS_KEY_ID}, debug my script")
    assert "Request blocked by security policy: found 1 finding(s): aws_access_key" in str(error.value)
    assert AWS_KEY_ID not in str(error.value)
    assert fake_provider.requests() == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pii_in_the_prompt_is_refused_when_the_policy_blocks(provider, blocking_proxy, fake_provider):
    with pytest.raises(BLOCKED_ERRORS[provider]) as error:
        ask(provider, blocking_proxy, f"Call {PHONE} about the refund")
    assert "Request blocked by security policy: found 1 finding(s): phone_number" in str(error.value)
    assert fake_provider.requests() == []


@pytest.mark.parametrize("provider", PROVIDERS)
def test_benign_look_alikes_pass_byte_for_byte(provider, redacting_proxy, blocking_proxy, fake_provider, sent):
    for proxy in (redacting_proxy, blocking_proxy):
        assert ask(provider, proxy, NEAR_MISSES, sent=sent) == "Hello from the fake provider."
        assert _forwarded(fake_provider) == sent.bodies[-1]


# --- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "chunk_size"), [
    ("openai", 1), ("openai", 3), ("openai", 7), ("openai", 50), ("anthropic", 3), ("anthropic", 11), ("gemini", 4),
])
def test_secret_in_a_streamed_answer_is_redacted_across_chunk_boundaries(
    provider, chunk_size, redacting_proxy, fake_provider
):
    reply = f"Your token is {GITHUB_TOKEN} and the Stripe key {STRIPE_KEY}; rotate both. " * 2
    fake_provider.script(reply=reply, chunk_size=chunk_size)
    text = ask(provider, redacting_proxy, "what are my keys?", stream=True)
    assert text == reply.replace(GITHUB_TOKEN, "[REDACTED:github_token]").replace(STRIPE_KEY, "[REDACTED:stripe_key]")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_private_key_in_a_streamed_answer_is_redacted_whole(provider, redacting_proxy, fake_provider):
    reply = f"Here is the key you asked for:\n{PRIVATE_KEY}\nStore it safely."
    fake_provider.script(reply=reply, chunk_size=9)
    text = ask(provider, redacting_proxy, "print the deploy key", stream=True)
    assert text == "Here is the key you asked for:\n[REDACTED:private_key]\nStore it safely."


@pytest.mark.parametrize("provider", PROVIDERS)
def test_secret_in_a_whole_answer_is_redacted(provider, redacting_proxy, fake_provider):
    fake_provider.script(reply=f"Use {AWS_KEY_ID} for the bucket.")
    assert ask(provider, redacting_proxy, "which key?") == "Use [REDACTED:aws_access_key] for the bucket."


@pytest.mark.parametrize("provider", PROVIDERS)
def test_blocked_stream_never_delivers_any_part_of_the_secret(provider, blocking_proxy, fake_provider):
    reply = "A long and harmless preamble that goes on for a while before it says " * 6 + f"{GITHUB_TOKEN} done."
    fake_provider.script(reply=reply, chunk_size=12, delay_ms=2)
    received: list[str] = []

    def consume() -> None:
        if provider == "openai":
            for chunk in _openai(blocking_proxy).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
        elif provider == "anthropic":
            with _anthropic(blocking_proxy).messages.stream(
                model="claude-x", max_tokens=256, messages=[{"role": "user", "content": "hi"}]
            ) as events:
                received.extend(events.text_stream)
        else:
            client = _gemini(blocking_proxy)
            for chunk in client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi"):
                received.append(chunk.text or "")

    with pytest.raises(STREAM_ERRORS[provider]) as error:
        consume()
    assert "Response blocked by security policy: found 1 finding(s): github_token" in str(error.value)
    assert "".join(received) and reply.startswith("".join(received))
    assert "ghp_" not in "".join(received)


# --- tools ------------------------------------------------------------------------------------

SHELL_TOOL_ARGS = {"command": f"GITHUB_TOKEN={GITHUB_TOKEN} gh repo list"}


def _emit_tool_call(provider: str, proxy, stream: bool) -> None:
    if provider == "openai":
        tools = [{"type": "function", "function": {"name": "run_shell", "parameters": {"type": "object"}}}]
        result = _openai(proxy).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "list my repos"}], tools=tools, stream=stream
        )
        if stream:
            for _ in result:
                pass
    elif provider == "anthropic":
        tools = [{"name": "run_shell", "description": "runs a command", "input_schema": {"type": "object"}}]
        request = {"model": "claude-x", "max_tokens": 256, "tools": tools,
                   "messages": [{"role": "user", "content": "list my repos"}]}
        if stream:
            with _anthropic(proxy).messages.stream(**request) as events:
                for _ in events:
                    pass
        else:
            _anthropic(proxy).messages.create(**request)
    else:
        declaration = types.FunctionDeclaration(name="run_shell", description="runs a command",
                                                parameters_json_schema={"type": "object"})
        config = types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[declaration])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        client = _gemini(proxy)
        if stream:
            for _ in client.models.generate_content_stream(model="gemini-2.0-flash", contents="go", config=config):
                pass
        else:
            client.models.generate_content(model="gemini-2.0-flash", contents="go", config=config)


@pytest.mark.parametrize(("provider", "stream"), [(p, s) for p in PROVIDERS for s in (False, True)])
def test_secret_in_an_emitted_tool_call_never_reaches_the_client(provider, stream, redacting_proxy, fake_provider):
    fake_provider.script(tool_call=True, tool_name="run_shell", tool_args=SHELL_TOOL_ARGS, chunk_size=6)
    expected = STREAM_ERRORS[provider] if stream else BLOCKED_ERRORS[provider]
    with pytest.raises(expected) as error:
        _emit_tool_call(provider, redacting_proxy, stream)
    assert "Tool blocked by security policy: found 1 finding(s): github_token (tool call 'run_shell')" in str(
        error.value
    )
    assert GITHUB_TOKEN not in str(error.value)


def _send_tool_result(provider: str, proxy, result_text: str, sent: Sent) -> None:
    if provider == "openai":
        messages = [
            {"role": "user", "content": "read my env"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "read_env", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": result_text},
        ]
        _openai(proxy, sent).chat.completions.create(model="m", messages=messages)
    elif provider == "anthropic":
        messages = [
            {"role": "user", "content": "read my env"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "read_env", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": result_text}]},
        ]
        _anthropic(proxy, sent).messages.create(model="claude-x", max_tokens=64, messages=messages)
    else:
        contents = [
            types.Content(role="user", parts=[types.Part(text="read my env")]),
            types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(name="read_env", args={}))]),
            types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
                name="read_env", response={"output": result_text}))]),
        ]
        _gemini(proxy, sent).models.generate_content(model="gemini-2.0-flash", contents=contents)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_secret_and_pii_in_a_tool_result_are_rewritten_before_the_provider(
    provider, redacting_proxy, fake_provider, sent
):
    result_text = f"AWS_ACCESS_KEY_ID={AWS_KEY_ID}\nOWNER={EMAIL}\nREGION=eu-west-1"
    _send_tool_result(provider, redacting_proxy, result_text, sent)
    expected = sent.bodies[-1].replace(AWS_KEY_ID.encode(), b"[REDACTED:aws_access_key]").replace(
        EMAIL.encode(), b"[REDACTED:email_1]"
    )
    assert AWS_KEY_ID.encode() in sent.bodies[-1]
    assert _forwarded(fake_provider) == expected


@pytest.mark.parametrize("provider", PROVIDERS)
def test_secret_in_a_tool_result_is_refused_when_the_policy_blocks(provider, blocking_proxy, fake_provider, sent):
    with pytest.raises(BLOCKED_ERRORS[provider]) as error:
        _send_tool_result(provider, blocking_proxy, f"DATABASE_URL=postgres://app:{token(14)}@db:5432/app", sent)
    assert "Request blocked by security policy: found 1 finding(s): connection_string" in str(error.value)
    assert fake_provider.requests() == []


# --- reversible PII ---------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "stream"), [(p, s) for p in PROVIDERS for s in (False, True)])
def test_reversible_pii_placeholders_are_restored_in_the_answer(provider, stream, redacting_proxy, fake_provider):
    fake_provider.script(echo=True, chunk_size=3)
    prompt = f"Please call {PHONE} or write to {EMAIL} about order 1234."
    assert ask(provider, redacting_proxy, prompt, stream=stream) == prompt
    forwarded = _forwarded(fake_provider)
    assert EMAIL.encode() not in forwarded and PHONE.encode() not in forwarded
    assert b"[REDACTED:phone_number_1]" in forwarded and b"[REDACTED:email_1]" in forwarded


def test_placeholders_from_the_prompt_and_a_tool_result_are_each_restored(redacting_proxy, fake_provider, sent):
    other = "jo.smith@widgets.co.uk"
    fake_provider.script(reply="Contact [REDACTED:email_1] first, then [REDACTED:email_2].")
    messages = [
        {"role": "user", "content": f"who is {EMAIL}?"},
        {"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": f"manager: {other}"},
    ]
    answer = _openai(redacting_proxy, sent).chat.completions.create(model="m", messages=messages)
    assert answer.choices[0].message.content == f"Contact {EMAIL} first, then {other}."
    forwarded = _forwarded(fake_provider)
    assert forwarded == sent.bodies[-1].replace(EMAIL.encode(), b"[REDACTED:email_1]").replace(
        other.encode(), b"[REDACTED:email_2]"
    )


# --- configuration ----------------------------------------------------------------------------

BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"class": "secrets", "options": {"actions": {"aws_key": "block"}}}, "unknown secret kind(s) aws_key"),
    ({"class": "secrets", "options": {"action": "shred"}}, "Input should be 'log', 'block', 'confirm' or 'redact'"),
    ({"class": "pii_detect", "options": {"entities": ["emails"]}}, "unknown PII kind(s) emails"),
    ({"class": "pii_detect", "options": {"ner": True, "ner_model": "xx_missing_model_sm"}},
     "the spaCy model 'xx_missing_model_sm' is not installed as a Python package"),
]


@pytest.mark.parametrize(("policy", "message"), BAD_OPTIONS, ids=["kind", "action", "entity", "ner"])
def test_bad_options_stop_the_proxy_at_start_up(policy, message, fake_provider, tmp_path):
    with pytest.raises(RuntimeError) as error:
        start_proxy(fake_provider.base_url, {"policies": [policy]})
    assert "policies[0].options" in str(error.value) and message in str(error.value)
    config = tmp_path / "proxy.yaml"
    config.write_text(yaml.safe_dump({"policies": [policy]}), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "capsem_proxy.cli", "validate-config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert str(config) in result.stderr and message in result.stderr


def test_default_options_validate(tmp_path):
    config = tmp_path / "proxy.yaml"
    config.write_text(yaml.safe_dump({"policies": [{"class": "secrets"}, {"class": "pii_detect"}]}), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "capsem_proxy.cli", "validate-config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
