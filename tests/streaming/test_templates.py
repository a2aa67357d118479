"""Text events read and split by their shape: the same deltas and the same split events as the
full reading, for every event, and the full reading whenever an event is anything but plain text
in a known envelope."""

from __future__ import annotations

import random
from functools import partial

import orjson
import pytest

from capsem_proxy.decisions import Decision, Outcome, Verdict, strictest
from capsem_proxy.providers.anthropic import AnthropicAdapter
from capsem_proxy.providers.gemini import GeminiAdapter
from capsem_proxy.providers.openai import OpenAIAdapter
from capsem_proxy.replies import block_message
from capsem_proxy.streaming.events import StreamDecoder, TextDelta, ThinkingDelta
from capsem_proxy.streaming.guard import GuardChecks, StreamGuard
from capsem_proxy.streaming.relay import _sse_deltas, relay_guarded
from capsem_proxy.streaming.rewrite import rewrite_event_text, split_event_text
from capsem_proxy.streaming.templates import TextEvents, TextSplits

_HEAD = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",'
    b'"system_fingerprint":"fp_1","choices":[{"index":0,"delta":'
)
_TAIL = b',"logprobs":null,"finish_reason":null}]}\n\n'


def _chat(delta: dict, tail: bytes = _TAIL) -> bytes:
    return _HEAD + orjson.dumps(delta) + tail


def _anthropic(text: str, index: int = 0) -> bytes:
    return (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":' + str(index).encode()
        + b',"delta":{"type":"text_delta","text":' + orjson.dumps(text) + b"}}\n\n"
    )


def _gemini(text: str, last: bool = False) -> bytes:
    candidate: dict = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if last:
        candidate["finishReason"] = "STOP"
    usage = {"promptTokenCount": 5, "totalTokenCount": 5 + (9 if last else 0)}
    payload = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "m"}
    return b"data: " + orjson.dumps(payload) + b"\r\n\r\n"


_CHAT_EVENTS = [
    _chat({"role": "assistant", "content": "", "refusal": None}),
    _chat({"content": "Hello"}),
    _chat({"content": " world"}),
    _chat({"content": 'a "quoted" word'}),  # escapes: read in full
    _chat({"content": "back\\slash"}),
    _chat({"content": "line\nbreak"}),
    _HEAD + b'{"content":"\\u0041 escaped"}' + _TAIL,
    _chat({"content": "caf\u00e9 \U0001f600"}),
    _HEAD + b'{"content":"bad \xff byte"}' + _TAIL,  # not UTF-8: the full reading replaces it
    _HEAD + b'{"content":"x","refusal":"hidden"}' + _TAIL,  # a second text in the same envelope
    _HEAD + b'{"content":"x"},"extra":{"content":"y"}' + _TAIL,
    _chat({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}),
    _chat({"content": "ctrl\x01char"}),
    _chat({"content": "the end"}, b',"logprobs":null,"finish_reason":"stop"}]}\n\n'),
    _chat({"content": "again"}),
    b"data: [DONE]\n\n",
]
_BLOCK = b'{"type":"content_block_delta","index":1,"delta":'
_ANTHROPIC_EVENTS = [
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n',
    _anthropic("Hi"),
    _anthropic(" there"),
    _anthropic('say "hi"'),
    _anthropic("second block", index=1),
    _anthropic("more of it", index=1),
    b"event: content_block_delta\ndata: " + _BLOCK + b'{"type":"thinking_delta","thinking":"hmm"}}\n\n',
    b"event: ping\ndata: " + _BLOCK + b'{"type":"text_delta","text":"named ping"}}\n\n',
    b"event: content_block_delta\ndata: " + _BLOCK + b'{"type":"text_delta","text":"x"}}\nodd: line\n\n',
    _anthropic("last"),
]
_THINKING = b"event: content_block_delta\ndata: " + _BLOCK + b'{"type":"thinking_delta","thinking":'
_ANTHROPIC_EVENTS += [_THINKING + orjson.dumps(text) + b"}}\n\n" for text in ("Let me", " think", " it \\ over")]
_ANTHROPIC_EVENTS += [_anthropic("after thinking", index=1)]
_CHAT_EVENTS[-1:-1] = [_chat({"reasoning_content": text}) for text in ("step one", " step two", "\u00e9")]


def _gemini_thought(text: str) -> bytes:
    part = {"text": text, "thought": True}
    payload = {"candidates": [{"content": {"parts": [part], "role": "model"}, "index": 0}], "modelVersion": "m"}
    return b"data: " + orjson.dumps(payload) + b"\r\n\r\n"


_GEMINI_EVENTS = [
    _gemini_thought("Thinking"), _gemini_thought(" more"), _gemini("One"), _gemini(" two"), _gemini(" thr\"ee"),
    _gemini_thought(" and again"), _gemini(" four"), _gemini(" end", last=True),
]


@pytest.mark.parametrize(
    ("adapter", "operation", "events"),
    [
        (OpenAIAdapter(), "chat", _CHAT_EVENTS),
        (AnthropicAdapter(), "messages", _ANTHROPIC_EVENTS),
        (GeminiAdapter(), "stream_generate", _GEMINI_EVENTS),
    ],
)
def test_every_event_reads_as_the_full_reading_reads_it(adapter, operation, events):
    full = adapter.stream_decoder(operation)
    fast = adapter.stream_decoder(operation)
    assert type(fast).text_events_alone
    reader = TextEvents(partial(_sse_deltas, fast))
    for _ in range(2):  # the second time round, templates are made
        for raw in events:
            assert reader.deltas(raw) == _sse_deltas(full, raw), raw


class _CountingDecoder(StreamDecoder):
    text_events_alone = True

    def __init__(self, inner: StreamDecoder) -> None:
        self.inner, self.fed = inner, 0

    def feed(self, event):
        self.fed += 1
        return self.inner.feed(event)


def test_text_events_of_a_known_shape_are_read_without_the_decoder():
    decoder = _CountingDecoder(OpenAIAdapter().stream_decoder("chat"))
    reader = TextEvents(partial(_sse_deltas, decoder))
    assert reader.deltas(_chat({"content": "first"})) == [TextDelta("first")]
    made = decoder.fed  # the event, then its template verified with another text
    assert made == 2
    for word in ("second", " third", "\u00e9l\u00e8ve"):
        assert reader.deltas(_chat({"content": word})) == [TextDelta(word)]
    assert decoder.fed == made
    # What is not plain text in that envelope goes to the decoder.
    hidden = _HEAD + b'{"content":"x","refusal":"hidden"}' + _TAIL
    assert reader.deltas(hidden) == [TextDelta("x"), TextDelta("hidden")]
    assert decoder.fed == made + 1


def test_thinking_events_read_by_their_shape_stay_thinking():
    decoder = _CountingDecoder(AnthropicAdapter().stream_decoder("messages"))
    reader = TextEvents(partial(_sse_deltas, decoder))
    for text in ("Let me", " think", " about it"):
        assert reader.deltas(_THINKING + orjson.dumps(text) + b"}}\n\n") == [ThinkingDelta(text)]
    assert decoder.fed == 2  # the first event and the check of its template; the others by their shape
    assert reader.deltas(_anthropic("answer", index=1)) == [TextDelta("answer")]  # another envelope
    assert decoder.fed == 4


def test_events_whose_envelope_keeps_changing_stop_making_templates():
    decoder = _CountingDecoder(GeminiAdapter().stream_decoder("stream_generate"))
    reader = TextEvents(partial(_sse_deltas, decoder))
    for count in range(1, 11):  # counts that grow at every event: no template ever fits
        usage = {"promptTokenCount": 5, "candidatesTokenCount": count}
        payload = {"candidates": [{"content": {"parts": [{"text": f"word{count} "}]}}], "usageMetadata": usage}
        raw = b"data: " + orjson.dumps(payload) + b"\r\n\r\n"
        assert reader.deltas(raw) == _sse_deltas(decoder.inner, raw)
    assert decoder.fed == 10 + 2  # every event, and the checks of two templates that nothing fitted


def _padded(delta: dict, padding: bytes, finish: bytes = b"null") -> bytes:
    """A chat chunk as OpenAI sends it by default: random padding in `obfuscation` after the choices."""
    return (_HEAD + orjson.dumps(delta) + b',"logprobs":null,"finish_reason":' + finish + b'}],"obfuscation":"'
            + padding + b'"}\n\n')


_PADDED_EVENTS = [
    _padded({"role": "assistant", "content": "", "refusal": None}, b"Zq"),
    _padded({"content": "Hello"}, b"ZGF"),
    _padded({"content": ","}, b"lRK2aBv"),
    _padded({"content": " World"}, b""),
    _padded({"content": "x"}, b"a\\u0041b"),  # an escape in the padding: read in full
    _padded({"content": "x"}, b"caf\xc3\xa9"),  # not ASCII: read in full
    _padded({"content": "x"}, b"bad\xff"),  # not UTF-8: read in full (and refused there)
    _padded({"content": 'say "hi"'}, b"kJ"),  # an escape in the text: read in full
    _padded({"content": "almost"}, b"0wmdEAC", finish=b'"stop"'),
    _chat({"content": "no padding"}),
    _padded({"content": "x"}, b"k"),
    _HEAD + b'{"content":"x"},"logprobs":null,"finish_reason":null}],"obfuscation":"a","obfuscation":"b"}\n\n',
    _padded({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}, b"p"),
]


def test_padded_chat_events_read_as_the_full_reading_reads_them():
    full = OpenAIAdapter().stream_decoder("chat")
    fast = OpenAIAdapter().stream_decoder("chat")
    assert type(fast).padding_fields == ("obfuscation",)
    reader = TextEvents(partial(_sse_deltas, fast), type(fast).padding_fields)
    for _ in range(2):
        for raw in _PADDED_EVENTS:
            try:
                expected = _sse_deltas(full, raw)
            except Exception as exc:  # the fast reading must fail the same way
                with pytest.raises(type(exc)):
                    reader.deltas(raw)
            else:
                assert reader.deltas(raw) == expected, raw


def test_padding_of_any_length_fits_one_template():
    decoder = _CountingDecoder(OpenAIAdapter().stream_decoder("chat"))
    reader = TextEvents(partial(_sse_deltas, decoder), ("obfuscation",))
    assert reader.deltas(_padded({"content": "first"}, b"ZGF")) == [TextDelta("first")]
    assert decoder.fed == 2  # the event, then its template verified with another text and padding
    for word, padding in ((" second", b"lRK2aBv"), (" third", b""), (" fourth", b"kJ0wmdEACx")):
        assert reader.deltas(_padded({"content": word}, padding)) == [TextDelta(word)]
    assert decoder.fed == 2
    # A padding value that is not plain ASCII, and an event without padding, go to the decoder.
    assert reader.deltas(_padded({"content": "x"}, b"a\\\"b")) == [TextDelta("x")]
    assert reader.deltas(_chat({"content": "bare"})) == [TextDelta("bare")]
    assert decoder.fed == 2 + 2 * 2  # each read in full, and each verified as a template of its own shape


def test_without_padding_fields_padded_events_make_no_lasting_template():
    decoder = _CountingDecoder(OpenAIAdapter().stream_decoder("chat"))
    reader = TextEvents(partial(_sse_deltas, decoder))
    for index, padding in enumerate((b"a", b"bb", b"ccc", b"dddd", b"eeeee")):
        assert reader.deltas(_padded({"content": f"w{index}"}, padding)) == [TextDelta(f"w{index}")]
    assert decoder.fed == 5 + 2  # every event, and two templates that no later event fitted


def test_a_text_found_twice_in_its_event_makes_no_template():
    decoder = _CountingDecoder(OpenAIAdapter().stream_decoder("chat"))
    reader = TextEvents(partial(_sse_deltas, decoder))
    assert reader.deltas(_chat({"content": "gpt-4o-mini"})) == [TextDelta("gpt-4o-mini")]  # also the model
    assert reader.deltas(_chat({"content": "abc"})) == [TextDelta("abc")]
    assert decoder.fed == 3  # the first event was read once, made nothing; the second made a template


def test_a_template_that_does_not_decode_the_other_text_is_not_kept():
    class Fixed(StreamDecoder):
        text_events_alone = True

        def feed(self, event):  # a decoder whose text does not come from where the text is written
            return [TextDelta("constant")] if "constant" in event.data else []

    reader = TextEvents(partial(_sse_deltas, Fixed()))
    raw = b'data: {"a":"constant"}\n\n'
    assert reader.deltas(raw) == [TextDelta("constant")]
    assert reader.deltas(b'data: {"a":"other"}\n\n') == []


class _Decoder(StreamDecoder):
    def __init__(self) -> None:
        self.inner = OpenAIAdapter().stream_decoder("chat")
        self.fed = 0

    def feed(self, event):
        self.fed += 1
        return self.inner.feed(event)


_SPLITS = [
    (_chat({"content": "Hello world"}), "Hello world", 5),
    (_chat({"content": "Hello again"}), "Hello again", 3),
    (_chat({"content": "gpt-4o-mini"}), "gpt-4o-mini", 3),
    (_chat({"content": "two words"}, b',"logprobs":null,"finish_reason":"stop"}],"usage":{"total_tokens":3}}\n\n'),
     "two words", 4),
    (_chat({"content": 'a "q" b'}), 'a "q" b', 2),
    (_chat({"role": "assistant", "content": "role first"}), "role first", 4),
    (_chat({"content": "same text"}), "same text", 4),
    (_HEAD + b'{"content":"same text","refusal":"same text"}' + _TAIL, "same text", 4),  # ambiguous: None
    (_HEAD + b'{"content":"abc"},"extra":{"content":"other one"}' + _TAIL, "abc", 1),
    (_HEAD + b'{"content":"def"},"extra":{"content":"other one"}' + _TAIL, "def", 1),
    (_HEAD + b'{"content":"other one"},"extra":{"content":"other one"}' + _TAIL, "other one", 2),  # None
    (_HEAD + b'{"content":"with \\u0065scape"}' + _TAIL, "with escape", 3),
    (_HEAD + b'{"content":"with escapes"}' + _TAIL, "with escapes", 3),
    (_chat({"content": "not this text"}), "another text!", 4),  # the text is not the event's: None
    (_anthropic("Some text"), "Some text", 4),
    (_anthropic("More text"), "More text", 2),
    (_anthropic("More text", index=3), "More text", 2),
    (_gemini("Gemini says"), "Gemini says", 6),
    (_gemini("Gemini again"), "Gemini again", 6),
    (_gemini("Gemini ends", last=True), "Gemini ends", 3),
    (_gemini("caf\u00e9 cr\u00e8me"), "caf\u00e9 cr\u00e8me", 4),
]


def test_splits_are_the_full_splits():
    splits = TextSplits(sse=True)
    for _ in range(2):
        for raw, old, cut in _SPLITS:
            if not cut:
                continue
            expected = split_event_text(raw, old, old[:cut], old[cut:], sse=True)
            assert splits(raw, old, old[:cut], old[cut:]) == expected, raw
    assert splits._templates  # some were split by a template


def test_split_templates_are_used_and_ambiguous_texts_are_not_split():
    splits = TextSplits(sse=True)
    splits(_chat({"content": "learn this"}), "learn this", "learn", " this")
    assert len(splits._templates) == 1
    first, rest = splits(_chat({"content": "by shape"}), "by shape", "by", " shape")
    assert orjson.loads(first[6:])["choices"][0]["delta"] == {"content": "by"}
    assert orjson.loads(rest[6:])["choices"][0]["delta"] == {"content": " shape"}
    # "gpt-4o-mini" is also the model, but not a text a split looks at: split as the full split does.
    raw = _chat({"content": "gpt-4o-mini"})
    assert splits(raw, "gpt-4o-mini", "gpt", "-4o-mini") == split_event_text(raw, "gpt-4o-mini", "gpt", "-4o-mini",
                                                                             sse=True)


def test_padded_splits_are_the_full_splits():
    splits = TextSplits(sse=True, padding=("obfuscation",))
    events = [
        (_padded({"content": "Hello world"}, b"ZGF"), "Hello world", 5),
        (_padded({"content": "Again and again"}, b"lRK2aBvq"), "Again and again", 6),
        (_padded({"content": "empty padding"}, b""), "empty padding", 5),
        (_padded({"content": "Hello"}, b"Hello"), "Hello", 2),  # the padding spells the text
        (_padded({"content": "escaped"}, b"a\\u0041"), "escaped", 3),  # split in full
        (_padded({"content": "accented"}, b"caf\xc3\xa9"), "accented", 3),  # not ASCII: in full
        (_padded({"content": 'say "hi"'}, b"kJ"), 'say "hi"', 4),
        (_chat({"content": "no padding at all"}), "no padding at all", 3),
        (_padded({"content": "the end"}, b"0wmdEAC", finish=b'"stop"'), "the end", 3),
        (_padded({"content": "after the end"}, b"x"), "after the end", 6),
    ]
    for _ in range(2):
        for raw, old, cut in events:
            expected = split_event_text(raw, old, old[:cut], old[cut:], sse=True)
            assert splits(raw, old, old[:cut], old[cut:]) == expected, raw
    assert splits._padded  # some were split by a padded template


def test_a_padded_split_template_is_used_for_any_padding():
    splits = TextSplits(sse=True, padding=("obfuscation",))
    splits(_padded({"content": "learn this"}, b"abc"), "learn this", "learn", " this")
    assert len(splits._padded) == 1 and not splits._templates
    first, rest = splits(_padded({"content": "by shape"}, b"Q9z1x"), "by shape", "by", " shape")
    assert first.endswith(b'"obfuscation":"Q9z1x"}\n\n') and rest.endswith(b'"obfuscation":"Q9z1x"}\n\n')
    assert orjson.loads(first[6:])["choices"][0]["delta"] == {"content": "by"}
    assert orjson.loads(rest[6:])["choices"][0]["delta"] == {"content": " shape"}
    assert len(splits._padded) == 1  # split by the template, not in full (which would have made another)


def test_gemini_split_heads_carry_no_counts():
    splits = TextSplits(sse=True)
    for text in ("first words", "second words"):
        first, rest = splits(_gemini(text), text, text[:3], text[3:])
        assert b"usageMetadata" not in first
        assert b"usageMetadata" in rest
        assert orjson.loads(first[6:])["candidates"][0]["content"]["parts"] == [{"text": text[:3]}]


def test_json_array_splits_are_the_full_splits():
    splits = TextSplits(sse=False)
    element = orjson.dumps({"candidates": [{"content": {"parts": [{"text": "TEXT"}], "role": "model"}}],
                            "usageMetadata": {"promptTokenCount": 5}}, option=orjson.OPT_INDENT_2)
    for text in ("array text", "more array text", "and more"):
        raw = b"\n,\r\n" + element.replace(b"TEXT", text.encode())
        assert splits(raw, text, text[:4], text[4:]) == split_event_text(raw, text, text[:4], text[4:], sse=False)
    assert splits._templates


async def _no_findings(check):
    return Outcome([], None)


async def _redact_secret(check):
    if "SECRET" in check.answer.text:
        decision = Decision(Verdict.REDACT, "p", "on_model_response", redactions=[("SECRET", "[X]")])
        return Outcome([decision], strictest([decision]))
    return Outcome([], None)


async def _no_tools(call):
    return Outcome([], None)


class _Upstream:
    def __init__(self, chunks):
        self._chunks = chunks

    async def chunks(self):
        for chunk in self._chunks:
            yield chunk


def _full_split(raw, old, head, rest):
    return split_event_text(raw, old, head, rest, sse=True)


def _rewrite(raw, old, new):
    return rewrite_event_text(raw, old, new, sse=True)


async def _relay(events, check, decoder, cut=None, split=None):
    adapter = OpenAIAdapter()
    sent = []

    async def send(message):
        sent.append(message.get("body", b""))

    body = b"".join(events)
    chunks = [body[at : at + cut] for at in range(0, len(body), cut)] if cut else events
    guard = StreamGuard(GuardChecks(check, _no_tools), mode="guard", window_chars=8, max_buffer_bytes=1 << 20,
                        check_every_chars=4, rewrite=_rewrite, split=split or TextSplits(sse=True))
    await relay_guarded(
        send, _Upstream(chunks), sse=True, decoder=decoder, guard=guard,
        error_event=lambda exc: adapter.stream_error_event("chat", exc.status, exc.message, exc.kind),
        block_event=lambda decision: adapter.stream_error_event("chat", 403, block_message(decision), "permission"),
    )
    return b"".join(sent), guard


@pytest.mark.parametrize("cut", [None, 1, 7, 50])
async def test_a_guarded_stream_comes_back_whole_and_reads_the_same_answer(cut):
    events = [_chat({"content": f"piece {n} "}) for n in range(12)] + _CHAT_EVENTS
    fast, guard = await _relay(events, _no_findings, OpenAIAdapter().stream_decoder("chat"), cut)
    slow, full_guard = await _relay(events, _no_findings, _Decoder(), cut, _full_split)
    # Released events may be split where text was approved; together they carry the same answer.
    assert guard.answer.text == full_guard.answer.text
    assert fast == slow
    texts = []
    for event in fast.split(b"\n\n"):
        if event.startswith(b"data: {"):
            delta = orjson.loads(event[6:].decode("utf-8", "replace"))["choices"][0]["delta"]
            texts.append((delta.get("content") or "") + (delta.get("refusal") or ""))
    assert "".join(texts) == guard.answer.text


async def test_a_redaction_reaches_text_events_read_by_their_shape():
    events = [_chat({"content": word}) for word in ("one ", "two ", "SEC", "RET", " three", " four")]
    body, _ = await _relay([*events, b"data: [DONE]\n\n"], _redact_secret, OpenAIAdapter().stream_decoder("chat"))
    assert b"SEC" not in body and b"RET\"" not in body
    assert b"[X]" in body


# Pieces of text an event may carry: plain, escaped, non-ASCII, surrogates (a pair, and lone halves
# that only an escape can spell), control characters, quotes and backslashes, and characters that are
# not printable though plain (a no-break space, a soft hyphen, a zero-width joiner, a line separator).
_PIECES = ["a", "Hello", " ", "caf\u00e9", "\U0001f600", "\u2028", "\x7f", '"', "\\", "\n", "\x01", "\t", "/",
           "\u00a0", "x" * 40, "\u00ad", "\u200d", "\x85"]
_ESCAPED = [b"\\u00e9", b"\\ud83d\\ude00", b"\\ud83d", b"\\ude00", b"\\/", b"\\n", b"\\u0022", b"\\\\", b"\\t"]


def _text_bytes(rng) -> bytes:
    """A JSON string body: mostly plain, sometimes escaped, sometimes bytes that are not UTF-8."""
    parts = []
    for _ in range(rng.randrange(0, 4)):
        roll = rng.random()
        if roll < 0.75:
            parts.append(orjson.dumps(rng.choice(_PIECES))[1:-1])
        elif roll < 0.9:
            parts.append(rng.choice(_ESCAPED))
        else:
            parts.append(rng.choice([b"\xff", b"\xed\xa0\x80", b"\xc3", b"\x00", b"\x1f", b"\r"]))
    return b"".join(parts)


def _shuffled(rng, members: list[bytes]) -> bytes:
    if rng.random() < 0.2:
        rng.shuffle(members)
    return b"{" + b",".join(members) + b"}"


def _fuzz_chat(rng, text: bytes) -> bytes:
    delta = [b'"content":"' + text + b'"']
    if rng.random() < 0.1:
        delta.append(rng.choice([b'"role":"assistant"', b'"refusal":"r"', b'"reasoning_content":"t"']))
    choice = [b'"index":0', b'"delta":' + _shuffled(rng, delta), b'"logprobs":null',
              b'"finish_reason":' + (b'"stop"' if rng.random() < 0.05 else b"null")]
    chunk = [b'"id":"chatcmpl-1"', b'"object":"chat.completion.chunk"', b'"model":"m"',
             b'"choices":[' + _shuffled(rng, choice) + b"]"]
    if rng.random() < 0.9:
        chunk.append(b'"obfuscation":"' + rng.choice([b"", b"Zq", b"a1B2c3", b"caf\xc3\xa9", b"a\\u0041", b"\x7f",
                                                     b"q\xff", b'"', b"x" * 20]) + b'"')
    if rng.random() < 0.05:
        chunk.append(b'"usage":{"prompt_tokens":3,"completion_tokens":4}')
    if rng.random() < 0.05:
        chunk.append(b'"extra":"' + text + b'"')
    return b"data: " + _shuffled(rng, chunk)


def _fuzz_anthropic(rng, text: bytes) -> bytes:
    kind, key = rng.choice([(b"text_delta", b"text"), (b"thinking_delta", b"thinking"), (b"text_delta", b"thinking")])
    delta = [b'"type":"' + kind + b'"', b'"' + key + b'":"' + text + b'"']
    data = [b'"type":"content_block_delta"', b'"index":' + rng.choice([b"0", b"1"]),
            b'"delta":' + _shuffled(rng, delta)]
    name = rng.choice([b"event: content_block_delta\n"] * 8 + [b"", b"event: ping\n", b"event: other\n"])
    return name + b"data: " + _shuffled(rng, data)


def _fuzz_gemini(rng, text: bytes) -> bytes:
    part = [b'"text":"' + text + b'"']
    if rng.random() < 0.2:
        part.append(rng.choice([b'"thought":true', b'"thought":false', b'"thoughtSignature":"s"']))
    candidate = [b'"content":{"parts":[' + _shuffled(rng, part) + b'],"role":"model"}', b'"index":0']
    if rng.random() < 0.05:
        candidate.append(b'"finishReason":"STOP"')
    response = [b'"candidates":[' + _shuffled(rng, candidate) + b"]", b'"modelVersion":"m"']
    if rng.random() < 0.8:
        response.append(b'"usageMetadata":{"promptTokenCount":5,"totalTokenCount":' + rng.choice([b"5", b"9"]) + b"}")
    return b"data: " + _shuffled(rng, response)


@pytest.mark.parametrize(
    ("adapter", "operation", "make"),
    [
        (OpenAIAdapter(), "chat", _fuzz_chat),
        (AnthropicAdapter(), "messages", _fuzz_anthropic),
        (GeminiAdapter(), "stream_generate", _fuzz_gemini),
    ],
)
def test_generated_events_read_by_their_shape_read_as_the_full_reading_reads_them(adapter, operation, make):
    rng = random.Random(operation)
    fitted = 0
    for _ in range(60):
        full = adapter.stream_decoder(operation)
        fast = adapter.stream_decoder(operation)
        reader = TextEvents(partial(_sse_deltas, fast), type(fast).padding_fields, type(fast).silent_events)
        line_end = rng.choice([b"\n", b"\r\n", b"\r", b"\n"])
        silent = sorted(type(fast).silent_events)
        for _ in range(40):
            raw = make(rng, _text_bytes(rng)) + line_end * 2
            if silent and rng.random() < 0.05:
                raw = rng.choice(silent)
            if rng.random() < 0.03:  # a byte changed anywhere
                at = rng.randrange(len(raw))
                raw = raw[:at] + bytes([rng.randrange(256)]) + raw[at + 1 :]
            before = len(reader._templates)
            assert reader.deltas(raw) == _sse_deltas(full, raw), raw
            fitted += before > 0
    assert fitted > 1000  # most events met a template


@pytest.mark.parametrize(
    ("adapter", "operation"), [(OpenAIAdapter(), "chat"), (AnthropicAdapter(), "messages"),
                               (GeminiAdapter(), "stream_generate")],
)
def test_silent_events_decode_to_nothing_and_are_taken_as_read(adapter, operation):
    decoder = _CountingDecoder(adapter.stream_decoder(operation))
    silent = type(decoder.inner).silent_events
    reader = TextEvents(partial(_sse_deltas, decoder), silent=silent)
    for raw in silent:
        assert _sse_deltas(adapter.stream_decoder(operation), raw) == []
        assert reader.deltas(raw) == []
    assert decoder.fed == 0
    assert reader.deltas(b'event: ping\ndata: {"type":"ping"}\n\n') == []  # other bytes: decoded
    assert decoder.fed == 1


def test_the_usual_silent_events_are_known():
    assert b"data: [DONE]\n\n" in OpenAIAdapter().stream_decoder("chat").silent_events
    anthropic = AnthropicAdapter().stream_decoder("messages").silent_events
    assert b'event: ping\ndata: {"type": "ping"}\n\n' in anthropic
    assert b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n' in anthropic
