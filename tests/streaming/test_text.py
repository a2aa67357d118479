"""GrowingText: reads by the end cost what they return, the whole text is built once per growth."""

from __future__ import annotations

import random

from capsem_proxy.streaming.text import GrowingText


def test_every_slice_equals_the_joined_text_s():
    rng = random.Random(3)
    text, reference = GrowingText(), ""
    for _ in range(2000):
        piece = "".join(rng.choice("abc\n") for _ in range(rng.randint(0, 6)))
        text.append(piece)
        reference += piece
        start = rng.randint(0, len(reference))
        end = rng.randint(start, len(reference) + 3)
        assert text.slice(start, end) == reference[start:end]
        assert text.since(start) == reference[start:]
        if rng.random() < 0.05:
            assert text.value() == reference
    assert len(text) == len(reference) and text.value() == reference


def test_reading_the_end_of_a_long_text_touches_few_pieces():
    text = GrowingText()
    for _ in range(100_000):
        text.append("0123456789")
    assert len(text._pieces) < 100_000 / 50  # merged as they come
    assert text.since(len(text) - 15) == "567890123456789"
