"""Sessions without a header: the turns of one conversation share the session the proxy derives,
another conversation gets its own, and the session timeline lists every turn and decision in order."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.proxy_process import start_proxy

ADMIN_TOKEN = "admin-token-for-session-tests-42"


@pytest.fixture(scope="module")
def session_proxy(fake_provider):
    process = start_proxy(fake_provider.base_url, {"audit": {"url": "memory://"}, "admin": {"token": ADMIN_TOKEN}})
    yield process
    process.stop()


def _admin(proxy, path: str) -> dict:
    answer = httpx.get(f"{proxy.base_url}/admin{path}", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_turns_of_one_chat_group_into_one_derived_session(session_proxy):
    client = openai.OpenAI(base_url=f"{session_proxy.base_url}/v1", api_key="sk-session-tenant", max_retries=0)
    system = {"role": "system", "content": "You plan trips."}
    first = [system, {"role": "user", "content": "Plan three days in Lisbon."}]
    client.chat.completions.create(model="gpt-4o-mini", messages=first)
    second = [*first, {"role": "assistant", "content": "Day one: Alfama."}, {"role": "user", "content": "Cheaper?"}]
    client.chat.completions.create(model="gpt-4o-mini", messages=second)
    other = [system, {"role": "user", "content": "Plan a weekend in Porto."}]
    client.chat.completions.create(model="gpt-4o-mini", messages=other)

    requests = _admin(session_proxy, "/requests?limit=10")["requests"]
    lisbon_turns = {row["session_id"] for row in requests[1:3]}  # newest first: Porto, then the two Lisbon turns
    assert len(lisbon_turns) == 1
    (lisbon,) = lisbon_turns
    assert lisbon.startswith("s-") and requests[0]["session_id"] not in ("", lisbon)

    timeline = _admin(session_proxy, f"/sessions/{lisbon}")["timeline"]
    kinds = [item["type"] for item in timeline]
    assert kinds.count("request") == 2 and kinds.count("decision") >= 2
    times = [item.get("started_at") or item.get("recorded_at") for item in timeline]
    assert times == sorted(times)
    sessions = {row["session_id"]: row for row in _admin(session_proxy, "/sessions")["sessions"]}
    assert sessions[lisbon]["requests"] == 2


def test_a_session_header_wins_over_the_derived_id(session_proxy):
    body = {"model": "m", "messages": [{"role": "user", "content": "Plan three days in Lisbon."}]}
    headers = {"authorization": "Bearer sk-session-tenant", "x-capsem-session-id": "ticket-4711",
               "x-capsem-agent-id": "planner"}
    assert httpx.post(f"{session_proxy.base_url}/v1/chat/completions", json=body, headers=headers).status_code == 200
    (row,) = _admin(session_proxy, "/requests?session_id=ticket-4711")["requests"]
    assert (row["session_id"], row["agent_id"]) == ("ticket-4711", "planner")
