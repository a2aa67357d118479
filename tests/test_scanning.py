"""Bounded detector work: the per-request scan budget, short texts read inline, long ones in
slices that give the event loop a turn, and at most a few long scans at once."""

from __future__ import annotations

import asyncio

from capsem_proxy.decisions import Verdict
from capsem_proxy.detectors.base import Finding
from capsem_proxy.exchange import Answer, Exchange, Message
from capsem_proxy.hooks import RequestContext
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policies.base import ConfiguredPolicy
from capsem_proxy.policies.secrets import SecretsPolicy
from capsem_proxy.scanning import TOO_LARGE_TO_SCREEN, ScanLedger, ScanLimits, using_ledger

LIMITS = ScanLimits(max_chars_per_request=50_000, slice_chars=2048, max_concurrent_large_scans=2)
KEY = "ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5"


def _context(*texts: str) -> RequestContext:
    exchange = Exchange(provider="openai", operation="chat", model="m", messages=[Message("user", t) for t in texts])
    return RequestContext("req", "tenant", "openai", "chat", exchange)


def _configured(policy, timeout_s: float = 5.0) -> ConfiguredPolicy:
    return ConfiguredPolicy(policy, policy.name, False, timeout_s, inline_hooks=policy.inline_hooks)


def _first_step(coroutine) -> bool:
    """Run a coroutine's first step; True when it finished in it (no turn of the event loop)."""
    try:
        coroutine.send(None)
    except StopIteration:
        return True
    coroutine.close()
    return False


def test_the_budget_counts_each_policys_characters_per_request():
    ledger = ScanLedger(LIMITS)
    secrets, pii = object(), object()
    assert ledger.charge(secrets, 30_000) and ledger.charge(pii, 30_000)
    assert ledger.charge(secrets, 20_000)
    assert not ledger.charge(secrets, 1)
    assert ledger.screened(secrets) == 50_001 and ledger.screened(pii) == 30_000


def test_a_growing_answer_counts_only_what_it_grew_by():
    ledger = ScanLedger(LIMITS, answer=True)
    policy = object()
    for length in range(1_000, 50_001, 1_000):  # a stream checked 50 times, 1,275,000 characters read
        assert ledger.charge(policy, length, growing=True)
    assert ledger.screened(policy) == 50_000
    assert not ledger.charge(policy, 50_001, growing=True)


async def test_a_text_over_the_budget_is_refused_unread():
    policy = SecretsPolicy.from_config({"action": "block"})
    read = []
    real_scan = policy.detector.scan
    policy.detector.scan = lambda text: read.append(len(text)) or real_scan(text)
    with using_ledger(ScanLedger(LIMITS)):
        decision = await policy.decide("on_model_call", KEY + " " + "x" * 60_000)
    assert read == []
    assert decision.verdict is Verdict.BLOCK and decision.reason == TOO_LARGE_TO_SCREEN
    assert decision.details == (
        "too large to screen: the request holds more than 50000 characters of text for the 'secrets' detector"
    )


async def test_the_pipeline_refuses_a_request_whose_texts_add_up_past_the_budget():
    pipeline = Pipeline([_configured(SecretsPolicy.from_config({}))], scan_limits=LIMITS)
    outcome = await pipeline.check_request(_context("a" * 30_000, "b" * 30_000))
    assert outcome.blocked and outcome.governing.reason == TOO_LARGE_TO_SCREEN
    small = await pipeline.check_request(_context("a" * 30_000))
    assert not small.blocked


async def test_a_short_text_is_read_in_one_step_and_a_long_one_gives_the_event_loop_turns():
    policy = SecretsPolicy.from_config({})
    with using_ledger(ScanLedger(LIMITS)):
        assert _first_step(policy.decide("on_model_call", "deploy with " + KEY))
    with using_ledger(ScanLedger(LIMITS)):
        assert not _first_step(policy.decide("on_model_call", "x" * 20_000))


async def test_many_short_texts_of_one_request_give_the_event_loop_a_turn_every_slice():
    policy = SecretsPolicy.from_config({})
    with using_ledger(ScanLedger(LIMITS)):
        steps = "".join(
            "i" if _first_step(policy.decide("on_tool_response", "y" * 1000)) else "t" for _ in range(20)
        )
    # At most 2,048 characters read between two turns: two texts of 1,000, then a turn.
    assert steps.startswith("iit") and "iii" not in steps


async def test_long_texts_are_found_whole_when_read_in_slices():
    policy = SecretsPolicy.from_config({"action": "block"})
    text = "z " * 5000 + KEY + " z" * 5000
    with using_ledger(ScanLedger(LIMITS)):
        decision = await policy.decide("on_model_call", text)
    assert decision.verdict is Verdict.BLOCK and decision.extra["kinds"] == ["github_token"]


class _Counting:
    """A detector that notes which text each window it reads belongs to."""

    name = "counting"

    def __init__(self, log):
        self.log = log

    def scan(self, text: str) -> list[Finding]:
        self.log.append(text[0])
        return []


async def test_at_most_the_configured_number_of_long_scans_run_at_once():
    log: list[str] = []
    policy = SecretsPolicy.from_config({})
    policy.detector = _Counting(log)
    texts = [letter * 30_000 for letter in "abcdef"]

    async def one(text):
        with using_ledger(ScanLedger(LIMITS)):
            await policy.decide("on_model_call", text)

    await asyncio.gather(*(one(text) for text in texts))
    started, finished, running = set(), set(), 0
    last_seen = {letter: index for index, letter in enumerate(log)}
    for index, letter in enumerate(log):
        started.add(letter)
        finished = {other for other, last in last_seen.items() if last < index}
        running = max(running, len(started - finished))
    assert sorted(set(log)) == list("abcdef")
    assert running == 2


async def test_the_answer_has_its_own_budget_and_is_blocked_past_it():
    pipeline = Pipeline([_configured(SecretsPolicy.from_config({}))], scan_limits=LIMITS)
    context = _context("q" * 40_000)
    assert not (await pipeline.check_request(context)).blocked
    assert not (await pipeline.check_answer(context, Answer(text="r" * 40_000))).blocked
    outcome = await pipeline.check_answer(_context("q"), Answer(text="r" * 60_000))
    assert outcome.blocked and outcome.governing.hook == "on_model_response"
    assert outcome.governing.details.startswith("too large to screen: the answer holds more than 50000")
