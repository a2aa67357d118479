"""The SSE splitter hands out whole events, byte for byte, wherever chunks are cut."""

import random

import pytest

from capsem_proxy.errors import UpstreamMalformed
from capsem_proxy.streaming.sse import SSESplitter, _split, event_data, parse_event

STREAM = (
    b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
    b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
    b": keep-alive comment\n\n"
    b'data: {"text":"lo"}\r\n\r\n'
    b"data: [DONE]\n\n"
)


def test_every_split_point_gives_the_same_events_and_bytes():
    whole = SSESplitter().feed_events(STREAM)
    assert len(whole) == 5
    assert b"".join(whole) == STREAM
    for cut in range(1, len(STREAM)):
        splitter = SSESplitter()
        events = splitter.feed_events(STREAM[:cut]) + splitter.feed_events(STREAM[cut:])
        assert events == whole, cut
        assert splitter.pending == b""


def test_byte_by_byte_feeding_releases_each_event_when_its_blank_line_arrives():
    splitter = SSESplitter()
    released = []
    for index in range(len(STREAM)):
        released.extend(splitter.feed_events(STREAM[index : index + 1]))
    assert b"".join(released) == STREAM


def test_incomplete_event_stays_pending():
    splitter = SSESplitter()
    assert splitter.feed(b'data: {"a": 1}\n') == b""
    assert splitter.pending == b'data: {"a": 1}\n'


def test_parse_event_reads_name_and_joins_data_lines():
    event = parse_event(b"event: content_block_delta\ndata: {\"a\":\ndata: 1}\n\n")
    assert event.event == "content_block_delta"
    assert event.data == '{"a":\n1}'
    assert parse_event(b"data:[DONE]\n\n").data == "[DONE]"


MIXED = (
    b'data: {"a": 1}\r\r'  # CR line ends
    b"event: x\r\ndata: 2\r\n\r\n"  # CRLF
    b"data: 3\n\r\n"  # LF then CRLF: an empty line all the same
    b"data: 4\r\n\n"
    b"data: 5\n\n"
)


def test_every_line_end_the_spec_allows_ends_events_wherever_the_chunks_are_cut():
    splitter = SSESplitter()
    whole = splitter.feed_events(MIXED) + splitter.finish()
    assert [parse_event(raw).data for raw in whole] == ['{"a": 1}', "2", "3", "4", "5"]
    assert b"".join(whole) == MIXED
    for cut in range(1, len(MIXED)):
        splitter = SSESplitter()
        events = splitter.feed_events(MIXED[:cut]) + splitter.feed_events(MIXED[cut:]) + splitter.finish()
        assert events == whole, cut


def test_a_cr_at_the_end_of_a_read_waits_for_the_next_byte():
    # It may be the first half of a CRLF: where the event ends must not depend on the read.
    splitter = SSESplitter()
    assert splitter.feed_events(b"data: 1\r\r") == []
    assert splitter.feed_events(b"\n") == [b"data: 1\r\r\n"]
    splitter = SSESplitter()
    assert splitter.feed_events(b"data: 1\r\r") == []
    assert splitter.finish() == [b"data: 1\r\r"]


def test_parse_event_splits_lines_only_where_the_spec_does():
    # U+2028 and other separators str.splitlines() knows are part of the data, not line ends.
    event = parse_event('data: {"text": "a\u2028data: b\x85c"}\r\r'.encode())
    assert event.data == '{"text": "a\u2028data: b\x85c"}'
    assert not event.unknown_lines


def test_parse_event_reads_past_a_byte_order_mark_and_flags_unknown_lines():
    assert parse_event(b'\xef\xbb\xbfdata: {"a": 1}\n\n').data == '{"a": 1}'
    event = parse_event(b'event: x\n{"candidates": []}\ndata: 1\n\n')
    assert event.unknown_lines and event.data == "1"
    assert not parse_event(b": comment\nid: 7\nretry: 10\ndata: 1\n\n").unknown_lines


def test_an_event_growing_past_the_cap_fails_the_stream():
    splitter = SSESplitter(max_event_bytes=1024)
    splitter.feed_events(b"data: " + b"a" * 1000)
    with pytest.raises(UpstreamMalformed, match="larger than 1024 bytes"):
        splitter.feed_events(b"a" * 100)
    assert splitter.pending == b""  # what was held is let go


@pytest.mark.parametrize("raw", [
    b'data: {"a":1}\n\n',
    b'event: message_start\ndata: {"type":"message_start"}\n\n',
    b"event: x\ndata: one\ndata: two\n\n",
    b"event: x\r\ndata: {}\r\n\r\n",
    b"data: {}\r\n\r\n",
    b"data:{}\n\n",
    b"\xef\xbb\xbfdata: {}\n\n",
    b"event: x\nid: 7\ndata: {}\n\n",
    b": comment\ndata: {}\n\n",
    b"event: only\n\n",
    b"data: caf\xc3\xa9\n\n",
    b"data: \n\n",
    b"event: x",
    b"event: x\rdata: y\ndata: z\n\n",
    b"data: a\r\ndata: b\r\n\r\n",
    b"data: a\rb\r\n\r\n",
    b"event: x\r\ndata: a\r\n\r\n",
    b"data: {\"candidates\":[]}\r\n\r\n",
])
def test_event_data_reads_what_parse_event_reads(raw):
    assert event_data(raw) == parse_event(raw).data.encode()


@pytest.mark.parametrize("raw", [
    b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n',
    b"event: \ndata: 1\n\n",
    b"event: a:b\ndata: x: y\n\n",
    b"event: ping\ndata: \n\n",
    b"event: e\ndata: 1\ndata: 2\n\n",
    b"event: e\ndata:1\n\n",
    b"event: e\r\ndata: 1\r\n\r\n",
    b"event: e\ndata: 1\n\n\n",
    b"event: e\n\n",
    b"event: e\nid: 3\ndata: 1\n\n",
    b"event: e\ndata: 1\n{}\n\n",
    "event: \u00e9\ndata: \u2028\xff\n\n".encode(),
    b"event: e\ndata: \xff\xfe\n\n",
    b'data: {"a": 1}\n\n',
    b"data: \n\n",
    b"data: x\r\n\r\n",
    b"data: x\n\n\n",
    b"data: a\ndata: b\n\n",
    b"data: a\rb\n\n",
    b"data: x",
    b"data: x\n",
    "data: \u00e9\xff\n\n".encode(),
])
def test_the_usual_event_shapes_read_as_the_general_reading_does(raw):
    # A comment line first takes the general reading, which skips it.
    general = parse_event(b": c\n" + raw)
    event = parse_event(raw)
    assert (event.raw, event.data, event.event, event.unknown_lines) == (
        raw, general.data, general.event, general.unknown_lines)


def _random_stream(rng, line_ends):
    pieces = []
    for _ in range(rng.randrange(0, 12)):
        lines = rng.choice([[b"data: {}"], [b"event: x", b'data: {"a":1}'], [b"data: a", b"data: b"], [b": c"], [b""]])
        end = rng.choice(line_ends)
        pieces.append(b"".join(line + end for line in lines) + rng.choice(line_ends))
        if rng.random() < 0.2:
            pieces.append(rng.choice([b"\r", b"\n", b"\r\n", b"x", b"\r\n\r\n", b"\n\n"]))
    return b"".join(pieces)


@pytest.mark.parametrize("line_ends", [[b"\n"], [b"\r\n"], [b"\r"], [b"\n", b"\r\n", b"\r"]])
def test_a_read_is_split_as_the_search_from_event_to_event_splits_it(line_ends):
    # A read that starts an event is split at once; a buffer (a bytearray) is searched event by event.
    rng = random.Random(1234)
    for _ in range(2000):
        data = _random_stream(rng, line_ends)
        for final in (False, True):
            events, consumed = _split(data, 0, final)
            assert (events, consumed) == _split(bytearray(data), 0, final), data
            assert all(type(event) is bytes for event in events)
            assert b"".join(events) == data[:consumed]


def test_generated_events_read_as_the_general_reading_reads_them():
    rng = random.Random(99)
    values = [b"", b"x", b"{}", b'{"a":"b"}', b" lead", b"caf\xc3\xa9", b"\xff", b"a:b", b"\xe2\x80\xa8",
              b"a\rb", b"a\r"]
    for _ in range(5000):
        lines = [rng.choice([b"event: ", b"event:", b"data: ", b"data:", b"id: ", b": ", b"odd", b""])
                 + rng.choice(values) for _ in range(rng.choice([1, 1, 2, 2, 3]))]
        ends = [rng.choice([b"\n", b"\n", b"\r\n", b"\r"]) for _ in lines]
        raw = b"".join(line + end for line, end in zip(lines, ends, strict=True)) + rng.choice(
            [b"\n", b"\r\n", b"\r", b""])
        general = parse_event(b": c\n" + raw)
        event = parse_event(raw)
        assert (event.raw, event.data, event.event, event.unknown_lines) == (
            raw, general.data, general.event, general.unknown_lines), raw
