"""Which tool names a caller may use: the global lists, its tenant's and its agent's.

Deny lists add up. A tenant's `allow` replaces the global one (the tenant id is derived from the
caller's key, so it can be trusted to widen); an agent's lists only narrow, because the agent id
is whatever the caller puts in `x-capsem-agent-id`.
"""

from __future__ import annotations

from capsem_proxy.hooks import RequestContext
from capsem_proxy.policies.globs import GlobLists
from capsem_proxy.policies.tool_rules.options import ToolRulesOptions

__all__ = ["ToolNameRules"]


class ToolNameRules:
    """The compiled name lists of a ToolRulesOptions."""

    def __init__(self, options: ToolRulesOptions) -> None:
        self._global = GlobLists.of(options.allow, options.deny)
        self._tenants = {tenant: GlobLists.of(lists.allow, lists.deny) for tenant, lists in options.tenants.items()}
        self._agents = {agent: GlobLists.of(lists.allow, lists.deny) for agent, lists in options.agents.items()}

    def refusal(self, name: str, context: RequestContext) -> str:
        """Why the caller of `context` may not use the tool `name` ("" when it may)."""
        tenant = self._tenants.get(context.tenant_id)
        agent = self._agents.get(context.agent_id) if context.agent_id else None
        for lists in (self._global, tenant, agent):
            if lists is not None and lists.denies(name):
                return "is on a deny list"
        first = tenant if tenant is not None and tenant.restricts else self._global
        if not first.allows(name) or (agent is not None and not agent.allows(name)):
            return "is not on the allow list"
        return ""
