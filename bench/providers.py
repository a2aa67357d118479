"""The `providers` scenario: CPU per request for each provider's stream and with the text detectors on.

Targets: `direct` (the fake provider), `baseline` (the bare pass-through), `proxy` (the default
configuration) and `proxy-detectors` (the default policy plus `secrets`, `pii_detect`, `injection`
and `egress`, each with its default options). Each round measures, per target, CPU per request of
the server process at concurrency 16 for an OpenAI chat completion (non-streamed) and a stream of 20
text events from each of OpenAI, Anthropic and Gemini (`streamGenerateContent?alt=sse`), then time
to the first body byte and to the first text byte of the OpenAI stream at concurrency 1, and RSS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from bench.procstat import rss_bytes
from bench.report import Row, Verdict, paired_ratio, round_ratios

if TYPE_CHECKING:
    from bench.runner import Bench
    from bench.servers import Server

__all__ = ["DETECTOR_POLICIES", "KINDS", "PROVIDER_TARGETS", "RequestKind", "detectors_config",
           "measure_providers", "rows_providers", "verdicts_providers"]

PROVIDER_TARGETS = ("direct", "baseline", "proxy", "proxy-detectors")
CPU_RATIO_LIMIT = 1.25
DETECTORS_CPU_RATIO_LIMIT = 2.5
ADDED_TTFB_LIMIT_MS = 1.0
DETECTORS_RSS_LIMIT_MIB = 150.0

DETECTOR_POLICIES: list[dict[str, Any]] = [
    {"class": "capsem.policies.debug_policy.DebugPolicy", "hooks": ["on_model_call", "on_tool_call"]},
    {"class": "secrets"}, {"class": "pii_detect"}, {"class": "injection"}, {"class": "egress"},
]

_SYSTEM = "You are a helpful assistant. Answer briefly."
_USER = "Write one sentence about the sea, for a benchmark."
_MESSAGES = [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": _USER}]
_STREAM_SCENARIO = orjson.dumps({"events": 20}).decode()


@dataclass(frozen=True, slots=True)
class RequestKind:
    """One request the load generator repeats, and how a complete answer ends."""

    label: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stream: bool
    stream_end: str = "data: [DONE]\n\n"
    text_mark: str = '"content":"'

    def loadgen_args(self) -> list[str]:
        args = ["--path", self.path, "--body", self.body.decode()]
        for name, value in self.headers:
            args += ["--header", f"{name}: {value}"]
        if self.stream:
            args += ["--stream", "--header", f"x-fake-scenario: {_STREAM_SCENARIO}",
                     "--stream-end", self.stream_end.encode("unicode_escape").decode(), "--text-mark", self.text_mark]
        return args


KINDS: dict[str, RequestKind] = {
    "json": RequestKind(
        "OpenAI chat, non-streamed", "/v1/chat/completions", (("Authorization", "Bearer sk-bench"),),
        orjson.dumps({"model": "gpt-4o-mini", "messages": _MESSAGES, "temperature": 0.2, "max_tokens": 64}), False),
    "openai-stream": RequestKind(
        "OpenAI chat, stream", "/v1/chat/completions", (("Authorization", "Bearer sk-bench"),),
        orjson.dumps({"model": "gpt-4o-mini", "messages": _MESSAGES, "max_tokens": 256, "stream": True}), True),
    "anthropic-stream": RequestKind(
        "Anthropic messages, stream", "/v1/messages",
        (("x-api-key", "sk-ant-bench"), ("anthropic-version", "2023-06-01")),
        orjson.dumps({"model": "claude-sonnet-4-5", "system": _SYSTEM, "messages": [_MESSAGES[1]], "max_tokens": 256,
                      "stream": True}),
        True, 'data: {"type":"message_stop"}\n\n', '"text":"'),
    "gemini-stream": RequestKind(
        "Gemini streamGenerateContent, SSE", "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        (("x-goog-api-key", "AIza-bench"),),
        orjson.dumps({"systemInstruction": {"parts": [{"text": _SYSTEM}]},
                      "contents": [{"role": "user", "parts": [{"text": _USER}]}]}),
        True, "\n", '"text":"'),
}


def detectors_config() -> dict[str, Any]:
    """The default policy plus the four text detectors."""
    return {"policies": DETECTOR_POLICIES}


def _cpu_us(raw: dict[str, Any]) -> float | None:
    cpu = (raw.get("cpu_s") or {}).get("server") or {}
    n = raw.get("ok") or 0
    return 1e6 * cpu["ticks"] / n if n and "ticks" in cpu else None


def measure_providers(bench: Bench, server: Server) -> dict[str, Any]:
    p = bench.profile
    out: dict[str, Any] = {}
    for name, kind in KINDS.items():
        n = p.cpu_stream_requests if kind.stream else p.cpu_requests
        raw = bench.load(server, concurrency=16, warmup=p.cpu_warmup, requests=n, settle=p.cpu_settle, kind=kind)
        out[name] = {"cpu_us": _cpu_us(raw), "ok": raw.get("ok")}
    raw = bench.load(server, concurrency=1, warmup=p.ttfb_warmup, requests=p.ttfb_requests, kind=KINDS["openai-stream"],
                     text_ttfb=True)
    out["ttfb_ms"] = raw["ttfb_ms"]["p50"]
    out["text_ttfb_ms"] = (raw.get("text_ttfb_ms") or {}).get("p50")
    out["rss_mib"] = rss_bytes(server.pid) / 2**20
    return out


def _values(by: dict[str, dict[str, Any]], *path: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for target in PROVIDER_TARGETS:
        node: Any = by.get(target)
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        out[target] = node if isinstance(node, int | float) else None
    return out


def rows_providers(by: dict[str, dict[str, Any]]) -> list[Row]:
    section = "per provider, CPU per request of the server process (concurrency 16; direct = fake provider)"
    rows = []
    for name, kind in KINDS.items():
        values = _values(by, name, "cpu_us")
        rows.append(Row(section, kind.label, "µs/req", values, ("ratio", "proxy", "baseline"), 0,
                        key=f"providers_cpu_us_{name}"))
        base = values.get("baseline")
        rows.append(Row(section, f"  ÷ baseline ({kind.label}, median of rounds)", "x",
                        {t: paired_ratio(_cpu_ratios(by, t, name), v, base)[0] for t, v in values.items()
                         if t != "baseline"},
                        digits=2, key=f"providers_ratio_{name}"))
    ttfb = _values(by, "ttfb_ms")
    direct = ttfb.get("direct")
    rows.append(Row(section, "OpenAI stream: first body byte p50, c=1", "ms", ttfb, ("diff", "proxy", "direct"),
                    key="providers_ttfb_ms"))
    rows.append(Row(section, "  added over direct", "ms",
                    {t: (v - direct if v is not None and direct is not None else None) for t, v in ttfb.items()
                     if t != "direct"}, key="providers_added_ttfb_ms"))
    rows.append(Row(section, "OpenAI stream: first text byte p50, c=1", "ms", _values(by, "text_ttfb_ms"),
                    ("diff", "proxy", "direct"), key="providers_text_ttfb_ms"))
    rows.append(Row(section, "RSS after the load", "MiB", _values(by, "rss_mib"), ("ratio", "proxy", "baseline"), 1,
                    key="providers_rss_mib"))
    return rows


def _cpu_ratios(by: dict[str, dict[str, Any]], target: str, name: str) -> list[float]:
    """CPU per request of `target` ÷ the bare pass-through's, of each round."""
    return round_ratios(by.get(target, {}).get("_rounds", []), by.get("baseline", {}).get("_rounds", []),
                        lambda item: (item.get(name) or {}).get("cpu_us"))


def verdicts_providers(by: dict[str, dict[str, Any]]) -> list[Verdict]:
    """Each check on the median of per-round ratios (`round_ratios`); the ratio of the two medians
    when there are no per-round numbers."""
    out = []
    for name, kind in KINDS.items():
        values = _values(by, name, "cpu_us")
        base = values.get("baseline")
        for target, limit in (("proxy", CPU_RATIO_LIMIT), ("proxy-detectors", DETECTORS_CPU_RATIO_LIMIT)):
            value = values.get(target)
            ratio, spread = paired_ratio(_cpu_ratios(by, target, name), value, base)
            detail = f"median {value:.0f} vs {base:.0f} µs/req" if value is not None and base else ""
            if spread:
                detail += f"; per round {spread}"
            out.append(Verdict(f"CPU {target} ÷ baseline, {kind.label}", ratio, limit, "x", detail))
    ttfb = _values(by, "ttfb_ms")
    for target in ("proxy", "proxy-detectors"):
        value, direct = ttfb.get(target), ttfb.get("direct")
        added = value - direct if value is not None and direct is not None else None
        out.append(Verdict(f"added TTFB p50 {target} - direct (OpenAI stream)", added, ADDED_TTFB_LIMIT_MS, "ms"))
    out.append(Verdict("RSS proxy-detectors", _values(by, "rss_mib").get("proxy-detectors"),
                       DETECTORS_RSS_LIMIT_MIB, "MiB"))
    return out
