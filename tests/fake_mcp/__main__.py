"""`python -m tests.fake_mcp [--port N] [--json] [--stateless] [--stdio]`: serve the fake MCP server.

Over HTTP it prints `FAKE_MCP_READY http://127.0.0.1:<port>` once it listens."""

from __future__ import annotations

import argparse
import socket

import uvicorn

from tests.fake_mcp.server import http_app, run_stdio


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="answer requests with JSON instead of SSE")
    parser.add_argument("--stateless", action="store_true", help="no sessions")
    parser.add_argument("--stdio", action="store_true", help="serve over stdin/stdout")
    args = parser.parse_args()
    if args.stdio:
        run_stdio()
        return
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    # A test that left a request on a slow scenario (`misbehave("slow", delay=30)`) has its answer
    # already: on SIGTERM the fake server gives what is still running a second, not until it is done.
    config = uvicorn.Config(
        http_app(args.json, args.stateless), log_level="warning", lifespan="on", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    print(f"FAKE_MCP_READY http://{args.host}:{port}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
