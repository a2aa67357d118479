"""JSON-RPC framing and SSE events as the MCP proxy reads them: every message kind is told apart,
what is no message is named as such, and an event is written anew only where its data changed."""

from __future__ import annotations

import pytest

from capsem_proxy.mcp.events import event_with_data, read_event
from capsem_proxy.mcp.jsonrpc import InvalidMessage, check_message, error_response, parse_messages


def test_requests_notifications_and_responses_are_told_apart():
    request = check_message({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}})
    notification = check_message({"jsonrpc": "2.0", "method": "notifications/initialized"})
    response = check_message({"jsonrpc": "2.0", "id": "a", "result": {}})
    error = check_message({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "no"}})
    assert (request.is_request, notification.is_notification, response.is_response, error.is_response) == (
        True, True, True, True)
    assert request.params == {"name": "x"} and request.method == "tools/call"


@pytest.mark.parametrize(
    ("value", "request_id"),
    [
        ([], None),
        ({"jsonrpc": "1.0", "id": 3, "method": "x"}, 3),
        ({"jsonrpc": "2.0", "id": True, "method": "x"}, None),
        ({"jsonrpc": "2.0", "id": [1], "method": "x"}, None),
        ({"jsonrpc": "2.0", "id": 4, "method": ""}, 4),
        ({"jsonrpc": "2.0", "id": 5, "method": "x", "params": "text"}, 5),
        ({"jsonrpc": "2.0", "id": 6}, 6),
        ({"jsonrpc": "2.0", "id": 7, "result": {}, "error": {}}, 7),
        ({"jsonrpc": "2.0", "result": {}}, None),
    ],
)
def test_what_is_no_message_is_refused_keeping_a_readable_id(value, request_id):
    with pytest.raises(InvalidMessage) as refused:
        check_message(value)
    assert refused.value.request_id == request_id


def test_a_body_is_one_message_or_a_batch_with_its_bad_members_kept_apart():
    messages, batch = parse_messages(b'[{"jsonrpc": "2.0", "method": "a"}, 5]')
    assert batch and messages[0].method == "a" and isinstance(messages[1], InvalidMessage)
    with pytest.raises(ValueError) as not_json:
        parse_messages(b"{")
    assert not_json.value.args[1] == -32700
    with pytest.raises(ValueError) as empty:
        parse_messages(b"[]")
    assert empty.value.args[1] == -32600


def test_error_responses_carry_data_only_when_given():
    expected = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "down"}}
    assert error_response(1, -32000, "down") == expected
    assert error_response(None, -32001, "no", {"decision_id": "d"})["error"]["data"] == {"decision_id": "d"}


def test_events_yield_their_messages_and_say_what_they_cannot_read():
    event = read_event(b'id: 7\nevent: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n')
    assert event.event_id and not event.unreadable and event.messages[0].id == 1
    assert read_event(b"id: 8\ndata: \n\n").messages == []  # a priming event
    assert read_event(b": keep-alive\n\n").messages == []
    assert read_event(b"data: {broken\n\n").unreadable
    assert read_event(b'data: {"jsonrpc":"2.0"}\n\n').unreadable
    assert read_event(b'data: {"jsonrpc":"2.0","id":1,"result":{}}\nweird line\n\n').unreadable
    batch = read_event(b'data: [{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"n"}]\n\n')
    assert batch.batch and len(batch.messages) == 2


def test_an_event_written_anew_keeps_its_id_name_and_retry():
    raw = b'id: 7\r\nevent: message\r\nretry: 100\r\ndata: {"old": 1}\r\n\r\n'
    assert event_with_data(raw, {"new": 2}) == b'id: 7\nevent: message\nretry: 100\ndata: {"new":2}\n\n'
