"""The cap on the tools one request may offer.

Every offered tool is a policy call per `on_tool_call` policy and a decision the audit trail
folds; past a few thousand, a request costs the proxy far more than the provider (which refuses
such lists itself), so it is refused with 400 before any policy runs.
"""

from __future__ import annotations

from capsem_proxy.errors import ErrorKind, ProxyError
from capsem_proxy.exchange import Exchange

__all__ = ["TooManyTools", "check_tool_count"]


class TooManyTools(ProxyError):
    """A request offering more tools than `server.max_tools_per_request`."""

    status = 400
    kind = ErrorKind.INVALID_REQUEST


def check_tool_count(exchange: Exchange, limit: int) -> None:
    """Raise TooManyTools when `exchange` offers more than `limit` tools."""
    count = len(exchange.tools)
    if count > limit:
        raise TooManyTools(
            f"the request offers {count} tools; at most {limit} are accepted (server.max_tools_per_request)"
        )
