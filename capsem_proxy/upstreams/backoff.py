"""How long to wait before trying an upstream again: exponential back-off with full jitter, or the
provider's own Retry-After when it asks for longer."""

from __future__ import annotations

import random
from email.utils import parsedate_to_datetime
from time import time

from capsem_proxy.upstreams.settings import RetrySettings

__all__ = ["backoff_s", "retry_after_s"]


def backoff_s(retry: int, settings: RetrySettings, rng: random.Random | None = None) -> float:
    """Seconds before retry number `retry` (1 for the first): uniform in [0, min(max, base * 2^(retry-1))]."""
    ceiling = min(settings.max_backoff_ms, settings.backoff_ms * (2 ** (retry - 1))) / 1000.0
    return (rng or random).uniform(0.0, ceiling)


def retry_after_s(headers: list[tuple[bytes, bytes]]) -> float | None:
    """The wait a provider asked for (`retry-after-ms`, or `retry-after` in seconds or as an HTTP
    date), or None when it names none it can be held to."""
    seconds: float | None = None
    for name, value in headers:
        if name == b"retry-after-ms":
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                continue
        if name == b"retry-after":
            text = value.decode("latin-1").strip()
            try:
                seconds = max(0.0, float(text))
            except ValueError:
                try:
                    seconds = max(0.0, parsedate_to_datetime(text).timestamp() - time())
                except (TypeError, ValueError, IndexError):
                    continue
    return seconds
