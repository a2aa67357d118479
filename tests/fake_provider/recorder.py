"""Cheap request and stream-lifecycle recording for the fake provider."""

from __future__ import annotations

import base64
import time
from collections import deque
from typing import Any

RawHeaders = tuple[tuple[bytes, bytes], ...]


class Recorder:
    """Bounded in-memory log: requests as raw tuples, serialised only when asked for."""

    __slots__ = ("_requests", "_streams", "total_requests")

    def __init__(self, maxlen: int = 1000) -> None:
        self._requests: deque[tuple[str, str, RawHeaders, bytes, float]] = deque(maxlen=maxlen)
        self._streams: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self.total_requests = 0

    def record(self, method: str, raw_path: str, headers: RawHeaders, body: bytes) -> None:
        """Append one request (called on the hot path: a tuple append only)."""
        self._requests.append((method, raw_path, headers, body, time.time()))
        self.total_requests += 1

    def stream_event(self, path: str, outcome: str, events_sent: int, events_total: int) -> None:
        """Record how a streamed answer ended: completed, cancelled or broken."""
        self._streams.append(
            {
                "path": path,
                "outcome": outcome,
                "events_sent": events_sent,
                "events_total": events_total,
                "ts": time.time(),
            }
        )

    def clear(self) -> None:
        """Forget everything recorded."""
        self._requests.clear()
        self._streams.clear()

    def requests(self) -> list[dict[str, Any]]:
        """All recorded requests, oldest first, in JSON-ready form."""
        return [_to_json(item) for item in self._requests]

    def last(self) -> dict[str, Any] | None:
        """The most recent request, or None."""
        return _to_json(self._requests[-1]) if self._requests else None

    def streams(self) -> list[dict[str, Any]]:
        """All recorded stream outcomes, oldest first."""
        return list(self._streams)


def _to_json(item: tuple[str, str, RawHeaders, bytes, float]) -> dict[str, Any]:
    method, raw_path, headers, body, ts = item
    path, _, query = raw_path.partition("?")
    return {
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers],
        "body_b64": base64.b64encode(body).decode("ascii"),
        "ts": ts,
    }
