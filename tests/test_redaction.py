"""Redaction primitives: spans, segments across stream events, JSON bytes, event rewrites."""

import base64
import itertools
import json
import time

import orjson
import pytest

from capsem_proxy.exchange import Exchange
from capsem_proxy.providers.openai import OpenAIAdapter
from capsem_proxy.redaction import (
    RedactionFailed,
    find_spans,
    redact_json_bytes,
    redact_json_document,
    rewrite_segment,
)
from capsem_proxy.streaming.rewrite import rewrite_event_text

EMAIL = "bob@example.com"


def test_json_bytes_change_only_inside_the_redacted_strings():
    body = b'{ "z":1,  "messages":[{"content":"mail bob@example.com now"}], "unknown": [1.50, null] }'
    redacted = redact_json_bytes(body, [(EMAIL, "[REDACTED:EMAIL]")])
    assert redacted == body.replace(EMAIL.encode(), b"[REDACTED:EMAIL]")


def test_ascii_escaped_json_is_redacted_in_the_same_spelling():
    text = "café owner josé@exämple.com"
    body = json.dumps({"content": text}).encode()  # \\u escapes
    redacted = redact_json_bytes(body, [("josé@exämple.com", "[REDACTED:EMAIL]")])
    assert json.loads(redacted) == {"content": "café owner [REDACTED:EMAIL]"}
    assert redacted.startswith(b'{"content": "caf\\u00e9 owner ')


def test_spans_prefer_longer_originals_and_never_overlap():
    spans = find_spans("key sk-abcdef and sk-abc", [("sk-abcdef", "[A]"), ("sk-abc", "[B]")])
    assert spans == [(4, 13, "[A]"), (18, 24, "[B]")]


def test_segments_across_events_rebuild_the_redacted_text():
    text = "write to bob@example.com today"
    cuts = [0, 11, 14, 20, 26, len(text)]
    spans = find_spans(text, [(EMAIL, "[REDACTED:EMAIL]")])
    pieces = [rewrite_segment(text, start, end, spans) for start, end in itertools.pairwise(cuts)]
    assert "".join(pieces) == "write to [REDACTED:EMAIL] today"
    # The replacement goes where the span starts; events inside the span carry nothing.
    assert pieces == ["write to [REDACTED:EMAIL]", "", "", " t", "oday"]


def test_sse_event_rewrite_touches_only_the_text():
    raw = b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"bob@ex"}}]}\n\n'
    rewritten = rewrite_event_text(raw, "bob@ex", "[REDACTED]", sse=True)
    assert rewritten.endswith(b"\n\n") and rewritten.startswith(b"data: ")
    assert orjson.loads(rewritten[6:])["choices"][0]["delta"]["content"] == "[REDACTED]"
    named = b'event: content_block_delta\r\ndata: {"delta":{"type":"text_delta","text":"hi"}}\r\n\r\n'
    assert rewrite_event_text(named, "hi", "yo", sse=True).startswith(b"event: content_block_delta\r\ndata: ")


def test_event_rewrite_refuses_ambiguous_or_missing_text():
    raw = b'data: {"content":"m","text":"m"}\n\n'
    assert rewrite_event_text(raw, "m", "x", sse=True) is None
    assert rewrite_event_text(b'data: {"content":"a"}\n\n', "zzz", "x", sse=True) is None


def test_json_array_element_rewrite_keeps_its_separators():
    segment = b'\n,\r\n{"candidates":[{"content":{"parts":[{"text":"secret"}]}}]}'
    rewritten = rewrite_event_text(segment, "secret", "[X]", sse=False)
    assert rewritten.startswith(b"\n,\r\n{")
    assert b'"text":"[X]"' in rewritten


def test_a_match_inside_an_escape_sequence_is_left_alone():
    body = json.dumps({"content": "\tom@x.com and tom@x.com"}).encode()  # tab + "om@x.com", then the address
    redacted = redact_json_bytes(body, [("tom@x.com", "[REDACTED]")])
    assert json.loads(redacted) == {"content": "\tom@x.com and [REDACTED]"}


def test_document_redaction_keeps_bytes_when_the_rewrite_reaches_every_original():
    body = b'{"a": "key sk-123 here",   "b": [1.50]}'
    assert redact_json_document(body, [("sk-123", "[K]")]) == b'{"a": "key [K] here",   "b": [1.50]}'


def test_unusual_escapes_are_decoded_and_redacted_rather_than_let_through():
    # `\/` and `\u0073` spell "/" and "s": the byte rewrite cannot see the original.
    body = b'{"url": "https:\\/\\/host\\/\\u0073k-123", "n": 1}'
    redacted = redact_json_document(body, [("sk-123", "[K]")])
    assert orjson.loads(redacted) == {"url": "https://host/[K]", "n": 1}


def test_a_replacement_may_spell_its_original():
    assert redact_json_document(b'{"k": "my password"}', [("password", "[REDACTED:password]")]) == (
        b'{"k": "my [REDACTED:password]"}'
    )


def test_a_rewrite_that_spells_the_original_again_fails_closed():
    # Removing "sk-123" twice from "sk-sk-sk-123123123" still leaves "sk-123".
    with pytest.raises(RedactionFailed):
        redact_json_document(b'{"k": "sk-sk-sk-123123123"}', [("sk-123", "")])


# --- many findings, deep documents ---------------------------------------------------------------


def _addresses(count: int) -> list[str]:
    return [f"user{index:05d}.{'abcdefghij'[index % 10]}@mail{index % 97}.example.org" for index in range(count)]


def _redact_all(count: int) -> float:
    """Redacts `count` addresses in one document (and finds their spans); the CPU seconds it took."""
    addresses = _addresses(count)
    text = " and ".join(addresses)
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": text}]})
    redactions = sorted(((address, f"[REDACTED:email_{n}]") for n, address in enumerate(addresses)),
                        key=lambda pair: len(pair[0]), reverse=True)
    started = time.thread_time()
    redacted = redact_json_document(body, redactions)
    spans = find_spans(text, redactions)
    spent = time.thread_time() - started
    content = orjson.loads(redacted)["messages"][0]["content"]
    assert "@" not in content and content.count("[REDACTED:email_") == count
    assert len(spans) == count
    return spent


def test_fifty_thousand_redactions_take_one_pass_not_one_per_redaction():
    # Ten times the redactions in a ten times longer text (1.6 MB): one pass does ten times the
    # work, one pass per redaction a hundred times. Compared with each other, in this thread's CPU
    # time, the two runs say which, on a fast machine or a busy one.
    small = min(_redact_all(5_000) for _ in range(2))
    large = _redact_all(50_000)
    assert large < 30 * small, (small, large)


def test_overlapping_originals_are_resolved_longest_first_in_one_pass():
    text = "xx abcd yy bcd zz"
    spans = find_spans(text, [("abcd", "[L]"), ("bcd", "[S]"), ("ab", "[T]")])
    assert spans == [(3, 7, "[L]"), (11, 14, "[S]")]


def test_a_replacement_is_never_rewritten_again():
    body = b'{"k": "mail bob@x.io"}'
    assert redact_json_bytes(body, [("bob@x.io", "[R:bob]"), ("bob", "[N]")]) == b'{"k": "mail [R:bob]"}'


def _nested(depth: int, inner: bytes) -> bytes:
    return b'{"a":' * depth + inner + b"}" * depth


def test_a_document_nested_800_levels_is_redacted_without_recursion():
    body = _nested(800, b'"mail bob@acme.io now"')
    redacted = redact_json_document(body, [("bob@acme.io", "[R]")])
    assert redacted == body.replace(b"bob@acme.io", b"[R]")


def test_a_document_nested_800_levels_with_unusual_escapes_is_decoded_and_redacted():
    body = _nested(800, b'"mail bob\\u0040acme.io now"')  # the byte rewrite cannot see "bob@acme.io"
    redacted = redact_json_document(body, [("bob@acme.io", "[R]")])
    value = orjson.loads(redacted)
    for _ in range(800):
        value = value["a"]
    assert value == "mail [R] now"


def test_json_strings_walks_any_depth_in_document_order():
    from capsem_proxy.policies.detector_policy import json_strings

    value: object = ["last"]
    for index in range(800):
        value = {"k": f"s{index}", "v": value}
    strings = json_strings(value)
    assert len(strings) == 801 and strings[0] == "s799" and strings[-1] == "last"
    assert json_strings({"a": ["x", {"b": "y"}], "c": "z"}) == ["x", "y", "z"]


# ---------------------------------------------------------------------------- decoded views


def _chat(*messages: dict) -> Exchange:
    return OpenAIAdapter().decode_request("chat", {"model": "m", "messages": list(messages)})


def test_a_request_still_holds_text_a_byte_rewrite_cannot_reach():
    secret = "ghp_" + "Zq8Lm2Rt5Vx9Kb3Nw7Hc1Jd4Fg6Sp0Ty2Ue8"
    document = base64.b64encode(f"token: {secret}".encode()).decode()
    in_base64 = _chat({"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.txt", "file_data": document}}]})
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEabc\n-----END RSA PRIVATE KEY-----"
    in_json_text = _chat({"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": json.dumps({"key": pem})})
    assert in_base64.holds_any([(secret, "[REDACTED:github_token]")])
    assert in_json_text.holds_any([(pem, "[REDACTED:private_key]")])
    rewritten = _chat({"role": "user", "content": "token: [REDACTED:github_token]"})
    assert not rewritten.holds_any([(secret, "[REDACTED:github_token]")])
    # A replacement may spell its original (a kind named like the value): that is not a leftover.
    assert not _chat({"role": "user", "content": "[REDACTED:email]"}).holds_any([("email", "[REDACTED:email]")])
