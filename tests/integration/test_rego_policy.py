"""A Rego policy through the real proxy: its rules block prompts and emitted tool calls with their
reason, everything else passes, and a policy that does not compile stops the proxy at start-up."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.proxy_process import start_proxy

GUARD = """
package capsem
import rego.v1

decision := {"verdict": "BLOCK", "reason": sprintf("prompt mentions %s", [word])} if {
    input.hook == "on_model_call"
    some word in data.forbidden
    contains(lower(input.prompt), word)
}

decision := {"verdict": "BLOCK", "reason": "destructive shell command"} if {
    input.hook == "on_tool_call"
    input.emitted
    input.tool.name == "shell"
    regex.match(`rm\\s+-rf`, input.args.command)
}
"""
_COMMAND_SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}}
TOOLS = [
    {"type": "function", "function": {"name": "shell", "description": "run a command", "parameters": _COMMAND_SCHEMA}}
]


@pytest.fixture(scope="module")
def rego_proxy(fake_provider, tmp_path_factory):
    policy_file = tmp_path_factory.mktemp("rego") / "guard.rego"
    policy_file.write_text(GUARD, encoding="utf-8")
    options = {"policy_file": str(policy_file), "data": {"forbidden": ["drop table", "delete from"]}}
    process = start_proxy(fake_provider.base_url, {"policies": [{"class": "rego", "options": options}]})
    yield process
    process.stop()


def _openai(proxy) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key="sk-test-rego", max_retries=0)


def test_a_prompt_matching_the_rule_is_a_403_with_its_reason(rego_proxy, fake_provider):
    with pytest.raises(openai.PermissionDeniedError) as error:
        _openai(rego_proxy).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Now DROP TABLE customers;"}]
        )
    assert "Request blocked by security policy: prompt mentions drop table" in str(error.value)
    assert error.value.response.headers["x-capsem-decision-id"]
    assert fake_provider.requests() == []


def test_a_clean_prompt_passes(rego_proxy, fake_provider):
    completion = _openai(rego_proxy).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Which tables hold customer data?"}]
    )
    assert completion.choices[0].message.content == "Hello from the fake provider."
    assert len(fake_provider.requests()) == 1


def test_anthropic_sdk_gets_the_same_block(rego_proxy):
    client = anthropic.Anthropic(base_url=rego_proxy.base_url, api_key="sk-ant-rego", max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as error:
        client.messages.create(
            model="claude-x", max_tokens=50, messages=[{"role": "user", "content": "delete from users where 1=1"}]
        )
    assert "prompt mentions delete from" in str(error.value)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_gemini_sdk_gets_the_same_block(rego_proxy, fake_provider, stream):
    options = genai_types.HttpOptions(base_url=rego_proxy.base_url)
    prompt = "please DROP TABLE audit_log"
    with (
        genai.Client(api_key="AIza-test-rego", http_options=options) as client,
        pytest.raises(genai_errors.ClientError) as error,
    ):
        if stream:
            list(client.models.generate_content_stream(model="gemini-2.0-flash", contents=prompt))
        else:
            client.models.generate_content(model="gemini-2.0-flash", contents=prompt)
    assert error.value.code == 403
    assert "prompt mentions drop table" in error.value.message
    assert fake_provider.requests() == []


def test_the_block_body_carries_detail_and_the_provider_error(rego_proxy):
    response = httpx.post(
        f"{rego_proxy.base_url}/v1/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "drop table x"}]},
        headers={"authorization": "Bearer sk-raw"},
    )
    assert response.status_code == 403
    body = response.json()
    assert body["detail"] == "Request blocked by security policy: prompt mentions drop table"
    assert body["error"]["message"] == body["detail"]


def test_an_emitted_tool_call_the_rule_forbids_never_reaches_the_client(rego_proxy, fake_provider):
    fake_provider.script(tool_call=True, tool_args={"command": "rm -rf /var/data"})
    with pytest.raises(openai.PermissionDeniedError) as error:
        _openai(rego_proxy).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "tidy up"}], tools=TOOLS
        )
    assert "Tool blocked by security policy: destructive shell command (tool call 'shell')" in str(error.value)


def test_an_allowed_tool_call_reaches_the_client(rego_proxy, fake_provider):
    fake_provider.script(tool_call=True, tool_args={"command": "ls -la"})
    completion = _openai(rego_proxy).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "list files"}], tools=TOOLS
    )
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "shell"
    assert call.function.arguments.replace(" ", "") == '{"command":"ls-la"}'


def test_a_policy_that_does_not_compile_stops_the_proxy_at_start_up(fake_provider, tmp_path):
    broken = tmp_path / "broken.rego"
    broken.write_text('package capsem\ndecision := {"verdict": "BLOCK" if {\n', encoding="utf-8")
    config = {"policies": [{"class": "rego", "options": {"policy_file": str(broken)}}]}
    with pytest.raises(RuntimeError) as error:
        start_proxy(fake_provider.base_url, config)
    assert "proxy exited" in str(error.value)
    assert "Rego does not compile: broken.rego:2:" in str(error.value)
