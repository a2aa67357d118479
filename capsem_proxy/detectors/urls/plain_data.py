"""Data written out in plain words in a URL: an e-mail address, a card or social security number,
a key of a well-known format, "password is ...", or a sentence (a summary of the conversation,
percent-encoded or joined with `+`), where ordinary URLs hold single words, ids and short search
queries.

Every check is a bounded scan of one component (a query value, a path segment, a fragment): the
expressions have no nested repetition, so their cost is linear in the component's length.
"""

from __future__ import annotations

import re

__all__ = ["path_data", "plain_data", "prose_data"]

_EMAIL = re.compile(r"[\w.+-]{1,64}@[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})*\.[a-z]{2,24}\b", re.IGNORECASE)
# Card numbers written in groups, and US social security numbers (a bare run of digits is an id).
_CARD = re.compile(r"\b\d{4}(?:[ -]\d{4}){3}\b|\b\d{4}[ -]\d{6}[ -]\d{5}\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
# Phone numbers: international (`+44 20 7946 0958`), with an area code in brackets, or NANP groups
# (a date or a version has fewer digits per group).
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{10,15}\b|\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}|"
    r"\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})(?:x\d{1,6})?(?![.-]?\d|[A-Za-z_])"
)
_DIGIT = re.compile(r"\d")
_DIGIT_RUN = re.compile(r"(?<!\d)\d{13,19}(?!\d)")
_IBAN = re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2}[A-Z0-9]{11,30}(?![A-Z0-9])")
_MIN_LINES_WORDS = 4
# Characters of a password that ids, slugs and search words do not hold.
_PASSWORD_SYMBOLS = frozenset("!#$^*()|;'\"<>\\`?&%@")
# Of those, the ones path segments rarely hold (`@user`, `;jsessionid=`, a badge's `#5865F2` and
# titles use the others).
_PATH_PASSWORD_SYMBOLS = frozenset("$^*|<>\\`?&%")
# Keys with a prefix their issuer reserves (the secrets detector knows many more; these are the
# ones an answer is asked to carry out most often).
_KEY = re.compile(
    r"(?<![A-Za-z0-9])(?:AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|sk-(?:proj-|live-|test-|ant-)?[A-Za-z0-9_-]{16,}|"
    r"gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,}|"
    r"glpat-[A-Za-z0-9_-]{16,}|sk_live_[A-Za-z0-9]{16,}|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,})"
)
# A secret named and given: "password is hunter2", "api_key: ...", "pin=1234".
_NAMED_SECRET = re.compile(
    r"(?i)\b(?:pass(?:word|wd|phrase|code)?|pwd|pin|otp|api[ _-]?key|secret|token|ssn|cvv|credentials?)"
    r"(?:\s{1,3}(?:is|was)\s{1,3}|\s{0,3}[:=]\s{0,3})([^\s&]{3,})"
)
# A component that is exactly a phone number in the grouping of any country (`415 555 0132`,
# `06 12 34 56 78`, `+33 6 12 34 56 78`, `0044 20 7946 0321`): nine to fifteen digits in three
# groups or more of at most five set apart by spaces or `-` (dotted runs are versions and
# document ids: `10.1.1.72.9610`), an optional `+` and brackets; not a date
# (`2024-09-30 10 15`) or a book number (`978-3-16-148410-0`).
_WHOLE_PHONE = re.compile(r"\+?\(?\d{1,5}\)?(?:[ -]\(?\d{1,5}\)?){2,7}")
_NOT_PHONE = re.compile(r"(?:19|20)\d\d[ ./-][01]?\d[ ./-]|97[89][ -]?\d{1,5}[ -]\d")
# Words of a sentence about a person or a conversation: a search query rarely holds them.
_ABOUT_SOMEONE = frozenset({
    "user", "user's", "users", "asked", "asks", "said", "says", "told", "wants", "conversation", "chat", "summary",
    "ssn", "secret", "secrets", "diagnosis", "salary",
    "born", "lives", "name:", "address:", "credentials", "discussed", "mentioned", "prompt", "assistant",
})
# Words a sentence holds and a list of terms (a search query, a docs anchor) mostly does not.
_FUNCTION_WORDS = frozenset({
    "the", "a", "an", "is", "are", "was", "and", "to", "of", "in", "on", "for", "with", "about", "my", "his", "her",
    "their", "i", "he", "she", "they", "we", "you", "that", "this", "it", "has", "have", "at", "from",
    "der", "die", "das", "und", "ist", "ein", "eine", "le", "la", "les", "et", "est", "des", "une", "el", "los",
    "las", "y", "es", "de", "que", "un", "il", "e", "di", "o", "do", "da", "em", "het", "een", "en", "ik",
})
# Sentences: this many words at least, more when nothing else marks them as data.
_MIN_MARKED_WORDS = 5
_MIN_WORDS = 10
# So many plain words are a text, whatever they say (a search is a few words; a docs anchor mixes
# words with symbols and dotted names).
_MANY_WORDS = 12
_MIN_SENTENCE_WORDS = 6
# Words a question opens with: a question in a query is what someone searches for, not a statement
# carried out.
_QUESTION_OPENERS = frozenset({
    "what", "how", "why", "who", "whom", "whose", "when", "where", "which", "can", "could", "does", "do", "did",
    "is", "are", "was", "should", "would", "will", "wie", "warum", "wer", "wo", "welche", "welcher", "comment",
    "pourquoi", "quel", "quelle", "qui", "où", "cómo", "qué", "dónde", "cuál", "quién", "come", "perché", "dove",
})
_STATEMENT_VERBS = frozenset({"is", "are", "was", "were", "has", "have", "had", "will", "ist", "sind", "est", "sont",
                              "es", "son", "è", "é"})
_MIN_LETTERS = 20
_MAX_SCANNED = 4096
# The shortest data written out that is counted: a six-character password or e-mail address.
_SHORTEST_DATA = 6
# A rot13 or backwards sentence shows this many function words once turned back.
_MIN_TURNED_FUNCTION_WORDS = 3
_ROT13 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm"
)
_JOINERS = re.compile(r"[_-]+")
_LETTER_BY_DIGIT = re.compile(r"[^\W\d_]\d|\d[^\W\d_]")


def _sentence(words: list[str], *, marked: bool) -> bool:
    lowered = [word.lower().strip(".,;!?\"'()") for word in words]
    if len(words) >= _MIN_WORDS and len(_FUNCTION_WORDS.intersection(lowered)) >= 2:
        return True
    plain_words = sum(word.isalpha() for word in lowered)
    if plain_words >= _MANY_WORDS and plain_words >= 0.8 * len(words):
        return True
    if not marked:
        return False
    # A sentence as written: a capital first, a full stop last (a search or a title has neither).
    if words[0][:1].isupper() and words[-1][-1:] in ".!" and words[-1][:-1].isalpha():
        return True
    # A statement as written (its full stop is often cut with the URL's end): six words, a capital
    # first and a verb such as "is" (a title or a search has a capital but rarely the verb).
    if (len(words) >= _MIN_SENTENCE_WORDS and words[0][:1].isupper() and not _STATEMENT_VERBS.isdisjoint(lowered)
            and sum(word[:1].isupper() for word in words[1:]) <= 1
            and lowered[0] not in _QUESTION_OPENERS and not words[-1].endswith("?")):
        return True
    if any(word in _ABOUT_SOMEONE for word in lowered):
        return True
    return any(word[-1] in ",;:" or (word[-1] == "." and len(word) > 2) for word in words[:-1])


def prose_data(text: str) -> bool:
    """True when `text` (decoded, with spaces) reads as a sentence carrying someone's data rather
    than a search query: ten words, or five with a word about a person or a conversation or with
    punctuation between clauses (ten words need two function words: a list of terms is no
    sentence). A sentence in rot13 or written backwards counts too (told by its function words,
    which only appear once it is turned back)."""
    head = text[:_MAX_SCANNED]
    words = head.split()
    if len(words) < _MIN_MARKED_WORDS or sum(char.isalpha() for char in head) < _MIN_LETTERS:
        return False
    if _sentence(words, marked=True):
        return True
    plain = len(_FUNCTION_WORDS.intersection(word.lower() for word in words))
    for turned in (head.translate(_ROT13), head[::-1]):
        turned_words = turned.split()
        found = len(_FUNCTION_WORDS.intersection(word.lower().strip(".,;!?") for word in turned_words))
        if found >= _MIN_TURNED_FUNCTION_WORDS and found > plain:
            return _sentence(turned_words, marked=True) or len(turned_words) >= _MIN_MARKED_WORDS
    return False


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _bare_card(text: str) -> bool:
    """A card number written without separators: 13 to 19 digits of a card network's range (3 to
    6 first: timestamps and most numeric ids start with 1) with a valid Luhn check digit."""
    return any(match.group()[0] in "3456" and len(set(match.group())) > 2 and _luhn(match.group())
               for match in _DIGIT_RUN.finditer(text))


def _iban(text: str) -> bool:
    """An IBAN (`GB82WEST12345698765432`) whose check digits hold (ISO 13616, mod 97)."""
    for match in _IBAN.finditer(text.upper()):
        value = match.group()
        rearranged = value[4:] + value[:4]
        if int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1:
            return True
    return False


def _whole_phone(text: str) -> bool:
    """`text` is exactly a phone number written in groups (see `_WHOLE_PHONE`)."""
    if not 9 <= len(text) <= 32 or _WHOLE_PHONE.fullmatch(text) is None or _NOT_PHONE.match(text):
        return False
    return 9 <= len(_DIGIT.findall(text)) <= 15


def _password_like(text: str) -> bool:
    """A short run mixing upper- and lower-case letters, symbols ids never hold, and a second such
    symbol or a digit next to a letter (`f7#kd9Q!`): a password, not an id (`dQw4w9WgXcQ`), a word
    (`Hello!`) or a setting (`Inter:wght@400`, whose digits stand apart from its words; a list such
    as `Lato:400,700|Merriweather:300i`, whose `:` and `,` separate items)."""
    if not 6 <= len(text) <= 64 or text[0] in "{[" or (":" in text and "," in text):
        return False
    symbols = sum(char in _PASSWORD_SYMBOLS for char in text)
    if not symbols or not any(char.isupper() for char in text) or not any(char.islower() for char in text):
        return False
    return symbols >= 2 or _LETTER_BY_DIGIT.search(text) is not None


def plain_data(
    text: str, *, sentences: bool = True, joined: bool = False, query_value: bool = False, contacts: bool = True
) -> bool:
    """True when `text` (one decoded URL component) holds data written out: an e-mail address, a
    card or social security number, a phone number, a key of a known format, a secret named and
    given, or (with `sentences`) a sentence (see `prose_data`); with `joined`, also a long sentence
    whose words are joined by `_` or `-` (in a path, that is a slug); with `query_value` (the text
    is a query value), a run that looks like a password (a path holds
    `Python_(programming_language)`) and words joined by `_` or `-` that name a secret and give it
    or state something about someone; without `contacts`, e-mail addresses and phone numbers do
    not count (a letter's signature)."""
    if len(text) < _SHORTEST_DATA:
        return False  # a query's `page=2`: no e-mail address, number, key or sentence is this short
    text = text[:_MAX_SCANNED]
    if contacts and "@" in text and _EMAIL.search(text):
        return True
    if _DIGIT.search(text) and (
            _CARD.search(text) or _SSN.search(text) or _bare_card(text) or _iban(text)):
        return True
    if _KEY.search(text) or _NAMED_SECRET.search(text) or (contacts and (
            _PHONE.search(text) or _whole_phone(text.strip()))):
        return True
    if query_value and " " not in text and _password_like(text):
        return True
    if not sentences:
        return False
    # A line break inside one component: an address or a note pasted whole.
    if "\n" in text.strip() and len(text.split()) >= _MIN_LINES_WORDS:
        return True
    if " " in text:
        return prose_data(text)
    joiners = text.count("_") + text.count("-") if joined or query_value else 0
    # Words joined by `_` or `-` (`the_user_asked_about_...`): a long run of them; in a query value
    # also a secret named and given (`my-pin-is-4471`) or a statement about someone with its
    # function words (a setting or a campaign name has none: `new_user_onboarding_week1`).
    if joined and joiners >= _MIN_WORDS - 1 and _sentence(_JOINERS.sub(" ", text).split(), marked=False):
        return True
    if query_value and joiners >= _MIN_MARKED_WORDS - 1:
        spaced = _JOINERS.sub(" ", text)
        words = spaced.lower().split()
        return _NAMED_SECRET.search(spaced) is not None or (
            words[0] not in _QUESTION_OPENERS and len(_FUNCTION_WORDS.intersection(words)) >= 2
            and not _ABOUT_SOMEONE.isdisjoint(words))
    return False


def path_data(segment: str) -> bool:
    """True when a decoded path segment holds data written out (see `plain_data`), words joined by
    `+` that make a sentence (a path keeps `+` as it is), words joined by `_` or `-` that name a
    secret and give it with a digit in it (`user_password_is_hunter2`; an article's slug says
    `why-your-password-is-weak`), or a password: one without `_` (a title such as
    `Python_(programming_language)` has them) holding a digit next to a letter and a symbol other
    than brackets, quotes and `!` (`Tr0ub4dor&3`; `Yahoo!`, `AT&T` and `C++` do not)."""
    if plain_data(segment):
        return True
    if len(segment) < _SHORTEST_DATA:
        return False
    text = segment[:_MAX_SCANNED]
    if "+" in text and " " not in text and plain_data(text.replace("+", " ")):
        return True
    if "_" in text or "-" in text:
        spaced = _JOINERS.sub(" ", text)
        if any(_DIGIT.search(match.group(1)) for match in _NAMED_SECRET.finditer(spaced)):
            return True
    return ("_" not in text and " " not in text and _password_like(text) and _LETTER_BY_DIGIT.search(text) is not None
            and not _PATH_PASSWORD_SYMBOLS.isdisjoint(text))
