"""MCP (Model Context Protocol) traffic, guarded by the same policies as model traffic.

One job per module: `settings` (the `mcp:` config section), `jsonrpc` (JSON-RPC framing),
`events` (JSON-RPC messages in SSE events), `content` (MCP tools and results in the neutral
model), `sessions` (caller-bound session ids, the tools each session was offered), `pin_store`
and `pinning` (pinned tool definitions), `guard` (the policies on each message, whatever the
transport), `upstream` (one HTTP client per server), `http` (the Streamable HTTP proxy at
`/mcp/{name}`) and `stdio` (`capsem-proxy mcp-stdio`, a guarded local server).

Nothing is imported here: the config model imports `settings` alone, without the proxy's machinery.
"""

__all__: list[str] = []
