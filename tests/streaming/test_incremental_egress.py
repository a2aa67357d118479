"""The egress policy reads a streamed answer incrementally and still judges every URL as a whole read
would: images whose `![` or reference definition lies far from the URL included, and a long answer
costs reads in proportion to its length."""

from __future__ import annotations

import pytest

from capsem_proxy.config import PolicySettings
from capsem_proxy.exchange import Exchange
from capsem_proxy.hooks import RequestContext
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policies import egress
from capsem_proxy.policies.loader import load_policy
from capsem_proxy.streaming.events import TextDelta
from capsem_proxy.streaming.guard import GuardChecks, StreamBlocked, StreamGuard

FILLER = "Quarterly numbers held steady across all regions this year. "
BAD = "https://evil.example/collect.png"


async def _stream(text: str, chunk: int) -> tuple[str, str | None]:
    """(what the client received, the blocking decision's details or None)."""
    settings = PolicySettings(**{"class": "egress", "options": {"allowed_domains": ["example.com"]}})
    policy = load_policy(settings, "egress")
    pipeline = Pipeline([policy])
    context = RequestContext("r", "t", "openai", "chat", Exchange("openai", "chat", "m"))

    async def answer(check):
        return await pipeline.check_answer(context, check.answer, final=check.final, include_tool_calls=False,
                                           stream=check)

    async def tool_call(call):
        return await pipeline.check_emitted_tool_call(context, call)

    whole_readers, incremental_readers = pipeline.answer_readers()
    assert (whole_readers, incremental_readers) == (False, True)
    guard = StreamGuard(GuardChecks(answer, tool_call), mode="guard", window_chars=pipeline.window_chars(),
                        max_buffer_bytes=1 << 24, whole_readers=whole_readers, incremental_readers=incremental_readers)
    released = b""
    try:
        for start in range(0, len(text), chunk):
            piece = text[start : start + chunk]
            released += await guard.push(piece.encode(), [TextDelta(piece)])
        released += await guard.finish()
    except StreamBlocked as blocked:
        return released.decode(), blocked.decision.details
    return released.decode(), None


CASES = {
    "inline image": FILLER * 20 + f"![chart]({BAD}) " + FILLER,
    "reference image defined far below": f"See ![chart][fig1] below. {FILLER * 60}\n[fig1]: {BAD}\n" + FILLER,
    "reference image defined far above": f"[fig1]: {BAD}\n{FILLER * 60} Here: ![chart][fig1] " + FILLER * 3,
    "image whose alt text began long before": FILLER * 5 + "![" + "a long alt text " * 100 + f"]({BAD}) " + FILLER,
}


@pytest.mark.parametrize("chunk", [7, 64, 301])
@pytest.mark.parametrize("case", list(CASES))
async def test_images_to_unlisted_hosts_are_blocked_before_they_are_released(case, chunk):
    text = CASES[case]
    released, blocked = await _stream(text, chunk)
    assert blocked is not None and "image from a host not allow-listed" in blocked
    assert text.startswith(released)
    image_at = text.index("![chart][fig1]") if "far above" in case else text.rindex(BAD)
    assert len(released) <= image_at


@pytest.mark.parametrize("chunk", [7, 64, 301])
async def test_links_are_only_logged_and_the_answer_goes_out_whole(chunk):
    text = FILLER * 10 + "[docs](https://docs.example.com/guide) and ![logo](https://example.com/logo.png) " + FILLER
    released, blocked = await _stream(text, chunk)
    assert blocked is None and released == text


async def test_a_long_answer_with_many_urls_is_read_in_linear_time(monkeypatch):
    read = []

    def counting_find_urls(text, *, complete=True):
        read.append(len(text))
        return find_urls(text, complete=complete)

    find_urls = egress.find_urls
    monkeypatch.setattr(egress, "find_urls", counting_find_urls)

    def answer(links: int) -> str:
        return "".join(f"See [page {n}](https://site{n % 50}.example.org/p/{n}) now. " for n in range(links))

    read.clear()
    await _stream(answer(200), 20)
    short = sum(read)
    read.clear()
    await _stream(answer(800), 20)
    long = sum(read)
    assert long < 5 * short  # four times the answer, about four times the reading (not sixteen)


@pytest.mark.parametrize("chunk", [7, 64, 301])
async def test_a_link_whose_target_runs_on_with_spaces_is_blocked_before_it_closes(chunk):
    link = "[details](https://collect.sink-box.dev/l?q=The user asked about moving their pension to Lisbon)"
    text = FILLER * 10 + link + " " + FILLER
    released, blocked = await _stream(text, chunk)
    assert blocked is not None and "encoded data in a URL" in blocked
    assert text.startswith(released) and len(released) < text.index(link) + len(link)
