"""OpenAIAdapter: requests captured from the openai SDK, hand-written answers and streams."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest

from capsem_proxy.errors import ErrorKind
from capsem_proxy.providers.openai import OpenAIAdapter
from capsem_proxy.streaming.events import ErrorDelta, StreamEvent, TextDelta, ToolCallDelta, UnreadableDelta
from tests.providers.capture_fixtures import PNG_BYTES, assemble, load_fixture, sse

adapter = OpenAIAdapter()


def _request(name: str, operation: str):
    return adapter.decode_request(operation, load_fixture(name)["body"])


def _chunk(choices: list, usage: dict | None = None) -> StreamEvent:
    return sse(
        None,
        {
            "id": "chatcmpl-9",
            "object": "chat.completion.chunk",
            "created": 1718000000,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_1",
            "choices": choices,
            "usage": usage,
        },
    )


def _feed(operation: str, events: list[StreamEvent]) -> list:
    decoder = adapter.stream_decoder(operation)
    return [delta for event in events for delta in decoder.feed(event)]


def _sdk_client(body: bytes) -> openai.OpenAI:
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    )
    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://proxy.test/v1",
        http_client=httpx2.Client(transport=transport),
        max_retries=0,
    )


# ---------------------------------------------------------------------------- chat requests


def test_chat_plain_system_message_goes_to_system_not_messages():
    exchange = _request("openai_chat_plain", "chat")
    assert (exchange.provider, exchange.operation, exchange.model) == ("openai", "chat", "gpt-4o-mini")
    assert exchange.system == "Be brief."
    assert [(m.role, m.text) for m in exchange.messages] == [("user", "Hello there")]
    assert exchange.prompt == "Hello there"
    assert exchange.stream is False


def test_chat_developer_role_goes_to_system_and_text_parts_are_joined():
    exchange = _request("openai_chat_developer", "chat")
    assert exchange.model == "o3-mini"
    assert exchange.system == "Answer in French."
    assert [(m.role, m.text) for m in exchange.messages] == [("user", "Good morning")]


def test_chat_system_and_developer_messages_are_joined_with_newlines():
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Rule one."},
            {"role": "developer", "content": [{"type": "text", "text": "Rule two."}]},
            {"role": "user", "content": "Go"},
        ],
    }
    exchange = adapter.decode_request("chat", body)
    assert exchange.system == "Rule one.\nRule two."
    assert [m.role for m in exchange.messages] == ["user"]


def test_chat_image_data_url_becomes_media_bytes_and_http_url_a_uri():
    exchange = _request("openai_chat_image", "chat")
    (message,) = exchange.messages
    assert message.text == "What is in this image?"
    inline, remote = message.media
    assert (inline.mime_type, inline.data, inline.uri) == ("image/png", PNG_BYTES, None)
    assert (remote.mime_type, remote.data, remote.uri) == ("image/jpeg", None, "https://example.com/cat.jpg")
    assert exchange.media == [inline, remote]


def test_chat_tools_become_tool_definitions():
    exchange = _request("openai_chat_tools", "chat")
    (tool,) = exchange.tools
    assert tool.name == "get_weather"
    assert tool.description == "Current weather in a city"
    assert tool.parameters["properties"] == {"city": {"type": "string"}}


def test_chat_tool_message_result_is_named_after_the_earlier_tool_call():
    exchange = _request("openai_chat_tool_history", "chat")
    user, assistant, tool = exchange.messages
    assert (user.role, assistant.role, tool.role) == ("user", "assistant", "tool")
    (call,) = assistant.tool_calls
    assert (call.name, call.call_id, call.arguments) == ("get_weather", "call_abc", {"city": "Paris"})
    assert call.raw_arguments == '{"city": "Paris"}'
    (result,) = tool.tool_results
    assert (result.call_id, result.name) == ("call_abc", "get_weather")
    assert result.content == {"temperature_c": 21, "sky": "clear"}
    assert exchange.tool_results == [result]
    assert exchange.prompt == "Weather in Paris?"


def test_chat_streaming_request_sets_stream_flag():
    assert _request("openai_chat_stream", "chat").stream is True


def test_chat_unparsable_tool_arguments_give_empty_dict_and_keep_raw_text():
    body = {
        "messages": [
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}],
            }
        ]
    }
    (call,) = adapter.decode_request("chat", body).tool_calls
    assert (call.name, call.arguments, call.raw_arguments) == ("f", {}, "{oops")


def test_chat_tool_result_plain_text_and_parts_stay_text():
    body = {
        "messages": [
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "[1, 2]"}]},
        ]
    }
    results = adapter.decode_request("chat", body).tool_results
    assert [(r.call_id, r.name, r.content) for r in results] == [("c1", "", "sunny"), ("c2", "", "[1, 2]")]
    assert results[0].as_dict() == {"content": "sunny"}


def test_chat_audio_and_file_parts_are_media():
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                    },
                    {"type": "file", "file": {"file_id": "file-123"}},
                    {"type": "file", "file": {"file_data": "JVBERi0=", "filename": "b.pdf"}},
                ],
            }
        ]
    }
    media = adapter.decode_request("chat", body).media
    assert [(m.mime_type, m.data, m.uri) for m in media] == [
        ("audio/wav", b"RIFF", None),
        ("audio/mpeg", b"ID3", None),
        ("application/pdf", b"%PDF-", None),
        ("application/octet-stream", None, "file-123"),
        ("application/pdf", b"%PDF-", None),
    ]


def test_chat_legacy_functions_and_function_call_messages():
    body = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "function_call": {"name": "lookup", "arguments": '{"q": 1}'}},
            {"role": "function", "name": "lookup", "content": '{"answer": 42}'},
        ],
        "functions": [{"name": "lookup", "description": "Look up", "parameters": {"type": "object"}}],
    }
    exchange = adapter.decode_request("chat", body)
    assert [t.name for t in exchange.tools] == ["lookup"]
    assert [(c.name, c.arguments) for c in exchange.tool_calls] == [("lookup", {"q": 1})]
    (result,) = exchange.tool_results
    assert (result.name, result.content) == ("lookup", {"answer": 42})


def test_chat_malformed_nested_parts_are_skipped_not_raised():
    body = {
        "model": 3,
        "messages": [
            "junk",
            {"role": "user", "content": [None, 7, {"type": "image_url", "image_url": None}, {"type": "text"}]},
            {"role": "assistant", "tool_calls": [None, {"function": "x"}, {"id": "c", "function": {"name": "ok"}}]},
            {"role": "user", "content": [{"type": "text", "text": "kept"}]},
        ],
        "tools": [None, {"type": "function"}, {"type": "function", "function": {"name": 5}}],
    }
    exchange = adapter.decode_request("chat", body)
    assert exchange.model == ""
    assert exchange.prompt == "kept"
    assert [c.name for c in exchange.tool_calls] == ["ok"]
    assert exchange.tools == []


def test_non_object_body_raises_value_error():
    with pytest.raises(ValueError):
        adapter.decode_request("chat", ["not", "an", "object"])


# ---------------------------------------------------------------------------- responses requests


def test_responses_string_input_is_one_user_message():
    exchange = _request("openai_responses_string", "responses")
    assert exchange.model == "gpt-4o-mini"
    assert [(m.role, m.text) for m in exchange.messages] == [("user", "Tell me a joke")]
    assert exchange.system == ""


def test_responses_items_with_function_call_output_and_instructions():
    exchange = _request("openai_responses_items", "responses")
    assert exchange.system == "You are a weather bot."
    user, assistant, tool = exchange.messages
    assert (user.role, user.text) == ("user", "Weather in Paris?")
    (call,) = assistant.tool_calls
    assert (assistant.role, call.name, call.call_id, call.arguments) == (
        "assistant",
        "get_weather",
        "call_w1",
        {"city": "Paris"},
    )
    (result,) = tool.tool_results
    assert (tool.role, result.call_id, result.name, result.content) == (
        "tool",
        "call_w1",
        "get_weather",
        {"temperature_c": 21},
    )


def test_responses_flat_function_tools_are_kept_and_builtin_tools_ignored():
    exchange = _request("openai_responses_tools", "responses")
    assert [(t.name, t.description) for t in exchange.tools] == [("get_weather", "Current weather in a city")]
    assert exchange.tools[0].parameters["required"] == ["city"]
    (message,) = exchange.messages
    assert message.text == "Look at this and check the weather"
    assert [(m.mime_type, m.data) for m in message.media] == [("image/png", PNG_BYTES)]


def test_responses_stream_flag():
    assert _request("openai_responses_stream", "responses").stream is True


def test_responses_reasoning_developer_files_and_assistant_items():
    body = {
        "model": "o4-mini",
        "instructions": "Be careful.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "No guessing."}]},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Summarise"},
                    {"type": "input_file", "filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
                    {"type": "input_file", "file_url": "https://example.com/x.pdf"},
                    {"type": "input_image", "file_id": "file-img"},
                ],
            },
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Need the file."}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Calling."}]},
            {"type": "function_call", "call_id": "c9", "name": "read", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c9", "output": "done"},
            {"type": "function_call_output", "call_id": "c0", "output": [{"type": "input_text", "text": '{"a":1}'}]},
            {"type": "web_search_call", "id": "ws_1"},
        ],
        "tools": [{"type": "file_search", "vector_store_ids": ["vs"]}, {"type": "custom", "name": "grammar"}],
    }
    exchange = adapter.decode_request("responses", body)
    assert exchange.system == "Be careful.\nNo guessing."
    user, assistant, tool = exchange.messages
    assert user.text == "Summarise"
    assert [(m.mime_type, m.data, m.uri) for m in user.media] == [
        ("application/pdf", b"%PDF-", None),
        ("application/pdf", None, "https://example.com/x.pdf"),
        ("application/octet-stream", None, "file-img"),
    ]
    assert (assistant.thinking, assistant.text) == ("Need the file.", "Calling.")
    assert [c.name for c in assistant.tool_calls] == ["read"]
    assert [(r.call_id, r.name, r.content) for r in tool.tool_results] == [("c9", "read", "done"), ("c0", "", {"a": 1})]
    assert [t.name for t in exchange.tools] == ["grammar"]


# ---------------------------------------------------------------------------- other operations


def test_embeddings_inputs_are_user_texts_and_token_arrays_are_ignored():
    exchange = _request("openai_embeddings", "embeddings")
    assert exchange.model == "text-embedding-3-small"
    assert [(m.role, m.text) for m in exchange.messages] == [("user", "first text"), ("user", "second text")]
    assert adapter.decode_request("embeddings", {"input": "one"}).prompt == "one"
    assert adapter.decode_request("embeddings", {"input": [[1, 2, 3]]}).messages == []


def test_models_is_an_empty_exchange_even_without_body():
    exchange = adapter.decode_request("models", None)
    assert (exchange.provider, exchange.operation, exchange.messages) == ("openai", "models", [])


# ---------------------------------------------------------------------------- answers


def test_chat_completion_answer_with_text_tool_calls_and_usage():
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1718000000,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99},
    }
    answer = adapter.decode_answer("chat", body)
    assert answer.text == "Checking."
    (call,) = answer.tool_calls
    assert (call.call_id, call.name, call.arguments, call.raw_arguments) == (
        "call_1",
        "get_weather",
        {"city": "Oslo"},
        '{"city":"Oslo"}',
    )
    assert answer.finish_reason == "tool_calls"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (82, 17)


def test_chat_completion_refusal_is_answer_text():
    body = {
        "choices": [
            {"message": {"role": "assistant", "content": None, "refusal": "I can't help."}, "finish_reason": "stop"}
        ]
    }
    answer = adapter.decode_answer("chat", body)
    assert (answer.text, answer.finish_reason) == ("I can't help.", "stop")


def test_responses_answer_with_reasoning_message_and_function_call():
    body = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "o4-mini",
        "output": [
            {"id": "rs_1", "type": "reasoning", "summary": [{"type": "summary_text", "text": "User wants weather."}]},
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}],
            },
            {
                "id": "fc_1",
                "type": "function_call",
                "status": "completed",
                "call_id": "call_7",
                "name": "get_weather",
                "arguments": '{"city":"Rome"}',
            },
        ],
        "usage": {"input_tokens": 40, "output_tokens": 25, "total_tokens": 65},
    }
    answer = adapter.decode_answer("responses", body)
    assert (answer.text, answer.thinking) == ("Let me look.", "User wants weather.")
    assert [(c.call_id, c.name, c.arguments) for c in answer.tool_calls] == [
        ("call_7", "get_weather", {"city": "Rome"})
    ]
    assert answer.finish_reason == "completed"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (40, 25)


def test_incomplete_responses_answer_reports_the_reason():
    body = {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}, "output": []}
    assert adapter.decode_answer("responses", body).finish_reason == "max_output_tokens"


@pytest.mark.parametrize("operation", ["chat", "responses", "embeddings", "models"])
@pytest.mark.parametrize(
    "body", [None, [], {"choices": "x"}, {"choices": [None]}, {"output": [1, {"type": "message"}]}]
)
def test_odd_answer_shapes_never_raise(operation, body):
    answer = adapter.decode_answer(operation, body)
    assert answer.text == ""
    assert answer.tool_calls == []


def test_embeddings_answer_is_empty():
    body = {"object": "list", "data": [{"embedding": [0.1]}], "usage": {"prompt_tokens": 3}}
    answer = adapter.decode_answer("embeddings", body)
    assert (answer.text, answer.usage.input_tokens) == ("", None)


# ---------------------------------------------------------------------------- chat streams


def test_chat_stream_text_finish_and_usage_in_order():
    deltas = _feed(
        "chat",
        [
            _chunk(
                [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "finish_reason": None}]
            ),
            _chunk([{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}]),
            _chunk([{"index": 0, "delta": {"content": " world"}, "finish_reason": None}]),
            _chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            _chunk([], {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}),
            sse(None, "[DONE]"),
        ],
    )
    assert [type(d).__name__ for d in deltas] == ["TextDelta", "TextDelta", "FinishDelta", "UsageDelta"]
    assembled = assemble(deltas)
    assert assembled["text"] == "Hello world"
    assert assembled["finish"] == ["stop"]
    assert assembled["usage"] == [(9, 2)]


def test_chat_stream_tool_call_fragments_assemble_by_index():
    deltas = _feed(
        "chat",
        [
            _chunk(
                [
                    {
                        "index": 0,
                        "delta": {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call_a",
                                    "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""},
                                }
                            ],
                        },
                        "finish_reason": None,
                    }
                ]
            ),
            _chunk([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}}]),
            _chunk([{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}}]),
            _chunk(
                [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {"index": 1, "id": "call_b", "type": "function", "function": {"name": "get_time"}}
                            ]
                        },
                    }
                ]
            ),
            _chunk([{"index": 0, "delta": {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}}]),
            _chunk([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]),
            sse(None, "[DONE]"),
        ],
    )
    assert deltas[0] == ToolCallDelta(index=0, call_id="call_a", name="get_weather", arguments_fragment="")
    assembled = assemble(deltas)
    assert assembled["calls"] == {
        0: {"id": "call_a", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "call_b", "name": "get_time", "arguments": "{}"},
    }
    assert json.loads(assembled["calls"][0]["arguments"]) == {"city": "Paris"}
    assert assembled["finish"] == ["tool_calls"]


def test_chat_stream_error_data_event_is_an_error_delta():
    deltas = _feed("chat", [sse(None, {"error": {"message": "The server had an error", "type": "server_error"}})])
    assert deltas == [ErrorDelta("The server had an error")]


def test_chat_stream_ignores_done_empty_events_and_odd_shapes():
    decoder = adapter.stream_decoder("chat")
    for data in ["[DONE]", "", '{"choices": [null, {"delta": "x"}]}']:
        assert decoder.feed(sse(None, data)) == []


def test_chat_stream_event_that_is_no_json_object_is_unreadable():
    decoder = adapter.stream_decoder("chat")
    for data in ["not json", "[1, 2]", '\ufeff{"choices": [{"delta": {"content": "x"}}], "bad": }']:
        [unreadable] = decoder.feed(sse(None, data))
        assert isinstance(unreadable, UnreadableDelta), data


def test_chat_stream_reads_what_orjson_refuses_but_the_sdk_accepts():
    for data in ['{"n": 1e999, "choices": [{"delta": {"content": "x"}}]}',
                 '\ufeff{"choices": [{"delta": {"content": "x"}}]}',
                 '{"tool\\u005fcalls": 1, "choices": [{"delta": {"c\\u006fntent": "x"}}]}']:
        assert adapter.stream_decoder("chat").feed(sse(None, data)) == [TextDelta("x")], data


# ---------------------------------------------------------------------------- responses streams


def test_responses_stream_text_tool_call_reasoning_and_completion():
    events = [
        sse(
            "response.created",
            {"type": "response.created", "sequence_number": 0, "response": {"status": "in_progress"}},
        ),
        sse(
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {"id": "rs_1", "type": "reasoning", "summary": []},
            },
        ),
        sse(
            "response.reasoning_summary_text.delta",
            {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0, "delta": "Think"},
        ),
        sse(
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "item_id": "msg_1",
                "output_index": 1,
                "content_index": 0,
                "delta": "Hi ",
            },
        ),
        sse(
            "response.output_text.delta",
            {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "delta": "there"},
        ),
        sse("response.output_text.done", {"type": "response.output_text.done", "text": "Hi there"}),
        sse(
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "output_index": 2,
                "item": {
                    "id": "fc_1",
                    "type": "function_call",
                    "status": "in_progress",
                    "call_id": "call_9",
                    "name": "get_weather",
                    "arguments": "",
                },
            },
        ),
        sse(
            "response.function_call_arguments.delta",
            {
                "type": "response.function_call_arguments.delta",
                "item_id": "fc_1",
                "output_index": 2,
                "delta": '{"city"',
            },
        ),
        sse(
            "response.function_call_arguments.delta",
            {
                "type": "response.function_call_arguments.delta",
                "item_id": "fc_1",
                "output_index": 2,
                "delta": ':"Rome"}',
            },
        ),
        sse(
            "response.completed",
            {
                "type": "response.completed",
                "response": {"status": "completed", "usage": {"input_tokens": 12, "output_tokens": 30}},
            },
        ),
    ]
    assembled = assemble(_feed("responses", events))
    assert assembled["thinking"] == "Think"
    assert assembled["text"] == "Hi there"
    assert assembled["calls"] == {2: {"id": "call_9", "name": "get_weather", "arguments": '{"city":"Rome"}'}}
    assert assembled["finish"] == ["completed"]
    assert assembled["usage"] == [(12, 30)]
    assert assembled["errors"] == []


def test_responses_stream_without_event_names_uses_the_data_type():
    event = StreamEvent(raw=b"", data='{"type":"response.output_text.delta","delta":"x"}', event=None)
    assert adapter.stream_decoder("responses").feed(event) == [TextDelta("x")]


def test_responses_stream_event_it_cannot_read_is_unreadable():
    # The SDK parses every event's data, whatever its name: so must the decoder.
    event = StreamEvent(raw=b"", data="{not json", event="response.in_progress")
    [unreadable] = adapter.stream_decoder("responses").feed(event)
    assert isinstance(unreadable, UnreadableDelta)


def test_responses_stream_reads_events_by_their_data_type_and_refuses_a_disguised_name():
    data = '{"type":"response.output_text.delta","delta":"x"}'
    [unreadable] = adapter.stream_decoder("responses").feed(StreamEvent(raw=b"", data=data, event="response.foo"))
    assert isinstance(unreadable, UnreadableDelta)


def test_responses_stream_error_and_failed_events_are_error_deltas():
    deltas = _feed(
        "responses",
        [
            sse("error", {"type": "error", "code": "server_error", "message": "Something broke", "param": None}),
            sse(
                "response.failed",
                {
                    "type": "response.failed",
                    "response": {"status": "failed", "error": {"code": "x", "message": "Failed"}},
                },
            ),
        ],
    )
    assert deltas == [ErrorDelta("Something broke"), ErrorDelta("Failed")]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kind", "status", "error_type", "code"),
    [
        (ErrorKind.AUTHENTICATION, 401, "invalid_request_error", "invalid_api_key"),
        (ErrorKind.INVALID_REQUEST, 400, "invalid_request_error", None),
        (ErrorKind.NOT_FOUND, 404, "invalid_request_error", "not_found"),
        (ErrorKind.TOO_LARGE, 413, "invalid_request_error", "request_too_large"),
        (ErrorKind.PERMISSION, 403, "invalid_request_error", "policy_blocked"),
        (ErrorKind.RATE_LIMIT, 429, "requests", "rate_limit_exceeded"),
        (ErrorKind.UPSTREAM_UNAVAILABLE, 502, "server_error", "upstream_unavailable"),
        (ErrorKind.UNAVAILABLE, 503, "server_error", "service_unavailable"),
        (ErrorKind.TIMEOUT, 504, "server_error", "upstream_timeout"),
        (ErrorKind.INTERNAL, 500, "server_error", "internal_error"),
        ("something_new", 502, "server_error", None),
        ("something_new", 418, "invalid_request_error", None),
    ],
)
def test_error_payload_type_and_code_by_kind(kind, status, error_type, code):
    assert adapter.error_payload(status, "nope", kind) == {
        "error": {"message": "nope", "type": error_type, "code": code, "param": None}
    }


def test_chat_stream_error_event_bytes_and_the_sdk_raises_api_error():
    data = adapter.stream_error_event("chat", 403, "Blocked by policy: secrets", ErrorKind.PERMISSION, sse=True)
    assert data.startswith(b"data: ") and data.endswith(b"\n\n")
    assert json.loads(data[6:]) == {
        "error": {
            "message": "Blocked by policy: secrets",
            "type": "invalid_request_error",
            "code": "policy_blocked",
            "param": None,
        }
    }
    head = b'data: {"id":"c","object":"chat.completion.chunk","created":0,"model":"m","choices":[]}\n\n'
    client = _sdk_client(head + data)
    with pytest.raises(openai.APIError) as caught:
        for _ in client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True):
            pass
    assert caught.value.message == "Blocked by policy: secrets"
    assert caught.value.body["code"] == "policy_blocked"
    # Our own decoder reads it back as an error.
    assert _feed("chat", [sse(None, data[6:-2].decode())]) == [ErrorDelta("Blocked by policy: secrets")]


def test_responses_stream_error_event_bytes_and_the_sdk_raises_api_error():
    data = adapter.stream_error_event("responses", 504, "Upstream timed out", ErrorKind.TIMEOUT, sse=True)
    head, payload = data.rstrip(b"\n").split(b"\n")
    assert head == b"event: error"
    event = json.loads(payload[len(b"data: ") :])
    assert event["type"] == "error"
    assert (event["code"], event["message"], event["param"], event["sequence_number"]) == (
        "upstream_timeout",
        "Upstream timed out",
        None,
        0,
    )
    assert event["error"]["type"] == "server_error"
    client = _sdk_client(data)
    with pytest.raises(openai.APIError) as caught:
        for _ in client.responses.create(model="m", input="x", stream=True):
            pass
    assert caught.value.message == "Upstream timed out"
    assert _feed("responses", [sse("error", event)]) == [ErrorDelta("Upstream timed out")]


# ---------------------------------------------------------------------------- keys


def test_extract_key_reads_the_bearer_token_the_sdk_sends():
    headers = load_fixture("openai_chat_plain")["headers"]
    assert adapter.extract_key({k.lower(): v for k, v in headers.items()}, {}) == "sk-test-capsem"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"authorization": "  Bearer   sk-abc  "}, "sk-abc"),
        ({"authorization": "bearer sk-abc"}, "sk-abc"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, ""),
        ({"authorization": "Bearer"}, ""),
        ({"authorization": "Bearer "}, ""),
        ({"authorization": "Bearer sk a"}, ""),
        ({"authorization": "Bearer sk\x00a"}, ""),
        ({"authorization": ""}, ""),
        ({"x-api-key": "sk-abc"}, None),
    ],
)
def test_extract_key_missing_is_none_and_malformed_is_empty(headers, expected):
    assert adapter.extract_key(headers, {"key": "ignored"}) == expected
