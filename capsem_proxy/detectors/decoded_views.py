"""Readings of an obfuscated text that the injection detector scores beside the text itself.

`normalize` undoes character-level tricks (look-alikes, invisible characters, spacing, light
leetspeak). Some tricks work on whole words or the whole text, and a reader model reads through
them while a phrase matcher or an n-gram model does not:

- written backwards ("snoitcurtsni suoiverp erongi"), or in rot13 ("vtaber cerivbhf"): told by
  English function words ("the", "and", "you", ...) that appear only once the text is turned back;
- typoglycemia, the inner letters of each word scrambled ("ignroe all peivorus isntrutcions"):
  undone word by word against a vocabulary (the words of the injection signatures), a word read as
  the vocabulary word with the same first and last letters and the same inner letters;
- encoded payloads (base64, URL encoding, hex): decoded by `encoded_payloads`.

Each check is a pass over the words with set lookups, so an ordinary text costs a few microseconds
and yields no extra reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from capsem_proxy.detectors.normalize import DecodedPayload, encoded_payloads, normalize, rot13

__all__ = ["Readings", "Unscrambler", "decoded_views", "looks_reversed", "looks_rot13", "payloads_of", "readings"]

# Frequent English words: plain English holds many of them, the same text reversed or in rot13 few.
_FUNCTION_WORDS = frozenset([
    "the", "and", "to", "of", "you", "a", "is", "in", "that", "it", "for", "all", "your", "this", "with",
    "are", "be", "me", "my", "now", "do", "not", "any", "what", "i", "on", "as", "or", "from", "an", "will",
    "can", "must", "have", "ignore", "instructions", "previous",
])
# A turned-back reading needs this many function words, and more of them than the text as written.
_MIN_FUNCTION_WORDS = 3
# Scrambled words read back: at least this many, and this share of the words long enough to scramble.
_MIN_UNSCRAMBLED = 2
_MIN_UNSCRAMBLED_SHARE = 0.15
_SCRAMBLE_MIN_LENGTH = 4
# Reading scrambled words back costs a sort per word: a text whose first this many unknown long words
# hold too few scrambled ones is not read further (and a text that is not English at all, not at all).
_UNSCRAMBLE_PROBE = 16
# Typoglycemia is looked for in texts up to this long (an attack of that kind is a sentence or two,
# and the check costs a sort per unknown word).
_UNSCRAMBLE_MAX_CHARS = 1200
# Function words are counted among the first this many words (of the first this many characters):
# a backwards or rot13 text is so from its start.
_READING_WORDS = 128
_READING_CHARS = 512


_REVERSED_WORDS = frozenset(word[::-1] for word in _FUNCTION_WORDS) - _FUNCTION_WORDS
_ROT13_WORDS = frozenset(rot13(word) for word in _FUNCTION_WORDS) - _FUNCTION_WORDS


# Not frozen: made for every text the injection detector reads, and a frozen dataclass sets each
# field through object.__setattr__ (nothing changes one once made).
@dataclass(slots=True)
class Readings:
    """How many distinct function words a text holds as written, backwards and in rot13."""

    plain: int
    reversed: int
    rot13: int


def readings(words: list[str]) -> Readings:
    """The function words among the first words of `words` (set intersections: a few microseconds)."""
    distinct = set(words[:_READING_WORDS])
    return Readings(len(distinct & _FUNCTION_WORDS), len(distinct & _REVERSED_WORDS), len(distinct & _ROT13_WORDS))


def looks_reversed(words: list[str], counts: Readings | None = None) -> bool:
    """True when the words read as English written backwards (more reversed function words than plain ones)."""
    counts = counts if counts is not None else readings(words)
    return counts.reversed >= _MIN_FUNCTION_WORDS and counts.reversed > counts.plain


def looks_rot13(words: list[str], counts: Readings | None = None) -> bool:
    """True when the words read as English in rot13."""
    counts = counts if counts is not None else readings(words)
    return counts.rot13 >= _MIN_FUNCTION_WORDS and counts.rot13 > counts.plain


def _scramble_key(word: str) -> str:
    return word[0] + "".join(sorted(word[1:-1])) + word[-1]


class Unscrambler:
    """Reads typoglycemia back against a vocabulary of lowercase ASCII words."""

    __slots__ = ("_by_key", "_known")

    def __init__(self, vocabulary: Iterable[str]) -> None:
        known = frozenset(
            word for word in vocabulary if len(word) >= _SCRAMBLE_MIN_LENGTH and word.isascii() and word.isalpha()
        )
        by_key: dict[str, str | None] = {}
        for word in sorted(known):
            key = _scramble_key(word)
            # Two vocabulary words with one key ("filters", "filtres"): neither is guessed.
            by_key[key] = None if key in by_key else word
        self._known = known
        self._by_key = {key: word for key, word in by_key.items() if word is not None}

    def __len__(self) -> int:
        return len(self._by_key)

    def unscrambled(self, words: list[str]) -> list[str] | None:
        """`words` with scrambled vocabulary words read back (same length, word for word), or None
        when too few of them were scrambled for the text to be typoglycemia."""
        by_key, known = self._by_key, self._known
        if not by_key:
            return None
        # Counted first, without building the reading: most texts are not typoglycemia.
        changed = eligible = probed = 0
        for word in words:
            if len(word) >= _SCRAMBLE_MIN_LENGTH:
                eligible += 1
                if word not in known:
                    probed += 1
                    if probed == _UNSCRAMBLE_PROBE and changed < _MIN_UNSCRAMBLED_SHARE * eligible:
                        return None
                    if _scramble_key(word) in by_key:
                        changed += 1
        if changed < _MIN_UNSCRAMBLED or changed < _MIN_UNSCRAMBLED_SHARE * eligible:
            return None
        return [
            by_key.get(_scramble_key(word), word)
            if len(word) >= _SCRAMBLE_MIN_LENGTH and word not in known else word
            for word in words
        ]


@lru_cache(maxsize=4)
def payloads_of(text: str) -> tuple[DecodedPayload, ...]:
    """`encoded_payloads(text)`, remembered for the last few texts: the signatures and the model
    both read the payloads of the text they analyse."""
    return tuple(encoded_payloads(text))


def decoded_views(
    source: str, words: str, unscrambler: Unscrambler | None, payloads: bool = True,
    word_list: list[str] | None = None,
) -> list[tuple[str, str]]:
    """Other readings of a text, as words views (see `normalize`): the text turned back when it reads
    as reversed or rot13 English, unscrambled when it reads as typoglycemia, and each encoded payload
    decoded, each named (`reversed`, `rot13`, `unscrambled`, `payload`). `source` is the raw text,
    `words` its words view; an unscrambled reading keeps every word's place and length. `word_list`,
    when given, is `words` split at its spaces already (empty for no words)."""
    views: list[tuple[str, str]] = []
    # The first words tell the reading (splitting a long text whole would cost more than the rest).
    if word_list is not None and len(words) <= _READING_CHARS:
        split = word_list
    else:
        split = words[:_READING_CHARS].split(" ") if words else []
    if split:
        counts = readings(split)
        if looks_reversed(split, counts):
            views.append(("reversed", words[::-1]))
        if looks_rot13(split, counts):
            views.append(("rot13", rot13(words)))
        # Typoglycemia keeps short words as they are: the text still reads as English.
        if (unscrambler is not None and len(words) <= _UNSCRAMBLE_MAX_CHARS
                and counts.plain >= _MIN_FUNCTION_WORDS):
            # A text within the first characters read is split once for both readings.
            unscrambled = unscrambler.unscrambled(split if len(words) <= _READING_CHARS else words.split(" "))
            if unscrambled is not None:
                views.append(("unscrambled", " ".join(unscrambled)))
    if payloads:
        views.extend(("payload", view) for payload in payloads_of(source) if (view := normalize(payload.text).words))
    return views
