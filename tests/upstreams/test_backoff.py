"""Back-off with full jitter, and the provider's Retry-After read in every spelling."""

from __future__ import annotations

import random
from email.utils import formatdate
from time import time

from capsem_proxy.upstreams.backoff import backoff_s, retry_after_s
from capsem_proxy.upstreams.settings import RetrySettings


def test_backoff_doubles_with_full_jitter_up_to_its_cap():
    settings = RetrySettings(backoff_ms=100, max_backoff_ms=300)
    rng = random.Random(7)
    for retry, ceiling in ((1, 0.1), (2, 0.2), (3, 0.3), (6, 0.3)):
        waits = [backoff_s(retry, settings, rng) for _ in range(200)]
        assert all(0 <= wait <= ceiling for wait in waits)
        assert max(waits) > ceiling * 0.8  # spread over the whole range, not a fixed wait


def test_retry_after_in_seconds_milliseconds_and_http_dates():
    assert retry_after_s([(b"retry-after", b"2")]) == 2
    assert retry_after_s([(b"retry-after", b"0.5")]) == 0.5
    assert retry_after_s([(b"retry-after-ms", b"250"), (b"retry-after", b"9")]) == 0.25
    in_ten = retry_after_s([(b"retry-after", formatdate(time() + 10, usegmt=True).encode())])
    assert in_ten is not None and 8 < in_ten <= 10
    assert retry_after_s([(b"retry-after", b"soon")]) is None
    assert retry_after_s([]) is None
