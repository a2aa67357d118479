"""Relays a streamed answer to the client, whole events at a time, as they arrive.

Events are cut only at their boundaries, so a stream the provider breaks off (or that a
policy ends) can always be closed with a well-formed provider error event.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from capsem_proxy.decisions import Decision
from capsem_proxy.errors import ErrorKind, ProxyError
from capsem_proxy.streaming.events import TOOL_CALL, Delta, StreamDecoder, StreamEvent, UnreadableDelta
from capsem_proxy.streaming.guard import StreamBlocked, StreamGuard
from capsem_proxy.streaming.jsonarray import DEFAULT_MAX_ELEMENT_BYTES, JSONArraySplitter, is_separator
from capsem_proxy.streaming.lazy_guard import LazyGuard
from capsem_proxy.streaming.sse import DEFAULT_MAX_EVENT_BYTES, SSESplitter, parse_event
from capsem_proxy.streaming.templates import TextEvents
from capsem_proxy.streaming.usage import HeldUsage, UsageMeter, sse_events, sse_usage_reader
from capsem_proxy.upstream import UpstreamResponse

__all__ = ["relay_guarded", "relay_json_array", "relay_sse"]

logger = logging.getLogger("capsem_proxy.streaming")

Send = Callable[[dict[str, Any]], Awaitable[None]]
ErrorEvent = Callable[[ProxyError], bytes]


async def _send_body(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def relay_sse(
    send: Send,
    upstream: UpstreamResponse,
    error_event: ErrorEvent,
    meter: UsageMeter | None = None,
    *,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> None:
    """Forward SSE events as they complete; end with the provider's error event on a failure
    (the provider's, or an event growing past `max_event_bytes`)."""
    splitter = SSESplitter(max_event_bytes)
    try:
        async for chunk in upstream.chunks():
            complete = chunk if splitter.whole_events(chunk) else splitter.feed(chunk)
            if complete:
                await _send_body(send, complete)
                if meter is not None:
                    meter.sse(complete)
        tail = b"".join(splitter.finish())
        if tail:
            await _send_body(send, tail)
            if meter is not None:
                meter.sse(tail)
    except ProxyError as exc:
        await _send_body(send, error_event(exc))
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def relay_json_array(
    send: Send,
    upstream: UpstreamResponse,
    error_event: ErrorEvent,
    meter: UsageMeter | None = None,
    *,
    max_event_bytes: int = DEFAULT_MAX_ELEMENT_BYTES,
) -> None:
    """Forward Gemini's JSON-array stream element by element; on a failure, close the array
    with an error element so the client still parses a complete array."""
    splitter = JSONArraySplitter(max_event_bytes)
    bytes_sent = 0
    try:
        async for chunk in upstream.chunks():
            forwarded, elements = splitter.feed(chunk)
            if forwarded:
                bytes_sent += len(forwarded)
                await _send_body(send, forwarded)
                if meter is not None:
                    for element in elements:
                        meter.element(element)
        tail = splitter.rest()
        if tail:
            await _send_body(send, tail)
    except ProxyError as exc:
        await _send_body(send, _closing(error_event(exc), False, bytes_sent))
    await send({"type": "http.response.body", "body": b"", "more_body": False})


BlockEvent = Callable[[Decision], bytes]

_UNKNOWN_LINES = UnreadableDelta("the event holds lines that are no server-sent event field")
_OUTSIDE_ELEMENTS = UnreadableDelta("the stream holds content outside its array elements")


def _element_usage_reader(decoder: StreamDecoder) -> Callable[[bytes], list[Delta]]:
    """Reads the token counts of one JSON-array element, with `decoder.feed_usage`."""

    def read(element: bytes) -> list[Delta]:
        return decoder.feed_usage(StreamEvent(raw=element, data=element.decode("utf-8", "replace")))

    return read


def _sse_deltas(decoder: StreamDecoder, raw: bytes) -> list[Delta]:
    event = parse_event(raw)
    deltas = decoder.feed(event)
    if event.unknown_lines:
        deltas.append(_UNKNOWN_LINES)
    return deltas


async def relay_guarded(
    send: Send,
    upstream: UpstreamResponse,
    *,
    sse: bool,
    decoder: StreamDecoder,
    guard: StreamGuard | LazyGuard,
    error_event: ErrorEvent,
    block_event: BlockEvent,
    event_need: Callable[[bytes], int] | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> None:
    """Forward a stream through a StreamGuard: each event is decoded, offered to the guard, and
    only what the guard releases is sent. A block ends the stream with the provider's error event.

    `event_need(raw)` is given when no policy reads the text (`ProviderAdapter.stream_event_need`):
    only events it says may hold a tool call (and every event while a call is open) are decoded in
    full; the others go out untouched while the guard holds nothing (`StreamGuard.pass_unread`),
    read for their token counts alone when they may have any. What the decoder cannot read
    reaches the guard as an UnreadableDelta, for it to fail closed. A LazyGuard is built at the first
    event that goes through it.
    """
    if isinstance(guard, StreamGuard):
        guard = LazyGuard(guard)
    bytes_sent = 0
    sse_splitter = SSESplitter(max_event_bytes) if sse else None
    array_splitter = None if sse else JSONArraySplitter(max_event_bytes)
    # Counts of the events sent unread, read when the stream ends (or before the guard's next event).
    usage = HeldUsage(sse_usage_reader(decoder), sse_events) if sse else HeldUsage(_element_usage_reader(decoder))
    # Bytes the guard released and not yet sent. A read may carry many events: what the guard
    # released for the events before a block still goes out, so what the client gets depends on
    # the events only, never on how the provider's bytes were cut into reads.
    released: list[bytes] = []
    # True until the guard released the answer's first text (see below).
    early = True
    ending = b""
    # Reads that are whole events, each holding no call, go out at once while nothing is held.
    whole_need = event_need if sse else None
    # When every event is read (`event_need` None) no counts are ever held back: each event goes
    # straight to the guard, its text events read by their shape when the decoder allows it.
    reader = guard.guard if event_need is None else None
    if event_need is None and decoder.text_events_alone:
        read_event: Callable[[bytes], list[Delta]] = TextEvents(
            partial(_sse_deltas, decoder), decoder.padding_fields, decoder.silent_events).deltas
    else:
        read_event = partial(_sse_deltas, decoder)
    try:
        async for chunk in upstream.chunks():
            if sse_splitter is not None:
                if (
                    whole_need is not None
                    and sse_splitter.whole_events(chunk)
                    and guard.pass_unread(chunk)
                    and (need := whole_need(chunk)) != TOOL_CALL
                ):
                    if need:
                        guard.add_usage(usage.add(chunk))
                    bytes_sent += len(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    continue
                events = sse_splitter.feed_events(chunk)
                for at, raw in enumerate(events):
                    if event_need is None:
                        if not early and bytes_sent and reader is not None:
                            # Nothing goes out before the read is done now: its other events go to
                            # the guard together, what they release kept in `released` as it comes.
                            await reader.push_events(events[at:], read_event, released)
                            break
                        if reader is None:
                            reader = guard.get()
                        out = await reader.push(raw, read_event(raw))
                    elif guard.pass_unread(raw) and (need := event_need(raw)) != TOOL_CALL:
                        if need:
                            guard.add_usage(usage.add(raw))
                        released.append(raw)
                        out = b""
                    else:
                        guard.add_usage(usage.settle())
                        out = await guard.get().push(raw, _sse_deltas(decoder, raw))
                    if out:
                        released.append(out)
                        if early:
                            # Until the first text is out, what the guard releases goes out at once,
                            # not after the checks of the read's other events: the time to the first
                            # byte (and to the first text) is the client's wait. Later releases go
                            # out once a read.
                            bytes_sent += await _send_released(send, released)
                            early = not guard.text_released
                    if not bytes_sent and released and released[-1]:
                        bytes_sent += await _send_released(send, released)
            else:
                assert array_splitter is not None
                for segment, element in array_splitter.feed_segments(chunk):
                    if (
                        event_need is not None
                        and guard.pass_unread(segment)
                        and (need := event_need(segment)) != TOOL_CALL
                    ):
                        if need:
                            guard.add_usage(usage.add(element))
                        released.append(segment)
                    else:
                        if event_need is not None:
                            guard.add_usage(usage.settle())
                        event = StreamEvent(raw=segment, data=element.decode("utf-8", "replace"))
                        deltas = decoder.feed(event)
                        if not is_separator(segment[: len(segment) - len(element)]):
                            deltas.append(_OUTSIDE_ELEMENTS)
                        out = await guard.get().push(segment, deltas)
                        if out:
                            released.append(out)
                            if early:
                                bytes_sent += await _send_released(send, released)
                                early = not guard.text_released
                    if not bytes_sent and released and released[-1]:
                        bytes_sent += await _send_released(send, released)
            if released:
                bytes_sent += await _send_released(send, released)
        guard.add_usage(usage.settle())
        if sse_splitter is not None:
            # An event the provider did not terminate still goes through the guard, never around it.
            for raw in sse_splitter.finish():
                released.append(await guard.get().push(raw, _sse_deltas(decoder, raw)))
            if guard.guard is not None:
                released.append(await guard.guard.finish())
        else:
            assert array_splitter is not None
            if guard.guard is not None:
                released.append(await guard.guard.finish())
            # Only the array's closing bracket may follow the last element; anything else is dropped.
            rest = array_splitter.rest()
            if rest.strip() == b"]":
                released.append(rest)
    except StreamBlocked as blocked:
        bytes_sent += await _send_released(send, released)
        ending = _closing(block_event(blocked.decision), sse, bytes_sent)
    except ProxyError as exc:
        # What the guard still held was never approved: it is dropped with the broken stream.
        bytes_sent += await _send_released(send, released)
        ending = _closing(error_event(exc), sse, bytes_sent)
    except Exception:
        # A bug while inspecting must still end the stream the way the SDK understands.
        logger.exception("stream inspection failed")
        internal = ProxyError("internal error in the proxy while inspecting the stream", status=500,
                              kind=ErrorKind.INTERNAL)
        ending = _closing(error_event(internal), sse, bytes_sent)
    else:
        if released:
            await _send_released(send, released)
    finally:
        guard.add_usage(usage.settle())  # the counts of what was sent, however the stream ended
    if ending:
        await _send_body(send, ending)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_released(send: Send, released: list[bytes]) -> int:
    """Send (and forget) what the guard released so far, if anything; the number of bytes sent."""
    body = b"".join(released)
    released.clear()
    if body:
        await _send_body(send, body)
    return len(body)


def _closing(event: bytes, sse: bool, bytes_sent: int) -> bytes:
    """An error event that ends the stream well-formed (for a JSON array: as its last element)."""
    if sse:
        return event
    return (b",\r\n" + event + b"\n]") if bytes_sent else (b"[" + event + b"]")
