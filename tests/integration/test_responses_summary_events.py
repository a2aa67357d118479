"""The Responses API repeats the whole text (and each call's arguments) in its summary events
(`response.output_text.done`, `content_part.done`, `output_item.done`, `response.completed`), and
the SDK builds the final answer from them: they are redacted like the deltas, and a summary that
says something the deltas never said does not reach the client."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.fake_provider.process import FakeProviderProcess
from tests.proxy_process import start_proxy

EMAIL = "maria.lopez@acme-logistics.io"
REPLY = f"Write to {EMAIL} for access to the quarterly report."


@pytest.fixture(scope="module")
def redacting_proxy(fake_provider: FakeProviderProcess):
    config = {"policies": [{"class": "pii_detect", "options": {"action": "redact", "scan": ["answers"]}}]}
    process = start_proxy(fake_provider.base_url, config)
    yield process
    process.stop()


def test_redacted_email_is_gone_from_every_summary_event_the_sdk_reads(redacting_proxy, fake_provider):
    client = openai.OpenAI(base_url=f"{redacting_proxy.base_url}/v1", api_key="sk-t", max_retries=0)
    headers = fake_provider.scenario_header(reply=REPLY, chunk_size=5)
    with client.responses.stream(model="gpt-4o", input="hi", extra_headers=headers) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert final.output_text == "Write to [REDACTED:email] for access to the quarterly report."
    done = [event for event in events if event.type == "response.output_text.done"]
    assert done and done[0].text == final.output_text
    assert all(EMAIL not in str(event.model_dump(warnings=False)) for event in events)


def test_raw_stream_carries_no_trace_of_the_redacted_email(redacting_proxy, fake_provider):
    response = httpx.post(
        f"{redacting_proxy.base_url}/v1/responses", json={"model": "gpt-4o", "input": "hi", "stream": True},
        headers={"authorization": "Bearer sk-t", **fake_provider.scenario_header(reply=REPLY, chunk_size=3)},
        timeout=30,
    )
    assert response.status_code == 200
    assert "acme-logistics" not in response.text
    assert response.text.count("[REDACTED:email]") >= 5  # the deltas' text, and four summaries
