"""The one parse of a request body: strict JSON, each object's keys once, escaped keys decoded."""

from __future__ import annotations

import json
import random

import pytest

from capsem_proxy.errors import MalformedJSON
from capsem_proxy.request_body import parse_request_body


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "a": 2}',
        b'{"m": [{"role": "user", "content": "x", "content": "y"}]}',
        b'{"a": {"b": {"c": [[{"d": 1, "d": 1}]]}}}',
        b'{"content": "x", "\\u0063ontent": "y"}',
        b'{"k": 1, "k": 1}',
    ],
    ids=["top level", "nested in an array", "deep", "an escaped twin", "even with equal values"],
)
def test_a_repeated_key_is_refused(body):
    with pytest.raises(MalformedJSON, match="repeats a key"):
        parse_request_body(body)


def test_keys_spelled_with_escapes_are_the_plain_keys():
    assert parse_request_body(b'{"tool\\u005fcalls": [], "\\u006dodel": "m"}') == {"tool_calls": [], "model": "m"}


def test_the_same_key_in_sibling_objects_is_fine():
    body = b'{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}'
    assert parse_request_body(body)["messages"][1] == {"role": "user", "content": "b"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "must be a JSON object"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": 1e999}', "not valid JSON"),
        (b'{"a": "\\ud800"}', "not valid JSON"),
        (b'{"a": "\xff"}', "not valid JSON"),
        (b'\xef\xbb\xbf{"a": 1}', "not valid JSON"),
        (b'{"a": 1} x', "not valid JSON"),
        (b'{"a": ' + b"[" * 2000 + b"]" * 2000 + b"}", "not valid JSON"),
        (b'{"a": ' + b"[" * 1000 + b"]" * 1000 + b"}", "nests too deeply"),
    ],
    ids=["array", "NaN", "infinite number", "lone surrogate", "invalid UTF-8", "byte order mark", "trailing data",
         "beyond orjson's depth", "beyond the key check's depth"],
)
def test_what_is_not_strict_json_is_refused(body, reason):
    with pytest.raises(MalformedJSON, match=reason):
        parse_request_body(body)


def _random_json(rng: random.Random, depth: int = 0) -> str:
    """A random JSON value as text, with colons, escapes and repeated keys here and there."""
    choice = rng.random()
    if depth > 4 or choice < 0.3:
        return rng.choice(['"a:b"', '"\\u003a"', '"x"', "1", "null", '"\\u0061"', '"c\\"d:"', "true", '""'])
    if choice < 0.5:
        return "[" + ", ".join(_random_json(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
    keys = [rng.choice(['"a"', '"b"', '"\\u0061"', '"k:1"', '"k\\u003a1"', '"c"']) for _ in range(rng.randint(0, 4))]
    return "{" + ", ".join(f"{key}: {_random_json(rng, depth + 1)}" for key in keys) + "}"


def test_counting_colons_finds_exactly_the_bodies_the_full_scan_refuses():
    rng = random.Random(10)
    refused = 0
    for _ in range(3000):
        body = ('{"m": ' + _random_json(rng) + "}").encode()
        try:
            json.JSONDecoder(object_pairs_hook=_strict_pairs).decode(body.decode())
            expected_ok = True
        except ValueError:
            expected_ok = False
        try:
            parse_request_body(body)
            ok = True
        except MalformedJSON:
            ok = False
        assert ok is expected_ok, body
        refused += not ok
    assert 300 < refused < 2700  # both kinds were exercised


def _strict_pairs(pairs):
    if len({key for key, _ in pairs}) != len(pairs):
        raise ValueError("repeated key")
    return dict(pairs)


def test_a_body_deeper_than_orjson_writes_is_still_checked():
    deep = b'{"a": ' + b'[{"k": 1}, ' * 300 + b"1" + b"]" * 300 + b"}"
    assert parse_request_body(deep)["a"][0] == {"k": 1}
    repeated = b'{"a": ' + b'[{"k": 1, "k": 2}, ' * 300 + b"1" + b"]" * 300 + b"}"
    with pytest.raises(MalformedJSON, match="repeats a key"):
        parse_request_body(repeated)
