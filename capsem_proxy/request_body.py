"""The one parse of a request body: strict JSON whose objects name each key once.

What the proxy screens must be what the provider reads. JSON leaves a repeated key undefined:
orjson keeps the last value, other parsers the first, so a body such as
`{"content": "<secret>", "content": "hello"}` could be screened as "hello" and read upstream as
the secret. Such a body is refused with 400. Keys spelled with escapes (`"tool\\u005fcalls"`)
are decoded like any key, so they mean what the plain spelling means.

orjson parses and validates (RFC 8259: no NaN or Infinity, no lone surrogates, no number beyond
a double, at most 1024 levels) and gives the tree the adapters read. Repeated keys are found by
counting colons, which is exact: outside strings a colon separates one member from its value, and
orjson never escapes one, so re-encoding the tree gives back every colon of the body unless the
tree dropped a member (with its separator, and every colon of its key and value). A body that
spells a colon as `\\u003a`, or nests deeper than orjson writes (254 levels), is not counted so:
the standard library's C scanner reads it with a hook that refuses a repeated key. Measured with
timeit on a 330-byte chat body: orjson alone 0.8 µs, with the colon count 1.8 µs, with the
stdlib scanner 4.7 µs; on a 1 MB body 0.36 ms, 1.4 ms and 1.1 ms.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from capsem_proxy.errors import MalformedJSON

__all__ = ["parse_request_body"]

_REPEATED = "the request body repeats a key within one JSON object; parsers disagree on which value counts"


class _RepeatedKey(ValueError):
    """An object of the body names a key twice."""


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> None:
    # Called by the C scanner for every object; the tree of this pass is thrown away.
    if len(pairs) > 1 and len(dict(pairs)) != len(pairs):
        raise _RepeatedKey
    return None


_KEY_CHECKER = json.JSONDecoder(object_pairs_hook=_refuse_repeated_keys)


def _spells_a_colon(body: bytes) -> bool:
    # `find`, not `in`: `bytes in bytes` raises and clears a TypeError inside CPython on every call.
    return body.find(b"\\u003") != -1 and (body.find(b"\\u003a") != -1 or body.find(b"\\u003A") != -1)


def _scan_for_repeated_keys(body: bytes) -> None:
    """The slow, general check: the stdlib scanner with a hook on every object."""
    try:
        _KEY_CHECKER.decode(body.decode("utf-8"))
    except _RepeatedKey:
        raise MalformedJSON(_REPEATED) from None
    except RecursionError:
        # orjson accepts up to 1024 levels, the stdlib scanner as many as the interpreter's
        # recursion limit allows (about 900 here): deeper bodies cannot be checked, so are refused.
        raise MalformedJSON("the request body nests too deeply to be checked") from None
    except ValueError as exc:  # anything else orjson accepted but the stdlib does not: refuse too
        raise MalformedJSON(f"the request body is not valid JSON: {exc}") from None


def parse_request_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request body; MalformedJSON (400) when it is not valid JSON, not an
    object, or an object in it repeats a key."""
    try:
        parsed: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedJSON(f"the request body is not valid JSON: {exc.args[0] if exc.args else exc}") from exc
    if not isinstance(parsed, dict):
        raise MalformedJSON("the request body must be a JSON object")
    if _spells_a_colon(body):
        _scan_for_repeated_keys(body)
        return parsed
    try:
        reencoded = orjson.dumps(parsed)
    except TypeError:  # deeper than orjson writes (254 levels): count by parsing instead
        _scan_for_repeated_keys(body)
        return parsed
    if body.count(b":") != reencoded.count(b":"):
        raise MalformedJSON(_REPEATED)
    return parsed
