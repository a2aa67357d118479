"""Compact phrase automata for the injection signatures: the same matches, in the same order, as a
character Aho-Corasick automaton of the same keys (`pyahocorasick`), in a fraction of the memory.

Some 50,000 signature phrases expand from the signature file; as characters their automata held about
950,000 nodes (45 MiB in every worker). Two shapes of key allow smaller ones:

- `WordPhrases`: keys are whole words (`" ignore all previous instructions "`), matched in a text
  of words separated by single spaces. Every known word becomes a symbol of two characters, so the
  automaton runs over words: about 100,000 nodes for the same keys. Two characters, not one: a
  node's next character is looked for among its children one by one, and with a character per
  word the root would have one child per word (a word no key holds scanned all 855 of them);
  the first character of a symbol is one of `_ROW` values, the second one of `_ROW` others, so
  a key can only match from the start of a symbol.
- `SquashedPhrases`: keys are long (at least `prefix_chars` characters). The automaton holds only
  their first `prefix_chars` characters; a hit is confirmed by comparing the keys that start so.
- `PrefixPhrases`: the same for keys of any length (the raw phrases in scripts without spaces,
  Chinese, Japanese, Korean: some 12,000 keys, 190,000 characters, 1,000 distinct 4-character starts).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import ahocorasick

__all__ = ["PrefixPhrases", "SquashedPhrases", "WordPhrases"]

_ROW = 64
_FIRST = 0x100  # first characters: 0x100 up to 0x1FF
_SECOND = 0x200  # second characters: 0x200 up to 0x23F
_UNKNOWN = "\x00\x00"  # any word no key holds (two characters, as every symbol)


class WordPhrases:
    """Keys `" w1 w2 … "` found in `" t1 t2 … "` texts, yielded as `(end, (length, value))` with
    `end` the index of the key's closing space and `length` the key's, in `ahocorasick`'s order."""

    def __init__(self) -> None:
        self._symbols: dict[str, str] = {}
        # One (word count, value) pair per distinct pair: many keys share one.
        self._pairs: dict[tuple[int, int], tuple[int, Any]] = {}
        self._automaton = ahocorasick.Automaton()

    def add_word(self, key: str, value: Any, anchors: set[str] | None = None) -> None:
        """Add `key`; with `anchors`, also put one of its words there (its longest): a text none of
        whose words is in `anchors` holds none of the keys so added."""
        words = key.split()
        if anchors is not None:
            anchors.add(max(words, key=len))
        pair = self._pairs.setdefault((len(words), id(value)), (len(words), value))
        symbols = self._symbols  # the shipped file adds a few hundred thousand keys: no call per known word
        self._automaton.add_word(
            "".join([symbols[word] if word in symbols else self._symbol(word) for word in words]), pair)

    def _symbol(self, word: str) -> str:
        symbol = self._symbols.get(word)
        if symbol is None:
            row, column = divmod(len(self._symbols), _ROW)
            if _FIRST + row >= _SECOND:
                raise ValueError("too many distinct words in phrase keys")
            symbol = self._symbols[word] = chr(_FIRST + row) + chr(_SECOND + column)
        return symbol

    def make_automaton(self) -> None:
        self._automaton.make_automaton()
        self._pairs = {}

    def __len__(self) -> int:
        return len(self._automaton)

    def iter(self, padded: str, words: list[str] | None = None) -> Iterator[tuple[int, tuple[int, Any]]]:
        """Matches in `padded` (words between single spaces, with a space at each end); `words`, when
        given, are its words (`padded[1:-1].split(" ")`) split already."""
        if words is None:
            words = padded[1:-1].split(" ")
        symbols = self._symbols
        encoded = "".join(map(symbols.get, words, itertools.repeat(_UNKNOWN)))
        lengths: list[int] | None = None
        for last, (count, value) in self._automaton.iter(encoded):
            index = last // 2  # the word whose symbol ends there
            if lengths is None:
                # The letters of words 0..k, so word k's closing space in `padded` is at
                # lengths[k + 1] + k + 1 (the opening space: word -1's, at 0).
                lengths = [0, *itertools.accumulate(map(len, words))]
            end = lengths[index + 1] + index + 1
            first = index + 1 - count
            yield end, (end - (lengths[first] + first) + 1, value)


class PrefixPhrases:
    """Keys found anywhere in a text, yielded as `(end, (length, value))` (`end` the index of the
    key's last character) in `ahocorasick`'s order: by end, the longest key first.

    The automaton holds only the first `prefix_chars` characters of each key (a shorter key whole);
    a hit is confirmed by comparing the keys that start so. Thousands of keys sharing a few
    hundred prefixes then take a few thousand nodes instead of one node per character."""

    def __init__(self, prefix_chars: int) -> None:
        self._prefix_chars = prefix_chars
        self._keys: dict[str, Any] = {}
        self._count = 0
        self._automaton = ahocorasick.Automaton()

    def add_word(self, key: str, value: Any) -> None:
        if not key:
            raise ValueError("a phrase key cannot be empty")
        self._keys[key] = value

    def make_automaton(self) -> None:
        by_prefix: dict[str, list[tuple[str, Any]]] = {}
        for key, value in self._keys.items():
            by_prefix.setdefault(key[: self._prefix_chars], []).append((key, value))
        self._keys = {}
        for prefix, entries in by_prefix.items():
            entries.sort(key=lambda entry: -len(entry[0]))
            # One tuple per prefix: (prefix length, the keys' rests after the prefix end to end, then
            # rest length and value of each key). Tens of thousands of key strings would cost their
            # object headers and pin the arenas of the temporaries they were built among.
            rests = "".join(key[len(prefix):] for key, _ in entries)
            lengths_values = itertools.chain.from_iterable((len(key) - len(prefix), value) for key, value in entries)
            self._automaton.add_word(prefix, (len(prefix), rests, *lengths_values))
            self._count += len(entries)
        self._automaton.make_automaton()

    def __len__(self) -> int:
        """Keys held: compiled, and added since (as a character automaton counts them)."""
        return self._count + len(self._keys)

    def iter(self, text: str) -> Iterator[tuple[int, tuple[int, Any]]]:
        found: list[tuple[int, int, Any]] = []
        for prefix_end, entries in self._automaton.iter(text):
            prefix_length, rests = entries[0], entries[1]
            start = prefix_end - prefix_length + 1
            offset = 0
            for index in range(2, len(entries), 2):
                rest_length = entries[index]
                if not rest_length or text.startswith(rests[offset:offset + rest_length], prefix_end + 1):
                    length = prefix_length + rest_length
                    found.append((start + length - 1, -length, entries[index + 1]))
                offset += rest_length
        if len(found) > 1:
            found.sort(key=lambda item: (item[0], item[1]))
        for end, negative_length, value in found:
            yield end, (-negative_length, value)


class SquashedPhrases(PrefixPhrases):
    """`PrefixPhrases` whose keys are all long (at least `prefix_chars` characters): the squashed
    view's keys, whose prefixes are a fixed number of characters."""

    def add_word(self, key: str, value: Any) -> None:
        if len(key) < self._prefix_chars:
            raise ValueError(f"a squashed key needs at least {self._prefix_chars} characters: {key!r}")
        super().add_word(key, value)
