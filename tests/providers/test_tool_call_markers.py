"""Every stream event or answer that carries a tool call matches its provider's tool-call
markers, so the fast path that skips decoding never skips a tool call."""

import orjson
import pytest

from capsem_proxy.providers.anthropic import AnthropicAdapter
from capsem_proxy.providers.gemini import GeminiAdapter
from capsem_proxy.providers.openai import OpenAIAdapter
from capsem_proxy.streaming.events import COUNTS, NOTHING, TOOL_CALL, StreamEvent, ToolCallDelta

CASES = [
    (OpenAIAdapter(), "chat", None, {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c1", "type": "function", "function": {"name": "x", "arguments": ""}}]}}]}),
    (OpenAIAdapter(), "responses", "response.output_item.added", {"type": "response.output_item.added",
     "output_index": 0, "item": {"type": "function_call", "call_id": "c1", "name": "x", "arguments": ""}}),
    (OpenAIAdapter(), "responses", "response.function_call_arguments.delta", {
        "type": "response.function_call_arguments.delta", "output_index": 0, "delta": "{}"}),
    (OpenAIAdapter(), "responses", "response.output_item.added", {"type": "response.output_item.added",
     "output_index": 0, "item": {"type": "custom_tool_call", "call_id": "c1", "name": "x", "input": ""}}),
    (OpenAIAdapter(), "responses", "response.custom_tool_call_input.delta", {
        "type": "response.custom_tool_call_input.delta", "output_index": 0, "delta": "ls"}),
    (AnthropicAdapter(), "messages", "content_block_start", {"type": "content_block_start", "index": 1,
     "content_block": {"type": "tool_use", "id": "t1", "name": "x", "input": {}}}),
    (GeminiAdapter(), "stream_generate", None, {"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "x", "args": {"a": 1}}}]}}]}),
]


@pytest.mark.parametrize(("adapter", "operation", "event_name", "payload"), CASES)
def test_tool_call_events_match_the_markers(adapter, operation, event_name, payload):
    data = orjson.dumps(payload)
    raw = (b"event: " + event_name.encode() + b"\n" if event_name else b"") + b"data: " + data + b"\n\n"
    decoder = adapter.stream_decoder(operation)
    if adapter.name == "openai" and event_name and "delta" in event_name:
        # argument deltas follow the item that opened the call
        opening = CASES[1][3] if "function_call" in event_name else CASES[3][3]
        decoder.feed(StreamEvent(raw=b"", data=orjson.dumps(opening).decode(), event="response.output_item.added"))
    deltas = decoder.feed(StreamEvent(raw=raw, data=data.decode(), event=event_name))
    assert any(isinstance(delta, ToolCallDelta) for delta in deltas)
    assert adapter.may_carry_tool_call(raw)


def test_plain_text_events_do_not_match():
    raw = b'data: {"choices":[{"index":0,"delta":{"content":"hello"}}]}\n\n'
    assert not OpenAIAdapter().may_carry_tool_call(raw)
    assert not GeminiAdapter().may_carry_tool_call(b'data: {"candidates":[{"content":{"parts":[{"text":"hi"}]}}]}')


@pytest.mark.parametrize("adapter", [OpenAIAdapter(), AnthropicAdapter(), GeminiAdapter()])
@pytest.mark.parametrize("raw", [b'data: {"choices":[{"delta":{"tool\\u005fcalls":[]}}]}\n\n', b'd\x00a\x00t\x00a\x00'])
def test_a_disguised_key_counts_as_a_possible_tool_call(adapter, raw):
    assert adapter.may_carry_tool_call(raw)


@pytest.mark.parametrize("adapter", [OpenAIAdapter(), AnthropicAdapter(), GeminiAdapter()])
def test_the_core_searched_first_is_in_every_marker(adapter):
    core = adapter._marker_core
    assert core is None or all(core in marker for marker in adapter.tool_call_markers)
    for marker in adapter.tool_call_markers:
        assert adapter.stream_event_need(b'data: {"x":"' + marker + b'"}\n\n') == TOOL_CALL


@pytest.mark.parametrize("adapter", [OpenAIAdapter(), AnthropicAdapter(), GeminiAdapter()])
def test_what_an_unread_event_needs(adapter):
    assert adapter.stream_event_need(b'data: {"choices":[{"delta":{"content":"plain text"}}]}\n\n') == NOTHING
    assert adapter.stream_event_need(b'data: {"usage":{"prompt_tokens":3}}\n\n') == COUNTS
    assert adapter.stream_event_need(b'{"usageMetadata":{"promptTokenCount":3}}') == COUNTS
    assert adapter.stream_event_need(b'data: {"text":"caf\\u00e9","usage":{}}\n\n') == TOOL_CALL
