"""Closed-loop HTTP/1.1 load generator: keep-alive connections, pre-encoded requests, httptools parsing.

Each of ``--concurrency`` connections sends one request, waits for the whole answer, and sends
the next. A warm-up phase (``--warmup`` requests) runs first; the measured phase is either a
fixed number of requests (``--requests``) or a duration (``--duration``). Around the measured
phase it samples the CPU time of the processes named with ``--cpu-pid NAME=PID`` (and their
children) from /proc, so the numbers cover exactly the measured requests.

Run standalone::

    python -m bench.loadgen --url http://127.0.0.1:8000 --concurrency 16 --duration 5 --body '{...}'

It prints one JSON object on stdout (see :func:`summarise`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools
import orjson

from bench.procstat import CpuSample, all_ticks, cpu_sample, descendants, other_cpu_s

__all__ = ["LoadSpec", "percentile", "run_load"]

_now = time.perf_counter_ns
_STREAM_END = b"data: [DONE]\n\n"
_TEXT_MARK = b'"content":"'  # an OpenAI stream delta with text: the next byte is not the closing quote


@dataclass(slots=True)
class LoadSpec:
    """What to send and how hard."""

    url: str
    path: str = "/v1/chat/completions"
    method: str = "POST"
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    concurrency: int = 1
    warmup: int = 0
    requests: int | None = None
    duration: float | None = None
    stream: bool = False  # the answer must end with `stream_end`
    text_ttfb: bool = False  # also time the first byte of answer text (after `text_mark`, not `"`)
    stream_end: bytes = _STREAM_END  # an OpenAI stream's last event; Anthropic's is message_stop
    text_mark: bytes = _TEXT_MARK  # `"text":"` for Anthropic and Gemini
    timeout: float = 30.0
    settle: float = 0.0  # idle seconds inside the CPU window after the measured requests (deferred work)
    cpu_pids: dict[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The request as it goes on the wire."""
        parts = urlsplit(self.url)
        host = parts.netloc
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        lowered = {k.lower() for k in self.headers}
        lines.extend(f"{k}: {v}" for k, v in self.headers.items())
        if "content-type" not in lowered and self.body:
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `request()` sends the pre-encoded bytes and waits for the answer."""

    __slots__ = (
        "_carry", "_fut", "_loop", "_mark", "_parser", "_payload", "_timer", "closed", "find_text", "first_ns",
        "nbytes", "status", "tail", "text_ns", "transport",
    )

    def __init__(self, payload: bytes, loop: asyncio.AbstractEventLoop, find_text: bool = False,
                 mark: bytes = _TEXT_MARK) -> None:
        self._payload = payload
        self._loop = loop
        self.find_text = find_text
        self._mark = mark
        self.text_ns = 0
        self._carry = b""
        self._parser = httptools.HttpResponseParser(self)
        self._fut: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.status = 0
        self.first_ns = 0
        self.nbytes = 0
        self.tail = b""

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("connection closed by the server"))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if not self.first_ns:
            self.first_ns = _now()
        if self.find_text and not self.text_ns:
            self._look_for_text(body)
        self.nbytes += len(body)
        self.tail = (self.tail + body)[-64:]

    def _look_for_text(self, body: bytes) -> None:
        """Set ``text_ns`` when ``body`` holds the first text mark (``"content":"``) followed by text (not ``"``)."""
        mark = self._mark
        buf = self._carry + body
        at = buf.find(mark)
        while at >= 0:
            after = at + len(mark)
            if after >= len(buf):
                break  # the next chunk says whether text follows; the carry keeps the whole mark
            if buf[after] != 0x22:  # '"'
                self.text_ns = _now()
                return
            at = buf.find(mark, after)
        self._carry = buf[-len(mark):]

    def on_message_complete(self) -> None:
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        fut = self._fut
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def _on_timeout(self) -> None:
        self._fail(TimeoutError("no complete answer in time"))
        if self.transport is not None:
            self.transport.abort()

    async def request(self, timeout: float) -> int:
        """Send one request; return its send time (ns) once the whole answer is in."""
        self.status = 0
        self.first_ns = 0
        self.text_ns = 0
        self._carry = b""
        self.nbytes = 0
        self.tail = b""
        fut = self._fut = self._loop.create_future()
        self._timer = self._loop.call_later(timeout, self._on_timeout)
        start = _now()
        self.transport.write(self._payload)  # type: ignore[union-attr]
        try:
            await fut
        finally:
            self._timer.cancel()
        return start


@dataclass(slots=True)
class _Phase:
    remaining: int | None
    deadline_ns: int | None
    latencies: list[int] = field(default_factory=list)
    ttfbs: list[int] = field(default_factory=list)
    text_ttfbs: list[int] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    bytes_total: int = 0

    def take(self) -> bool:
        if self.deadline_ns is not None:
            return _now() < self.deadline_ns
        if self.remaining is None or self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class _Client:
    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        parts = urlsplit(spec.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.payload = spec.encode()
        self.loop = asyncio.get_running_loop()

    async def connect(self) -> _Connection:
        find_text = self.spec.text_ttfb

        def factory() -> _Connection:
            return _Connection(self.payload, self.loop, find_text, self.spec.text_mark)

        _, proto = await self.loop.create_connection(factory, self.host, self.port)
        return proto

    async def worker(self, conn: _Connection, phase: _Phase) -> _Connection:
        spec = self.spec
        while phase.take():
            if conn.closed:
                conn = await self.connect()
            try:
                start = await conn.request(spec.timeout)
            except (ConnectionError, TimeoutError, httptools.HttpParserError) as exc:
                phase.error(type(exc).__name__)
                if conn.transport is not None:
                    conn.transport.abort()
                conn = await self.connect()
                continue
            end = _now()
            if conn.status != 200:
                phase.error(f"http_{conn.status}")
                continue
            if spec.stream and not conn.tail.endswith(spec.stream_end):
                phase.error("incomplete_stream")
                continue
            if not conn.nbytes:
                phase.error("empty_body")
                continue
            phase.latencies.append(end - start)
            phase.ttfbs.append(conn.first_ns - start)
            if conn.text_ns:
                phase.text_ttfbs.append(conn.text_ns - start)
            phase.bytes_total += conn.nbytes
        return conn

    async def run_phase(self, conns: list[_Connection], phase: _Phase) -> list[_Connection]:
        return list(await asyncio.gather(*(self.worker(c, phase) for c in conns)))


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), int(-(-q * len(sorted_values) // 100))))
    return sorted_values[rank - 1]


def _dist_ms(values_ns: list[int]) -> dict[str, float]:
    if not values_ns:
        return {}
    ms = sorted(v / 1e6 for v in values_ns)
    return {
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "mean": sum(ms) / len(ms),
        "min": ms[0],
        "max": ms[-1],
    }


def summarise(spec: LoadSpec, phase: _Phase, elapsed_s: float, cpu: dict[str, CpuSample], self_cpu_s: float,
              others_s: float, window_s: float) -> dict:
    """The result object: counts, rate, latency / TTFB distributions (ms), CPU deltas (s)."""
    ok = len(phase.latencies)
    extra = {}
    if spec.text_ttfb:  # only then, so the other scenarios' JSON keeps its shape
        extra = {"text_ttfb_ms": _dist_ms(phase.text_ttfbs), "text_found": len(phase.text_ttfbs)}
    return {
        "concurrency": spec.concurrency,
        "stream": spec.stream,
        "ok": ok,
        "errors": sum(phase.errors.values()),
        "error_kinds": phase.errors,
        "elapsed_s": elapsed_s,
        "rps": ok / elapsed_s if elapsed_s > 0 else 0.0,
        "latency_ms": _dist_ms(phase.latencies),
        "ttfb_ms": _dist_ms(phase.ttfbs),
        "bytes_per_answer": phase.bytes_total / ok if ok else 0,
        "cpu_s": {name: {"ticks": s.ticks_s, "schedstat": s.schedstat_s, "pids": list(s.pids)}
                  for name, s in cpu.items()},
        "loadgen_cpu_s": self_cpu_s,
        "other_cpu_s": others_s,
        "cpu_window_s": window_s,
        **extra,
    }


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_load(spec: LoadSpec) -> dict:
    """Warm up, then run the measured phase; return :func:`summarise`'s object."""
    client = _Client(spec)
    conns = [await client.connect() for _ in range(spec.concurrency)]
    if spec.warmup:
        warm = _Phase(remaining=spec.warmup, deadline_ns=None)
        conns = await client.run_phase(conns, warm)
    # Our own processes: the servers, this generator, and everything its parent (`python -m bench`) started.
    mine = {os.getpid(), *descendants(os.getppid())}
    for pid in spec.cpu_pids.values():
        mine.update(descendants(pid))
    others_before = all_ticks()
    window_start = _now()
    before = {name: cpu_sample(pid) for name, pid in spec.cpu_pids.items()}
    self_before = _self_cpu()
    start = _now()
    deadline = start + int(spec.duration * 1e9) if spec.duration is not None else None
    phase = _Phase(remaining=spec.requests, deadline_ns=deadline)
    conns = await client.run_phase(conns, phase)
    elapsed = (_now() - start) / 1e9
    if spec.settle:
        await asyncio.sleep(spec.settle)
    self_cpu = _self_cpu() - self_before
    after = {name: cpu_sample(pid) for name, pid in spec.cpu_pids.items()}
    window = (_now() - window_start) / 1e9
    others = other_cpu_s(others_before, all_ticks(), mine)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    cpu = {n: after[n] - before[n] for n in before}
    return summarise(spec, phase, elapsed, cpu, self_cpu, others, window)


def _parse_args(argv: list[str] | None) -> LoadSpec:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description="closed-loop HTTP/1.1 load")
    parser.add_argument("--url", required=True, help="server root, e.g. http://127.0.0.1:8000")
    parser.add_argument("--path", default="/v1/chat/completions")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default="", help="request body (text)")
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0, help="requests before the measured phase")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--requests", type=int, help="measured requests")
    group.add_argument("--duration", type=float, help="measured seconds")
    parser.add_argument("--stream", action="store_true", help="answers are SSE ending with --stream-end")
    parser.add_argument("--stream-end", default=_STREAM_END.decode(),
                        help="what a complete stream ends with (escapes such as \\n allowed; default: data: [DONE])")
    parser.add_argument("--text-ttfb", action="store_true",
                        help="also time the first byte of answer text (after the first --text-mark not followed by \")")
    parser.add_argument("--text-mark", default=_TEXT_MARK.decode(), help='default "content":" (OpenAI)')
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--settle", type=float, default=0.0,
                        help="idle seconds inside the CPU window after the measured requests "
                             "(catches work a server defers, e.g. batched audit writes)")
    parser.add_argument("--cpu-pid", action="append", default=[], metavar="NAME=PID",
                        help="sample this process tree's CPU around the measured phase")
    args = parser.parse_args(argv)
    headers = {}
    for item in args.header:
        name, _, value = item.partition(":")
        headers[name.strip()] = value.strip()
    cpu_pids = {}
    for item in args.cpu_pid:
        name, _, pid = item.partition("=")
        cpu_pids[name] = int(pid)
    return LoadSpec(
        url=args.url, path=args.path, method=args.method, body=args.body.encode(), headers=headers,
        concurrency=args.concurrency, warmup=args.warmup, requests=args.requests, duration=args.duration,
        stream=args.stream, text_ttfb=args.text_ttfb, timeout=args.timeout, settle=args.settle, cpu_pids=cpu_pids,
        stream_end=args.stream_end.encode().decode("unicode_escape").encode("latin-1"),
        text_mark=args.text_mark.encode(),
    )


def main(argv: list[str] | None = None) -> None:
    """Run one load and print its JSON result."""
    spec = _parse_args(argv)
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        result = asyncio.run(run_load(spec))
    else:
        result = uvloop.run(run_load(spec))
    sys.stdout.buffer.write(orjson.dumps(result) + b"\n")


if __name__ == "__main__":
    main()
