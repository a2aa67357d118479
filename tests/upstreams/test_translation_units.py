"""Translations as pure functions: streams cut anywhere give the same chunks, usage and finish
reasons map as OpenAI's SDK expects, requests OpenAI cannot express elsewhere are refused."""

from __future__ import annotations

import orjson
import pytest

from capsem_proxy.translation import TranslationError, translation_for
from capsem_proxy.translation.openai_shapes import ChunkWriter

ANTHROPIC_STREAM = b"".join(
    b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
    for name, data in [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "model": "claude-sonnet-4-5", "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Héllo"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": "{\"a\": "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                           "usage": {"output_tokens": 9}}),
        ("message_stop", {"type": "message_stop"}),
    ]
)
GEMINI_STREAM = b"".join(
    b"data: " + orjson.dumps(data) + b"\r\n\r\n"
    for data in [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}}], "modelVersion": "gemini-2.5"},
        {"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
                         "finishReason": "STOP"}],
         "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "thoughtsTokenCount": 2}},
    ]
)
CHAT = orjson.dumps({"model": "x", "stream": True, "stream_options": {"include_usage": True},
                     "messages": [{"role": "user", "content": "hi"}]})


def _chunks(output: bytes) -> list[dict | str]:
    events = [event.removeprefix(b"data: ") for event in output.split(b"\n\n") if event]
    return [orjson.loads(event) if event != b"[DONE]" else "[DONE]" for event in events]


def _summary(output: bytes) -> tuple[str, dict, str | None, dict | None, bool]:
    text, calls, finish, usage = "", {}, None, None
    chunks = _chunks(output)
    for chunk in chunks:
        if chunk == "[DONE]":
            continue
        usage = chunk.get("usage") or usage
        for choice in chunk["choices"]:
            text += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"name": "", "arguments": ""})
                entry["name"] += call.get("function", {}).get("name") or ""
                entry["arguments"] += call.get("function", {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return text, calls, finish, usage, chunks[-1] == "[DONE]"


def _run(wire: str, stream: bytes, cut: int) -> bytes:
    translation = translation_for(wire)
    translation.request(CHAT, "m")
    pieces = [stream[i : i + cut] for i in range(0, len(stream), cut)]
    return b"".join(translation.feed(piece) for piece in pieces) + translation.end()


@pytest.mark.parametrize("wire, stream", [("anthropic", ANTHROPIC_STREAM), ("gemini", GEMINI_STREAM)])
def test_a_stream_cut_anywhere_translates_alike(wire, stream):
    whole = _summary(_run(wire, stream, len(stream)))
    for cut in (1, 3, 17):
        assert _summary(_run(wire, stream, cut)) == whole
    text, calls, finish, usage, done = whole
    assert finish == "tool_calls" and done
    assert calls == {0: {"name": "f", "arguments": '{"a": 1}' if wire == "anthropic" else '{"a":1}'}}
    if wire == "anthropic":
        assert text == "Héllo"
        assert usage == {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
    else:
        assert text == "Hi"
        assert usage == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}  # thinking counts


def test_anthropic_stream_error_becomes_an_openai_error_chunk():
    translation = translation_for("anthropic")
    translation.request(CHAT, "m")
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    chunks = _chunks(translation.feed(error) + translation.end())
    assert chunks[-1]["error"]["message"] == "Overloaded"


def test_gemini_safety_block_finishes_as_content_filter():
    translation = translation_for("gemini")
    translation.request(orjson.dumps({"model": "x", "messages": [{"role": "user", "content": "hi"}]}), "m")
    answer = orjson.loads(translation.answer(orjson.dumps({"promptFeedback": {"blockReason": "SAFETY"}})))
    assert answer["choices"][0]["finish_reason"] == "content_filter"
    assert answer["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize("wire", ["anthropic", "gemini"])
def test_parts_no_other_api_reads_are_refused(wire):
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    body = orjson.dumps({"model": "x", "messages": [{"role": "user", "content": [audio]}]})
    with pytest.raises(TranslationError, match="input_audio"):
        translation_for(wire).request(body, "m")


def test_anthropic_needs_max_tokens_and_gets_stop_sequences():
    body = orjson.dumps({"model": "x", "stop": "END", "max_completion_tokens": 7, "tool_choice": "required",
                         "tools": [{"type": "function", "function": {"name": "f"}}],
                         "messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]})
    sent = orjson.loads(translation_for("anthropic").request(body, "claude"))
    assert sent["max_tokens"] == 7 and sent["stop_sequences"] == ["END"] and sent["system"] == "be brief"
    assert sent["tool_choice"] == {"type": "any"}
    assert sent["tools"] == [{"name": "f", "description": "", "input_schema": {"type": "object", "properties": {}}}]


@pytest.mark.parametrize("model", ["", "claude-sonnet-4-5", 'odd "delta":{"content":"x"} model', "modèle\u2028"])
def test_a_text_delta_from_its_template_is_the_chunk_byte_for_byte(model):
    writer = ChunkWriter(include_usage=False)
    writer.model = model
    for text in ("", "Hello", 'quote " and \\ backslash', "line\nbreak", "Héllo \u2028 \U0001f600", "\x00\x1f"):
        assert writer.text(text) == writer.delta({"content": text})
    writer.model = "another"  # the model of a stream's first event may arrive late
    assert writer.text("x") == writer.delta({"content": "x"})
