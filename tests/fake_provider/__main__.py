"""CLI: ``python -m tests.fake_provider --host 127.0.0.1 --port N``.

Prints one line ``FAKE_PROVIDER_READY http://HOST:PORT`` on stdout once listening (``--port 0`` picks a free port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from aiohttp import web

from .app import create_app

READY_PREFIX = "FAKE_PROVIDER_READY"


async def serve(host: str, port: int, max_recorded: int) -> None:
    """Run the server until SIGTERM/SIGINT."""
    runner = web.AppRunner(
        create_app(max_recorded=max_recorded),
        access_log=None,
        handler_cancellation=True,
        auto_decompress=False,
        shutdown_timeout=0.5,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=2048, reuse_address=True)
    await site.start()
    actual_port = runner.addresses[0][1]
    print(f"{READY_PREFIX} http://{host}:{actual_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve (with uvloop when available)."""
    parser = argparse.ArgumentParser(prog="python -m tests.fake_provider", description="Fake LLM provider")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-recorded", type=int, default=1000, help="requests kept for /_fake/requests")
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    coro = serve(args.host, args.port, args.max_recorded)
    if not args.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(coro)
            return
    asyncio.run(coro)


if __name__ == "__main__":
    main()
