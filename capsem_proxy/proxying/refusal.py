"""One way to refuse: a decision that stops a request, or an answer before any of it is sent."""

from __future__ import annotations

from capsem_proxy.decisions import Decision
from capsem_proxy.observability import Observer
from capsem_proxy.proxying.flow import Flow
from capsem_proxy.replies import DECISION_ID_HEADER, block_error, send_error

__all__ = ["refuse"]


async def refuse(flow: Flow, decision: Decision, observer: Observer, *, noted: bool = True) -> int:
    """Answer `decision` with the provider-shaped error naming it (403; 413 for a request with more
    text than the detectors screen); returns the status sent.

    `decision` is recorded first unless it already is (`noted`); whatever was blocked is never
    kept as stored content, not even redacted.
    """
    if not noted and flow.context is not None:
        observer.decisions(flow.context, [decision])
    flow.record.answer = None
    flow.reply_headers.append((DECISION_ID_HEADER, decision.decision_id.encode()))
    error = block_error(decision)
    await send_error(flow.send, flow.adapter, error, flow.reply_headers)
    return error.status
