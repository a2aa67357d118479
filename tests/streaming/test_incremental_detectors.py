"""Streamed answers read incrementally by the secrets and PII policies: the client receives the same
redacted text as with whole-text reads, whatever the chunking, and a long answer costs reads in
proportion to its length."""

from __future__ import annotations

import base64
import random

import pytest

from capsem_proxy.config import PolicySettings
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policies.base import PolicyTraits
from capsem_proxy.policies.loader import load_policy
from capsem_proxy.streaming.events import TextDelta
from capsem_proxy.streaming.guard import GuardChecks, StreamGuard

_RANDOM = random.Random(7)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(base64.b64encode(_RANDOM.randbytes(48)).decode() for _ in range(24))
    + "\n-----END RSA PRIVATE KEY-----"
)
EMAIL = "maria.lopez@acme-logistics.io"
FILLER = "The quarterly report shows steady growth across regions while costs stayed flat. "
ANSWER = (
    FILLER * 6 + f"Write to {EMAIL} for access. " + FILLER * 5 + "Here is the key:\n" + PEM + "\n" + FILLER * 4
    + f"Again, {EMAIL} is the contact." + FILLER * 3
)


class CountingScans:
    """Wraps a detector, counting the characters it is asked to read."""

    def __init__(self, detector):
        self.detector, self.name, self.chars = detector, detector.name, 0

    def scan(self, text):
        self.chars += len(text)
        return self.detector.scan(text)

    def scan_grown(self, text, clean):
        self.chars += len(text)
        return self.detector.scan_grown(text, clean)


def _policies(incremental: bool):
    policies = [load_policy(PolicySettings(**{"class": name}), name) for name in ("secrets", "pii_detect")]
    for configured in policies:
        configured.policy.incremental_answers = incremental
        configured.traits = PolicyTraits.of(configured.policy)  # traits are read at load: read them again
        counting = configured.policy.detector = CountingScans(configured.policy.detector)
        if configured.policy._scan_grown is not None:  # read past what an earlier read found free of literals
            configured.policy._scan_grown = counting.scan_grown
        # What is compared is what each way of reading releases, not how fast: a busy machine must
        # not turn a slow check (the first phone number loads its library) into a policy error.
        configured.timeout_s = 60.0
    return policies


def _chunks(text: str, chunk: int | str) -> list[str]:
    if isinstance(chunk, int):
        return [text[start : start + chunk] for start in range(0, len(text), chunk)]
    sizes = random.Random(chunk)  # a named seed: uneven chunk sizes, the same every run
    pieces, start = [], 0
    while start < len(text):
        size = sizes.randint(1, 400)
        pieces.append(text[start : start + size])
        start += size
    return pieces


async def _stream(text: str, chunk: int | str, incremental: bool) -> tuple[str, int]:
    policies = _policies(incremental)
    pipeline = Pipeline(policies)
    context = RequestContext("r", "t", "openai", "chat", Exchange("openai", "chat", "m"))

    async def answer(check):
        return await pipeline.check_answer(context, check.answer, final=check.final, include_tool_calls=False,
                                           stream=check)

    async def tool_call(call):
        return await pipeline.check_emitted_tool_call(context, call)

    def rewrite(raw: bytes, old: str, new: str) -> bytes:
        return raw.replace(old.encode(), new.encode())

    whole_readers, incremental_readers = pipeline.answer_readers()
    guard = StreamGuard(GuardChecks(answer, tool_call), mode="guard", window_chars=pipeline.window_chars(),
                        max_buffer_bytes=1 << 24, rewrite=rewrite, whole_readers=whole_readers,
                        incremental_readers=incremental_readers)
    released = b""
    for piece in _chunks(text, chunk):
        released += await guard.push(piece.encode(), [TextDelta(piece)])
    released += await guard.finish()
    return released.decode(), sum(configured.policy.detector.chars for configured in policies)


@pytest.mark.parametrize("chunk", [1, 3, 16, 61, 250, 2000, "uneven-1", "uneven-2", "uneven-3"])
async def test_incremental_reads_release_exactly_what_whole_reads_release(chunk):
    incremental, _ = await _stream(ANSWER, chunk, incremental=True)
    whole, _ = await _stream(ANSWER, chunk, incremental=False)
    assert incremental == whole
    assert EMAIL not in incremental and "PRIVATE KEY" not in incremental and PEM[200:260] not in incremental
    assert incremental.count("[REDACTED:email]") == 2 and "[REDACTED:private_key]" in incremental


@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "whole-text"])
async def test_a_long_answer_is_read_in_linear_time(incremental):
    """Incremental readers read the unsettled end at each check; whole-text readers are checked
    as the text grows geometrically. Either way four times the text costs about four times the reads
    (re-reading everything at every check would cost sixteen)."""

    def answer(fillers: int) -> str:
        return FILLER * fillers + f" mail {EMAIL} " + FILLER * 10

    released, short_reads = await _stream(answer(60), 20, incremental=incremental)
    _, long_reads = await _stream(answer(240), 20, incremental=incremental)
    assert "[REDACTED:email]" in released and EMAIL not in released
    assert long_reads < 5 * short_reads
    assert long_reads < 40 * len(answer(240))
