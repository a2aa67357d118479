"""The answer path: a provider's answer goes back to the client, whole or streamed, through the
answer policies when any apply (blocks, redaction, placeholder restoration), and what the record
keeps of it (token counts, the stored answer) is noted the same way for both.

An answer is read the way the client will read it, whatever its spelling (see
`answer_decoding`): the content type is matched case-insensitively, a JSON body is decoded
whatever type it claims, and an answer the proxy cannot decode while answer policies are active
is refused rather than passed on unchecked.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from capsem_proxy.answer_decoding import UnreadableAnswer, is_json_media, media_type, parse_answer_json
from capsem_proxy.asgi import DisconnectWatch, Receive, send_response
from capsem_proxy.config import StreamingSettings
from capsem_proxy.decisions import Decision, Outcome, Verdict, redaction_failure
from capsem_proxy.errors import ErrorKind, ProxyError, UpstreamMalformed
from capsem_proxy.exchange import Answer, ToolUse, Usage
from capsem_proxy.hooks import RequestContext
from capsem_proxy.observability import Observer, redacted_text
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.proxying.flow import Flow
from capsem_proxy.proxying.refusal import refuse
from capsem_proxy.records import RequestRecord
from capsem_proxy.redaction import RedactionFailed, redact_json_bytes, redact_json_document
from capsem_proxy.replies import DECISION_ID_HEADER, block_message
from capsem_proxy.routing import Route
from capsem_proxy.scanning import LARGE_BODY_BYTES, large_body_turn
from capsem_proxy.streaming.guard import AnswerCheck, GuardChecks, StreamGuard, unreadable_decision
from capsem_proxy.streaming.lazy_guard import LazyGuard
from capsem_proxy.streaming.relay import relay_guarded, relay_json_array, relay_sse
from capsem_proxy.streaming.rewrite import rewrite_event_text
from capsem_proxy.streaming.templates import TextSplits
from capsem_proxy.streaming.usage import UsageMeter, may_report_usage
from capsem_proxy.upstream import UpstreamResponse

__all__ = ["JSON_ARRAY", "SSE", "WHOLE", "AnswerPath", "answer_framing"]

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


class AnswerPath:
    """Sends a provider's answer on to the client."""

    def __init__(self, streaming: StreamingSettings, observer: Observer) -> None:
        self._streaming = streaming
        self._observer = observer
        self._store_content = observer.store_content

    def relay(self, flow: Flow, upstream: UpstreamResponse, framing: str | None = None) -> Coroutine[Any, Any, int]:
        """Relay the answer (awaited); returns the status sent. Fills in what `flow.record` learns
        from it. `framing` is the answer's `answer_framing`, when the caller has it already. A plain
        function handing back the coroutine that relays: one coroutine fewer per request."""
        if not 200 <= upstream.status <= 599:
            # uvicorn cannot send such a status, and no client could read it as an answer.
            upstream.close()
            raise UpstreamMalformed(f"the provider answered with HTTP status {upstream.status}, outside 200-599")
        if framing is None:
            framing = answer_framing(flow.route, upstream, flow.record.stream)
        answers = upstream.status < 400 and flow.route.operation in _ANSWER_OPERATIONS
        pipeline = flow.pipeline
        guarded = (
            answers
            and flow.context is not None
            and pipeline is not None
            and (pipeline.has_response_policies() or bool(flow.placeholders) or self._store_content)
        )
        if framing == WHOLE:
            return self._whole(flow, upstream, guarded, answers)
        return self._streamed(flow, upstream, framing == SSE, guarded, answers)

    async def _whole(self, flow: Flow, upstream: UpstreamResponse, guarded: bool, answers: bool) -> int:
        """A non-streamed answer: read whole (bounded), checked when `guarded`, sent."""
        body = await upstream.read()
        context, placeholders = flow.context, flow.placeholders
        pipeline = flow.pipeline if guarded else None
        answer: Answer | None = None
        outcome: Outcome | None = None
        checked = pipeline is not None and (
            pipeline.reads_answer_text()
            or bool(placeholders)
            or self._store_content
            or flow.adapter.may_carry_tool_call(body)
        )
        if checked:
            assert context is not None and pipeline is not None
            try:
                # A large answer is parsed in its turn (capsem_proxy.scanning.large_body_turn); the usual
                # one at once.
                if len(body) <= LARGE_BODY_BYTES:
                    answer = flow.adapter.decode_answer(flow.route.operation, parse_answer_json(body))
                else:
                    async with large_body_turn(len(body)):
                        answer = flow.adapter.decode_answer(flow.route.operation, parse_answer_json(body))
            except UnreadableAnswer as exc:
                if pipeline.has_response_policies():
                    return await refuse(flow, unreadable_decision(str(exc)), self._observer, noted=False)
                checked = False  # nothing but storage or restoration wanted it: passed on as sent
            else:
                outcome = await pipeline.check_answer(context, answer)
                self._observer.outcome(context, outcome)
        if answers:
            if answer is None and not self._store_content:
                # Only the counts are kept: no Answer is built around them.
                usage = self._usage_only(flow, body)
                if usage is not None:
                    flow.record.input_tokens, flow.record.output_tokens = usage.input_tokens, usage.output_tokens
            else:
                if answer is None:
                    answer = self._stored_only(flow, body)
                if answer is not None:
                    self._note(flow.record, answer, outcome.decisions if outcome is not None else [])
        if outcome is not None:
            governing = outcome.governing
            if governing is not None:
                if outcome.blocked:
                    return await refuse(flow, governing, self._observer)
                flow.reply_headers.append((DECISION_ID_HEADER, governing.decision_id.encode()))
            if outcome.redactions:
                try:
                    # A byte order mark is meaningless to JSON readers; the redacted document goes without it.
                    body = redact_json_document(body.removeprefix(_BOM), outcome.redactions)
                except (RedactionFailed, ValueError):  # ValueError: a spelling only the lenient parser reads
                    return await refuse(flow, redaction_failure(outcome), self._observer, noted=False)
        if checked and placeholders:
            body = redact_json_bytes(body, placeholders.restorations())
        await send_response(flow.send, upstream.status, upstream.headers + flow.reply_headers, body)
        return upstream.status

    def _usage_only(self, flow: Flow, body: bytes) -> Usage | None:
        """The token counts of an unchecked answer, when it may have any (the rest of the answer
        is not decoded for nothing)."""
        if not may_report_usage(body):
            return None
        try:
            return flow.adapter.decode_usage(flow.route.operation, parse_answer_json(body))
        except Exception:  # an answer the adapter cannot read still goes to the client as sent
            return None

    def _stored_only(self, flow: Flow, body: bytes) -> Answer | None:
        """An unchecked answer decoded for its stored text and token counts."""
        try:
            return flow.adapter.decode_answer(flow.route.operation, parse_answer_json(body))
        except Exception:  # an answer the adapter cannot read still goes to the client as sent
            return None

    def _note(self, record: RequestRecord, answer: Answer, decisions: list[Decision]) -> None:
        """What the record keeps of an answer, whole or streamed: its token counts and, when
        configured, its text as redacted (never the text of a blocked answer)."""
        usage = answer.usage
        record.input_tokens, record.output_tokens = usage.input_tokens, usage.output_tokens
        if self._store_content and record.verdict != Verdict.BLOCK:
            record.answer = redacted_text(answer.text, decisions)

    async def _streamed(
        self, flow: Flow, upstream: UpstreamResponse, is_sse: bool, guarded: bool, answers: bool
    ) -> int:
        """A streamed answer: relayed event by event, through a StreamGuard when `guarded`."""
        adapter, operation, record = flow.adapter, flow.route.operation, flow.record
        record.stream = True
        await flow.send({"type": "http.response.start", "status": upstream.status,
                         "headers": upstream.headers + flow.reply_headers})

        def error_event(exc: ProxyError) -> bytes:
            return adapter.stream_error_event(operation, exc.status, exc.message, exc.kind, sse=is_sse)

        observer = self._observer
        observer.stream_started()
        try:
            if guarded:
                context, pipeline = flow.context, flow.pipeline
                assert context is not None and pipeline is not None  # what `guarded` means
                relay, guard = self._guarded(flow, context, pipeline, upstream, is_sse, error_event)
                try:
                    await _until_client_leaves(relay, flow.receive, upstream)
                finally:
                    built = guard.guard
                    if built is not None:
                        observer.decisions(context, built.decisions)
                        self._note(record, built.answer, built.decisions)
                    else:  # no event needed the guard: nothing was decided, the counts are all there is
                        record.input_tokens, record.output_tokens = guard.input_tokens, guard.output_tokens
            else:
                meter = UsageMeter(adapter.stream_decoder(operation)) if answers else None
                relay = (relay_sse if is_sse else relay_json_array)(
                    flow.send, upstream, error_event, meter, max_event_bytes=self._streaming.max_event_bytes
                )
                try:
                    await _until_client_leaves(relay, flow.receive, upstream)
                finally:
                    if meter is not None:
                        record.input_tokens, record.output_tokens = meter.input_tokens, meter.output_tokens
        finally:
            observer.stream_ended()
        return upstream.status

    def _guarded(
        self,
        flow: Flow,
        context: RequestContext,
        pipeline: Pipeline,
        upstream: UpstreamResponse,
        is_sse: bool,
        error_event: Any,
    ) -> tuple[Coroutine[Any, Any, Any], LazyGuard]:
        """The relay of a stream that policies check (or whose placeholders are restored, or whose
        text is stored), and the guard that decides what of it is released.

        When nothing reads the text, the guard is built only if an event may hold a tool call
        (`LazyGuard`): most streams go out unread, with their token counts alone read."""
        adapter, operation = flow.adapter, flow.route.operation
        placeholders = flow.placeholders
        restorations = placeholders.restorations() if placeholders else []
        policies_read_text = bool(restorations) or pipeline.reads_answer_text()
        # Stored answers need the text even when no policy reads it; nothing is held back for that.
        reads_text = policies_read_text or self._store_content

        def block_event(decision: Decision) -> bytes:
            return adapter.stream_error_event(operation, 403, block_message(decision), ErrorKind.PERMISSION, sse=is_sse)

        decoder = adapter.stream_decoder(operation)

        def build() -> StreamGuard:
            return self._guard(context, pipeline, restorations, policies_read_text, reads_text, is_sse,
                               decoder.padding_fields)

        max_buffer_bytes = self._streaming.max_buffer_bytes
        guard = LazyGuard(build() if reads_text else build, max_buffer_bytes)
        relay = relay_guarded(
            flow.send, upstream, sse=is_sse, decoder=decoder, guard=guard,
            error_event=error_event, block_event=block_event,
            event_need=None if reads_text else adapter.stream_event_need,
            max_event_bytes=self._streaming.max_event_bytes,
        )
        return relay, guard

    def _guard(
        self,
        context: RequestContext,
        pipeline: Pipeline,
        restorations: list[tuple[str, str]],
        policies_read_text: bool,
        reads_text: bool,
        is_sse: bool,
        padding: tuple[str, ...] = (),
    ) -> StreamGuard:
        """The guard of one stream, configured by the policies that check it; `padding`: the
        decoder's `padding_fields`, for the splits of its events."""
        streaming = self._streaming

        # Plain functions handing back the pipeline's coroutine: no coroutine of their own per check.
        def check_answer(check: AnswerCheck) -> Coroutine[Any, Any, Outcome]:
            return pipeline.check_answer(
                context, check.answer, final=check.final, include_tool_calls=False, stream=check
            )

        def check_tool_call(call: ToolUse) -> Coroutine[Any, Any, Outcome]:
            return pipeline.check_emitted_tool_call(context, call)

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

        return StreamGuard(
            GuardChecks(answer=check_answer, tool_call=check_tool_call),
            mode="buffer" if pipeline.needs_whole_answer() else mode,
            window_chars=window,
            max_buffer_bytes=streaming.max_buffer_bytes,
            restorations=restorations,
            rewrite=rewrite,
            split=TextSplits(sse=is_sse, padding=padding),
            holds=holds,
            reads_text=reads_text,
            whole_readers=whole_readers,
            incremental_readers=incremental_readers,
            fail_closed_unreadable=pipeline.has_response_policies(),
        )


async def _until_client_leaves(relay: Coroutine[Any, Any, Any], receive: Receive, upstream: UpstreamResponse) -> None:
    """Run a stream relay, cancelling it (and the upstream request) the moment the client leaves.

    The relay runs in the request's own task; a watcher waits for the client's disconnect message
    from the start and cancels that task, so a relay blocked on a silent provider stops at once too.
    """
    with DisconnectWatch(receive, after_s=0.0):
        try:
            await relay
        except OSError:
            pass  # the client's socket closed under a write: nothing left to tell it
        finally:
            upstream.close()
