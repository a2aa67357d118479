"""The stream guard: what it releases, when, and that blocked content never leaves."""

import pytest

from capsem_proxy.decisions import Decision, Outcome, Verdict, strictest
from capsem_proxy.streaming.events import FinishDelta, TextDelta, ToolCallDelta, UsageDelta
from capsem_proxy.streaming.guard import GuardChecks, StreamBlocked, StreamGuard

TRIGGER = "FORBIDDEN"
TEXT = "Hello there, this answer goes on for a while before it says " + TRIGGER + " and then goes on more."


def _outcome(decisions):
    return Outcome(decisions, strictest(decisions))


class Recorder:
    """Blocks text containing TRIGGER and tool calls named 'rm'; records what it saw."""

    def __init__(self):
        self.texts, self.tool_calls = [], []

    async def answer(self, check):
        answer, final = check.answer, check.final
        self.texts.append((answer.text, final))
        if TRIGGER in answer.text:
            return _outcome([Decision(Verdict.BLOCK, "p", "on_model_response", details="found it")])
        return _outcome([])

    async def tool_call(self, call):
        self.tool_calls.append((call.name, call.arguments))
        if call.name == "rm":
            return _outcome([Decision(Verdict.BLOCK, "p", "on_tool_call", details="no rm", subject="rm")])
        return _outcome([])


WINDOW = len(TRIGGER)


def _guard(recorder, mode="guard", window=WINDOW, cap=1 << 20, every=1):
    return StreamGuard(GuardChecks(recorder.answer, recorder.tool_call), mode=mode, window_chars=window,
                       max_buffer_bytes=cap, check_every_chars=every)


async def _run(guard, chunks):
    released = b""
    try:
        for chunk in chunks:
            released += await guard.push(chunk.encode(), [TextDelta(chunk)])
        released += await guard.finish()
    except StreamBlocked as blocked:
        return released.decode(), blocked.decision
    return released.decode(), None


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
async def test_trigger_split_across_chunks_is_blocked_before_any_of_it_leaves(size):
    chunks = [TEXT[i : i + size] for i in range(0, len(TEXT), size)]
    released, decision = await _run(_guard(Recorder()), chunks)
    assert decision is not None and decision.details == "found it"
    assert TEXT.startswith(released)
    assert len(released) <= TEXT.index(TRIGGER)


async def test_every_two_way_split_of_the_trigger_is_caught():
    start = TEXT.index(TRIGGER)
    for cut in range(start + 1, start + len(TRIGGER)):
        released, decision = await _run(_guard(Recorder()), [TEXT[:cut], TEXT[cut:]])
        assert decision is not None, cut
        assert len(released) <= start


async def test_trigger_in_the_first_and_in_the_last_chunk():
    assert (await _run(_guard(Recorder()), [TRIGGER + " at start", " fine"]))[1] is not None
    released, decision = await _run(_guard(Recorder()), ["fine text ", "then " + TRIGGER])
    assert decision is not None and TRIGGER not in released


async def test_clean_answer_is_released_in_full_and_text_flows_before_the_end():
    guard = _guard(Recorder())
    words = [f"word{i} " for i in range(20)]
    early = b""
    for word in words[:10]:
        early += await guard.push(word.encode(), [TextDelta(word)])
    assert early  # text beyond the window left before the stream ended
    rest = b""
    for word in words[10:]:
        rest += await guard.push(word.encode(), [TextDelta(word)])
    rest += await guard.finish()
    assert (early + rest).decode() == "".join(words)


async def test_buffer_mode_holds_everything_until_the_end():
    guard = _guard(Recorder(), mode="buffer")
    for word in ["a" * 50, "b" * 50, "c" * 50]:
        assert await guard.push(word.encode(), [TextDelta(word)]) == b""
    assert await guard.finish() == b"a" * 50 + b"b" * 50 + b"c" * 50


async def test_pass_mode_releases_at_once_and_cuts_from_the_check_on():
    recorder = Recorder()
    released, decision = await _run(_guard(recorder, mode="pass", every=1000), ["clean start ", TRIGGER, " after"])
    assert released == "clean start " + TRIGGER + " after"  # pass mode may only end the stream
    assert decision is not None


async def test_pass_mode_checking_every_event_stops_before_the_trigger():
    released, decision = await _run(_guard(Recorder(), mode="pass", every=1), ["clean start ", TRIGGER, " after"])
    assert released == "clean start "
    assert decision is not None


async def test_opaque_events_keep_their_order():
    guard = _guard(Recorder(), window=0)
    out = await guard.push(b"<role>", [])
    out += await guard.push(b"<text>", [TextDelta("hi")])
    out += await guard.push(b"<usage>", [UsageDelta(3, 4)])
    out += await guard.finish()
    assert out == b"<role><text><usage>"
    assert guard.answer.usage.output_tokens == 4


async def test_tool_call_is_held_until_complete_then_checked_with_assembled_arguments():
    recorder = Recorder()
    guard = _guard(recorder)
    out = await guard.push(b"<t0>", [ToolCallDelta(0, "call_1", "weather", "")])
    out += await guard.push(b"<t1>", [ToolCallDelta(0, arguments_fragment='{"city": "Pa')])
    out += await guard.push(b"<t2>", [ToolCallDelta(0, arguments_fragment='ris"}')])
    assert out == b""
    out += await guard.push(b"<finish>", [FinishDelta("tool_calls")])
    assert recorder.tool_calls == [("weather", {"city": "Paris"})]
    out += await guard.finish()
    assert out == b"<t0><t1><t2><finish>"
    assert guard.answer.tool_calls[0].call_id == "call_1"


async def test_blocked_tool_call_never_leaves():
    guard = _guard(Recorder())
    out = await guard.push(b"<text>", [TextDelta("ok")])
    out += await guard.push(b"<t0>", [ToolCallDelta(0, "c", "rm", '{"path": "/"}')])
    with pytest.raises(StreamBlocked) as blocked:
        out += await guard.push(b"<finish>", [FinishDelta("tool_calls")])
    assert b"<t0>" not in out
    assert blocked.value.decision.subject == "rm"


async def test_tool_call_a_policy_wants_redacted_is_stopped_not_released():
    class Redactor(Recorder):
        async def tool_call(self, call):
            return _outcome([Decision(Verdict.REDACT, "secrets", "on_tool_call", details="found a key",
                                      redactions=[("sk-live-123", "[REDACTED:key]")])])

    guard = _guard(Redactor())
    out = await guard.push(b"<t0>", [ToolCallDelta(0, "c", "post", '{"key": "sk-live-123"}')])
    with pytest.raises(StreamBlocked) as blocked:
        out += await guard.push(b"<finish>", [FinishDelta("tool_calls")])
    assert out == b""
    decision = blocked.value.decision
    assert (decision.verdict, decision.policy, decision.subject) == (Verdict.BLOCK, "secrets", "post")
    assert "cannot be redacted" in decision.details
    assert decision in guard.decisions


async def test_interleaved_parallel_tool_calls_are_assembled_separately():
    recorder = Recorder()
    guard = _guard(recorder)
    await guard.push(b"a", [ToolCallDelta(0, "c0", "first", '{"x":')])
    await guard.push(b"b", [ToolCallDelta(1, "c1", "second", '{"y":')])
    await guard.push(b"c", [ToolCallDelta(0, arguments_fragment="1}")])
    await guard.push(b"d", [ToolCallDelta(1, arguments_fragment="2}")])
    out = await guard.finish()
    assert out == b"abcd"
    assert sorted(recorder.tool_calls) == [("first", {"x": 1}), ("second", {"y": 2})]


async def test_buffer_cap_ends_the_stream():
    guard = _guard(Recorder(), mode="buffer", cap=1024)
    with pytest.raises(StreamBlocked) as blocked:
        for _ in range(20):
            await guard.push(b"x" * 100, [TextDelta("x" * 100)])
    assert "exceeded" in blocked.value.decision.details


def _generated_events(rng) -> list[tuple[bytes, list]]:
    """Events of a stream: mostly one piece of text, sometimes empty, thinking, counts, a finish, a
    tool call's fragment or several deltas at once, each with bytes of its own."""
    from capsem_proxy.streaming.events import ThinkingDelta

    words = ["Hello ", "there", ", ", "FORB", "IDDEN", " and", " 4111", " 1111", "\n", "", "x", " a long sentence"]
    events = []
    for index in range(rng.randint(1, 40)):
        roll = rng.random()
        if roll < 0.75:
            deltas = [TextDelta(rng.choice(words))]
        elif roll < 0.8:
            deltas = [ThinkingDelta(rng.choice(words))]
        elif roll < 0.85:
            deltas = [UsageDelta(3, index)]
        elif roll < 0.9:
            deltas = [ToolCallDelta(rng.choice([0, 1]), name=rng.choice(["ls", "rm"]), arguments_fragment="{}")]
        elif roll < 0.93:
            deltas = [FinishDelta("stop")]
        elif roll < 0.96:
            deltas = [TextDelta(rng.choice(words)), UsageDelta(index, None)]
            rng.shuffle(deltas)  # counts before or after the text
        else:
            deltas = [TextDelta(rng.choice(words)), TextDelta(rng.choice(words))]
        events.append((f"event {index}|".encode() * rng.randint(1, 3), deltas))
    return events


async def test_events_pushed_together_release_what_they_release_pushed_one_by_one():
    """`push_events` takes a read's events as `push` takes each in turn: the same bytes released, at
    the same events, the same decisions and the same end, on generated streams cut into reads, in
    every mode, with holds or a window, checks at any pace and blocks on the way."""
    import random

    rng = random.Random(17)

    def make(seed):
        local = random.Random(seed)
        mode = local.choice(["guard", "guard", "buffer", "pass"])
        holds = [lambda text: max(0, len(text) - local_hold)] if mode == "guard" and seed % 2 else []
        local_hold = local.randint(0, 6)
        recorder = Recorder()
        guard = StreamGuard(
            GuardChecks(recorder.answer, recorder.tool_call), mode=mode, window_chars=local.randint(0, 12),
            max_buffer_bytes=local.choice([1 << 20, 300]), check_every_chars=local.choice([1, 8, 64]), holds=holds,
            split=lambda raw, old, head, rest: (raw + b"<", raw + b">"), incremental_readers=bool(seed % 3),
            whole_readers=not seed % 3,
        )
        return guard, recorder

    async def run(events, cuts, together):
        guard, recorder = make(seed)
        reads, out = [], []
        try:
            for start, end in zip([0, *cuts], [*cuts, len(events)], strict=True):
                released: list[bytes] = []
                read = events[start:end]
                if together:
                    by_raw = dict(read)
                    await guard.push_events([raw for raw, _ in read], by_raw.__getitem__, released)
                else:
                    for raw, deltas in read:
                        piece = await guard.push(raw, deltas)
                        if piece:
                            released.append(piece)
                reads.append(released)
            out.append(await guard.finish())
        except StreamBlocked as blocked:
            out.append(blocked.decision.details)
            reads.append(released)
        usage = (guard.answer.usage.input_tokens, guard.answer.usage.output_tokens)
        return reads, out, [(d.verdict, d.details) for d in guard.decisions], recorder.texts, recorder.tool_calls, usage

    for seed in range(400):
        events = _generated_events(rng)
        # Distinct bytes per event, so that a read can look its deltas up by them.
        events = [(raw + str(index).encode(), deltas) for index, (raw, deltas) in enumerate(events)]
        cuts = sorted(rng.sample(range(1, len(events)), min(len(events) - 1, rng.randint(0, 4))))
        assert await run(events, cuts, True) == await run(events, cuts, False), seed
