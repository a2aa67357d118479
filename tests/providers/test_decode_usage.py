"""Reading only the token counts of an answer gives the counts that decoding it whole gives."""

import pytest

from capsem_proxy.providers.anthropic import AnthropicAdapter
from capsem_proxy.providers.gemini import GeminiAdapter
from capsem_proxy.providers.openai import OpenAIAdapter

GEMINI_ANSWER = {"candidates": [{"content": {"parts": [{"text": "hi"}]}}],
                 "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2}}
CASES = [
    (OpenAIAdapter(), "chat", {"choices": [{"message": {"content": "hi"}}],
                               "usage": {"prompt_tokens": 5, "completion_tokens": 7}}),
    (OpenAIAdapter(), "chat", {"choices": [], "usage": {"prompt_tokens": "5"}}),
    (OpenAIAdapter(), "chat", {"usage": None}),
    (OpenAIAdapter(), "responses", {"output": [], "usage": {"input_tokens": 3, "output_tokens": 9}}),
    (OpenAIAdapter(), "embeddings", {"usage": {"prompt_tokens": 3}}),
    (OpenAIAdapter(), "chat", ["not", "an", "object"]),
    (AnthropicAdapter(), "messages", {"content": [{"type": "text", "text": "hi"}],
                                      "usage": {"input_tokens": 11, "output_tokens": 13}}),
    (AnthropicAdapter(), "count_tokens", {"input_tokens": 11}),
    (AnthropicAdapter(), "messages", "text"),
    (GeminiAdapter(), "generate", GEMINI_ANSWER),
    (GeminiAdapter(), "stream_generate", [GEMINI_ANSWER, {"usage_metadata": {"prompt_token_count": 6}}, 3]),
    (GeminiAdapter(), "stream_generate", [{"usageMetadata": {"candidatesTokenCount": 8}}, {"candidates": []}]),
    (GeminiAdapter(), "count_tokens", {"totalTokens": 4}),
]


@pytest.mark.parametrize(("adapter", "operation", "body"), CASES)
def test_usage_alone_matches_the_whole_decoding(adapter, operation, body):
    assert adapter.decode_usage(operation, body) == adapter.decode_answer(operation, body).usage
