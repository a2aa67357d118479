"""What the proxy records about one request once it is over (audit, metrics, traces)."""

from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass
from time import time_ns
from typing import Any

__all__ = ["RequestRecord", "new_request_id"]

# The ids' random parts are read from the OS 512 ids at a time: an id must be unique, not secret,
# and a read per id was a system call per request. Each id takes the next number of `_numbers`
# (atomic under the GIL): its round of 512 names the pool it reads, its place the 12 characters it
# takes, so no two ids take the same characters of the same pool, whatever the threads.
_IDS_PER_READ = 512
_numbers = itertools.count()
_pool: tuple[int, str] = (-1, "")


def _forget_pool() -> None:
    """A forked worker reads randomness of its own: parent and child never share a pool."""
    global _pool
    _pool = (-1, "")


os.register_at_fork(after_in_child=_forget_pool)


def new_request_id() -> str:
    """24 hex characters: milliseconds since the epoch, then 48 random bits. Ids sort by time, so
    the audit indexes on them grow at one end instead of being rewritten all over (about 2 µs
    less per stored row than random ids)."""
    global _pool
    round_, place = divmod(next(_numbers), _IDS_PER_READ)
    pool = _pool
    if pool[0] != round_:
        pool = _pool = (round_, os.urandom(6 * _IDS_PER_READ).hex())
    at = place * 12
    return f"{time_ns() // 1_000_000:012x}{pool[1][at:at + 12]}"


@dataclass(slots=True)
class RequestRecord:
    """One proxied request, as audited: metadata only, never a key; content only when configured
    (`prompt`/`answer`, after redaction)."""

    request_id: str
    started_at: float  # unix time, seconds
    tenant_id: str = ""
    session_id: str = ""
    agent_id: str = ""
    provider: str = ""
    operation: str = ""  # chat, responses, generate, messages… (the route's operation)
    route: str = ""  # the served route, model-free: "/v1/chat/completions", "/v1beta/models/{model}:generateContent"
    model: str = ""
    stream: bool = False
    status: int = 0
    verdict: str = "ALLOW"  # the strictest verdict taken on the request or its answer
    decision_id: str = ""  # the decision that governed, when not ALLOW
    reason: str = ""  # its reason
    latency_ms: float = 0.0  # until the last byte went to the client
    upstream_ms: float | None = None  # until the provider's answer headers arrived
    ttfb_ms: float | None = None  # until the first answer byte went to the client
    input_tokens: int | None = None
    output_tokens: int | None = None
    prompt: str | None = None
    answer: str | None = None
    # ALLOW decisions folded into this row instead of rows of their own (audit/folding.py), as the
    # JSON the audit stores; set when the request is recorded.
    allowed: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
