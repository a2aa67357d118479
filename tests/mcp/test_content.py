"""MCP tools and results in the neutral model: what the detectors read of them, and what they do not."""

from __future__ import annotations

import base64

from capsem_proxy.mcp.content import result_of, tool_definition


def test_a_listed_tool_keeps_its_schema_and_its_texts():
    tool = tool_definition({
        "name": "search", "title": "Web search", "description": "Search the web.",
        "inputSchema": {"type": "object", "properties": {"q": {"type": "string", "description": "the query"}}},
        "outputSchema": {"type": "object", "properties": {"hits": {"description": "what was found"}}},
    })
    assert tool.parameters["properties"]["q"]["type"] == "string"
    texts = tool.texts()
    assert {"search", "Search the web.", "Web search", "the query", "what was found"} <= set(texts)
    assert "string" not in texts


def test_a_result_reads_text_structured_content_and_resources_but_not_binaries():
    text_blob = base64.b64encode(b"secret inside a text file").decode()
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()
    result = result_of("read", "7", {
        "content": [
            {"type": "text", "text": "visible text"},
            {"type": "image", "data": png, "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "file:///a.txt", "mimeType": "text/plain", "blob": text_blob}},
            {"type": "resource_link", "uri": "https://example.org/x", "name": "x", "description": "a link"},
        ],
        "structuredContent": {"owner": "someone@example.org"},
        "isError": False,
        "_meta": {"server": "read too", "io.example/trace": "abc123"},
    })
    texts = result.texts()
    assert {"visible text", "https://example.org/x", "a link", "someone@example.org", "owner", "read too"} <= set(texts)
    assert png not in texts and text_blob not in texts and "io.example/trace" not in texts
    assert result.media_texts() == ["secret inside a text file"]
    assert result.as_dict()["structuredContent"] == {"owner": "someone@example.org"}
    assert result.call_id == "7" and result.name == "read"
