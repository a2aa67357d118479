"""The SSE splitter hands out whole events, byte for byte, wherever chunks are cut."""

from capsem_proxy.streaming.sse import SSESplitter, parse_event

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
