"""The one parse of a request body: strict JSON, each object's keys once, escaped keys decoded."""

from __future__ import annotations

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
