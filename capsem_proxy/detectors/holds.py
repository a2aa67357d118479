"""Where, at the end of a growing text, a finding could still be in progress.

A streamed answer is released as soon as it has been checked, except from the point where more
text could still turn what is there into a finding (or make a finding longer): the last word,
which may be the start of a key, an e-mail address or a URL; a run of digit groups, which may
become a phone or card number; a PEM block without its end line. Each text detector says where
that point is for what it looks for (`hold_from`); the stream guard holds from the earliest.

Every hold is conservative: when in doubt it starts earlier. Whitespace means the ASCII blanks
only, so any other character (a no-break space, a zero-width joiner) counts as part of the word
around it. Reads are bounded: a word longer than `HOLD_READ_CHARS` is held from the start of
what was read, which is the whole unapproved text.
"""

from __future__ import annotations

import re

__all__ = [
    "HOLD_READ_CHARS",
    "digit_run_hold",
    "has_digit",
    "last_line_hold",
    "pem_hold",
    "word_hold",
]

# How far back from the end a hold is looked for; the unapproved text before that is held.
HOLD_READ_CHARS = 4096
_BLANKS = (" ", "\n", "\t", "\r", "\f", "\v")
_LAST_DIGIT = re.compile(r"\d\D*\Z")
_A_DIGIT = re.compile(r"\d")
_ASCII_DIGITS = b"0123456789"
# Blanks inside a number written in groups (never a line break: no number found spans one).
_GROUP_BLANKS = " \t\u00a0\u2007\u202f"
# Words that may stand between the digit groups of a phone number (an extension).
_NUMBER_WORDS = frozenset({"x", "ext", "ext.", "extension"})


# A blank other than a space, and no such blank after it up to the end.
_LAST_OTHER_BLANK = re.compile(r"[\n\t\r\f\v][^\n\t\r\f\v]*\Z")
# The last word of the text the guard asked about last: every detector that holds from the last
# word asks about the same text in turn (a str is immutable: the same object has the same answer).
_last_word: tuple[str, int] = ("", 0)


def has_digit(text: str) -> bool:
    """Whether `text` holds a digit (what `\\d` matches). In an ASCII text only the ten ASCII
    digits are; deleting them from its bytes and comparing the lengths costs a fraction of a
    pattern's scan of its characters."""
    if text.isascii():
        return len(text.encode().translate(None, _ASCII_DIGITS)) != len(text)
    return _A_DIGIT.search(text) is not None


def _read_from(text: str) -> int:
    low = len(text) - HOLD_READ_CHARS
    return low if low > 0 else 0


def _word_start(text: str, low: int, end: int) -> int:
    """Start of the word that ends at `end` (after the last blank before it), at least `low`."""
    # Spaces are by far the most common blank: the others are looked for after the last one only.
    start = text.rfind(" ", low, end) + 1 or low
    other = _LAST_OTHER_BLANK.search(text, start, end)
    return start if other is None else other.start() + 1


def _last_word_start(text: str) -> int:
    global _last_word
    cached = _last_word
    if cached[0] is text:
        return cached[1]
    start = _word_start(text, _read_from(text), len(text))
    _last_word = (text, start)
    return start


def word_hold(text: str, *, joined_by: str = "") -> int:
    """Start of the last word of `text` (its length when it ends in a blank): a key, an e-mail
    address or a URL runs until a blank. A word ending in a character of `joined_by` followed by
    spaces or tabs is read as one word with the next (`AccountName=x; AccountKey=y`)."""
    start = _last_word_start(text)
    if not joined_by:
        return start
    low = _read_from(text)
    while start > low:
        before = start
        while before > low and text[before - 1] in " \t":
            before -= 1
        if before in (low, start) or text[before - 1] not in joined_by:
            break
        start = _word_start(text, low, before)
    return start


def digit_run_hold(text: str, context_after: int) -> int:
    """Start of the run of digit groups that ends within `context_after` characters of the end of
    `text` (its length when there is none): `+44 20 7946`, `4111 1111`, `GB82 WEST 1234` may
    still grow into a number, and a cue word after a number (`… is my SSN`) may still make it one."""
    low = _read_from(text)
    tail = len(text) - context_after - 1
    if tail < low:
        tail = low
    # Most texts end without a digit in reach: told at once, without the pattern's scan.
    if not has_digit(text[tail:] if tail else text):
        return len(text)
    match = _LAST_DIGIT.search(text, tail)
    if match is None:
        return len(text)
    end = match.start() + 1
    start = _word_start(text, low, end)
    while start > low:
        before = start
        while before > low and text[before - 1] in _GROUP_BLANKS:
            before -= 1
        if before == low:
            return low
        if before == start:
            break  # a line break (or the start of what was read) ends the run
        previous = _word_start(text, low, before)
        word = text[previous:before]
        if not (_numbery(word) or word.lower() in _NUMBER_WORDS):
            break
        start = previous
    return start


def _numbery(word: str) -> bool:
    """A digit group, or what an account number writes between them (`WEST` in an IBAN)."""
    return any(char.isdigit() for char in word) or (len(word) <= 4 and word.isalnum() and word.isupper())


def pem_hold(text: str, opening: str, closing: re.Pattern[str]) -> int:
    """Where the last `opening` marker without a whole `closing` marker after it starts (a PEM
    block whose end line has not come yet), else the length of `text`."""
    low = _read_from(text)
    opened = text.rfind(opening, low)
    if opened == -1 or closing.search(text, opened) is not None:
        return len(text)
    return opened


def last_line_hold(text: str, pattern: re.Pattern[str], every_match_holds: str = "") -> int:
    """Where `pattern` first matches in the last line of `text` (what it starts runs to the line's
    end, blanks included: a `javascript:` target), else the length of `text`. A line without
    `every_match_holds` (a literal in every match) is not searched."""
    low = _read_from(text)
    if every_match_holds and text.find(every_match_holds, low) == -1:
        return len(text)  # not in what is read, so not in its last line either
    line = max(text.rfind("\n", low), text.rfind("\r", low), low - 1) + 1
    if every_match_holds and text.find(every_match_holds, line) == -1:
        return len(text)
    match = pattern.search(text, line)
    return len(text) if match is None else match.start()
