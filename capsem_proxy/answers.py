"""The answer path: provider answers go back to the client, whole or streamed, through the
response policies when any apply (blocks, redaction, placeholder restoration).

An answer is read the way the client will read it, whatever its spelling (see
`answer_decoding`): the content type is matched case-insensitively, a JSON body is decoded
whatever type it claims, and an answer the proxy cannot decode while answer policies are active
is refused rather than passed on unchecked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from capsem_proxy.answer_decoding import UnreadableAnswer, is_json_media, media_type, parse_answer_json
from capsem_proxy.asgi import DisconnectWatch, Receive, Send, send_response
from capsem_proxy.config import StreamingSettings
from capsem_proxy.decisions import Decision, Outcome, Verdict, redaction_failure
from capsem_proxy.errors import ProxyError, UpstreamMalformed
from capsem_proxy.exchange import Answer
from capsem_proxy.exchange import ToolCall as EmittedToolCall
from capsem_proxy.hooks import RequestContext
from capsem_proxy.observability import Observer, redacted_text
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.providers.base import ErrorKind, ProviderAdapter
from capsem_proxy.records import RequestRecord
from capsem_proxy.redaction import Placeholders, RedactionFailed, redact_json_bytes, redact_json_document
from capsem_proxy.replies import DECISION_ID_HEADER, block_error, block_message, send_error
from capsem_proxy.routing import Route
from capsem_proxy.scanning import large_body_turn
from capsem_proxy.streaming.guard import AnswerCheck, GuardChecks, StreamGuard, unreadable_decision
from capsem_proxy.streaming.relay import relay_guarded, relay_json_array, relay_sse
from capsem_proxy.streaming.rewrite import rewrite_event_text, split_event_text
from capsem_proxy.streaming.usage import UsageMeter, may_report_usage
from capsem_proxy.upstream import UpstreamResponse

__all__ = ["JSON_ARRAY", "PLACEHOLDERS", "SSE", "WHOLE", "AnswerRelay", "answer_framing", "is_streamed"]

# Key in RequestContext.scratch of the request's reversible-redaction placeholders.
PLACEHOLDERS = "placeholders"
# Operations whose answers carry model output for response policies.
_ANSWER_OPERATIONS = frozenset({"chat", "responses", "generate", "stream_generate", "messages"})
# How an answer is framed: one JSON body, server-sent events, or Gemini's streamed JSON array.
WHOLE, SSE, JSON_ARRAY = "whole", "sse", "json_array"
_BOM = b"\xef\xbb\xbf"


def answer_framing(route: Route, upstream: UpstreamResponse, asked_stream: bool = False) -> str:
    """How to read the answer: as the provider labels it when the label is clear, else as the
    client will read it (a streaming request's SDK parses server-sent events whatever the label;
    Gemini's client picks SSE or the JSON array by the `alt` parameter it sent)."""
    media = media_type(upstream.content_type)
    if media == "text/event-stream":
        return SSE
    if upstream.status >= 400:
        return WHOLE
    if route.stream_by_path:
        return SSE if route.sse and not is_json_media(media) else JSON_ARRAY
    if asked_stream and not is_json_media(media):
        return SSE
    return WHOLE


def is_streamed(route: Route, upstream: UpstreamResponse, asked_stream: bool = False) -> bool:
    """True when the answer is relayed as a stream (SSE, or Gemini's JSON array)."""
    return answer_framing(route, upstream, asked_stream) != WHOLE


class AnswerRelay:
    """Sends a provider's answer on to the client."""

    def __init__(self, streaming: StreamingSettings, observer: Observer) -> None:
        self._streaming = streaming
        self._observer = observer
        self._store_content = observer.store_content

    async def relay(
        self,
        send: Send,
        receive: Receive,
        route: Route,
        adapter: ProviderAdapter,
        upstream: UpstreamResponse,
        context: RequestContext | None,
        pipeline: Pipeline,
        extra_headers: list[tuple[bytes, bytes]],
        record: RequestRecord,
    ) -> int:
        """Relay the answer; returns the status sent. Fills in what `record` learns from it."""
        if not 200 <= upstream.status <= 599:
            # uvicorn cannot send such a status, and no client could read it as an answer.
            upstream.close()
            raise UpstreamMalformed(f"the provider answered with HTTP status {upstream.status}, outside 200-599")
        headers = upstream.headers + extra_headers
        framing = answer_framing(route, upstream, record.stream)
        placeholders: Placeholders | None = context.scratch.get(PLACEHOLDERS) if context is not None else None
        answers = upstream.status < 400 and route.operation in _ANSWER_OPERATIONS
        guarded = (
            context is not None
            and answers
            and (pipeline.has_response_policies() or bool(placeholders) or self._store_content)
        )
        if framing == WHOLE:
            return await self._relay_whole(
                send, route, adapter, upstream, context if guarded else None, pipeline, headers, extra_headers,
                record, answers,
            )
        is_sse = framing == SSE
        record.stream = True
        await send({"type": "http.response.start", "status": upstream.status, "headers": headers})

        def error_event(exc: ProxyError) -> bytes:
            return adapter.stream_error_event(route.operation, exc.status, exc.message, exc.kind, sse=is_sse)

        observer = self._observer
        observer.stream_started()
        try:
            if guarded:
                assert context is not None
                relay, guard = self._guarded(send, upstream, adapter, route, context, pipeline, is_sse, error_event)
                try:
                    await relay_until_disconnect(relay, receive, upstream)
                finally:
                    observer.decisions(context, guard.decisions)
                    usage = guard.answer.usage
                    record.input_tokens, record.output_tokens = usage.input_tokens, usage.output_tokens
                    if self._store_content and record.verdict != Verdict.BLOCK:
                        record.answer = redacted_text(guard.answer.text, guard.decisions)
            else:
                meter = UsageMeter(adapter.stream_decoder(route.operation)) if answers else None
                relay = (relay_sse if is_sse else relay_json_array)(
                    send, upstream, error_event, meter, max_event_bytes=self._streaming.max_event_bytes
                )
                try:
                    await relay_until_disconnect(relay, receive, upstream)
                finally:
                    if meter is not None:
                        record.input_tokens, record.output_tokens = meter.input_tokens, meter.output_tokens
        finally:
            observer.stream_ended()
        return upstream.status

    async def _relay_whole(
        self,
        send: Send,
        route: Route,
        adapter: ProviderAdapter,
        upstream: UpstreamResponse,
        context: RequestContext | None,
        pipeline: Pipeline,
        headers: list[tuple[bytes, bytes]],
        extra_headers: list[tuple[bytes, bytes]],
        record: RequestRecord,
        answers: bool,
    ) -> int:
        """A non-streamed answer: read whole (bounded), checked when `context` is given, sent."""
        body = await upstream.read()
        placeholders: Placeholders | None = context.scratch.get(PLACEHOLDERS) if context is not None else None
        answer: Answer | None = None
        outcome: Outcome | None = None
        checked = context is not None and (
            pipeline.reads_answer_text()
            or bool(placeholders)
            or self._store_content
            or adapter.may_carry_tool_call(body)
        )
        if checked:
            assert context is not None
            try:
                # A large answer is parsed in its turn (capsem_proxy.scanning.large_body_turn).
                async with large_body_turn(len(body)):
                    parsed = parse_answer_json(body)
                    answer = adapter.decode_answer(route.operation, parsed)
            except UnreadableAnswer as exc:
                if pipeline.has_response_policies():
                    refusal = unreadable_decision(str(exc))
                    return await self._refuse(send, adapter, context, record, extra_headers, refusal)
                checked = False  # nothing but storage or restoration wanted it: passed on as sent
            else:
                outcome = await pipeline.check_answer(context, answer)
                self._observer.decisions(context, outcome.decisions)
        if answers:
            self._note_answer(record, adapter, route, body, answer, outcome)
        if outcome is not None:
            assert context is not None
            if outcome.blocked and outcome.governing is not None:
                return await self._refuse(send, adapter, context, record, extra_headers, outcome.governing, noted=True)
            if outcome.governing is not None:
                headers.append((DECISION_ID_HEADER, outcome.governing.decision_id.encode()))
            if outcome.redactions:
                try:
                    # A byte order mark is meaningless to JSON readers; the redacted document goes without it.
                    body = redact_json_document(body.removeprefix(_BOM), outcome.redactions)
                except (RedactionFailed, ValueError):  # ValueError: a spelling only the lenient parser reads
                    return await self._refuse(send, adapter, context, record, extra_headers, redaction_failure(outcome))
        if checked and placeholders:
            body = redact_json_bytes(body, placeholders.restorations())
        await send_response(send, upstream.status, headers, body)
        return upstream.status

    async def _refuse(
        self,
        send: Send,
        adapter: ProviderAdapter,
        context: RequestContext,
        record: RequestRecord,
        extra_headers: list[tuple[bytes, bytes]],
        decision: Decision,
        *,
        noted: bool = False,
    ) -> int:
        """Answer 403 for a whole answer that must not reach the client; `decision` is recorded
        unless it is already (`noted`)."""
        if not noted:
            self._observer.decisions(context, [decision])
        record.answer = None  # what was blocked is not kept, even redacted
        extra_headers.append((DECISION_ID_HEADER, decision.decision_id.encode()))
        await send_error(send, adapter, block_error(decision), extra_headers)
        return 403

    def _note_answer(
        self,
        record: RequestRecord,
        adapter: ProviderAdapter,
        route: Route,
        body: bytes,
        answer: Answer | None,
        outcome: Outcome | None,
    ) -> None:
        """Token counts (and, when configured, the redacted answer text) of a whole answer."""
        if answer is None:
            if not may_report_usage(body) and not self._store_content:
                return
            try:
                answer = adapter.decode_answer(route.operation, parse_answer_json(body))
            except Exception:  # an answer the adapter cannot read still goes to the client as sent
                return
        record.input_tokens, record.output_tokens = answer.usage.input_tokens, answer.usage.output_tokens
        if self._store_content:
            record.answer = redacted_text(answer.text, outcome.decisions if outcome is not None else [])

    def _guarded(
        self,
        send: Send,
        upstream: UpstreamResponse,
        adapter: ProviderAdapter,
        route: Route,
        context: RequestContext,
        pipeline: Pipeline,
        is_sse: bool,
        error_event: Any,
    ) -> tuple[Coroutine[Any, Any, Any], StreamGuard]:
        streaming = self._streaming

        async def check_answer(check: AnswerCheck) -> Outcome:
            return await pipeline.check_answer(
                context, check.answer, final=check.final, include_tool_calls=False, stream=check
            )

        async def check_tool_call(call: EmittedToolCall) -> Outcome:
            return await pipeline.check_emitted_tool_call(context, call)

        placeholders: Placeholders | None = context.scratch.get(PLACEHOLDERS)
        restorations = placeholders.restorations() if placeholders else []
        policies_read_text = pipeline.reads_answer_text() or bool(restorations)
        # Stored answers need the text even when no policy reads it; nothing is held back for that.
        reads_text = policies_read_text or self._store_content
        mode = streaming.mode if policies_read_text or pipeline.has_response_policies() else "pass"
        # Policies that say where a finding may still be in progress hold only that; the others
        # (and placeholder restoration) need the window.
        holds, unheld_window = pipeline.stream_holds()
        restoring = max((len(p) for p, _ in restorations), default=0)
        if holds and unheld_window is None:
            window = restoring
        else:
            unheld = pipeline.window_chars() if unheld_window is None else unheld_window
            window = max(streaming.holdback_chars, unheld, restoring)
        whole_readers, incremental_readers = pipeline.answer_readers()

        def rewrite(raw: bytes, old: str, new: str) -> bytes | None:
            return rewrite_event_text(raw, old, new, sse=is_sse)

        def split(raw: bytes, old: str, head: str, rest: str) -> tuple[bytes, bytes] | None:
            return split_event_text(raw, old, head, rest, sse=is_sse)

        def block_event(decision: Decision) -> bytes:
            return adapter.stream_error_event(
                route.operation, 403, block_message(decision), ErrorKind.PERMISSION, sse=is_sse
            )

        def needs_decoding(raw: bytes) -> bool:
            return may_report_usage(raw) or adapter.may_carry_tool_call(raw)

        guard = StreamGuard(
            GuardChecks(answer=check_answer, tool_call=check_tool_call),
            mode="buffer" if pipeline.needs_whole_answer() else mode,
            window_chars=window,
            max_buffer_bytes=streaming.max_buffer_bytes,
            restorations=restorations,
            rewrite=rewrite,
            split=split,
            holds=holds,
            reads_text=reads_text,
            whole_readers=whole_readers,
            incremental_readers=incremental_readers,
            fail_closed_unreadable=pipeline.has_response_policies(),
        )
        relay = relay_guarded(
            send, upstream, sse=is_sse, decoder=adapter.stream_decoder(route.operation), guard=guard,
            error_event=error_event, block_event=block_event,
            needs_decoding=None if reads_text else needs_decoding,
            max_event_bytes=streaming.max_event_bytes,
        )
        return relay, guard


async def relay_until_disconnect(relay: Coroutine[Any, Any, Any], receive: Receive, upstream: UpstreamResponse) -> None:
    """Run a stream relay, cancelling it (and the upstream request) the moment the client leaves.

    The relay runs in the request's own task; a watcher waits for the client's disconnect message
    from the start and cancels that task, so a relay blocked on a silent provider stops at once too.
    """
    watch = DisconnectWatch(receive, after_s=0.0)
    try:
        await relay
    except asyncio.CancelledError:
        if not watch.client_left:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
    except OSError:
        pass  # the client's socket closed under a write: nothing left to tell it
    finally:
        watch.close()
        upstream.close()
