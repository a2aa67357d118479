"""Built-in policy `tool-rules`: which tools a request may offer and the model may call, and
what their arguments may hold.

- Names: allow/deny lists of globs (case-insensitive) globally, per tenant and per agent. Deny
  lists add up. A tenant's `allow` replaces the global one (the tenant id is derived from the
  caller's key, so it can be trusted to widen); an agent's lists only narrow, because the
  agent id is whatever the caller puts in `x-capsem-agent-id`. Offered tools and emitted calls
  are both checked.
- Emitted calls: a call to a tool the request never offered is refused; the arguments must
  match the JSON schema the request gave for the tool (Gemini's upper-case OpenAPI types
  included; a schema that is not valid, or refers to documents elsewhere, validates nothing);
  at most `max_tool_calls` calls per answer (streamed calls are counted one by one as they
  complete).
- Argument rules: for the arguments a rule selects (a key glob matched at any depth, or a JSON
  pointer whose segments may be globs), deny regexes (searched), allow regexes (one must match
  the whole value), allowed path roots (`..` resolved, relative paths taken from the first
  root) and allowed hosts for URLs (the whole value or URLs inside it).

Reasons name the tool, the rule and the argument, never an argument's value (it may be a secret).

One job per module: `options` (the pydantic models), `names` (the name lists), `selectors` and
`arguments` (argument rules), `schemas` (schema validation), `reasons` (violations and the
decision) and `policy` (the policy itself).
"""

from capsem_proxy.policies.globs import check_glob, compile_globs
from capsem_proxy.policies.tool_rules.options import ArgumentRule, NameLists, ToolRulesOptions
from capsem_proxy.policies.tool_rules.policy import ToolRulesPolicy

# check_glob and compile_globs live in capsem_proxy.policies.globs; they stay importable from here.
__all__ = ["ArgumentRule", "NameLists", "ToolRulesOptions", "ToolRulesPolicy", "check_glob", "compile_globs"]
