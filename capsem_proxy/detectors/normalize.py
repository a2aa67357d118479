"""Text normalisation against obfuscation, for detectors that match phrases.

Attackers hide instructions from filters with look-alike letters (Cyrillic `\\u043e` for `o`),
invisible characters, full-width or "mathematical" letters, letter spacing (`i g n o r e`),
light leetspeak (`1gn0r3`) and encodings (base64, hex, rot13). `normalize` undoes the
character-level tricks while remembering, for every character it produces, where it came
from in the original text, so findings still point at the caller's own characters.
`encoded_payloads` finds and decodes embedded base64 / hex payloads so they can be scanned too.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import itertools
import operator
import re
import unicodedata
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

from capsem_proxy.detectors.confusables import LATIN_LOOKALIKES
from capsem_proxy.linear_regex import compile_linear

__all__ = ["BIDI_CONTROLS", "DecodedPayload", "NormalizedText", "encoded_payloads", "normalize", "rot13"]

# Look-alikes of Latin letters that NFKD keeps (Cyrillic, Greek, small capitals...).
_CONFUSABLES = str.maketrans(LATIN_LOOKALIKES)
# Digits and symbols read as letters inside words ("1gn0r3", "p@ss").
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "@": "a", "$": "s"})
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_ROT13 = {code: chr(code) for code in range(128)} | str.maketrans(
    _LOWER + _LOWER.upper(), _LOWER[13:] + _LOWER[:13] + _LOWER.upper()[13:] + _LOWER.upper()[:13])
# Format characters kept on purpose: none. Everything in Unicode category Cf (zero-width space
# and joiners, bidi controls, soft hyphen, word joiner, BOM, tag characters) is invisible.
_EXTRA_INVISIBLE = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180e\u3164\uffa0")
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
_TAG_BASE = 0xE0000
_WORD = re.compile(r"[^\W_]+")
_ASCII_RUN_OR_CHAR = re.compile(r"[\x00-\x7f]+|.", re.DOTALL)
_LEET_INSIDE = re.compile(r"(?<=[a-z0-9])[@$](?=[a-z0-9])")
_HAS_LETTER = re.compile(r"[a-z]")
_HAS_LEET_DIGIT = re.compile(r"[0134578]")
# Three or more one-letter words in a row in the words view (a superset of the runs `normalize`
# re-joins: a letter here is any word character but a digit or `_`, isalpha() is checked after).
_SPACED_LETTERS = re.compile(r"(?<!\S)[^\W\d_](?: [^\W\d_]){2,}(?!\S)")
# The same two things on ASCII text, where a word character but `_` is a letter or a digit: every
# other character read as a blank (so `str.split` gives the words `_WORD` finds), and three
# one-letter words in a row in the words view padded with a space at each end. Both are many times
# faster than the Unicode patterns they stand for, on the usual (ASCII) text.
# As bytes: `bytes.translate` reads a 256-byte table, where `str.translate` looks each character up
# in a mapping (one missing from it raising and clearing a KeyError inside): a third of the cost of
# normalising a short prompt, with the encoding and decoding around it.
_ASCII_NON_WORD = bytes(code if chr(code).isalnum() and code < 128 else 32 for code in range(256))
_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
_ASCII_SPACED_LETTERS = re.compile(r" [A-Za-z] [A-Za-z] [A-Za-z] ")


@dataclass(frozen=True, slots=True)
class _WordIndex:
    """Where each word of a words view starts in it, its length, and (when every word is one
    match of `_WORD`) where it starts in the folded text."""

    starts: list[int]
    lengths: list[int]
    folded_starts: list[int]


# Not frozen: a frozen dataclass sets each of its eleven fields through object.__setattr__, a
# third of the cost of normalising a short prompt. Nothing changes one once made.
@dataclass(slots=True)
class NormalizedText:
    """Normalised views of one text, each with a way back to the original's indices.

    `folded` keeps punctuation and line breaks (for delimiter and role-marker patterns);
    `words` is the letters and digits of `folded` as single-space separated lowercase words,
    with spaced-out letters re-joined; `squashed` is `words` without spaces (for phrases
    split by odd spacing). `invisible`, `bidi` and `tags` count removed invisible characters,
    bidi controls and Unicode tag characters (decoded as ASCII: "ASCII smuggling").
    """

    source: str
    folded: str
    words: str
    squashed: str
    invisible: int
    bidi: int
    tags: int
    # Index in `source` of each character of `folded` (None when folding kept every character in place).
    folded_origins: list[int] | None
    # Index in `folded` of each letter of each word of `words` (a range for a word read as written);
    # None when every word is one match of `_WORD` in `folded`: then built when first asked for.
    spaced_letters: list[Sequence[int]] | None = None
    _lazy: dict[str, _WordIndex] = field(default_factory=dict, compare=False, repr=False)
    _split: list[str] | None = field(default=None, compare=False, repr=False)

    def word_list(self) -> list[str]:
        """`words` split at its spaces (empty for no words), split once for every reader of the text.
        The list is shared: read it, never change it."""
        split = self._split
        if split is None:
            split = self._split = self.words.split(" ") if self.words else []
        return split

    def _index(self) -> _WordIndex:
        index = self._lazy.get("index")
        if index is None:
            lengths = list(map(len, self.words.split(" "))) if self.words else []
            # Word k starts after the letters of the words before it and k spaces.
            starts = list(map(operator.add, itertools.accumulate(lengths, initial=0), range(len(lengths))))
            word = _ASCII_WORD if self.folded.isascii() else _WORD
            folded_starts = (
                [match.start() for match in word.finditer(self.folded)] if self.spaced_letters is None else []
            )
            index = self._lazy["index"] = _WordIndex(starts, lengths, folded_starts)
        return index

    def words_origin(self, position: int) -> int:
        """Index in `folded` of character `position` of `words` (a space: just after its word)."""
        index = self._index()
        word = bisect.bisect_right(index.starts, position) - 1
        offset = position - index.starts[word]
        length = index.lengths[word]
        if self.spaced_letters is None:
            return index.folded_starts[word] + min(offset, length)
        letters = self.spaced_letters[word]
        return letters[offset] if offset < length else letters[-1] + 1

    def squashed_origin(self, position: int) -> int:
        """Index in `folded` of character `position` of `squashed`."""
        starts = self._index().starts
        # Word k starts at starts[k] - k in `squashed` (no spaces): find it as in `words`.
        low, high = 0, len(starts)
        while low < high:
            middle = (low + high) // 2
            if starts[middle] - middle <= position:
                low = middle + 1
            else:
                high = middle
        word = low - 1
        return self.words_origin(starts[word] + position - (starts[word] - word))

    @property
    def words_origins(self) -> list[int]:
        """`words_origin` of every character of `words`."""
        return [self.words_origin(position) for position in range(len(self.words))]

    @property
    def squashed_origins(self) -> list[int]:
        """`squashed_origin` of every character of `squashed`."""
        return [self.squashed_origin(position) for position in range(len(self.squashed))]

    def folded_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that `folded[start:end]` came from."""
        origins = self.folded_origins
        if origins is None:
            return start, end
        if not origins or end <= start:
            return 0, 0
        return origins[start], origins[end - 1] + 1

    def words_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that `words[start:end]` came from."""
        if end <= start or not self.words:
            return 0, 0
        return self.folded_span(self.words_origin(start), self.words_origin(end - 1) + 1)

    def squashed_span(self, start: int, end: int) -> tuple[int, int]:
        """The span of the original text that `squashed[start:end]` came from."""
        if end <= start or not self.squashed:
            return 0, 0
        return self.folded_span(self.squashed_origin(start), self.squashed_origin(end - 1) + 1)


@lru_cache(maxsize=8192)
def _fold_char(char: str) -> str:
    """One non-ASCII character folded: compatibility-decomposed, marks dropped, case-folded,
    look-alikes mapped to Latin. Empty for invisible characters."""
    if char in _EXTRA_INVISIBLE or unicodedata.category(char) == "Cf":
        return ""
    decomposed = unicodedata.normalize("NFKD", char)
    kept = "".join(part for part in decomposed if not unicodedata.combining(part))
    return kept.casefold().translate(_CONFUSABLES)


def _fold(text: str) -> tuple[str, list[int] | None, int, int, int]:
    if text.isascii():
        return text.lower(), None, 0, 0, 0
    pieces: list[str] = []
    origins: list[int] = []
    invisible = bidi = tags = 0
    # ASCII runs are folded whole (lower() keeps their length); only other characters one by one.
    for match in _ASCII_RUN_OR_CHAR.finditer(text):
        start, chunk = match.start(), match.group()
        if chunk.isascii():
            pieces.append(chunk.lower())
            origins.extend(range(start, start + len(chunk)))
            continue
        code = ord(chunk)
        if _TAG_BASE + 0x20 <= code <= _TAG_BASE + 0x7E:
            tags += 1
            pieces.append(chr(code - _TAG_BASE).lower())
            origins.append(start)
            continue
        folded = _fold_char(chunk)
        if not folded:
            invisible += 1
            bidi += chunk in BIDI_CONTROLS
            continue
        pieces.append(folded)
        origins.extend([start] * len(folded))
    return "".join(pieces), origins, invisible, bidi, tags


def _leet_word(word: str) -> str:
    if _HAS_LEET_DIGIT.search(word) and _HAS_LETTER.search(word):
        return word.translate(_LEET)
    return word


def normalize(text: str) -> NormalizedText:
    """Fold `text` into the views detectors match against (see NormalizedText)."""
    folded, folded_origins, invisible, bidi, tags = _fold(text)
    if "@" in folded or "$" in folded:
        folded = _LEET_INSIDE.sub(lambda match: "a" if match.group() == "@" else "s", folded)
    found = (folded.encode("ascii").translate(_ASCII_NON_WORD).decode("ascii").split() if folded.isascii()
             else _WORD.findall(folded))
    if _HAS_LEET_DIGIT.search(folded) is None:  # no word can hold a leet digit: words as they are
        parts = found
    else:
        # Only a word with a digit can change (letters-only words, most of them, are kept as they are).
        parts = [word if word.isalpha() else _leet_word(word) for word in found]
    words = " ".join(parts)
    if not _has_spaced_letters(words):
        # The usual text: every word is one match of `_WORD` as written (leet letters keep their places).
        # Positional: keywords cost a dictionary per call (the fields in order: source, folded, words,
        # squashed, invisible, bidi, tags, folded_origins).
        return NormalizedText(text, folded, words, "".join(parts), invisible, bidi, tags, folded_origins)
    tokens = [(match.start(), part) for match, part in zip(_WORD.finditer(folded), parts, strict=True)]
    words_parts: list[str] = []
    word_letters: list[Sequence[int]] = []
    index = 0
    count = len(tokens)
    while index < count:
        start, word = tokens[index]
        if len(word) != 1:  # the usual case: a word of several characters
            words_parts.append(word)
            word_letters.append(range(start, start + len(word)))
            index += 1
            continue
        # Three or more single letters in a row are words written with gaps ("i g n o r e").
        run_end = index
        while run_end < count and len(tokens[run_end][1]) == 1 and tokens[run_end][1].isalpha():
            run_end += 1
        if run_end - index >= 3:
            for letters in _spaced_words(tokens[index:run_end]):
                words_parts.append("".join(letter for _, letter in letters))
                word_letters.append([start for start, _ in letters])
            index = run_end
            continue
        words_parts.append(word)
        word_letters.append(range(start, start + len(word)))
        index += 1
    return NormalizedText(
        source=text, folded=folded, words=" ".join(words_parts), squashed="".join(words_parts), invisible=invisible,
        bidi=bidi, tags=tags, folded_origins=folded_origins, spaced_letters=word_letters,
    )


def _has_spaced_letters(words: str) -> bool:
    """True when the words view holds three one-letter words in a row (`_SPACED_LETTERS`)."""
    if words.isascii():
        return _ASCII_SPACED_LETTERS.search(f" {words} ") is not None
    return _SPACED_LETTERS.search(words) is not None


def _spaced_words(run: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Single letters grouped back into words: a gap wider than the narrowest one separates words."""
    narrowest = min(current[0] - previous[0] for previous, current in pairwise(run))
    words: list[list[tuple[int, str]]] = [[run[0]]]
    for previous, current in pairwise(run):
        if current[0] - previous[0] > narrowest:
            words.append([current])
        else:
            words[-1].append(current)
    return words


def rot13(text: str) -> str:
    """`text` with ASCII letters rotated by 13 (rot13 is its own inverse)."""
    return text.translate(_ROT13)


@dataclass(frozen=True, slots=True)
class DecodedPayload:
    """Readable text decoded from an encoded run found at `source[start:end]`."""

    encoding: str
    start: int
    end: int
    text: str


_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RUN = re.compile(r"(?:(?:\\x|0x)?[0-9a-fA-F]{2}[ :,]?){8,}")
# Whether a hex run is there at all, asked of RE2 first: on prose (its many a-f letters) `re`
# tries the pattern at almost every position, some 5 µs per 100 characters.
_ANY_HEX_RUN = compile_linear(_HEX_RUN.pattern)
# What a hex run is made of, 16 characters or more of it: a text without such a stretch has none,
# and this one character class is cheaper to ask of a short text than a call into RE2.
_HEX_RUN_CHARS = re.compile(r"[0-9a-fA-Fx\\ :,]{16}")
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]{2}")
# A run of URL-encoded text: at least four %XX escapes among URL characters, no whitespace.
_PERCENT_RUN = re.compile(r"[A-Za-z0-9%+._~-]*(?:%[0-9A-Fa-f]{2}[A-Za-z0-9+._~-]*){4,}")


def _readable(raw: bytes) -> str | None:
    """`raw` as text when it reads like language (mostly letters and spaces), else None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 8 or not all(char.isprintable() or char in "\n\r\t" for char in text):
        return None
    letters = sum(c.isalpha() for c in text)
    spaces = text.count(" ")
    if letters < 0.6 * len(text) or spaces == 0:
        return None
    return text


def encoded_payloads(text: str, limit: int = 16) -> list[DecodedPayload]:
    """Base64, URL-encoded and hex runs in `text` that decode to readable text (at most `limit`)."""
    found: list[DecodedPayload] = []
    for match in _BASE64_RUN.finditer(text):
        run = match.group()
        # Plain words and identifiers also match the alphabet; real payloads mix cases and digits.
        if run.isalpha() and (run.islower() or run.isupper()):
            continue
        body = run.rstrip("=")
        standard = body.replace("-", "+").replace("_", "/")
        padded = standard + "=" * (-len(standard) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = _readable(raw)
        if decoded is not None:
            found.append(DecodedPayload("base64", match.start(), match.end(), decoded))
            if len(found) >= limit:
                return found
    if "%" in text:
        for match in _PERCENT_RUN.finditer(text):
            decoded = _readable(urllib.parse.unquote_to_bytes(match.group().replace("+", " ")))
            if decoded is not None:
                found.append(DecodedPayload("url-encoded", match.start(), match.end(), decoded))
                if len(found) >= limit:
                    return found
    hex_run = _HEX_RUN_CHARS.search(text) is not None and _ANY_HEX_RUN.found_in(text)
    for match in _HEX_RUN.finditer(text) if hex_run else ():
        digits = "".join(_HEX_DIGITS.findall(match.group().replace("\\x", " ").replace("0x", " ")))
        if len(digits) < 16:
            continue
        try:
            raw = bytes.fromhex(digits)
        except ValueError:
            continue
        decoded = _readable(raw)
        if decoded is not None:
            found.append(DecodedPayload("hex", match.start(), match.end(), decoded))
            if len(found) >= limit:
                break
    return found
