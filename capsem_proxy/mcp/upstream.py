"""One pooled HTTP client per MCP server, with its configured headers and time limits.

Answers come back as `capsem_proxy.upstream.UpstreamResponse` (bounded reads, chunked streams) and
client errors as the proxy's own exceptions, as for the providers. A server-initiated stream (GET)
has its own idle limit (none by default): such a stream may rightly stay quiet for hours.
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from yarl import URL

from capsem_proxy.config import ConfigError
from capsem_proxy.errors import UpstreamTimeout, UpstreamUnavailable
from capsem_proxy.mcp.settings import McpServerSettings, expand_variables
from capsem_proxy.upstream import HOP_BY_HOP_HEADERS, UpstreamResponse

__all__ = ["McpUpstream"]

_RESPONSE_HEADERS_DROPPED = HOP_BY_HOP_HEADERS | {b"content-length", b"content-encoding", b"date", b"server"}


class McpUpstream:
    """The HTTP client of one MCP server."""

    def __init__(self, name: str, settings: McpServerSettings) -> None:
        self.name = name
        self.settings = settings
        self.url = URL(settings.url, encoded=True)
        try:
            # ${VAR} is read once, at start-up: a missing variable stops the proxy, naming it.
            self.headers = {header: expand_variables(value) for header, value in settings.headers.items()}
        except KeyError as exc:
            raise ConfigError(
                f"mcp.servers.{name}.headers: the environment variable {exc.args[0]} is not set"
            ) from None
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.connect_timeout, sock_read=settings.read_timeout
        )
        self._listen_timeout = aiohttp.ClientTimeout(
            total=None, connect=settings.connect_timeout, sock_read=settings.listen_idle_timeout
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.settings.max_connections, limit_per_host=0, keepalive_timeout=30)
        return aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=True,
            skip_auto_headers=("User-Agent", "Content-Type"), cookie_jar=aiohttp.DummyCookieJar(),
            raise_for_status=False,
        )

    async def send(
        self, method: str, headers: Mapping[str, str], body: bytes | None, *, listen: bool = False
    ) -> UpstreamResponse:
        """Send one request; return once the answer's status and headers are in."""
        session = self._session
        if session is None:
            session = self._session = self._open()
        try:
            response = await session.request(
                method, self.url, headers={**headers, **self.headers}, data=body,
                timeout=self._listen_timeout if listen else self._timeout, allow_redirects=False, compress=None,
            )
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout(f"the MCP server '{self.name}' did not answer in time") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"the MCP server '{self.name}' could not be reached") from exc
        kept = [(name.lower(), value) for name, value in response.raw_headers
                if name.lower() not in _RESPONSE_HEADERS_DROPPED]
        return UpstreamResponse(
            status=response.status, headers=kept, content_type=response.headers.get("content-type", ""),
            _response=response, max_body_bytes=self.settings.max_answer_bytes,
        )

    async def close(self) -> None:
        """Close the pool (at shutdown)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
