"""Fake LLM provider (OpenAI, Gemini, Anthropic wire formats) for integration tests and benchmarks.

Run it with ``python -m tests.fake_provider --host 127.0.0.1 --port N`` (``--port 0``: any free port; it prints
``FAKE_PROVIDER_READY http://HOST:PORT``), or from tests with :func:`tests.fake_provider.process.start_fake_provider`.
SDK base URLs: OpenAI ``http://HOST:PORT/v1``, Anthropic and Gemini ``http://HOST:PORT``.

Provider routes: OpenAI ``POST /v1/chat/completions``, ``POST /v1/responses``, ``POST /v1/embeddings``,
``GET /v1/models[/{id}]``; Anthropic ``POST /v1/messages``, ``POST /v1/messages/count_tokens``, ``GET /v1/models``
(chosen by an ``x-api-key`` or ``anthropic-version`` header); Gemini under ``/v1beta``, ``/v1`` and ``/v1alpha``:
``POST models/{model}:generateContent | :streamGenerateContent[?alt=sse] | :countTokens | :embedContent |
:batchEmbedContents``, ``GET models[/{model}]``. Azure OpenAI: ``POST
/openai/deployments/{deployment}/chat/completions``, ``.../embeddings`` and ``POST /openai/responses`` (key in
``api-key``). Vertex AI: the Gemini actions under
``/{v1|v1beta1}/projects/{project}/locations/{location}/publishers/google/models/{model}:{action}`` (bearer token).
Auth: a key is required (OpenAI ``Authorization: Bearer``; Anthropic ``x-api-key`` or Bearer; Gemini
``x-goog-api-key``, ``?key=`` or Bearer). Missing, or equal to ``"bad-key"`` -> 401 in the provider's own shape.

Scenario fields (JSON object in the ``x-fake-scenario`` header, or sticky via ``POST /_fake/script``; header fields
are merged over the sticky ones; unknown fields -> 400):
  reply (str), echo (bool: reply with the last user text), chunk_size (chars per streamed delta, default 8),
  events (number of text deltas: the reply is repeated/cut to events*chunk_size chars), delay_ms (between streamed
  events), first_byte_delay_ms (before the response headers), slow_ms (before anything, even auth; for timeouts),
  tool_call (bool) + tool_name + tool_args (default {"location": "Paris"}): call the first offered tool (or
  tool_name), status + error_body (answer that status with the native error body or the given body),
  auth_error (401), rate_limit (429 + ``retry-after: <retry_after>``, default 1), server_error (500),
  overloaded (Anthropic 529, others 503), fail_times (N: the error applies to the first N requests of that
  scenario only, then success; counted per sticky script or per distinct header value),
  break_after (streams: send N events then abort the connection mid-body; non-streamed: send the headers and half
  the body, then abort), gzip (gzip the non-streamed body, ``content-encoding: gzip``),
  rechunk (streams: the same bytes written otherwise than one event per write: ``bytes`` one byte per write,
  ``whole`` the whole stream in one write, ``random`` writes of random sizes from ``rechunk_seed`` (int); with
  delay_ms between writes; break_after does not apply).
Spellings of a successful answer (all still read by the provider SDKs): content_type (str: the Content-Type sent),
  bom (a UTF-8 byte order mark before the body or the stream), line_end (CR, CRLF or LF: SSE line ends),
  escape_keys (every JSON key spelled with a ``\\u`` escape), huge_number (a ``"x_score": 1e999`` member, which
  orjson refuses). Hostile answers: truncate_json (every JSON object of the answer cut short of its
  closing brace), endless_event (streams: after the first event, one that never ends),
  gzip_bomb (N: the non-streamed body padded with whitespace to N bytes, gzipped), body_bytes (N: the
  non-streamed body padded with whitespace to N bytes).

Control endpoints (no auth, not recorded): ``POST /_fake/script``, ``GET /_fake/script``, ``POST /_fake/reset``
(requests, stream events, script, counters), ``GET /_fake/requests`` (list of {method, path, query_string,
headers: [[name, value], ...] as received, body_b64, ts}), ``GET /_fake/last`` (404 when none),
``GET /_fake/stream_events`` (list of {path, outcome: completed|cancelled|broken, events_sent, events_total, ts}),
``GET /_fake/stats`` (requests_total, cpu_user_s, cpu_system_s), ``GET /_fake/health``.
"""

from __future__ import annotations

from typing import Any

from .scenarios import DEFAULT_REPLY, DEFAULT_TOOL_ARGS, SCENARIO_HEADER, Scenario

__all__ = [
    "DEFAULT_REPLY",
    "DEFAULT_TOOL_ARGS",
    "SCENARIO_HEADER",
    "FakeProviderProcess",
    "Scenario",
    "start_fake_provider",
]


def __getattr__(name: str) -> Any:
    """Lazy access to the process helper (keeps httpx out of the server's imports)."""
    if name in ("FakeProviderProcess", "start_fake_provider"):
        from . import process

        return getattr(process, name)
    raise AttributeError(name)
