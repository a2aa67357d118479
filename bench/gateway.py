"""Scenario `gateway`: what gateway keys plus a Redis-backed rate limit cost in proxy CPU per request,
against the same proxy without them (the caller's own provider key, no limits), in the same run.

The `gateway-on` target authenticates a `cpk-` key (cached lookup, held provider key substituted) and
checks a tenant's requests and tokens per minute in Redis (one EVALSHA per request; usage settled in
batches). Both targets keep the default audit (SQLite) and metrics. Target: on ÷ off ≤ 1.2."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING, Any

import httpx

from bench.report import Row, Verdict, paired_ratio, round_ratios

if TYPE_CHECKING:
    from bench.runner import Bench
    from bench.servers import Server

__all__ = ["GATEWAY_CONFIGS", "GATEWAY_ENV", "GATEWAY_TARGETS", "measure_gateway", "prepare_gateway",
           "rows_gateway", "verdicts_gateway"]

Raw = dict[str, Any]
ByTarget = dict[str, Raw]

ON, OFF = "gateway-on", "gateway-off"
GATEWAY_TARGETS = (ON, OFF)
RATIO_LIMIT = 1.2
_ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
REDIS_URL = os.environ.get("CAPSEM_PROXY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
GATEWAY_ENV = {"CAPSEM_PROXY_MASTER_KEY": "bench-master-key-0123456789abcdef0123456789"}
_UNLIMITED = {"requests_per_minute": 1_000_000_000, "tokens_per_minute": 1_000_000_000_000}
GATEWAY_CONFIGS: dict[str, dict[str, Any]] = {
    OFF: {"admin": {"token": _ADMIN_TOKEN}},
    ON: {
        "admin": {"token": _ADMIN_TOKEN},
        "auth": {"mode": "gateway"},
        "limits": {"store_url": REDIS_URL, "key_prefix": f"capsem-bench:{uuid.uuid4().hex}:",
                   "defaults": _UNLIMITED},
    },
}
_KINDS = (("json", "non-streamed"), ("stream", "stream, 20 text events"))


def prepare_gateway(server: Server, provider_key: str) -> None:
    """Create the gateway key the load generator sends (held provider key: the bench's usual one)."""
    if server.name != ON:
        return
    answer = httpx.post(server.base_url + "/admin/keys", headers={"authorization": f"Bearer {_ADMIN_TOKEN}"},
                        json={"tenant": "bench", "provider_keys": {"openai": provider_key}}, timeout=10)
    answer.raise_for_status()
    server.api_key = answer.json()["key"]


def _cpu_per_request(raw: Raw) -> float | None:
    cpu = (raw.get("cpu_s") or {}).get("server") or {}
    answers = raw.get("ok") or 0
    return 1e6 * cpu["ticks"] / answers if answers and "ticks" in cpu else None


def measure_gateway(bench: Bench, server: Server) -> Raw:
    p = bench.profile
    out: Raw = {}
    for kind, stream, requests in (("json", False, p.cpu_requests), ("stream", True, p.cpu_stream_requests)):
        raw = bench.load(server, concurrency=16, warmup=p.cpu_warmup, requests=requests, stream=stream,
                         settle=p.cpu_settle)
        out[kind] = {"load": raw, "cpu_us": _cpu_per_request(raw)}
    return out


def _ratios(by: ByTarget, kind: str) -> list[float]:
    """on ÷ off of each round (measured one after the other, so drifts mostly cancel)."""
    return round_ratios(by.get(ON, {}).get("_rounds", []), by.get(OFF, {}).get("_rounds", []),
                        lambda item: item[kind]["cpu_us"])


def rows_gateway(by: ByTarget) -> list[Row]:
    section = "gateway key + Redis limit on vs off: proxy CPU per request, concurrency 16"
    rows = []
    for kind, label in _KINDS:
        rows.append(Row(section, label, "µs/req", {t: by.get(t, {}).get(kind, {}).get("cpu_us") for t in
                                                   GATEWAY_TARGETS}, ("ratio", ON, OFF), 1,
                        key=f"gateway_cpu_us_{kind}"))
    return rows


def verdicts_gateway(by: ByTarget) -> list[Verdict]:
    out = []
    for kind, label in _KINDS:
        ratio, spread = paired_ratio(_ratios(by, kind))
        out.append(Verdict(f"CPU per request, gateway + Redis limit ÷ off, {label}", ratio, RATIO_LIMIT, "x",
                           f"per round {spread}" if spread else ""))
    return out
