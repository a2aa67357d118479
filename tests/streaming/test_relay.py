"""The guarded relay: an unterminated last event is inspected like any other, and a failure
inside inspection still ends the stream with the provider's error event."""

import orjson

from capsem_proxy.decisions import Decision, Outcome, Verdict, strictest
from capsem_proxy.providers.openai import OpenAIAdapter
from capsem_proxy.replies import block_message
from capsem_proxy.streaming.guard import GuardChecks, StreamGuard
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


async def _run(chunks, decoder=None):
    adapter = OpenAIAdapter()
    sent = []

    async def send(message):
        sent.append(message.get("body", b""))

    guard = StreamGuard(GuardChecks(_no_text_policy, _block_named_tools), mode="guard", window_chars=0,
                        max_buffer_bytes=1 << 20, reads_text=False)
    await relay_guarded(
        send, Upstream(chunks), sse=True, decoder=decoder or adapter.stream_decoder("chat"), guard=guard,
        error_event=lambda exc: adapter.stream_error_event("chat", exc.status, exc.message, exc.kind),
        block_event=lambda decision: adapter.stream_error_event("chat", 403, block_message(decision), "permission"),
        needs_decoding=adapter.may_carry_tool_call,
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
