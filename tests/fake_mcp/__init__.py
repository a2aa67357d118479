"""A fake MCP server on the official `mcp` SDK, run as a real process (Streamable HTTP or stdio)."""
