"""Scenario `routing`: what named upstreams cost in proxy CPU per request, against the plain route
(no `upstreams:`), in the same run with rounds interleaved:

- `routing-plain`: the default proxy, one provider per API;
- `routing-chain`: the bench's model is an alias of a two-upstream chain whose first entry is
  healthy (the second is never tried), breakers on, every attempt audited;
- `routing-chain-lean`: the same chain auditing only requests tried more than once
  (`retries.audit_every_attempt: false`), which shows what the attempt row costs;
- `routing-translated`: the same OpenAI requests served by an Anthropic upstream, translated both ways;
- `routing-gemini`: the same OpenAI requests served by a Gemini upstream, translated both ways.

Targets: chain ÷ plain ≤ 1.1 and translated ÷ plain ≤ 1.5 (Anthropic and Gemini), non-streamed and streamed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bench.report import Row, Verdict

if TYPE_CHECKING:
    from bench.runner import Bench
    from bench.servers import Server

__all__ = ["ROUTING_STARTERS", "ROUTING_TARGETS", "measure_routing", "routing_config", "rows_routing",
           "verdicts_routing"]

Raw = dict[str, Any]
ByTarget = dict[str, Raw]

PLAIN, CHAIN, LEAN = "routing-plain", "routing-chain", "routing-chain-lean"
TRANSLATED, GEMINI = "routing-translated", "routing-gemini"
ROUTING_TARGETS = (PLAIN, CHAIN, LEAN, TRANSLATED, GEMINI)
LIMITS = {CHAIN: 1.1, LEAN: 1.1, TRANSLATED: 1.5, GEMINI: 1.5}
_MODEL = "gpt-4o-mini"  # what the bench's requests ask for
_KINDS = (("json", "non-streamed"), ("stream", "stream, 20 text events"))


def routing_config(name: str, fake_url: str) -> dict[str, Any]:
    """The configuration sections of target `name` against the fake provider at `fake_url`."""
    if name in (CHAIN, LEAN):
        return {
            "upstreams": [
                {"name": "first", "type": "openai", "base_url": fake_url + "/v1"},
                {"name": "second", "type": "openai_compatible", "base_url": fake_url + "/v1"},
            ],
            "models": {_MODEL: [f"first:{_MODEL}", f"second:{_MODEL}"]},
            "retries": {"attempts": 2, "audit_every_attempt": name == CHAIN},
        }
    if name == TRANSLATED:
        return {
            "upstreams": [{"name": "claude", "type": "anthropic", "base_url": fake_url}],
            "models": {_MODEL: ["claude:claude-sonnet-4-5"]},
        }
    if name == GEMINI:
        return {
            "upstreams": [{"name": "gemini", "type": "gemini", "base_url": fake_url}],
            "models": {_MODEL: ["gemini:gemini-2.5-flash"]},
        }
    return {}


def _starter(name: str) -> Callable[[Bench], Server]:
    def start(bench: Bench) -> Server:
        from bench.servers import start_capsem_proxy

        assert bench.fake is not None
        return start_capsem_proxy(bench.fake.base_url, bench.plan.server, workers=bench.proxy_workers,
                                  config=routing_config(name, bench.fake.base_url), name=name)

    return start


ROUTING_STARTERS: dict[str, Callable[[Bench], Server]] = {name: _starter(name) for name in ROUTING_TARGETS}


def _cpu_per_request(raw: Raw) -> float | None:
    cpu = (raw.get("cpu_s") or {}).get("server") or {}
    answers = raw.get("ok") or 0
    return 1e6 * cpu["ticks"] / answers if answers and "ticks" in cpu else None


def measure_routing(bench: Bench, server: Server) -> Raw:
    """CPU of the proxy per request at concurrency 16, non-streamed and streamed."""
    p = bench.profile
    out: Raw = {}
    for kind, stream, requests in (("json", False, p.cpu_requests), ("stream", True, p.cpu_stream_requests)):
        raw = bench.load(server, concurrency=16, warmup=p.cpu_warmup, requests=requests, stream=stream,
                         settle=p.cpu_settle)
        out[kind] = {"load": raw, "ticks_us": _cpu_per_request(raw)}
    return out


def _value(by: ByTarget, target: str, kind: str) -> float | None:
    value = by.get(target, {}).get(kind, {}).get("ticks_us")
    return value if isinstance(value, int | float) else None


def _ratio(by: ByTarget, target: str, kind: str) -> float | None:
    value, plain = _value(by, target, kind), _value(by, PLAIN, kind)
    return value / plain if value is not None and plain else None


def rows_routing(by: ByTarget) -> list[Row]:
    section = ("plain route, two-upstream chain (first healthy), translated to Anthropic and to Gemini: "
               "proxy CPU per request, c=16")
    rows = []
    for kind, label in _KINDS:
        rows.append(Row(section, label, "µs/req", {t: _value(by, t, kind) for t in ROUTING_TARGETS},
                        ("ratio", CHAIN, PLAIN), 0, key=f"routing_cpu_us_{kind}"))
        ratios = {t: _ratio(by, t, kind) for t in (CHAIN, LEAN, TRANSLATED, GEMINI)}
        rows.append(Row(section, f"÷ plain, {label}", "x", ratios, digits=2, key=f"routing_ratio_{kind}"))
    return rows


def verdicts_routing(by: ByTarget) -> list[Verdict]:
    out = []
    for target, what in ((CHAIN, "two-upstream chain"), (LEAN, "two-upstream chain, retried requests audited"),
                         (TRANSLATED, "translated to Anthropic"), (GEMINI, "translated to Gemini")):
        for kind, label in _KINDS:
            value, plain = _value(by, target, kind), _value(by, PLAIN, kind)
            detail = f"{value:.0f} vs {plain:.0f} µs/req" if value is not None and plain is not None else ""
            out.append(Verdict(f"CPU of a {what} ÷ plain route, {label}", _ratio(by, target, kind), LIMITS[target],
                               "x", detail))
    return out
