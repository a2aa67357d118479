"""Time to the first byte of answer text in a streamed answer, per provider format, direct and
through capsem-proxy in several configurations (one request at a time, p50 over the requests).

    python -m bench.stream_ttfb --requests 60

Targets: `direct` (the fake provider), `default` (the implicit default policy), `debug-by-path`
(CAPSEM's DebugPolicy named by its import path), `detectors-pass` (secrets, PII and egress reading
answers, streaming mode `pass`: nothing held) and `detectors-guard` (the same in `guard` mode).
`--code DIR` runs the proxies from another checkout (to measure before and after a change; the
checkout's modules must win over the installed ones, e.g. through a `sitecustomize.py` there).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import time
from collections.abc import Callable

import orjson

from tests.fake_provider.process import start_fake_provider
from tests.proxy_process import start_proxy

REPLY = ("The committee met on a quiet morning, read the minutes of the last meeting and agreed on a plan "
         "for the spring. ") * 5
DETECTORS = [{"class": "secrets"}, {"class": "pii_detect"}, {"class": "egress"}]
CONFIGS: dict[str, dict | None] = {
    "default": None,
    "debug-by-path": {"policies": [{"class": "capsem.policies.debug_policy.DebugPolicy"}]},
    "detectors-pass": {"policies": DETECTORS, "streaming": {"mode": "pass"}},
    "detectors-guard": {"policies": DETECTORS, "streaming": {"mode": "guard"}},
}
_GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
_GEMINI_PATH = "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
# format -> (path, body, headers, a test for "the body so far holds answer text")


def _after_mark(mark: bytes) -> Callable[[bytes], bool]:
    """True once `body` holds the JSON key or value `mark` (a `"key":` followed by a string of at
    least one character, whatever the spacing)."""
    pattern = re.compile(re.escape(mark).replace(b":", rb"\s*:\s*") + rb'(?!")')
    return lambda body: pattern.search(body) is not None


_CHAT = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
_MESSAGES = {"model": "c", "max_tokens": 900, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
_OPENAI_KEY = {"authorization": "Bearer sk-bench"}
_ANTHROPIC_KEY = {"x-api-key": "sk-ant-bench", "anthropic-version": "2023-06-01"}
FORMATS: dict[str, tuple[str, dict, dict[str, str], Callable[[bytes], bool]]] = {
    "openai-chat": ("/v1/chat/completions", _CHAT, _OPENAI_KEY, _after_mark(b'"content":"')),
    "openai-responses": ("/v1/responses", {"model": "m", "stream": True, "input": "hi"}, _OPENAI_KEY,
                         _after_mark(b'"type":"response.output_text.delta"')),
    "anthropic": ("/v1/messages", _MESSAGES, _ANTHROPIC_KEY, _after_mark(b'"text_delta","text":"')),
    "gemini-sse": (f"{_GEMINI_PATH}?alt=sse", _GEMINI, {"x-goog-api-key": "AIza-bench"}, _after_mark(b'"text":"')),
    "gemini-array": (_GEMINI_PATH, _GEMINI, {"x-goog-api-key": "AIza-bench"}, _after_mark(b'"text":"')),
}


async def _one(port: int, path: str, body: bytes, headers: dict[str, str], has_text: Callable[[bytes], bool]) -> float:
    """Seconds from sending the request to the first byte of answer text."""
    head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nconnection: close\r\n"
    head += f"content-length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    writer.write(head.encode() + b"\r\n" + body)
    received = b""
    first_text = 0.0
    while chunk := await reader.read(65536):
        received += chunk
        if not first_text and has_text(received.split(b"\r\n\r\n", 1)[-1]):
            first_text = time.perf_counter() - started
    writer.close()
    if not first_text:
        raise RuntimeError(f"no answer text in {received[:300]!r}")
    return first_text


async def _measure(port: int, fmt: str, warmup: int, requests: int, delay_ms: float) -> float:
    path, body, headers, has_text = FORMATS[fmt]
    scenario = {"reply": REPLY, "chunk_size": 20, "delay_ms": delay_ms}
    headers = {**headers, "x-fake-scenario": orjson.dumps(scenario).decode()}
    payload = orjson.dumps(body)
    samples = [await _one(port, path, payload, headers, has_text) for _ in range(warmup + requests)]
    return statistics.median(samples[warmup:]) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--delay-ms", type=float, default=2.0, help="between the provider's events (a model's pace)")
    parser.add_argument("--targets", default=",".join(["direct", *CONFIGS]))
    parser.add_argument("--code", help="run the proxies from this checkout (PYTHONPATH)")
    args = parser.parse_args()
    env = {"PYTHONPATH": os.path.abspath(args.code)} if args.code else None
    fake = start_fake_provider()
    results: dict[str, dict[str, float]] = {}
    try:
        for target in args.targets.split(","):
            if target == "direct":
                port, stop = fake.port, None
            else:
                proxy = start_proxy(fake.base_url, CONFIGS[target], env=env, log_level="warning")
                port, stop = proxy.port, proxy.stop
            try:
                results[target] = {
                    fmt: asyncio.run(_measure(port, fmt, args.warmup, args.requests, args.delay_ms)) for fmt in FORMATS
                }
            finally:
                if stop is not None:
                    stop()
    finally:
        fake.stop()
    print(f"time to first answer text byte, p50 ms ({args.requests} requests each, c=1, {len(REPLY)}-char answer "
          f"in 20-character events {args.delay_ms} ms apart)")
    print(f"{'target':<18}" + "".join(f"{fmt:>18}" for fmt in FORMATS))
    for target, row in results.items():
        print(f"{target:<18}" + "".join(f"{row[fmt]:>18.3f}" for fmt in FORMATS))


if __name__ == "__main__":
    main()
