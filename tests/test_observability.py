"""Session ids derived from conversations, and stored content after redaction."""

from __future__ import annotations

from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.exchange import Exchange, Message
from capsem_proxy.observability import derive_session_id, redacted_text


def _chat(*texts: str, system: str = "be brief") -> Exchange:
    roles = ["user", "assistant"]
    messages = [Message(role=roles[index % 2], text=text) for index, text in enumerate(texts)]
    return Exchange(provider="openai", operation="chat", model="gpt-4o", system=system, messages=messages)


def test_turns_of_one_conversation_share_a_session() -> None:
    first = derive_session_id("tenant-a", _chat("plan a trip to Lisbon"))
    later = derive_session_id("tenant-a", _chat("plan a trip to Lisbon", "Here is a plan", "make it cheaper"))
    assert first == later
    assert first.startswith("s-")


def test_sessions_differ_by_tenant_system_and_opening() -> None:
    base = derive_session_id("tenant-a", _chat("plan a trip to Lisbon"))
    assert derive_session_id("tenant-b", _chat("plan a trip to Lisbon")) != base
    assert derive_session_id("tenant-a", _chat("plan a trip to Lisbon", system="be verbose")) != base
    assert derive_session_id("tenant-a", _chat("plan a trip to Porto")) != base


def test_a_long_opening_is_told_apart_by_its_start_end_and_length() -> None:
    long = "x" * 100_000
    base = derive_session_id("tenant-a", _chat(long))
    assert derive_session_id("tenant-a", _chat(long, "a reply")) == base
    assert derive_session_id("tenant-a", _chat("y" + long[1:])) != base
    assert derive_session_id("tenant-a", _chat(long[:-1] + "y")) != base
    assert derive_session_id("tenant-a", _chat(long + "x")) != base


def test_no_message_no_session() -> None:
    assert derive_session_id("tenant-a", Exchange(provider="openai", operation="chat")) == ""


def test_redacted_text_applies_only_redactions() -> None:
    decisions = [
        Decision(Verdict.REDACT, "pii", "on_model_call", redactions=[("bob@example.com", "[REDACTED:email]")]),
        Decision(Verdict.LOG, "other", "on_model_call", redactions=[("mail", "[nope]")]),
    ]
    assert redacted_text("mail bob@example.com now", decisions) == "mail [REDACTED:email] now"


def test_request_ids_are_24_hex_characters_in_time_order() -> None:
    import re
    import time

    from capsem_proxy.records import new_request_id

    first = new_request_id()
    time.sleep(0.002)
    ids = [new_request_id() for _ in range(100)]
    assert all(re.fullmatch(r"[0-9a-f]{24}", request_id) for request_id in [first, *ids])
    assert all(first[:12] < request_id[:12] for request_id in ids)
    assert len(set(ids)) == 100
