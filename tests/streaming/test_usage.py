"""Token counts read from relayed streams without decoding the other events."""

from __future__ import annotations

import pytest

from capsem_proxy.providers.anthropic import AnthropicAdapter
from capsem_proxy.providers.gemini import GeminiAdapter
from capsem_proxy.providers.openai import OpenAIAdapter
from capsem_proxy.streaming.events import UsageDelta
from capsem_proxy.streaming.usage import HeldUsage, UsageMeter, sse_events, sse_usage_reader


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


def _gemini_event(prompt: int, output: int | None) -> bytes:
    usage = b'"promptTokenCount":%d' % prompt + (b',"candidatesTokenCount":%d' % output if output is not None else b"")
    return b'data: {"candidates":[{"content":{"parts":[{"text":"hi"}]}}],"usageMetadata":{' + usage + b"}}\r\n\r\n"


def _held(decoder) -> tuple[HeldUsage, list[bytes]]:
    read = sse_usage_reader(decoder)
    seen: list[bytes] = []

    def reading(raw: bytes):
        seen.append(raw)
        return read(raw)

    return HeldUsage(reading, sse_events), seen


def test_held_usage_reads_only_the_newest_report_when_it_holds_both_counts() -> None:
    held, seen = _held(GeminiAdapter().stream_decoder("stream_generate"))
    held.add(b"".join(_gemini_event(4, None) for _ in range(5)))
    for _ in range(3):
        held.add(_gemini_event(4, None))
    held.add(_gemini_event(4, 9) + b'data: {"candidates":[]}\r\n\r\n')
    assert held.settle() == UsageDelta(4, 9)
    assert seen == [_gemini_event(4, 9)]  # the event after it reports nothing, the ones before were never read
    assert held.settle() is None


def test_held_usage_reads_back_until_both_counts_are_known() -> None:
    held, seen = _held(AnthropicAdapter().stream_decoder("messages"))
    start = (b'event: message_start\ndata: {"type":"message_start","message":{"content":[],'
             b'"usage":{"input_tokens":25,"output_tokens":1}}}\n\n')
    delta = b'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"output_tokens":15}}\n\n'
    broken = b'data: {"usage": nope\n\n'
    held.add(start)
    held.add(broken)  # unreadable: reports nothing (it holds no call, and was sent)
    held.add(delta)
    assert held.settle() == UsageDelta(25, 15)
    assert seen == [delta, broken, start]


def test_held_usage_is_read_past_its_cap() -> None:
    held, seen = _held(GeminiAdapter().stream_decoder("stream_generate"))
    event = _gemini_event(4, 2)
    results = [held.add(event) for _ in range(64 * 1024 // len(event) + 1)]
    assert results[-1] == UsageDelta(4, 2) and all(result is None for result in results[:-1])
    assert len(seen) == 1 and held.settle() is None


@pytest.mark.parametrize("stream", [
    b'data: {"a":1}\n\ndata: {"usage":{"x":1}}\n\n\n\ndata: {"b":2}\n\nevent: e\ndata: {"usage":{"x":2}}\n\n',
    b'data: {"usageMetadata":{"p":1}}\r\n\r\ndata: {"t":"x"}\r\n\r\ndata: {"usageMetadata":{"p":2}}\r\n\r\n',
    b'data: {"usage":1}\r\n\r\ndata: {"t":"x"}\n\ndata: {"usage":2}\r\rdata: {"u\\u0073age":3}\n\n',
    b'data: {"t":"said \\"usage\\""}\n\n: comment\ndata: {"usage":{"x":3}}\n\n',
    # CRLF streams whose other events hold lone line ends: only the events read are checked.
    b'data: {"usage":1}\n\ndata: {"t":"x"}\r\n\r\ndata: {"usage":2}\r\n\r\n',
    b'data: {"usage":1}\r\n\r\n\r\ndata: {"usage":2}\r\n\r\n',
    b'data: {"usage":1}\r\n\r\ndata: {"usage":2}\r\ndata: {"x":1}\n\r\n\r\ndata: {"t":"x"}\r\n\r\n',
    b'data: {"t":"x"}\r\rdata: {"usage":1}\r\n\r\n',
])
def test_sse_events_with_counts_come_newest_first_as_a_full_split_reads_them(stream) -> None:
    from capsem_proxy.streaming.sse import SSESplitter, parse_event
    from capsem_proxy.streaming.usage import may_report_usage

    splitter = SSESplitter()
    expected = [parse_event(raw).data for raw in reversed(splitter.feed_events(stream) + splitter.finish())
                if may_report_usage(raw)]
    assert [parse_event(raw).data for raw in sse_events(stream)] == expected
