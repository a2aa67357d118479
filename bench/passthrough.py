"""Bare pass-through proxy: the reference stack the benchmark compares capsem-proxy with.

A raw ASGI app on uvicorn + httptools + uvloop with one pooled upstream client. It forwards
method, path, query, headers and body, and streams the answer back chunk by chunk; it parses
nothing. Run it with::

    python -m bench.passthrough --upstream http://127.0.0.1:9000 --port 9100 [--client httpx]

It prints ``PASSTHROUGH_READY http://HOST:PORT`` on stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

READY_PREFIX = "PASSTHROUGH_READY"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Headers that describe one hop; everything else passes through untouched.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)
# Answer headers the server recomputes (uvicorn adds its own date; framing is per hop).
_RESPONSE_DROP = _HOP_BY_HOP | {b"date", b"server"}
_BAD_GATEWAY = {"type": "http.response.start", "status": 502, "headers": [(b"content-type", b"text/plain")]}


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        return body
    parts = [body]
    while message.get("more_body", False):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)


def _request_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in scope["headers"] if k not in _HOP_BY_HOP]


def _request_headers_str(scope: Scope) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k not in _HOP_BY_HOP]


def _target(scope: Scope) -> str:
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    if query:
        return (path + b"?" + query).decode("latin-1")
    return path.decode("latin-1")


class _Lifespan:
    async def startup(self) -> None:
        raise NotImplementedError

    async def shutdown(self) -> None:
        raise NotImplementedError

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


class AiohttpPassThrough(_Lifespan):
    """Forwarding with one aiohttp ClientSession (what capsem-proxy uses upstream)."""

    def __init__(self, upstream: str, max_connections: int = 0) -> None:
        self.upstream = upstream.rstrip("/")
        self.max_connections = max_connections
        self.session: Any = None

    async def startup(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0, keepalive_timeout=30)
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Content-Type", "Accept-Encoding", "Accept"),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=60),
        )

    async def shutdown(self) -> None:
        await self.session.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.lifespan(receive, send)
            return
        body = await _read_body(receive)
        try:
            response = await self.session.request(
                scope["method"], self.upstream + _target(scope), headers=_request_headers_str(scope), data=body
            )
        except Exception as exc:  # any upstream failure is a 502
            await send(_BAD_GATEWAY)
            await send({"type": "http.response.body", "body": repr(exc).encode()})
            return
        try:
            headers = [(k.lower(), v) for k, v in response.raw_headers if k.lower() not in _RESPONSE_DROP]
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            content = response.content
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            response.release()


class HttpxPassThrough(_Lifespan):
    """The same forwarding with one httpx.AsyncClient (for the aiohttp vs httpx comparison)."""

    def __init__(self, upstream: str, max_connections: int = 1000) -> None:
        self.upstream = upstream.rstrip("/")
        self.max_connections = max_connections or 1000
        self.client: Any = None

    async def startup(self) -> None:
        import httpx

        limits = httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections,
                              keepalive_expiry=30)
        self.client = httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0), http2=False)

    async def shutdown(self) -> None:
        await self.client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.lifespan(receive, send)
            return
        body = await _read_body(receive)
        request = self.client.build_request(
            scope["method"], self.upstream + _target(scope), headers=_request_headers(scope), content=body
        )
        try:
            response = await self.client.send(request, stream=True)
        except Exception as exc:  # any upstream failure is a 502
            await send(_BAD_GATEWAY)
            await send({"type": "http.response.body", "body": repr(exc).encode()})
            return
        try:
            headers = [(k.lower(), v) for k, v in response.headers.raw if k.lower() not in _RESPONSE_DROP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
            async for chunk in response.aiter_raw():
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


def create_app(upstream: str, client: str = "aiohttp", max_connections: int = 0) -> _Lifespan:
    """The pass-through ASGI app for ``upstream`` using the named upstream client."""
    if client == "aiohttp":
        return AiohttpPassThrough(upstream, max_connections)
    if client == "httpx":
        return HttpxPassThrough(upstream, max_connections)
    raise ValueError(f"unknown client {client!r}")


def main(argv: list[str] | None = None) -> None:
    """Serve the pass-through until SIGTERM / SIGINT."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.passthrough", description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="base URL requests are forwarded to")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--client", choices=("aiohttp", "httpx"), default="aiohttp", help="upstream HTTP client")
    parser.add_argument("--max-connections", type=int, default=0, help="upstream pool size (0 = unlimited)")
    args = parser.parse_args(argv)

    app = create_app(args.upstream, args.client, args.max_connections)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, http="httptools", loop="uvloop", lifespan="on",
        access_log=False, server_header=False, date_header=True, log_level="warning", timeout_keep_alive=75,
    )
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                await task
                raise SystemExit("pass-through failed to start")
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"{READY_PREFIX} http://{args.host}:{port}", flush=True)
        await task

    try:
        import uvloop
    except ImportError:  # pragma: no cover - the reference stack wants uvloop
        asyncio.run(serve())
    else:
        uvloop.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
