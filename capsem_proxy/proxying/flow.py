"""The flow: everything the proxy holds about one proxied request, from routing to the last
answer byte (in the spirit of mitmproxy's `HTTPFlow`).

The request path fills it in step by step (tenant, body, decoded request, policies and their
decisions, placeholders), the answer path reads it, and the access log, the audit trail and the
trace read its `record` once it is over. Nothing else carries per-request state.
"""

from __future__ import annotations

from collections.abc import Awaitable, MutableMapping
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any

from capsem_proxy.asgi import Receive, Send
from capsem_proxy.decisions import Outcome
from capsem_proxy.hooks import RequestContext
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.providers.base import ProviderAdapter
from capsem_proxy.records import RequestRecord
from capsem_proxy.redaction import Placeholders
from capsem_proxy.routing import Route

if TYPE_CHECKING:
    from capsem_proxy.gateway.hook import Passage
    from capsem_proxy.tracing import RequestSpan

__all__ = ["Flow"]


@dataclass(slots=True, eq=False)
class Flow:
    """One proxied request and what the proxy decided about it."""

    request_id: str
    method: str
    # The path exactly as sent (routes are matched on it), and the query string as sent.
    path: str
    query_string: bytes
    # Request headers by lower-case name (the last value of each), and those that go upstream.
    headers: dict[str, str]
    forwarded: list[tuple[str, str]]
    route: Route
    adapter: ProviderAdapter
    # What the audit trail, the metrics and the access log will say about it, filled in as it goes.
    record: RequestRecord
    span: RequestSpan | None
    # Added to whatever the proxy answers: the request id, CORS, the governing decision's id.
    reply_headers: list[tuple[bytes, bytes]]
    receive: Receive
    client_send: Send
    started: float  # perf_counter() when the request arrived
    # Who asks: the tenant (a keyed hash of the caller's key), set once the key is read.
    tenant_id: str = ""
    # The caller's provider key: never stored, logged or recorded; handed to the upstream that serves.
    caller_key: str = field(default="", repr=False)
    body: bytes = b""
    # The caller asked for a streamed answer (by the path, or by the body's `stream`).
    stream: bool = False
    # What the policies see of the request: set once its body is decoded (None for a request no
    # policy reads, such as a model listing).
    context: RequestContext | None = None
    # The policies chosen for this request, and what they decided about it.
    pipeline: Pipeline | None = None
    outcome: Outcome | None = None
    # Reversible redactions of the request: placeholder -> original, restored in its answer only.
    placeholders: Placeholders | None = None
    # The request through the team gateway (gateway key or JWT, limits), when it is on.
    passage: Passage | None = None

    def send(self, message: MutableMapping[str, Any]) -> Awaitable[None]:
        """Send an ASGI message to the client (awaited), noting when the first answer byte went out.
        A plain function handing back the client's send: no coroutine of its own per message."""
        record = self.record
        if record.ttfb_ms is None and message["type"] == "http.response.body":
            record.ttfb_ms = (perf_counter() - self.started) * 1000.0
        return self.client_send(message)
