"""Finds credentials in text: provider and cloud keys, private keys, JWTs, connection strings
with passwords, and high-entropy values assigned to words such as `password` or `api_key`.

Why hand-written rules rather than a scanner library: Yelp's detect-secrets scans line by line
with ~25 plugins (about 13 ms on a 2 KB prompt here), reports values without offsets, and is
built for files in a repository. A proxy checks every prompt and every streamed checkpoint and
must redact exact spans, so this module keeps one compiled regular expression per rule behind a
literal prefilter: a rule runs only when one of its literals (`AKIA`, `ghp_`, `-----BEGIN`…)
occurs in the text. One Aho-Corasick pass over the text (and one over its lower-cased copy) finds
every literal at once, so an ordinary prompt costs two C-level passes and no regex at all.

Placeholders are not findings: documentation values (AWS's `AKIAIOSFODNN7EXAMPLE`, anything
holding `EXAMPLE`, `your`, `xxxx`, `placeholder`, `<…>`, `${…}`…), bodies with low Shannon
entropy (`sk-aaaa…`) and sequential or periodic bodies (`1234567890abcdef…`).

Streaming: a rule whose secret has an open end (PEM blocks, JWTs, `{n,}` bodies) matches as soon
as a recognisable prefix has arrived and its span runs to the end of the text seen so far, so a
stream guard with a modest window (256 characters) never releases the start of a long key.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import pairwise

import ahocorasick

from capsem_proxy.detectors.base import Finding, Reach, best_without_overlaps
from capsem_proxy.detectors.holds import pem_hold, word_hold
from capsem_proxy.detectors.secret_formats import PREFIXED_FORMATS, TokenFormat

__all__ = ["SECRET_KINDS", "SecretsDetector", "looks_placeholder", "shannon_entropy"]


def shannon_entropy(value: str) -> float:
    """Shannon entropy of `value` in bits per character (0 for an empty string)."""
    if not value:
        return 0.0
    length = len(value)
    return -sum(count / length * math.log2(count / length) for count in Counter(value).values())


_PLACEHOLDER_WORDS = (
    "example", "your", "xxxx", "placeholder", "dummy", "sample", "redacted", "changeme", "change_me",
    "replace", "insert", "fake", "not-a-real", "notreal", "not_real", "foobar", "lorem", "****", "....",
    "...", "<", ">", "${", "{{", "%s", "%(",
)


def _is_sequential(value: str) -> bool:
    """True for bodies made mostly of ascending runs (`0123456789abcdef…`), a common placeholder."""
    steps = sum(1 for left, right in pairwise(value) if ord(right) - ord(left) == 1)
    return steps * 2 > len(value)


def _is_periodic(value: str) -> bool:
    """True when `value` repeats a block of at most 8 characters (`abc123abc123…`)."""
    return any(value[:-period] == value[period:] for period in range(1, min(9, len(value) // 2 + 1)))


def looks_placeholder(value: str) -> bool:
    """True for documentation values and templates rather than real secrets."""
    lowered = value.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS):
        return True
    return _is_sequential(value) or _is_periodic(value)


def _char_classes(value: str) -> tuple[bool, bool, bool, bool]:
    """(has lower, has upper, has digit, has symbol)."""
    lower = upper = digit = symbol = False
    for char in value:
        if char.islower():
            lower = True
        elif char.isupper():
            upper = True
        elif char.isdigit():
            digit = True
        else:
            symbol = True
    return lower, upper, digit, symbol


def _random_body(min_entropy: float) -> Callable[[str], bool]:
    """A check passing bodies that look random: entropy at least `min_entropy`, not a placeholder."""

    def check(body: str) -> bool:
        # A short body cannot reach the entropy of a long one: ask for 80 % of its maximum then.
        needed = min(min_entropy, 0.8 * math.log2(len(body))) if body else min_entropy
        return shannon_entropy(body) >= needed and not looks_placeholder(body)

    return check


@dataclass(frozen=True, slots=True)
class _Rule:
    """One kind of secret: a regex run only when one of `literals` occurs in the text.

    `group` names the part of the match that is the secret (0: all of it); `body` the part that
    `check` judges (defaults to the secret). Higher `priority` wins when findings overlap.
    """

    kind: str
    pattern: re.Pattern[str] | _PemBlocks | _LiteralAnchored
    literals: tuple[str, ...]
    check: Callable[[str], bool] | None = None
    group: int | str = 0
    body: int | str | None = None
    priority: int = 50
    lowercase_literals: bool = False
    # Characters dropped from the end of a match (punctuation closing a sentence or a bracket).
    strip_trailing: str = ""
    # Assignment rules: check the identifier ending in the matched keyword (group `word`).
    check_key: bool = False


# Characters of URL-safe / base64 tokens; used for boundaries so a key is not found inside a longer word.
_TOKEN_LEFT = r"(?<![A-Za-z0-9_-])"
_TOKEN_RIGHT = r"(?![A-Za-z0-9_-])"


# Between PEM lines: a newline (maybe JSON-escaped), or spaces before another long base64 run.
# The spaces after a newline belong to the next line's indentation, never to the break: a break that
# could also take them split every run of "\n \t" three ways, and a text of such runs after a begin
# marker backtracked exponentially.
_PEM_BREAK = r"(?:[ \t]*(?:\r?\n|\\r\\n|\\n)|[ \t]+(?=[A-Za-z0-9+/=]{16}))"
_PEM_INDENT = r"[ \t]*"
_PEM_LINE = r"(?:(?:Proc-Type|DEK-Info|Comment|Version):[^\r\n\\]*|[A-Za-z0-9+/=]+)"


class _PemBlocks:
    """PEM private key blocks, found as the regex `BEGIN-marker (?: .{0,16384}? END-marker |
    open-body)` (`.` matching newlines too) would find them, but in linear time: that regex's
    lazy search for the end marker reads up to 16 kB after every begin marker, so a text of many
    begin markers cost 16 kB each. Here the end markers are found once and each begin marker
    looks up the first one after it.
    """

    _BEGIN = re.compile(r"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----")
    _END = re.compile(r"-----END[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----")
    # Where an end marker starts (they may overlap one another).
    _END_AT = re.compile(r"(?=-----END[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----)")
    # No end marker (yet): a truncated key, or a stream that has not sent the rest.
    _OPEN_BODY = re.compile(
        rf"(?={_PEM_BREAK}*{_PEM_INDENT}(?:[A-Za-z0-9+/=]{{16}}|Proc-Type:|Comment:))"
        rf"{_PEM_BREAK}*{_PEM_INDENT}{_PEM_LINE}(?:{_PEM_BREAK}+{_PEM_INDENT}{_PEM_LINE})*"
    )
    _LONGEST_BODY = 16384
    _WHOLE = re.compile(r"[\s\S]*")

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """The blocks of `text`, left to right, none inside another (as `re.finditer`)."""
        end_starts: list[int] | None = None
        resume = 0
        for begin in self._BEGIN.finditer(text):
            if begin.start() < resume:
                continue
            if end_starts is None:
                end_starts = [match.start() for match in self._END_AT.finditer(text)]
            stop = -1
            index = bisect.bisect_left(end_starts, begin.end())
            if index < len(end_starts) and end_starts[index] - begin.end() <= self._LONGEST_BODY:
                end = self._END.match(text, end_starts[index])
                stop = end.end() if end is not None else -1
            if stop < 0:
                body = self._OPEN_BODY.match(text, begin.end())
                stop = body.end() if body is not None else -1
            if stop < 0:
                continue
            resume = stop
            whole = self._WHOLE.match(text, begin.start(), stop)
            assert whole is not None
            yield whole


class _LiteralAnchored:
    """A regex whose match starts a little before its literal, matched only there (as
    `re.finditer` would find it, left to right) instead of tried at every position: for each
    occurrence of `literal`, from each of `backs` characters before it (longest first)."""

    def __init__(self, pattern: re.Pattern[str], literal: str, backs: tuple[int, ...]) -> None:
        self._pattern = pattern
        self._literal = literal
        self._backs = backs

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        resume = 0
        at = text.find(self._literal)
        while at >= 0:
            for back in self._backs:
                start = at - back
                if start < resume:
                    continue
                match = self._pattern.match(text, start)
                if match is not None and match.end() > at:
                    resume = match.end()
                    yield match
                    break
            at = text.find(self._literal, max(at + 1, resume))


def _pem_check(block: str) -> bool:
    # A real key body has long base64 runs; `...` or `<key>` between the markers is a placeholder.
    return re.search(r"[A-Za-z0-9+/]{16}", block.split("-----", 2)[2]) is not None


def _jwt_check(token: str) -> bool:
    header = token.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
    except (binascii.Error, ValueError):
        return False
    return decoded.startswith(b"{") and (b'"alg"' in decoded or b'"typ"' in decoded)


def _basic_auth_check(value: str) -> bool:
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    _, colon, password = decoded.partition(b":")
    return bool(colon) and bool(password) and decoded.isascii() and decoded.decode("ascii").isprintable()


# Passwords in URLs that are templates or documentation, not credentials.
_PLACEHOLDER_PASSWORDS = frozenset({
    "pass", "password", "passwd", "pwd", "secret", "changeme", "user", "username", "admin", "root", "x", "xx",
    "xxx", "test", "mypassword", "yourpassword", "pw", "p", "****", "*****", "******", "token",
})


# A variable or template standing for the value: `$DB_PASS`, `${PASSWORD}`, `%s`, `%(pw)s`, `{pw}`.
_TEMPLATE_VALUE = re.compile(r"^(?:\$\{?[A-Za-z_]\w*\}?|%\(?\w*\)?[sd]|\{\{?[^{}]*\}\}?|\*+)$")


def _url_password_check(password: str) -> bool:
    if len(password) < 3 or password.lower() in _PLACEHOLDER_PASSWORDS:
        return False
    if _TEMPLATE_VALUE.match(password) or set(password) <= {"*", "x", "X", "."}:
        return False
    return not looks_placeholder(password)


def _azure_chain_check(chain: str) -> bool:
    for part in chain.split(";"):
        name, _, value = part.strip().partition("=")
        if name in ("AccountKey", "SharedAccessKey") and len(value) >= 20:
            return _random_body(3.5)(value)
    return False


# Values that follow a secret-sounding key but are obviously not secrets.
_NOT_SECRET_VALUES = frozenset({
    "null", "none", "nil", "true", "false", "undefined", "required", "optional", "string", "str", "bool",
    "int", "default", "empty", "hidden", "masked", "redacted", "secret", "password", "token", "env", "unset",
})
_PATH_LIKE = re.compile(r"^(?:[~.]?/|[A-Za-z]:\\)|\.(?:ya?ml|json|txt|pem|key|env|ini|cfg|conf|toml|crt|p12|pfx)$")
_DOTTED_REFERENCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")


def _assigned_value_ok(value: str, *, password: bool) -> bool:
    """Whether a value assigned to a secret-sounding key looks like a real secret."""
    if value.lower() in _NOT_SECRET_VALUES or looks_placeholder(value) or _TEMPLATE_VALUE.match(value):
        return False
    if "://" in value or _PATH_LIKE.search(value):
        return False
    if _DOTTED_REFERENCE.match(value) and max(len(part) for part in value.split(".")) < 20:
        return False  # `settings.SECRET_KEY`; a token with long random dotted parts is no reference
    lower, upper, digit, symbol = _char_classes(value)
    if password:
        # People choose passwords: short and low in entropy, but rarely a single character class.
        return len(value) >= 6 and (lower + upper + digit + symbol) >= 2 and shannon_entropy(value) >= 2.0
    # Machine-made tokens: long, random, letters and digits.
    return len(value) >= 12 and (lower or upper) and digit and shannon_entropy(value) >= 3.0


def _assigned_secret_check(value: str) -> bool:
    return _assigned_value_ok(value, password=False)


def _assigned_password_check(value: str) -> bool:
    return _assigned_value_ok(value, password=True)


def _bearer_check(value: str) -> bool:
    lower, upper, digit, _ = _char_classes(value)
    return (lower or upper) and digit and shannon_entropy(value) >= 3.0 and not looks_placeholder(value)


def _aws_secret_check(value: str) -> bool:
    lower, upper, digit, _ = _char_classes(value)
    return lower and upper and digit and shannon_entropy(value) >= 4.0 and not looks_placeholder(value)


# Identifiers ending in these words announce a secret (`DB_PASSWORD`, `"apiKey"`, `X-Api-Key`);
# `key` only after one of _KEY_QUALIFIERS (`monkey`, `sort_key` are not secrets).
_SECRET_KEY_WORDS = r"key|secret|token|credentials?"
_PASSWORD_KEY_WORDS = r"password|passwd|passphrase|pass|pwd"
_KEY_QUALIFIERS = (
    "api", "access", "auth", "secret", "private", "client", "encryption", "signing", "master", "account", "app",
    "service",
)
_IDENTIFIER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_MAX_KEY_CHARS = 40
# Words of a key naming tokens that paginate or count rather than authenticate.
_NOT_SECRET_KEY_WORDS = frozenset({
    "page", "next", "continuation", "cursor", "sync", "csrf", "xsrf", "max", "min", "num", "count", "limit",
    "public", "length", "len", "size", "type", "expiry", "expires", "ttl", "url", "uri", "endpoint", "file", "path",
})
_KEY_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def _secret_key_name(text: str, word_start: int, word: str) -> bool:
    """Whether the identifier ending in `word` (at `word_start`) names a credential.

    The identifier is read backwards from the keyword, which keeps the regex anchored on the
    keyword itself (an identifier-prefix loop in the pattern cost ten times more)."""
    key_start = word_start
    while key_start > 0 and text[key_start - 1] in _IDENTIFIER_CHARS:
        key_start -= 1
        if word_start - key_start > _MAX_KEY_CHARS:
            return False
    prefix = text[key_start:word_start].lower().rstrip("_-.")
    if word.lower() == "key" and not prefix.endswith(_KEY_QUALIFIERS):
        return False
    words = _KEY_WORD.findall(text[key_start:word_start] + word)
    return not any(part.lower() in _NOT_SECRET_KEY_WORDS for part in words)
_ASSIGNMENT = r"""["']?[ \t]{0,3}(?::=|=>|==|=|:|[ \t](?:is|was))[ \t]{0,3}["'`]?"""
_ASSIGNED_VALUE = r"""(?P<value>[^\s"'`,;<>(){}\[\]]{6,256})"""


def _assignment_rule(kind: str, words: str, check: Callable[[str], bool], literals: tuple[str, ...]) -> _Rule:
    pattern = re.compile(rf"(?i)(?P<word>{words}){_ASSIGNMENT}{_ASSIGNED_VALUE}")
    return _Rule(
        kind, pattern, literals, check=check, group="value", priority=10, lowercase_literals=True,
        strip_trailing=".", check_key=True,
    )


def _mixed_body(body: str) -> bool:
    lower, upper, digit, _ = _char_classes(body)
    return (lower or upper) and digit


def _prefixed_rule(token_format: TokenFormat) -> _Rule:
    random_body = _random_body(token_format.min_entropy)

    def check(body: str) -> bool:
        return random_body(body) and (not token_format.mixed or _mixed_body(body))

    compiled = re.compile(token_format.pattern)
    pattern: re.Pattern[str] | _LiteralAnchored = compiled
    if token_format.back:
        (literal,) = token_format.literals
        pattern = _LiteralAnchored(compiled, literal, (token_format.back,))
    return _Rule(
        token_format.kind, pattern, token_format.literals, check=check,
        group=token_format.group, body="body",
        priority=token_format.priority, lowercase_literals=token_format.lowercase_literals,
    )


def _rules() -> list[_Rule]:
    sk_body = _random_body(3.0)
    return [
        _Rule(
            "private_key",
            _PemBlocks(),
            ("PRIVATE KEY",),
            check=_pem_check,
            priority=100,
        ),
        _Rule(
            "anthropic_api_key",
            re.compile(_TOKEN_LEFT + r"sk-ant-(?:api|admin|oat|sid)\d{2}-(?P<body>[A-Za-z0-9_-]{32,})"),
            ("sk-ant-",),
            check=sk_body, body="body", priority=90,
        ),
        _Rule(
            "openai_api_key",
            re.compile(
                _TOKEN_LEFT + r"sk-(?:(?:proj|svcacct|admin)-(?P<body>[A-Za-z0-9_-]{40,})"
                r"|(?P<legacy>[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20})" + _TOKEN_RIGHT + ")"
            ),
            ("sk-",),
            check=sk_body, body=0, priority=80,
        ),
        _Rule(
            # Other `sk-` keys (legacy OpenAI without the marker, compatible providers).
            "openai_api_key",
            re.compile(_TOKEN_LEFT + r"sk-(?!ant-)(?P<body>[A-Za-z0-9]{32,})" + _TOKEN_RIGHT),
            ("sk-",),
            check=sk_body, body="body", priority=70,
        ),
        _Rule(
            "google_api_key",
            re.compile(_TOKEN_LEFT + r"AIza(?P<body>[0-9A-Za-z_-]{35})" + _TOKEN_RIGHT),
            ("AIza",),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "google_oauth_secret",
            re.compile(_TOKEN_LEFT + r"GOCSPX-(?P<body>[A-Za-z0-9_-]{28})" + _TOKEN_RIGHT),
            ("GOCSPX-",),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "google_oauth_token",
            re.compile(_TOKEN_LEFT + r"ya29\.(?P<body>[0-9A-Za-z_-]{30,})"),
            ("ya29.",),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "aws_access_key",
            # Key ids are 4 letters of type then 16 base32 characters.
            re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)(?P<body>[A-Z2-7]{16})(?![A-Z0-9])"),
            ("AKIA", "ASIA", "ABIA", "ACCA"),
            check=_random_body(2.8), body="body", priority=80,
        ),
        _Rule(
            "aws_secret_key",
            re.compile(
                r"(?i:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key|aws_?secret)"
                r"""["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"""
            ),
            ("secret",),
            check=_aws_secret_check, group="value", priority=85, lowercase_literals=True,
        ),
        _Rule(
            "azure_connection_string",
            re.compile(
                r"(?<![A-Za-z0-9])(?:DefaultEndpointsProtocol|AccountName|BlobEndpoint|Endpoint)=[^;\s\"'<>]+"
                r"(?:;[ \t]*[A-Za-z]+=[^;\s\"'<>]*)+"
            ),
            ("AccountKey=", "SharedAccessKey="),
            check=_azure_chain_check, priority=85,
        ),
        _Rule(
            "azure_storage_key",
            re.compile(r"(?:AccountKey|SharedAccessKey)=(?P<value>[A-Za-z0-9+/]{20,}={0,2})"),
            ("AccountKey=", "SharedAccessKey="),
            check=_random_body(3.5), group="value", priority=80,
        ),
        _Rule(
            "github_token",
            re.compile(
                _TOKEN_LEFT + r"(?:gh[pousr]_(?P<body>[A-Za-z0-9]{36,251})"
                r"|github_pat_(?P<pat>[A-Za-z0-9]{22}_[A-Za-z0-9]{10,}))" + _TOKEN_RIGHT
            ),
            ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
            check=sk_body, body=0, priority=80,
        ),
        _Rule(
            "gitlab_token",
            re.compile(_TOKEN_LEFT + r"gl(?:pat|dt|rt|ptt|cbt|ft|imt|soat|oas)-(?P<body>[A-Za-z0-9_-]{20,})"),
            ("glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glft-", "glimt-", "glsoat-", "gloas-"),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "slack_token",
            re.compile(_TOKEN_LEFT + r"(?:xox[abposre]-(?P<body>[0-9A-Za-z-]{20,})|xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+)"),
            ("xox", "xapp-"),
            check=sk_body, body=0, priority=80,
        ),
        _Rule(
            "slack_webhook",
            # Slashes may arrive JSON-escaped (`https:\/\/hooks.slack.com\/services\/…`). Matched
            # from the host name back to the scheme (if any): tried at every position, the optional
            # scheme made the regex read a 2 KB text in about a millisecond.
            _LiteralAnchored(
                re.compile(
                    r"(?:https?:\\?/\\?/)?hooks\.slack\.com\\?/(?:services|workflows|triggers)\\?/"
                    r"(?P<body>(?:[A-Za-z0-9+_-]|\\?/){20,})"
                ),
                "hooks.slack.com", (len("https:\\/\\/"), len("http:\\/\\/"), len("https://"), len("http://"), 0),
            ),
            ("hooks.slack.com",),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "stripe_key",
            # Live and test secret and restricted keys (a test key still reads and writes the test account).
            re.compile(_TOKEN_LEFT + r"(?:sk|rk)_(?:live|test|prod)_(?P<body>[A-Za-z0-9]{10,})"),
            ("_live_", "_test_", "_prod_"),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "npm_token",
            re.compile(_TOKEN_LEFT + r"npm_(?P<body>[A-Za-z0-9]{36})" + _TOKEN_RIGHT),
            ("npm_",),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "pypi_token",
            # The body is a macaroon whose base64 starts with the index's name.
            re.compile(_TOKEN_LEFT + r"pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,}"),
            ("pypi-AgE",),
            priority=80,
        ),
        _Rule(
            "twilio_api_key",
            re.compile(r"(?<![A-Za-z0-9])SK(?P<body>[0-9a-fA-F]{32})(?![A-Za-z0-9])"),
            ("SK",),
            check=sk_body, body="body", priority=60,
        ),
        _Rule(
            "sendgrid_api_key",
            # 22 and 43 characters around a dot as issued; 66 in all is what scanners accept.
            re.compile(_TOKEN_LEFT + r"SG\.(?P<body>[A-Za-z0-9_=-][A-Za-z0-9_.=-]{58,68})(?![A-Za-z0-9_.=-])"),
            ("SG.",),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "huggingface_token",
            re.compile(_TOKEN_LEFT + r"hf_(?P<body>[A-Za-z0-9]{34,40})" + _TOKEN_RIGHT),
            ("hf_",),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "telegram_bot_token",
            # The bot's numeric id, a colon, then 35 characters starting with `A`.
            re.compile(r"(?<![0-9])\d{5,16}:A(?P<body>[A-Za-z0-9_-]{34})" + _TOKEN_RIGHT),
            (":A",),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "digitalocean_token",
            re.compile(_TOKEN_LEFT + r"do[pro]_v1_(?P<body>[a-f0-9]{64})" + _TOKEN_RIGHT),
            ("_v1_",),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "shopify_token",
            re.compile(_TOKEN_LEFT + r"shp(?:at|ca|pa|ss)_(?P<body>[a-fA-F0-9]{32})" + _TOKEN_RIGHT),
            ("shpat_", "shpca_", "shppa_", "shpss_"),
            check=sk_body, body="body", priority=80,
        ),
        _Rule(
            "groq_api_key",
            re.compile(_TOKEN_LEFT + r"gsk_(?P<body>[A-Za-z0-9]{52})" + _TOKEN_RIGHT),
            ("gsk_",),
            check=sk_body, body="body", priority=85,
        ),
        _Rule(
            "openrouter_api_key",
            re.compile(_TOKEN_LEFT + r"sk-or-v1-(?P<body>[0-9a-fA-F]{64})" + _TOKEN_RIGHT),
            ("sk-or-",),
            check=sk_body, body="body", priority=85,
        ),
        _Rule(
            "linear_api_key",
            re.compile(_TOKEN_LEFT + r"lin_(?:api|oauth)_(?P<body>[A-Za-z0-9]{40,64})" + _TOKEN_RIGHT),
            ("lin_api_", "lin_oauth_"),
            check=sk_body, body="body", priority=85,
        ),
        _Rule(
            # HashiCorp Vault service, batch and recovery tokens (`hvs.`, `hvb.`, `hvr.`, Vault 1.10+).
            "vault_token",
            re.compile(_TOKEN_LEFT + r"hv[sbr]\.(?P<body>[A-Za-z0-9_-]{24,300})" + _TOKEN_RIGHT),
            ("hvs.", "hvb.", "hvr."),
            check=sk_body, body="body", priority=85,
        ),
        _Rule(
            # Terraform Cloud / Enterprise API tokens: 14 characters, `.atlasv1.`, then the secret.
            "terraform_token",
            re.compile(_TOKEN_LEFT + r"[A-Za-z0-9]{14}\.atlasv1\.(?P<body>[A-Za-z0-9_=-]{60,70})" + _TOKEN_RIGHT),
            (".atlasv1.",),
            check=sk_body, body="body", priority=85,
        ),
        _Rule(
            # Microsoft Entra ID (Azure AD) client secrets: 3 characters, a digit, `Q~`, 31 to 34 more.
            "azure_client_secret",
            re.compile(r"(?<![A-Za-z0-9_~.-])(?P<body>[A-Za-z0-9_~.]{3}\dQ~[A-Za-z0-9_~.-]{31,34})(?![A-Za-z0-9_~.-])"),
            ("Q~",),
            check=_random_body(3.5), body="body", priority=80,
        ),
        *(_prefixed_rule(token_format) for token_format in PREFIXED_FORMATS),
        _Rule(
            "jwt",
            # A JWT's header and payload are base64url JSON objects, so both start with `eyJ`.
            # The signature may still be on its way in a stream, or empty (`alg: none`).
            re.compile(_TOKEN_LEFT + r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}(?:\.[A-Za-z0-9_-]*)?"),
            ("eyJ",),
            check=_jwt_check, priority=75,
        ),
        _Rule(
            "connection_string",
            re.compile(
                r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/@\"'<>]*:(?P<password>[^\s@/\"'<>]+)@"
                r"[^\s/\"'`<>?#@]+[^\s\"'`<>]*"
            ),
            ("://",),
            check=_url_password_check, body="password", priority=70, strip_trailing=".,:;!?)]}",
        ),
        _Rule(
            "bearer_token",
            re.compile(r"(?i:\b(?:bearer|token))[ \t]+(?P<value>[A-Za-z0-9._~+/-]{16,}=*)"),
            ("bearer", "token "),
            check=_bearer_check, group="value", priority=20, lowercase_literals=True,
        ),
        _Rule(
            "basic_auth",
            re.compile(r"(?i:\bbasic)[ \t]+(?P<value>[A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])"),
            ("basic ",),
            check=_basic_auth_check, group="value", priority=20, lowercase_literals=True,
        ),
        _assignment_rule("password", _PASSWORD_KEY_WORDS, _assigned_password_check, ("pass", "pwd")),
        _assignment_rule(
            "generic_secret", _SECRET_KEY_WORDS, _assigned_secret_check, ("key", "secret", "token", "credential")
        ),
    ]


_RULES = _rules()
SECRET_KINDS: tuple[str, ...] = tuple(dict.fromkeys(rule.kind for rule in _RULES))
# An AWS secret key written near its key id, without a telling name: `AKIA… / wJalr…`.
_NEAR_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])(?P<value>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")
_NEAR_AWS_CHARS = 200


@dataclass(frozen=True, slots=True)
class _Candidate:
    finding: Finding
    priority: int


class SecretsDetector:
    """Finds secrets; `kinds` limits which, `allow` lists exact values never reported."""

    name = "secrets"
    # Key names are read up to 40 characters back and an AWS secret up to 200 characters after its
    # key id; a PEM block runs up to 16 kB between its markers.
    reach = Reach(before=256, after=1024, longest=16384 + 256)

    def __init__(self, kinds: Iterable[str] | None = None, allow: Iterable[str] = ()) -> None:
        wanted = set(SECRET_KINDS if kinds is None else kinds)
        unknown = wanted - set(SECRET_KINDS)
        if unknown:
            raise ValueError(f"unknown secret kind(s): {', '.join(sorted(unknown))}; known: {', '.join(SECRET_KINDS)}")
        self._rules = [rule for rule in _RULES if rule.kind in wanted]
        self._pair_aws = "aws_access_key" in wanted and "aws_secret_key" in wanted
        self._allow = frozenset(allow)
        # literal -> the indexes of the rules it lets run; one automaton for literals matched as
        # written, one for those matched in the lower-cased text.
        cased: dict[str, list[int]] = {}
        lowered: dict[str, list[int]] = {}
        for index, rule in enumerate(self._rules):
            table = lowered if rule.lowercase_literals else cased
            for literal in rule.literals:
                table.setdefault(literal, []).append(index)
        self._cased = _automaton(cased)
        self._lowered = _automaton(lowered)
        # A literal ends at most this many characters after its first (lowering never shortens a
        # character, so in the lowered text too).
        self._literal_span = max((len(literal) for literal in (*cased, *lowered)), default=1) - 1

    def hold_from(self, text: str) -> int:
        """Where a secret may still be in progress at the end of `text` (see `detectors.holds`): the
        last word (a connection string's `;`-joined pairs count as one), or an unclosed PEM block."""
        word, pem = word_hold(text, joined_by=";"), pem_hold(text, "-----BEGIN", _PemBlocks._END)
        return word if word <= pem else pem

    def scan(self, text: str) -> list[Finding]:
        """Every secret in `text`, in order of `start`; overlapping findings keep the most specific."""
        present: set[int] = set()
        if self._cased is not None:
            for _, indexes in self._cased.iter(text):
                present.update(indexes)
        if self._lowered is not None:
            for _, indexes in self._lowered.iter(text.lower()):
                present.update(indexes)
        if not present:  # no rule's literal: the usual text
            return []
        candidates: list[_Candidate] = []
        rules = self._rules
        for index in sorted(present):
            candidates.extend(self._matches(rules[index], text))
        if self._pair_aws:
            candidates.extend(self._aws_pairs(text, candidates))
        return _without_overlaps(candidates)

    def scan_grown(self, text: str, clean: int) -> tuple[list[Finding], bool]:
        """`scan(text)` for a text whose first `clean` characters are known to hold no rule's literal
        (what an earlier read of a growing answer found): literals are looked for only where one
        could end past them. Also True when the text holds no literal (the usual answer), for the
        next read to start from."""
        since = clean - self._literal_span
        if self._has_literal(text, since if since > 0 else 0):
            return self.scan(text), False
        return [], True

    def _has_literal(self, text: str, start: int) -> bool:
        """True when a literal of some rule is spelled in `text` from `start` on (for those matched
        lower-cased, in `text[start:]` lowered: lowering maps each character on its own, but for
        sigmas, which no literal holds, so this finds every such literal of the whole text lowered
        that is made of characters from `start` on)."""
        if self._cased is not None:
            for _ in self._cased.iter(text, start):
                return True
        if self._lowered is not None:
            for _ in self._lowered.iter((text[start:] if start else text).lower()):
                return True
        return False

    def _matches(self, rule: _Rule, text: str) -> list[_Candidate]:
        found = []
        for match in rule.pattern.finditer(text):
            start, end = match.span(rule.group)
            if start < 0 or start == end:
                continue
            secret = match.group(rule.group)
            if rule.check_key and not _secret_key_name(text, match.start("word"), match.group("word")):
                continue
            if rule.strip_trailing:
                stripped = secret.rstrip(rule.strip_trailing)
                end -= len(secret) - len(stripped)
                secret = stripped
            if secret in self._allow:
                continue
            if rule.check is not None:
                body = secret if rule.body is None else _body(match, rule.body)
                if not rule.check(body):
                    continue
            found.append(_Candidate(Finding(rule.kind, start, end, secret), rule.priority))
        return found

    def _aws_pairs(self, text: str, candidates: list[_Candidate]) -> list[_Candidate]:
        found = []
        for candidate in candidates:
            if candidate.finding.kind != "aws_access_key":
                continue
            window_end = min(len(text), candidate.finding.end + _NEAR_AWS_CHARS)
            for match in _NEAR_AWS_SECRET.finditer(text, candidate.finding.end, window_end):
                value = match.group("value")
                if value not in self._allow and _aws_secret_check(value):
                    found.append(_Candidate(Finding("aws_secret_key", *match.span("value"), value), 84))
        return found


def _automaton(literals: dict[str, list[int]]) -> ahocorasick.Automaton | None:
    """An automaton reporting, for each literal found, the rules it lets run (None: no literals)."""
    if not literals:
        return None
    automaton = ahocorasick.Automaton()
    for literal, indexes in literals.items():
        automaton.add_word(literal, tuple(indexes))
    automaton.make_automaton()
    return automaton


def _body(match: re.Match[str], body: int | str) -> str:
    """The part a rule's check judges; for alternations, the first named group that matched."""
    if body == 0:
        named = [value for value in match.groupdict().values() if value]
        return named[0] if named else match.group(0)
    return match.group(body) or ""


def _without_overlaps(candidates: list[_Candidate]) -> list[Finding]:
    """Keep the highest-priority (then longest) finding wherever findings overlap."""
    kept = best_without_overlaps(
        candidates,
        lambda c: (c.finding.start, c.finding.end),
        lambda c: (-c.priority, -(c.finding.end - c.finding.start), c.finding.start),
    )
    return [candidate.finding for candidate in kept]
