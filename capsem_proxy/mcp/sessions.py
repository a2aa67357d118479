"""MCP sessions through the proxy: bound to their caller, and what the proxy knows of each.

Binding is stateless, so that any replica sharing the server secret can check it: the session id
the client sees is the server's own id followed by a MAC of it, of the server's name and of the
caller's identity (`<server id>.<mac>`). A request carrying a session id minted for someone else,
or not minted by the proxy, is refused as an unknown session; the server never sees it.

What a session's `tools/list` answers offered (the definitions, for schema checks and pinning) is
kept per process, bounded and expiring; a replica that has not seen the list asks the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from capsem_proxy.exchange import ToolDefinition
from capsem_proxy.mcp.content import definition_digest, tool_definition

__all__ = ["SessionBinder", "ToolCatalog", "ToolCatalogs"]

# Session ids are visible ASCII (0x21-0x7E) by the spec; longer than this is refused.
MAX_SESSION_ID_CHARS = 1024
_MAC_CHARS = 22  # 128 bits, base64url


class SessionBinder:
    """Mints and checks caller-bound session ids."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        self._secret = hashlib.sha256(b"capsem-proxy mcp session\0" + secret).digest()

    def _mac(self, server: str, identity: str, upstream_id: str) -> str:
        message = "\0".join((server, identity, upstream_id)).encode("utf-8", "surrogatepass")
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:_MAC_CHARS]

    def bind(self, server: str, identity: str, upstream_id: str) -> str:
        """The id the client sees for the server's session `upstream_id`."""
        return f"{upstream_id}.{self._mac(server, identity, upstream_id)}"

    def unbind(self, server: str, identity: str, client_id: str) -> str | None:
        """The server's session id behind `client_id`, or None when it was not minted for this caller."""
        if len(client_id) > MAX_SESSION_ID_CHARS + _MAC_CHARS + 1:
            return None
        upstream_id, dot, mac = client_id.rpartition(".")
        if not dot or not upstream_id or len(mac) != _MAC_CHARS:
            return None
        if not hmac.compare_digest(mac, self._mac(server, identity, upstream_id)):
            return None
        return upstream_id

    def audit_id(self, server: str, upstream_id: str) -> str:
        """The session's name in the audit trail: a keyed hash, never the id itself (a bearer value)."""
        digest = hmac.new(self._secret, f"audit\0{server}\0{upstream_id}".encode(), hashlib.sha256).hexdigest()
        return "mcp-" + digest[:20]


@dataclass(slots=True)
class ToolCatalog:
    """The tools one session was offered, by name: as the server listed them, as policies read
    them, and their pinned digests."""

    tools: dict[str, dict[str, Any]] = field(default_factory=dict)
    definitions: dict[str, ToolDefinition] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    # True once a tools/list page without a next cursor was seen: the list is whole.
    complete: bool = False
    # True once the server said its tools changed: the next call reads the list again.
    stale: bool = False
    touched: float = 0.0


class ToolCatalogs:
    """Tool catalogs by session key, least recently used dropped first, idle ones expired."""

    def __init__(self, max_sessions: int, ttl_seconds: float, max_tools: int = 4096) -> None:
        self._catalogs: OrderedDict[str, ToolCatalog] = OrderedDict()
        self._max = max_sessions
        self._ttl = ttl_seconds
        self._max_tools = max_tools

    def get(self, key: str) -> ToolCatalog | None:
        """The catalog of a session, when known and fresh."""
        catalog = self._catalogs.get(key)
        if catalog is None:
            return None
        now = time.monotonic()
        if now - catalog.touched > self._ttl:
            del self._catalogs[key]
            return None
        catalog.touched = now
        self._catalogs.move_to_end(key)
        return catalog

    def offer(self, key: str, tools: list[dict[str, Any]], *, first_page: bool, last_page: bool) -> ToolCatalog:
        """Record a tools/list page; the first page starts the catalog afresh."""
        catalog = self.get(key)
        if catalog is None or first_page:
            catalog = ToolCatalog(touched=time.monotonic())
            self._catalogs[key] = catalog
            self._catalogs.move_to_end(key)
            while len(self._catalogs) > self._max:
                self._catalogs.popitem(last=False)
        for tool in tools:
            name = tool.get("name")
            if isinstance(name, str) and (name in catalog.tools or len(catalog.tools) < self._max_tools):
                catalog.tools[name] = tool
                catalog.definitions[name] = tool_definition(tool)
                catalog.digests[name] = definition_digest(tool)
        catalog.complete = last_page
        return catalog

    def stale(self, key: str) -> None:
        """The server said its tools changed: the next call looks at the list again."""
        catalog = self._catalogs.get(key)
        if catalog is not None:
            catalog.stale = True

    def forget(self, key: str) -> None:
        """Drop a session's catalog (the session ended)."""
        self._catalogs.pop(key, None)

    def __len__(self) -> int:
        return len(self._catalogs)
