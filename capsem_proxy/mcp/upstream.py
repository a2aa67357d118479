"""One pooled HTTP client per MCP server, with its configured headers and time limits.

Answers come back as `capsem_proxy.upstream.UpstreamResponse` (bounded reads, chunked streams) and
client errors as the proxy's own exceptions, as for the providers. A server-initiated stream (GET)
has its own idle limit (none by default): such a stream may rightly stay quiet for hours.
"""

from __future__ import annotations

from collections.abc import Mapping

from capsem_proxy.config import ConfigError
from capsem_proxy.mcp.settings import McpServerSettings, expand_variables
from capsem_proxy.upstream import PooledClient, UpstreamResponse

__all__ = ["McpUpstream"]

class McpUpstream:
    """The HTTP client of one MCP server."""

    def __init__(self, name: str, settings: McpServerSettings) -> None:
        self.name = name
        self.settings = settings
        try:
            # ${VAR} is read once, at start-up: a missing variable stops the proxy, naming it.
            self.headers = {header: expand_variables(value) for header, value in settings.headers.items()}
        except KeyError as exc:
            raise ConfigError(
                f"mcp.servers.{name}.headers: the environment variable {exc.args[0]} is not set"
            ) from None
        self._client = PooledClient(
            settings.url, label=f"the MCP server '{name}'", max_connections=settings.max_connections,
            connect_timeout=settings.connect_timeout, max_answer_bytes=settings.max_answer_bytes,
        )

    async def send(
        self, method: str, headers: Mapping[str, str], body: bytes | None, *, listen: bool = False
    ) -> UpstreamResponse:
        """Send one request; return once the answer's status and headers are in."""
        settings = self.settings
        return await self._client.send(
            method, self._client.base_path or "/", {**headers, **self.headers}, body,
            settings.listen_idle_timeout if listen else settings.read_timeout,
        )

    async def close(self) -> None:
        """Close the pool (at shutdown)."""
        await self._client.close()
