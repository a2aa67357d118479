"""Gemini's JSON-array stream is split into whole elements wherever chunks are cut."""

import orjson
import pytest

from capsem_proxy.errors import UpstreamMalformed
from capsem_proxy.streaming.jsonarray import JSONArraySplitter, is_separator

ELEMENTS = [
    {"candidates": [{"content": {"parts": [{"text": 'brace } and bracket ] and quote " inside'}]}}]},
    {"candidates": [{"content": {"parts": [{"text": "escaped backslash \\ then quote \\\""}]}}]},
    {"usageMetadata": {"promptTokenCount": 3}, "list": [[1, 2], {"a": []}]},
]
STREAM = b"[" + b"\n,\r\n".join(orjson.dumps(element) for element in ELEMENTS) + b"\n]"


def _split(chunks):
    splitter = JSONArraySplitter()
    forwarded, elements = b"", []
    for chunk in chunks:
        out, found = splitter.feed(chunk)
        forwarded += out
        elements += found
    return forwarded + splitter.rest(), elements, splitter


def test_whole_stream_gives_each_element():
    forwarded, elements, splitter = _split([STREAM])
    assert forwarded == STREAM
    assert [orjson.loads(element) for element in elements] == ELEMENTS
    assert splitter.elements_seen == 3


def test_every_two_way_split_gives_the_same_elements():
    for cut in range(1, len(STREAM)):
        forwarded, elements, _ = _split([STREAM[:cut], STREAM[cut:]])
        assert forwarded == STREAM, cut
        assert [orjson.loads(element) for element in elements] == ELEMENTS, cut


def test_byte_by_byte():
    forwarded, elements, _ = _split([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert forwarded == STREAM
    assert len(elements) == 3


def test_bytes_of_an_unfinished_element_are_held_back():
    splitter = JSONArraySplitter()
    first = orjson.dumps(ELEMENTS[0])
    out, elements = splitter.feed(b"[" + first + b"\n,\r\n{\"candid")
    assert out == b"[" + first
    assert len(elements) == 1
    assert splitter.elements_seen == 1


def test_an_element_growing_past_the_cap_fails_the_stream():
    splitter = JSONArraySplitter(max_element_bytes=1024)
    splitter.feed(b'[{"text": "' + b"a" * 1000)
    with pytest.raises(UpstreamMalformed, match="larger than 1024 bytes"):
        splitter.feed(b"a" * 100)


def test_whitespace_before_the_array_counts_against_the_cap_too():
    splitter = JSONArraySplitter(max_element_bytes=1024)
    with pytest.raises(UpstreamMalformed):
        splitter.feed(b"[" + b" " * 2000)


def test_separators_are_told_from_content_outside_the_elements():
    assert is_separator(b"\xef\xbb\xbf[\n") and is_separator(b"\n,\r\n") and is_separator(b"")
    assert not is_separator(b'{"candidates": ') and not is_separator(b", 3, ")
