"""CPU per request of the proxy's own code, in-process, with an optional cProfile.

The proxy's ASGI app (or the bare pass-through) is driven directly, without a server in front of
it, against the fake provider in its own process; ``time.process_time`` over the measured requests
is this process's CPU per request (the fake provider is not counted). Good for A/B comparisons
and for finding where the time goes; `python -m bench` remains the reference::

    python -m bench.inprocess --kind json --requests 3000                    # default config
    python -m bench.inprocess --kind anthropic-stream --detectors --profile 30  # top 30 by own time
    python -m bench.inprocess --target baseline --kind gemini-stream
    python -m bench.inprocess --kind openai-stream --routing routing-chain    # a config of bench/routing.py

Kinds: json (OpenAI chat completion), openai-stream, anthropic-stream, gemini-stream; streams have
20 text events (``--scenario '{"delay_ms": 1}'`` writes them apart, each then read on its own as over a
network). ``--detectors`` adds the four text detectors to the default policy.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.providers import DETECTOR_POLICIES, KINDS
from bench.servers import start_fake

__all__ = ["DETECTORS", "main"]

_STREAM_SCENARIO = orjson.dumps({"events": 20})

DETECTORS = DETECTOR_POLICIES


def _proxy_app(upstream: str, workdir: Path, detectors: bool, overrides: dict[str, Any]) -> Any:
    from capsem_proxy.app import create_app
    from capsem_proxy.config import Settings

    values: dict[str, Any] = {
        "server": {"data_dir": str(workdir / "data"), "access_log": False, "log_level": "warning"},
        "providers": {"openai": {"base_url": upstream + "/v1"}, "anthropic": {"base_url": upstream},
                      "gemini": {"base_url": upstream}},
        "audit": {"url": f"sqlite:///{workdir}/audit.db"},
    }
    if detectors:
        values["policies"] = DETECTORS
    for section, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(section), dict):
            values[section].update(value)
        else:
            values[section] = value
    return create_app(Settings(**values))


async def _lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, Any]]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()

    task = asyncio.ensure_future(app({"type": "lifespan"}, receive, send))
    await inbox.put({"type": "lifespan.startup"})
    await started.wait()
    return task, inbox


async def _one(app: Any, kind: str, scenario: bytes = _STREAM_SCENARIO) -> int:
    request = KINDS[kind]
    path, body = request.path, request.body
    headers = [(name.lower().encode(), value.encode()) for name, value in request.headers]
    raw_path, _, query = path.encode().partition(b"?")
    stream_headers = [(b"x-fake-scenario", scenario)] if kind != "json" else []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": raw_path.decode(), "raw_path": raw_path, "query_string": query, "root_path": "",
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *headers, *stream_headers],
    }
    sent = False
    status = 0
    size = 0
    hold = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await hold.wait()
        return {"type": "http.disconnect"}

    answer = bytearray()

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            size += len(message.get("body", b""))
            if status != 200:
                answer.extend(message.get("body", b""))

    await app(scope, receive, send)
    hold.set()
    if status != 200 or not size:
        raise RuntimeError(f"{kind}: status {status}, {size} bytes: {bytes(answer)[:600]!r}")
    return size


async def _run(app: Any, kind: str, requests: int, concurrency: int, scenario: bytes = _STREAM_SCENARIO) -> None:
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await _one(app, kind, scenario)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _measure(app: Any, args: argparse.Namespace, kind: str) -> None:
    scenario = orjson.dumps({"events": 20, **orjson.loads(args.scenario)})
    await _run(app, kind, args.warmup, args.concurrency, scenario)
    await asyncio.sleep(0.6)
    profiler = cProfile.Profile(time.thread_time) if args.profile else None
    cpu = time.process_time()
    loop_cpu = time.thread_time()
    if profiler is not None:
        profiler.enable()
    await _run(app, kind, args.requests, args.concurrency, scenario)
    await asyncio.sleep(0.6)  # deferred work (audit batches) is counted
    if profiler is not None:
        profiler.disable()
    used = time.process_time() - cpu
    loop_used = time.thread_time() - loop_cpu
    print(f"{args.target} {kind}{' +detectors' if args.detectors else ''}: "
          f"{1e6 * used / args.requests:.0f} µs/request over {args.requests} (c={args.concurrency}; "
          f"event loop thread {1e6 * loop_used / args.requests:.0f})", flush=True)
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats(args.sort).print_stats(args.profile)
        if args.dump:
            stats.dump_stats(args.dump)


async def _main(args: argparse.Namespace, upstream: str, workdir: Path) -> None:
    if args.target == "proxy":
        overrides = orjson.loads(args.config)
        if args.routing:
            from bench.routing import routing_config

            overrides = {**routing_config(args.routing, upstream), **overrides}
        app = _proxy_app(upstream, workdir, args.detectors, overrides)
    else:
        from bench.passthrough import create_app

        app = create_app(upstream)
    lifespan, inbox = await _lifespan(app)
    for kind in KINDS if args.kind == "all" else [args.kind]:
        for _ in range(args.repeat):
            await _measure(app, args, kind)
    await inbox.put({"type": "lifespan.shutdown"})
    await lifespan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("proxy", "baseline"), default="proxy")
    parser.add_argument("--kind", choices=(*KINDS, "all"), default="json")
    parser.add_argument("--repeat", type=int, default=1, help="measure each kind this many times")
    parser.add_argument("--detectors", action="store_true", help="the four text detectors on")
    parser.add_argument("--config", default="{}", help="JSON of configuration sections over the defaults")
    parser.add_argument("--routing", help="the upstreams and models of a target of bench/routing.py "
                        "(routing-chain, routing-chain-lean, routing-translated, routing-gemini)")
    parser.add_argument("--scenario", default="{}", help="JSON of fake-provider scenario fields for streams, e.g. "
                        '\'{"delay_ms": 1}\' so that each event arrives in a read of its own, as over a network')
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions of a cProfile")
    parser.add_argument("--dump", help="also write the profile to this file (pstats)")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="capsem-inprocess-"))
    fake = start_fake(None, workdir)
    try:
        import uvloop

        uvloop.run(_main(args, fake.base_url, workdir))
    finally:
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
