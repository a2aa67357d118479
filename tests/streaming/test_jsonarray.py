"""Gemini's JSON-array stream is split into whole elements wherever chunks are cut."""

import orjson

from capsem_proxy.streaming.jsonarray import JSONArraySplitter

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
