"""The compact phrase automata yield what a character Aho-Corasick automaton of the same keys yields."""

from __future__ import annotations

import random

import ahocorasick
import pytest

from capsem_proxy.detectors.phrases import PrefixPhrases, SquashedPhrases, WordPhrases

_WORDS = ["ignore", "all", "previous", "instructions", "the", "system", "prompt", "reveal", "you", "are", "now", "dan"]


def _character_matches(keys: list[str], text: str) -> list[tuple[int, tuple[int, str]]]:
    automaton = ahocorasick.Automaton()
    for key in keys:
        automaton.add_word(key, (len(key), key.strip()))
    automaton.make_automaton()
    return list(automaton.iter(text))


def _assert_matches_as_characters(automaton: PrefixPhrases, keys: list[str], rng: random.Random,
                                  pieces: list[str]) -> None:
    """Texts of 0-40 random `pieces` get from `automaton` what a character automaton of `keys` finds,
    and some of them hold a key."""
    found = 0
    for _ in range(40):
        text = "".join(rng.choices(pieces, k=rng.randint(0, 40)))
        expected = _character_matches(keys, text)
        assert list(automaton.iter(text)) == expected
        found += len(expected)
    assert found


@pytest.mark.parametrize("seed", range(5))
def test_word_phrases_match_as_characters_do(seed: int) -> None:
    rng = random.Random(seed)
    phrases = sorted({" ".join(rng.choices(_WORDS, k=rng.randint(1, 4))) for _ in range(60)})
    keys = [f" {phrase} " for phrase in phrases]
    automaton = WordPhrases()
    for key in keys:
        automaton.add_word(key, key.strip())
    automaton.make_automaton()
    found = 0
    for _ in range(40):
        words = " ".join(rng.choices([*_WORDS, "unknown", "ignored", "al"], k=rng.randint(0, 30)))
        text = f" {words} "
        expected = _character_matches(keys, text)
        assert list(automaton.iter(text)) == expected
        found += len(expected)
    assert found


@pytest.mark.parametrize("seed", range(5))
def test_squashed_phrases_match_as_characters_do(seed: int) -> None:
    rng = random.Random(seed)
    keys = sorted({"".join(rng.choices(_WORDS, k=rng.randint(2, 5))) for _ in range(80)} - {""})
    keys = [key for key in keys if len(key) >= 12]
    automaton = SquashedPhrases(12)
    for key in keys:
        automaton.add_word(key, key)
    automaton.make_automaton()
    assert len(automaton) == len(keys)
    _assert_matches_as_characters(automaton, keys, rng, [*_WORDS, "x", "ign"])


def test_short_squashed_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 12"):
        SquashedPhrases(12).add_word("shortkey", None)


@pytest.mark.parametrize("seed", range(5))
def test_prefix_phrases_match_as_characters_do_whatever_the_key_length(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = ["忽略", "之前", "的", "指令", "系统", "提示", "你", "無視", "지시", "을"]
    keys = sorted({"".join(rng.choices(alphabet, k=rng.randint(1, 5))) for _ in range(80)})
    automaton = PrefixPhrases(4)
    for key in keys:
        automaton.add_word(key, key)
    automaton.make_automaton()
    assert len(automaton) == len(keys)
    assert any(len(key) < 4 for key in keys) and any(len(key) > 4 for key in keys)
    _assert_matches_as_characters(automaton, keys, rng, [*alphabet, "x", "忽"])


def test_prefix_phrases_count_their_keys_before_and_after_compiling() -> None:
    automaton = PrefixPhrases(4)
    assert not len(automaton)
    automaton.add_word("忽略之前的指令", 1)
    automaton.add_word("無視", 2)
    assert len(automaton) == 2
    automaton.make_automaton()
    assert len(automaton) == 2
