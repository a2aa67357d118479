"""The loosened prefilters RE2 runs over long texts match wherever the prefilters do."""

from __future__ import annotations

import random
import re
import re._constants as _sre  # type: ignore[import-not-found]
import re._parser as _sre_parse  # type: ignore[import-not-found]
from typing import Any

import pytest

from capsem_proxy.detectors.pii import _CONTEXT_KINDS_WITH_A_DIGIT, _ENTITIES, _LOOSENED, PIIDetector
from capsem_proxy.linear_regex import compile_linear

_PIECES = [
    "0", "1", "4", "5", "7", "9", "12", "345", "4111", "\u0663", "\uff13", "\u0a6d", " ", "-", ".", "(", "+", ":",
    "@", "x", "ext", "a", "b", "e", "l", "m", "z", "A", "D", "GB", "R", "S", "K", "\u017f", "\u00e9", "_", "\n",
    "\t", "\u00a0", "mail", "r.s", "8.8.", "10.1", "RSSMRA", "rssmr", "85T", "85\u017f", "10A562S", "10\u212a56",
    "MRT", "\u212a",
]
# Texts each prefilter matches, mutated below (a character replaced by a look-alike or a separator).
_SEEDS = [
    "call +44 20 7946 0958 ext 12", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32", "536-90-4399",
    "912-70-1234", "8.8.4.4", "fe80::1:2", "AB 12 34 56 C", "12345678-Z", "S1234567D", "jane.roe@corp.de",
    "codice RSSMRA85T10A562S.", "mrtmtt25d09f205z",
]
_PREFILTERS = sorted({pattern for entity in _ENTITIES.values() for _, pattern in entity.prefilters})


def test_every_prefilter_has_a_loosened_form() -> None:
    assert set(_PREFILTERS) <= set(_LOOSENED)


@pytest.mark.parametrize("pattern", _PREFILTERS)
def test_a_loosened_prefilter_matches_wherever_the_prefilter_does(pattern: str) -> None:
    original, loosened = re.compile(pattern), compile_linear(_LOOSENED[pattern])
    rng = random.Random(pattern)
    matched = 0
    texts = ["".join(rng.choices(_PIECES, k=rng.randint(1, 24))) for _ in range(3000)]
    for _ in range(3000):
        seed = list(rng.choice(_SEEDS))
        for _ in range(rng.randint(0, 2)):
            seed[rng.randrange(len(seed))] = rng.choice(_PIECES)
        texts.append("".join(seed))
    for text in texts:
        if original.search(text) is not None:
            matched += 1
            assert loosened.found_in(text), (pattern, text)
    assert matched  # the texts do reach every prefilter


def test_long_texts_find_what_short_ones_do() -> None:
    detector = PIIDetector()
    filler = "An ordinary paragraph about a release planned for 2024, version 3, with 12 items. " * 4
    needles = ("call +44 20 7946 0958", "card 4111 1111 1111 1111", "mail jane.roe@corp.de",
               "IBAN GB82WEST12345698765432", "ssn 536-90-4399", "codice fiscale RSSMRA85T10A562S", "host 8.8.4.4",
               "DNI 12345678Z")
    for needle in needles:
        text = filler + needle
        assert len(text) >= 256
        long_kinds = [finding.kind for finding in detector.scan(text)]
        short_kinds = [finding.kind for finding in detector.scan(needle)]
        assert long_kinds and set(short_kinds) <= set(long_kinds), needle


def test_the_loosened_national_id_gate_matches_wherever_the_gate_does() -> None:
    from capsem_proxy.detectors.national_ids import _GATE, _LOOSE_GATE

    rng = random.Random(11)
    seeds = ["123.456.789-09", "7561234567897", "12345678Z", "ABCDE1234F", "X-1234567L", "010190-123A", "4111 1111"]
    matched = 0
    for _ in range(6000):
        if rng.random() < 0.5:
            text = "".join(rng.choices(_PIECES, k=rng.randint(1, 24)))
        else:
            seed = list(rng.choice(seeds))
            for _ in range(rng.randint(0, 2)):
                seed[rng.randrange(len(seed))] = rng.choice(_PIECES)
            text = "".join(seed)
        if _GATE.search(text) is not None:
            matched += 1
            assert _LOOSE_GATE.found_in(text), text
    assert matched


def _every_match_has_a_digit(items: Any) -> bool:
    """True when the parsed pattern `items` (a sequence) cannot match without a digit: one of its
    mandatory parts is a digit class, or a group, repetition or alternation that needs one."""
    for op, value in items:
        if op is _sre.IN and value and all(_digit_member(member) for member in value):
            return True
        if op is _sre.LITERAL and chr(value).isdigit():
            return True
        if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT) and value[0] >= 1 and _every_match_has_a_digit(value[2]):
            return True
        if op is _sre.SUBPATTERN and _every_match_has_a_digit(value[-1]):
            return True
        if op is _sre.BRANCH and all(_every_match_has_a_digit(branch) for branch in value[1]):
            return True
    return False


def _digit_member(member: tuple[Any, Any]) -> bool:
    op, value = member
    if op is _sre.LITERAL:
        return chr(value).isdigit()
    if op is _sre.RANGE:
        return bool(ord("0") <= value[0] <= value[1] <= ord("9"))
    return op is _sre.CATEGORY and value is _sre.CATEGORY_DIGIT


def test_context_kinds_said_to_need_a_digit_do() -> None:
    """A text without a digit skips these kinds and their cue words: every pattern of their
    recognizers must need a digit in every match."""
    for kind in _CONTEXT_KINDS_WITH_A_DIGIT:
        assert _ENTITIES[kind].needs_context
        detector = PIIDetector([kind])
        (active,) = detector._active
        patterns = [pattern[1].pattern for pattern in active.recognizer.patterns]
        assert patterns, kind
        for pattern in patterns:
            assert _every_match_has_a_digit(_sre_parse.parse(pattern)), (kind, pattern)


def test_the_digit_check_tells_digit_patterns_apart() -> None:
    assert _every_match_has_a_digit(_sre_parse.parse(r"\b[1-79]\d{2}([- ])\d{3}\1\d{3}\b"))
    assert _every_match_has_a_digit(_sre_parse.parse(r"(?:a|\d)9"))
    assert not _every_match_has_a_digit(_sre_parse.parse(r"(?:a|\d)x"))
    assert not _every_match_has_a_digit(_sre_parse.parse(r"[A-Z]\d{0,3}"))
    assert not _every_match_has_a_digit(_sre_parse.parse(r"[0-9A-F]{4}"))
