"""Answers are decoded as leniently as the provider SDKs decode them, and no more."""

from __future__ import annotations

import json

import pytest

from capsem_proxy.answer_decoding import (
    UnreadableAnswer,
    is_json_media,
    may_be_disguised,
    media_type,
    parse_answer_json,
)

READ_BY_THE_SDKS = {
    "plain": b'{"text": "x"}',
    "byte order mark": b'\xef\xbb\xbf{"text": "x"}',
    "1e999": b'{"text": "x", "score": 1e999}',
    "NaN and Infinity": b'{"text": "x", "a": NaN, "b": -Infinity}',
    "integer beyond 64 bits": b'{"text": "x", "id": 123456789012345678901234567890}',
    "lone surrogate": b'{"text": "x", "s": "\\ud800"}',
    "escaped key": b'{"t\\u0065xt": "x"}',
    "UTF-16": '{"text": "x"}'.encode("utf-16"),
}


@pytest.mark.parametrize("spelling", list(READ_BY_THE_SDKS))
def test_every_spelling_the_sdks_read_is_read(spelling):
    body = READ_BY_THE_SDKS[spelling]
    assert parse_answer_json(body)["text"] == "x"
    assert json.loads(body)["text"] == "x"  # what the SDKs do with the bytes


def test_text_with_a_byte_order_mark_is_read_too():
    assert parse_answer_json('\ufeff{"a": 1e999}') == {"a": float("inf")}


@pytest.mark.parametrize("body", [b"data: {}", b"{", b"", b"[" * 100_000, b'{"a": 1} trailing'])
def test_what_no_sdk_reads_is_unreadable(body):
    with pytest.raises(UnreadableAnswer):
        parse_answer_json(body)


def test_media_type_ignores_case_and_parameters():
    assert media_type("Text/Event-Stream; charset=UTF-8") == "text/event-stream"
    assert media_type(" Application/JSON ") == "application/json"
    assert is_json_media("application/json") and is_json_media("application/problem+json")
    assert not is_json_media("text/plain")


def test_escapes_and_nul_bytes_mark_bytes_a_byte_search_cannot_judge():
    assert may_be_disguised(b'{"tool\\u005fcalls": []}')
    assert may_be_disguised('{"tool_calls": []}'.encode("utf-16-le"))
    assert not may_be_disguised(b'{"tool_calls": []}')
