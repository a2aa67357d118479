"""CPU per request of the upstream HTTP client alone: aiohttp's ClientSession (the bare
pass-through's client) against capsem-proxy's own (capsem_proxy/upstreams/http1.py through
upstream.PooledClient), both pooled and keep-alive, sending the same chat request to the fake
provider in its own process and reading the whole answer::

    python -m bench.upstream_client                  # 3 rounds x 3,000 requests, concurrency 16
    python -m bench.upstream_client --requests 1000 --rounds 1

``time.process_time`` of this process over the measured requests (the fake provider is not
counted); the rounds alternate the two clients, and the median of each is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import uvloop
from yarl import URL

from bench.servers import start_fake
from capsem_proxy.upstream import PooledClient

__all__ = ["main"]

PATH = "/v1/chat/completions"
BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one word."}]}'
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-not-a-real-key"}


async def _cpu_per_request(one: Callable[[], Awaitable[None]], requests: int, concurrency: int) -> float:
    async def worker(count: int) -> None:
        for _ in range(count):
            await one()

    await asyncio.gather(*(worker(20) for _ in range(concurrency)))  # connections open, code warm
    started = time.process_time()
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    return (time.process_time() - started) / (requests // concurrency * concurrency) * 1e6


async def _aiohttp(base_url: str, requests: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=1024, limit_per_host=0, keepalive_timeout=30)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                     skip_auto_headers=("User-Agent", "Content-Type")) as session:
        url = URL(base_url + PATH, encoded=True)

        async def one() -> None:
            async with session.post(url, data=BODY, headers=HEADERS, allow_redirects=False) as response:
                await response.read()

        return await _cpu_per_request(one, requests, concurrency)


async def _own(base_url: str, requests: int, concurrency: int) -> float:
    client = PooledClient(base_url, label="the fake provider", max_connections=1024, connect_timeout=10,
                          max_answer_bytes=1 << 20)
    headers = list(HEADERS.items())

    async def one() -> None:
        response = await client.send("POST", PATH, headers, BODY, 60.0)
        await response.read()

    try:
        return await _cpu_per_request(one, requests, concurrency)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"aiohttp ClientSession": [], "capsem-proxy PooledClient": []}
    with tempfile.TemporaryDirectory() as workdir:
        fake = start_fake(None, Path(workdir))
        try:
            for _ in range(args.rounds):
                for name, measure in (("aiohttp ClientSession", _aiohttp), ("capsem-proxy PooledClient", _own)):
                    results[name].append(uvloop.run(measure(fake.base_url, args.requests, args.concurrency)))
        finally:
            fake.stop()
    for name, values in results.items():
        print(f"{name:28} {statistics.median(values):7.1f} µs CPU per request "
              f"(rounds: {', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
