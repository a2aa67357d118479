"""Data under a name that says what it is: a query parameter (or a field of JSON in a query
value) named for a password or a secret holding a value, one named for a card, an identity or a
phone number holding digits enough for one, one named for the conversation (`chat`, `history`,
`prompt`, `message`, `data`) holding several words, or two fields of a person's record (`name`
and `dob`, `firstname` and `lastname`) filled in; the same in the fields of JSON sent as a query
value.

Ordinary links name their parameters for what the site does with them (`page`, `sort`, `q`,
`utm_campaign`, `token` in a reset link); a link that sends a password, a birth date or a
sentence under `chat=` to a host nobody allowed is sending someone's data. Names are compared
lower-cased with `-`, `_` and `.` left out (`card_number`, `cardNumber`). A value that is a
placeholder (`YOUR_PASSWORD`, `{token}`, `$PIN`, `****`) is none.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["json_fields", "named_field", "person_record"]

# Names of secrets: any real value under them counts (`pass` is a ticket or a result as often).
_SECRET_NAMES = frozenset({
    "password", "passwd", "pwd", "pw", "passcode", "passphrase", "secret", "apikey", "privatekey",
    "clientsecret", "secretkey", "accesskey", "mfa", "otp", "totp", "mnemonic", "recoverycode",
})
# Names of numbers, with the digits a real one holds at least.
_NUMBER_NAMES = {
    "pin": 4, "ssn": 9, "sin": 9, "nin": 8, "cvv": 3, "cvc": 3, "cvv2": 3, "dob": 6, "birthdate": 6, "birthday": 6,
    "dateofbirth": 6, "card": 12, "cardnumber": 12, "cardno": 12, "cc": 12, "ccnum": 12, "ccnumber": 12,
    "creditcard": 12, "pan": 12, "accountnumber": 6, "acctno": 6, "routingnumber": 9,
    "phone": 7, "tel": 7, "telephone": 7, "mobile": 7, "cell": 7, "phonenumber": 7, "msisdn": 7, "whatsapp": 7,
    "passport": 6, "license": 6, "taxid": 6, "nationalid": 6,
}
# Names under which a link carries the conversation or what was read: several words there are
# a text sent along, not a setting.
_TEXT_NAMES = frozenset({
    "chat", "chats", "chatlog", "chathistory", "history", "conversation", "convo", "transcript", "dialog", "dialogue",
    "prompt", "prompts", "systemprompt", "memory", "memories", "context", "summary", "message", "messages", "msg",
    "content", "data", "payload", "info", "userinfo", "userdata", "log", "logs", "note", "notes", "leak", "exfil",
    "dump", "loot", "stolen", "secrets", "details", "profile", "record", "answer", "reply", "response", "input",
    "output",
})
# Fields of a person's record: two of them filled in are someone's details (one alone is a search
# or a profile page: `?name=Ada+Lovelace`). An address or a company goes with a place's or a
# business's name as well, so neither is one.
_PERSON_NAMES = {
    "name": "name", "fullname": "name", "firstname": "first", "fname": "first", "givenname": "first",
    "lastname": "last", "lname": "last", "surname": "last", "familyname": "last", "email": "email", "mail": "email",
    "phone": "phone", "tel": "phone", "mobile": "phone", "phonenumber": "phone", "dob": "birth",
    "birthdate": "birth", "birthday": "birth", "ssn": "ssn", "salary": "salary", "income": "salary",
    "diagnosis": "health", "patient": "health",
}
_NAME_JUNK = re.compile(r"[-_.\[\]]")
_DIGIT = re.compile(r"\d")
# A number as people write one: digits and the separators of card, phone and date formats (a map
# pin's `38.72,-9.13` has a comma; a setting has letters).
_NUMBER = re.compile(r"[\d\s()+./x-]+")
_WORD = re.compile(r"[^\W\d_]{2,}")
_JOINERS = re.compile(r"[\s_+-]+")
# Values that stand for no real one: a template slot, an unset variable, a mask, a flag.
_PLACEHOLDER = re.compile(
    r"^[A-Z]+(?:_[A-Z0-9]+)+$|^[<{\[%]|^\$\{?\w|\*{3}|\.{3}|^(.)\1*$|(?i:your|example|placeholder|redacted|xxx|changeme)"
)
_NOT_SECRETS = frozenset({
    "true", "false", "null", "none", "yes", "no", "on", "off", "reset", "forgot", "forgotten", "change", "new",
    "required", "optional", "hidden", "show", "hide", "login", "signin", "sent", "expired", "invalid", "empty",
    "update", "recover", "recovery", "email", "sms", "text", "password", "passwd", "secret", "apikey", "pin",
    "demo", "test", "sample",
})
# Words in a text under a conversation name: three joined by spaces or `+`, four joined by `_` or `-`
# with a word a sentence holds among them (a setting is a word or two, or a list of terms:
# `sort=created-at`, `content=blog-post-header-image`).
_MIN_SPACED_WORDS = 3
_MIN_JOINED_WORDS = 4
_MIN_TEXT_LETTERS = 8
_JOINED_FUNCTION_WORDS = frozenset({
    "the", "a", "an", "is", "are", "was", "to", "of", "in", "on", "for", "with", "about", "my", "his", "her",
    "their", "i", "he", "she", "they", "we", "you", "at", "from", "has", "have", "and",
})
_MIN_SECRET_CHARS = 4
# JSON in a query value: read to this depth and this many fields.
_MAX_JSON_CHARS = 4096
_MAX_JSON_DEPTH = 4
_MAX_JSON_FIELDS = 64


def field_name(key: str) -> str:
    """`key` as names are compared: lower case, without `-`, `_`, `.` and brackets."""
    return _NAME_JUNK.sub("", key.lower())


def _placeholder(value: str) -> bool:
    return _PLACEHOLDER.search(value) is not None


def named_field(name: str, value: str) -> bool:
    """True when `value` (decoded) under the field `name` (as `field_name` gives it) is the data
    its name says: a secret, a number with the digits one holds, or a text of several words."""
    if not value or len(value) > 4096:
        return False
    if name in _SECRET_NAMES or name.endswith(("password", "passwd", "secret")):
        stripped = value.strip()
        return (len(stripped) >= _MIN_SECRET_CHARS and stripped.lower() not in _NOT_SECRETS
                and not _placeholder(stripped))
    least = _NUMBER_NAMES.get(name)
    if least is not None:
        number = value.strip()
        return (len(number) <= 40 and _NUMBER.fullmatch(number) is not None
                and len(_DIGIT.findall(number)) >= least and not _placeholder(number))
    if name in _TEXT_NAMES:
        words = _WORD.findall(value[:512])
        if sum(len(word) for word in words) < _MIN_TEXT_LETTERS:
            return False
        pieces = _JOINERS.split(value.strip())
        if " " in value.strip() or "+" in value:
            return len(pieces) >= _MIN_SPACED_WORDS
        return len(pieces) >= _MIN_JOINED_WORDS and not _JOINED_FUNCTION_WORDS.isdisjoint(
            piece.lower() for piece in pieces)
    return False


def person_record(fields: list[tuple[str, str]]) -> bool:
    """True when two different fields of a person's record are filled in (`fields`: names as
    `field_name` gives them, decoded values)."""
    seen: set[str] = set()
    for name, value in fields:
        kind = _PERSON_NAMES.get(name)
        if kind is None or len(value.strip()) < 2 or not any(char.isalnum() for char in value) or _placeholder(value):
            continue
        seen.add(kind)
        if len(seen) >= 2:
            return True
    return False


def _walk(node: Any, depth: int, name: str = "") -> Iterator[tuple[str, str]]:
    if depth > _MAX_JSON_DEPTH:
        return
    if isinstance(node, dict):
        for key, value in list(node.items())[:_MAX_JSON_FIELDS]:
            yield from _walk(value, depth + 1, field_name(str(key)))
    elif isinstance(node, list):
        for value in node[:_MAX_JSON_FIELDS]:
            yield from _walk(value, depth + 1, name)
    elif isinstance(node, str | int | float) and not isinstance(node, bool):
        yield name, str(node)


def json_fields(value: str) -> list[tuple[str, str]]:
    """The (name, value) leaves of `value` when it is a JSON object or array (a record sent in one
    query value), else none."""
    text = value.strip()
    if len(text) < 7 or len(text) > _MAX_JSON_CHARS or text[0] not in "{[" or text[-1] not in "}]":
        return []
    try:
        parsed = json.loads(text)
    except ValueError:
        return []
    return list(_walk(parsed, 0))[:_MAX_JSON_FIELDS]
