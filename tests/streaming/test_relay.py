"""The guarded relay: an unterminated last event is inspected like any other, and a failure
inside inspection still ends the stream with the provider's error event."""

import asyncio

import orjson
import pytest

from capsem_proxy.decisions import Decision, Outcome, Verdict, strictest
from capsem_proxy.providers.gemini import GeminiAdapter
from capsem_proxy.providers.openai import OpenAIAdapter
from capsem_proxy.replies import block_message
from capsem_proxy.streaming.guard import GuardChecks, StreamGuard
from capsem_proxy.streaming.lazy_guard import LazyGuard
from capsem_proxy.streaming.relay import relay_guarded


class Upstream:
    def __init__(self, chunks):
        self._chunks = chunks

    async def chunks(self):
        for chunk in self._chunks:
            yield chunk


async def _no_text_policy(check):
    return Outcome([], None)


async def _block_named_tools(call):
    if "capsem_block" in call.name:
        decision = Decision(Verdict.BLOCK, "p", "on_tool_call", details="bad tool", subject=call.name)
        return Outcome([decision], strictest([decision]))
    return Outcome([], None)


async def _run(chunks, decoder=None, guards=None):
    adapter = OpenAIAdapter()
    sent = []

    async def send(message):
        sent.append(message.get("body", b""))

    guard = StreamGuard(GuardChecks(_no_text_policy, _block_named_tools), mode="guard", window_chars=0,
                        max_buffer_bytes=1 << 20, reads_text=False)
    if guards is not None:
        guards.append(guard)
    await relay_guarded(
        send, Upstream(chunks), sse=True, decoder=decoder or adapter.stream_decoder("chat"), guard=guard,
        error_event=lambda exc: adapter.stream_error_event("chat", exc.status, exc.message, exc.kind),
        block_event=lambda decision: adapter.stream_error_event("chat", 403, block_message(decision), "permission"),
        event_need=adapter.stream_event_need,
    )
    return b"".join(sent)


def _chunk(payload):
    return b"data: " + orjson.dumps(payload)


async def test_unterminated_last_event_with_a_forbidden_tool_call_is_blocked():
    call = {"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c1", "type": "function", "function": {"name": "capsem_block_tool", "arguments": "{}"}}]},
        "finish_reason": "tool_calls"}]}
    body = await _run([_chunk({"choices": [{"index": 0, "delta": {"content": "ok"}}]}) + b"\n\n", _chunk(call)])
    assert b"capsem_block_tool\"" not in body.split(b"error")[0]
    assert b"Tool blocked by security policy: bad tool" in body


async def test_inspection_failure_ends_the_stream_with_an_error_event():
    class BrokenDecoder:
        def feed(self, event):
            raise ValueError("decoder bug")

    body = await _run([_chunk({"choices": [{"index": 0, "delta": {"tool_calls": []}}]}) + b"\n\n"], BrokenDecoder())
    last = body.strip().split(b"\n\n")[-1]
    assert orjson.loads(last[6:])["error"]["message"].startswith("internal error in the proxy")


# ---------------------------------------------------------------------------- unreadable, tampered, oversized

async def _reads_text(check):
    return Outcome([], None)


async def _run_reading(chunks, operation="chat", adapter=None, sse=True, max_event_bytes=1 << 20):
    """The stream through a guard whose policies read the text (every event is decoded)."""
    adapter = adapter or OpenAIAdapter()
    sent = []

    async def send(message):
        sent.append(message.get("body", b""))

    guard = StreamGuard(GuardChecks(_reads_text, _block_named_tools), mode="guard", window_chars=0,
                        max_buffer_bytes=1 << 20, rewrite=lambda raw, old, new: raw.replace(old.encode(), new.encode()))
    await relay_guarded(
        send, Upstream(chunks), sse=sse, decoder=adapter.stream_decoder(operation), guard=guard,
        error_event=lambda exc: adapter.stream_error_event(operation, exc.status, exc.message, exc.kind, sse=sse),
        block_event=lambda decision: adapter.stream_error_event(operation, 403, block_message(decision),
                                                                "permission", sse=sse),
        max_event_bytes=max_event_bytes,
    )
    return b"".join(sent), guard


def _blocked_by(guard):
    """The decision that ended the stream, as the guard recorded it for the audit."""
    return next((decision for decision in reversed(guard.decisions) if decision.verdict is Verdict.BLOCK), None)


def _responses_event(payload):
    return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


async def test_lines_that_are_no_sse_field_end_the_stream_unread():
    # google-genai parses such a line as a JSON response of its own.
    hidden = b'{"candidates":[{"content":{"parts":[{"text":"hidden text"}]}}]}\r\n\r\n'
    body, guard = await _run_reading([hidden], "stream_generate", GeminiAdapter())
    assert b"hidden text" not in body
    assert _blocked_by(guard) is not None and _blocked_by(guard).reason == "unreadable_answer"


async def test_content_outside_the_array_elements_ends_the_stream_unread():
    stream = b'{"candidates": [{"content": {"parts": [{"text": "hidden text"}]}}]}'
    body, guard = await _run_reading([stream], "stream_generate", GeminiAdapter(), sse=False)
    assert b"hidden text" not in body
    assert _blocked_by(guard) is not None and _blocked_by(guard).reason == "unreadable_answer"


async def test_summary_event_with_text_the_deltas_never_carried_ends_the_stream():
    events = [
        _responses_event({"type": "response.output_text.delta", "output_index": 0, "delta": "all fine"}),
        _responses_event({"type": "response.output_text.done", "output_index": 0, "text": "all fine, and a secret"}),
    ]
    body, guard = await _run_reading(events, "responses")
    assert b"a secret" not in body
    assert _blocked_by(guard) is not None and "never carried" in _blocked_by(guard).details


async def test_summary_event_with_other_call_arguments_ends_the_stream():
    events = [
        _responses_event({"type": "response.output_item.added", "output_index": 0,
                          "item": {"type": "function_call", "name": "get_weather", "call_id": "c", "arguments": ""}}),
        _responses_event(
            {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '{"city":"x"}'}
        ),
        _responses_event({"type": "response.function_call_arguments.done", "output_index": 0,
                          "arguments": '{"city":"x","rm":"-rf /"}'}),
    ]
    body, guard = await _run_reading(events, "responses")
    assert b"-rf" not in body
    assert _blocked_by(guard) is not None and _blocked_by(guard).reason == "unreadable_answer"


async def test_honest_summary_events_pass():
    events = [
        _responses_event({"type": "response.output_text.delta", "output_index": 0, "delta": "all "}),
        _responses_event({"type": "response.output_text.delta", "output_index": 0, "delta": "fine"}),
        _responses_event({"type": "response.output_text.done", "output_index": 0, "text": "all fine"}),
        _responses_event({"type": "response.completed", "response": {"status": "completed", "output": [
            {"type": "message", "content": [{"type": "output_text", "text": "all fine"}]}]}}),
    ]
    body, guard = await _run_reading(events, "responses")
    assert _blocked_by(guard) is None
    assert body == b"".join(events)  # no error event either


@pytest.mark.parametrize("sse", [True, False])
async def test_an_event_that_never_ends_is_cut_at_the_cap_with_an_error_event(sse):
    opening = b'data: {"candidates":[{"content":{"parts":[{"text":"' if sse else b'[{"candidates":[{"content":"'
    chunks = [opening] + [b"a" * 4096] * 100
    body, guard = await _run_reading(chunks, "stream_generate", GeminiAdapter(), sse=sse, max_event_bytes=64 * 1024)
    assert b'"code":502' in body and b"larger than 65536 bytes" in body  # Gemini's error event, as a 502
    assert _blocked_by(guard) is None
    assert len(body) < 4096


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 8])
async def test_cr_only_line_ends_split_into_the_same_events_wherever_the_reads_are_cut(cut):
    stream = b"".join(
        b'data: {"choices":[{"index":0,"delta":{"content":"' + word + b'"}}]}\r\r' for word in (b"one ", b"two")
    ) + b"data: [DONE]\r\r"
    chunks = [stream[start : start + cut] for start in range(0, len(stream), cut)]
    body, guard = await _run_reading(chunks)
    assert _blocked_by(guard) is None and body == stream
    assert guard.answer.text == "one two"


_TEXT_EVENT = _chunk({"choices": [{"index": 0, "delta": {"content": "ok"}}]}) + b"\n\n"
_BLOCKED_CALL = _chunk({"choices": [{"index": 0, "delta": {"tool_calls": [
    {"index": 0, "id": "c1", "type": "function", "function": {"name": "capsem_block_tool", "arguments": "{}"}}]},
    "finish_reason": "tool_calls"}]}) + b"\n\n"
_MARKER_AT = len(_TEXT_EVENT) + _BLOCKED_CALL.index(b'"tool_calls"')


@pytest.mark.parametrize("cut", range(_MARKER_AT, _MARKER_AT + len(b'"tool_calls"') + 1))
async def test_a_tool_call_whose_marker_is_cut_across_two_reads_is_still_screened(cut):
    stream = _TEXT_EVENT + _BLOCKED_CALL + _TEXT_EVENT
    body = await _run([stream[:cut], stream[cut:]])
    head, found, _ = body.partition(b"Tool blocked by security policy: bad tool")
    assert found and b"capsem_block_tool" not in head
    assert head.startswith(_TEXT_EVENT)  # the text before the call still went out, untouched


async def test_events_without_a_call_go_out_unread_and_untouched():
    usage = _chunk({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}}) + b"\n\n"
    odd = b": a comment\ndata: not json\n\n"
    stream = _TEXT_EVENT * 3 + odd + usage + b"data: [DONE]\n\n"
    for chunks in ([stream], [stream[:7], stream[7:]], [bytes([byte]) for byte in stream]):
        guards = []
        assert await _run(chunks, guards=guards) == stream
        usage = guards[0].answer.usage
        assert (usage.input_tokens, usage.output_tokens) == (3, 5)


# ---------------------------------------------------------------------------- time to the first byte

async def test_the_first_released_bytes_go_out_before_the_checks_of_the_rest_of_the_read():
    """One read carries the opening event and the text events: the opening event is released before
    any text is checked, and it is sent then, not once the read's every event has been checked (a
    check that waits for the first byte would otherwise wait forever)."""
    adapter = OpenAIAdapter()
    first_sent = asyncio.Event()
    sent: list[bytes] = []

    async def send(message):
        body = message.get("body", b"")
        sent.append(body)
        if body:
            first_sent.set()

    async def waits_for_the_first_byte(check):
        await first_sent.wait()
        return Outcome([], None)

    guard = StreamGuard(GuardChecks(waits_for_the_first_byte, _block_named_tools), mode="guard", window_chars=0,
                        max_buffer_bytes=1 << 20)
    opening = _chunk({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}) + b"\n\n"
    texts = b"".join(
        _chunk({"choices": [{"index": 0, "delta": {"content": word * 40}}]}) + b"\n\n" for word in ("a", "b", "c")
    )
    await asyncio.wait_for(relay_guarded(
        send, Upstream([opening + texts + b"data: [DONE]\n\n"]), sse=True, decoder=adapter.stream_decoder("chat"),
        guard=guard,
        error_event=lambda exc: adapter.stream_error_event("chat", exc.status, exc.message, exc.kind),
        block_event=lambda decision: adapter.stream_error_event("chat", 403, block_message(decision), "permission"),
    ), timeout=10)
    assert sent[0] == opening
    assert b"".join(sent) == opening + texts + b"data: [DONE]\n\n"


async def test_the_first_text_goes_out_before_the_checks_of_the_text_after_it_in_the_same_read():
    adapter = OpenAIAdapter()
    first_text_sent = asyncio.Event()
    sent: list[bytes] = []
    checks = 0

    async def send(message):
        body = message.get("body", b"")
        sent.append(body)
        if b"aaaa" in body:
            first_text_sent.set()

    async def later_checks_wait_for_the_first_text(check):
        nonlocal checks
        checks += 1
        if checks > 1:
            await first_text_sent.wait()
        return Outcome([], None)

    guard = StreamGuard(GuardChecks(later_checks_wait_for_the_first_text, _block_named_tools), mode="guard",
                        window_chars=0, max_buffer_bytes=1 << 20)
    opening = _chunk({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}) + b"\n\n"
    texts = [_chunk({"choices": [{"index": 0, "delta": {"content": word * 80}}]}) + b"\n\n" for word in "abc"]
    stream = opening + b"".join(texts) + b"data: [DONE]\n\n"
    await asyncio.wait_for(relay_guarded(
        send, Upstream([stream]), sse=True, decoder=adapter.stream_decoder("chat"), guard=guard,
        error_event=lambda exc: adapter.stream_error_event("chat", exc.status, exc.message, exc.kind),
        block_event=lambda decision: adapter.stream_error_event("chat", 403, block_message(decision), "permission"),
    ), timeout=10)
    assert checks > 1
    assert b"".join(sent) == stream
    assert sent.index(texts[0]) < len(sent) - 1  # the first text went out in a send of its own


# ---------------------------------------------------------------------------- a guard built on first need

def _lazy_guard():
    def build():
        return StreamGuard(GuardChecks(_no_text_policy, _block_named_tools), mode="guard", window_chars=0,
                           max_buffer_bytes=1 << 20, reads_text=False)

    return LazyGuard(build, 1 << 20)


async def _run_lazy(chunks, guard):
    adapter = OpenAIAdapter()
    sent = []

    async def send(message):
        sent.append(message.get("body", b""))

    await relay_guarded(
        send, Upstream(chunks), sse=True, decoder=adapter.stream_decoder("chat"), guard=guard,
        error_event=lambda exc: adapter.stream_error_event("chat", exc.status, exc.message, exc.kind),
        block_event=lambda decision: adapter.stream_error_event("chat", 403, block_message(decision), "permission"),
        event_need=adapter.stream_event_need,
    )
    return b"".join(sent)


_USAGE = _chunk({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}) + b"\n\n"


async def test_a_stream_without_tool_calls_builds_no_guard_and_keeps_its_counts():
    guard = _lazy_guard()
    text = _chunk({"choices": [{"index": 0, "delta": {"content": "hello"}}]}) + b"\n\n"
    chunks = [text, text + _USAGE[:10], _USAGE[10:], b"data: [DONE]\n\n"]
    assert await _run_lazy(chunks, guard) == b"".join(chunks)
    assert guard.guard is None
    assert (guard.input_tokens, guard.output_tokens) == (7, 3)


async def test_the_guard_built_at_the_first_tool_call_has_the_counts_read_before_and_screens_the_call():
    guard = _lazy_guard()
    text = _chunk({"choices": [{"index": 0, "delta": {"content": "hello"}}]}) + b"\n\n"
    call = _chunk({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "c1", "type": "function", "function": {"name": "capsem_block_tool", "arguments": "{}"}}]},
        "finish_reason": "tool_calls"}]}) + b"\n\n"
    body = await _run_lazy([text, _USAGE, call, b"data: [DONE]\n\n"], guard)
    assert body.startswith(text + _USAGE)
    assert b"capsem_block_tool\"" not in body
    assert b"Tool blocked by security policy: bad tool" in body
    assert guard.guard is not None
    assert (guard.guard.answer.usage.input_tokens, guard.guard.answer.usage.output_tokens) == (7, 3)
