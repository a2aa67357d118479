"""A minimal upstream for throughput runs: every request gets the same recorded answer.

The fake provider (aiohttp) costs a fair share of the proxy's own CPU per request; on a two-core
machine it competes with the proxy's workers for the cores they are measured on. This server parses
only what HTTP/1.1 keep-alive needs (the end of the headers, `Content-Length`) and writes answers
recorded from the fake provider, so the workers scenario measures the proxy rather than its upstream.
A request whose body asks for `"stream":true` gets the recorded stream, any other the JSON answer.

    python -m bench.canned --json ANSWER_FILE --stream ANSWER_FILE --port 0   # prints CANNED_READY URL
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

__all__ = ["main", "response_bytes"]

_HEAD_END = b"\r\n\r\n"
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
_MAX_HEAD = 64 * 1024
_MAX_BODY = 8 * 1024 * 1024
_STREAM = re.compile(rb'"stream"\s*:\s*true')


def response_bytes(content_type: str, body: bytes) -> bytes:
    """A whole HTTP/1.1 answer: 200, `content_type`, keep-alive, `body` with its length."""
    head = f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode("latin-1") + body


class _Canned(asyncio.Protocol):
    """One connection: answers each complete request, in order, pipelined ones included."""

    def __init__(self, json_answer: bytes, stream_answer: bytes) -> None:
        self._json, self._stream = json_answer, stream_answer
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        assert self._transport is not None
        while True:
            head_end = buffer.find(_HEAD_END)
            if head_end == -1:
                if len(buffer) > _MAX_HEAD:
                    self._transport.close()
                return
            match = _LENGTH.search(buffer, 0, head_end + 2)
            length = int(match.group(1)) if match else 0
            if length > _MAX_BODY:
                self._transport.close()
                return
            end = head_end + 4 + length
            if len(buffer) < end:
                return
            streamed = _STREAM.search(buffer, head_end + 4, end) is not None
            del buffer[:end]
            self._transport.write(self._stream if streamed else self._json)


async def _serve(port: int, json_answer: bytes, stream_answer: bytes) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Canned(json_answer, stream_answer), "127.0.0.1", port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"CANNED_READY http://127.0.0.1:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.canned", description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="file holding the whole HTTP answer to a JSON request")
    parser.add_argument("--stream", required=True, help="file holding the whole HTTP answer to a streamed request")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    json_answer, stream_answer = Path(args.json).read_bytes(), Path(args.stream).read_bytes()
    try:
        import uvloop

        uvloop.run(_serve(args.port, json_answer, stream_answer))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
