"""Token counts read from relayed streams without decoding the other events."""

from __future__ import annotations

from capsem_proxy.providers.anthropic import AnthropicAdapter
from capsem_proxy.providers.gemini import GeminiAdapter
from capsem_proxy.providers.openai import OpenAIAdapter
from capsem_proxy.streaming.usage import UsageMeter


def test_openai_chat_usage_chunk() -> None:
    meter = UsageMeter(OpenAIAdapter().stream_decoder("chat"))
    meter.sse(
        b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    )
    assert (meter.input_tokens, meter.output_tokens) == (None, None)
    meter.sse(
        b'data: {"id":"c1","object":"chat.completion.chunk","choices":[],'
        b'"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert (meter.input_tokens, meter.output_tokens) == (9, 12)


def test_openai_responses_completed_event() -> None:
    meter = UsageMeter(OpenAIAdapter().stream_decoder("responses"))
    meter.sse(
        b"event: response.completed\n"
        b'data: {"type":"response.completed","response":{"id":"r1","object":"response","status":"completed",'
        b'"output":[],"usage":{"input_tokens":5,"output_tokens":9,"total_tokens":14}}}\n\n'
    )
    assert (meter.input_tokens, meter.output_tokens) == (5, 9)


def test_anthropic_start_and_delta() -> None:
    meter = UsageMeter(AnthropicAdapter().stream_decoder("messages"))
    meter.sse(
        b"event: message_start\n"
        b'data: {"type":"message_start","message":{"id":"m1","type":"message","role":"assistant","content":[],'
        b'"model":"claude-sonnet-4-6","usage":{"input_tokens":25,"output_tokens":1}}}\n\n'
        b"event: content_block_delta\n"
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}\n\n'
    )
    meter.sse(
        b"event: message_delta\n"
        b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}\n\n'
    )
    assert (meter.input_tokens, meter.output_tokens) == (25, 15)


def test_gemini_array_elements_keep_the_latest_counts() -> None:
    meter = UsageMeter(GeminiAdapter().stream_decoder("stream_generate"))
    for output_tokens in (3, 7):
        meter.element(
            b'{"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"}}],'
            b'"usageMetadata":{"promptTokenCount":4,"candidatesTokenCount":%d,"totalTokenCount":11}}' % output_tokens
        )
    assert (meter.input_tokens, meter.output_tokens) == (4, 7)


def test_unreadable_usage_event_is_ignored() -> None:
    meter = UsageMeter(OpenAIAdapter().stream_decoder("chat"))
    meter.sse(b'data: {"usage": not json}\n\n')
    assert (meter.input_tokens, meter.output_tokens) == (None, None)
