"""Each adapter reads the answer-length cap the caller asked for into `Exchange.max_output_tokens`."""

from __future__ import annotations

import pytest

from capsem_proxy.providers.anthropic import AnthropicAdapter
from capsem_proxy.providers.gemini import GeminiAdapter
from capsem_proxy.providers.openai import OpenAIAdapter

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"max_tokens": 300}, 300),
        ({"max_completion_tokens": 500}, 500),
        ({"max_completion_tokens": 500, "max_tokens": 300}, 500),
        ({}, None),
        ({"max_tokens": "300"}, None),
        ({"max_tokens": True}, None),
    ],
)
def test_openai_chat_reads_max_completion_tokens_then_max_tokens(body, expected):
    exchange = OpenAIAdapter().decode_request("chat", {"model": "gpt-x", "messages": MESSAGES, **body})
    assert exchange.max_output_tokens == expected


def test_openai_responses_reads_max_output_tokens():
    adapter = OpenAIAdapter()
    assert adapter.decode_request("responses", {"model": "gpt-x", "input": "hi", "max_output_tokens": 64}) \
        .max_output_tokens == 64
    assert adapter.decode_request("responses", {"model": "gpt-x", "input": "hi"}).max_output_tokens is None


@pytest.mark.parametrize(
    ("config_key", "cap_key"),
    [("generationConfig", "maxOutputTokens"), ("generation_config", "max_output_tokens")],
)
def test_gemini_reads_generation_config_max_output_tokens(config_key, cap_key):
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], config_key: {cap_key: 2048}}
    assert GeminiAdapter().decode_request("generate", body, "gemini-2.0-flash").max_output_tokens == 2048


def test_gemini_without_generation_config_has_no_cap():
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert GeminiAdapter().decode_request("generate", body, "gemini-2.0-flash").max_output_tokens is None


def test_anthropic_reads_max_tokens():
    adapter = AnthropicAdapter()
    assert adapter.decode_request("messages", {"model": "claude-x", "max_tokens": 1024, "messages": MESSAGES}) \
        .max_output_tokens == 1024
    assert adapter.decode_request("count_tokens", {"model": "claude-x", "messages": MESSAGES}) \
        .max_output_tokens is None
