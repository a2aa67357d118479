"""The `mcp:` section of the config: which MCP servers the proxy fronts, and how it guards them.

Header values may name environment variables as `${VAR}`: they are read when the proxy starts, so
a token never has to be written into the file (`validate-config` only warns about a variable that
is unset where it runs; `run` refuses to start without it).
"""

from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["McpServerSettings", "McpSettings", "expand_variables", "missing_variables"]

# `${NAME}`: the only substitution form; `$$` is a literal dollar sign.
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\$")
_SERVER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers an MCP client sends that the proxy itself sets or translates: never forwarded from the client.
_PROXY_OWNED = frozenset({"host", "content-length", "mcp-session-id", "connection", "transfer-encoding", "cookie"})
PinAction = Literal["confirm", "block", "log"]


def expand_variables(value: str) -> str:
    """`value` with each `${VAR}` replaced by the environment's value (KeyError naming a missing one)."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return os.environ[name]

    return _VARIABLE.sub(substitute, value)


def missing_variables(value: str) -> list[str]:
    """The `${VAR}` names in `value` that the environment does not set."""
    return [name for name in _VARIABLE.findall(value) if name and name not in os.environ]


class McpServerSettings(BaseModel):
    """One MCP server reached over Streamable HTTP, served at `/mcp/{name}`."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="the server's MCP endpoint (http:// or https://)")
    headers: dict[str, str] = Field(
        default_factory=dict, description="headers sent to the server (its credentials); ${VAR} reads the environment"
    )
    forward_headers: list[str] = Field(
        default_factory=list,
        description="client headers passed on to the server (e.g. [authorization]); none by default, so the "
        "client's own credentials never reach the server",
    )
    connect_timeout: float = Field(10.0, gt=0, description="seconds to connect to the server")
    read_timeout: float = Field(
        300.0, gt=0, description="longest wait, in seconds, for an answer or between two events of an answer stream"
    )
    listen_idle_timeout: float | None = Field(
        None, gt=0,
        description="longest silence on a server-initiated stream (GET) before it is closed (none: no limit)",
    )
    max_answer_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="largest JSON answer read from the server (an error above)"
    )
    max_connections: int = Field(100, ge=1, description="pooled connections to the server")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        lowered: dict[str, str] = {}
        for name, value in headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"'{name}' is not a valid header name")
            if name.lower() in _PROXY_OWNED:
                raise ValueError(f"'{name}' is set by the proxy itself")
            if "\r" in value or "\n" in value:
                raise ValueError(f"the value of '{name}' holds a line break")
            lowered[name.lower()] = value
        return lowered

    @field_validator("forward_headers")
    @classmethod
    def _forwardable(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"'{name}' is not a valid header name")
            if name.lower() in _PROXY_OWNED:
                raise ValueError(f"'{name}' is set by the proxy itself")
        return [name.lower() for name in names]


class McpSettings(BaseModel):
    """MCP servers guarded by the proxy's policies (see docs/mcp.md)."""

    model_config = ConfigDict(extra="forbid")

    servers: dict[str, McpServerSettings] = Field(
        default_factory=dict, description="name -> server; each is served at /mcp/{name}"
    )
    pin_tools: bool | PinAction = Field(
        True,
        description="record each tool's definition when first seen; a changed one gets this verdict: confirm "
        "(true), block or log; false: no pinning",
    )
    blocked_tools: Literal["remove", "refuse"] = Field(
        "remove", description="a tools/list answer offering a blocked tool: remove it, or refuse the whole list"
    )
    max_listed_tools: int = Field(
        1024, ge=1, le=65_536,
        description="most tools one server may list to a session (all pages together); a tools/list answer "
        "going beyond is refused, since each listed tool is checked by every on_tool_call policy",
    )
    max_sessions: int = Field(
        10_000, ge=1, description="MCP sessions whose listed tools are remembered (least recently used dropped)"
    )
    session_ttl_seconds: float = Field(
        3600.0, gt=0, description="how long an idle session's listed tools are remembered"
    )

    @field_validator("servers")
    @classmethod
    def _server_names(cls, servers: dict[str, McpServerSettings]) -> dict[str, McpServerSettings]:
        for name in servers:
            if not _SERVER_NAME.fullmatch(name):
                raise ValueError(f"server name '{name}' may hold only letters, digits, '.', '_' and '-' (64 at most)")
        return servers

    @property
    def pin_action(self) -> PinAction | None:
        """The verdict a changed tool definition gets, or None when tools are not pinned."""
        if self.pin_tools is False:
            return None
        return "confirm" if self.pin_tools is True else self.pin_tools

    def missing_variables(self) -> list[str]:
        """Each `servers.<name>.headers.<header>` whose `${VAR}` is not set, with the variable."""
        missing: list[str] = []
        for name, server in self.servers.items():
            for header, value in server.headers.items():
                missing.extend(f"mcp.servers.{name}.headers.{header}: ${{{var}}}" for var in missing_variables(value))
        return missing
