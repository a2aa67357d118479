"""`python -m capsem_proxy.probe [PATH]`: exit 0 when the local proxy answers PATH (default /healthz) with 200.

The container's HEALTHCHECK runs it: a slim image has no curl, and the port comes from the same
variable the proxy reads (`CAPSEM_PROXY_SERVER__PORT`, default 8000)."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

__all__ = ["probe"]


def probe(path: str = "/healthz", port: int | None = None, timeout: float = 2.0) -> bool:
    """True when http://127.0.0.1:PORT/PATH answers 200 within `timeout` seconds."""
    port = port or int(os.environ.get("CAPSEM_PROXY_SERVER__PORT", "8000"))
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


if __name__ == "__main__":
    sys.exit(0 if probe(sys.argv[1] if len(sys.argv) > 1 else "/healthz") else 1)
