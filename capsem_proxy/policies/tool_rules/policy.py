"""ToolRulesPolicy: runs the name lists, the emitted-call checks and the argument rules on each
tool the request offers and each call the model emits (see the package docstring)."""

from __future__ import annotations

from typing import Any, ClassVar, get_args

from capsem_proxy.decisions import Decision
from capsem_proxy.hooks import ToolCall
from capsem_proxy.policies.tool_rules.arguments import CompiledArgumentRule
from capsem_proxy.policies.tool_rules.names import ToolNameRules
from capsem_proxy.policies.tool_rules.options import CheckKind, ToolRulesOptions
from capsem_proxy.policies.tool_rules.reasons import Violation, decision_of, shortened
from capsem_proxy.policies.tool_rules.schemas import SchemaCache, schema_problem

__all__ = ["ToolRulesPolicy"]

# RequestContext.scratch keys: the names the request offered, and the emitted calls counted so far.
_OFFERED = "tool_rules.offered"
_CALLS_SEEN = "tool_rules.calls"


class ToolRulesPolicy:
    """Tool allow/deny lists, schema validation, call limits and argument rules (see the package docstring)."""

    name: ClassVar[str] = "tool-rules"

    def __init__(self, options: ToolRulesOptions) -> None:
        self.options = options
        self._names = ToolNameRules(options)
        self._rules = [CompiledArgumentRule(rule, index) for index, rule in enumerate(options.arguments)]
        self._actions: dict[str, str] = {kind: options.actions.get(kind, "block") for kind in get_args(CheckKind)}
        self.schemas = SchemaCache(options.schema_cache_size)

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> ToolRulesPolicy:
        return cls(ToolRulesOptions.model_validate(options))

    async def on_tool_call(self, event: ToolCall) -> Decision | None:
        return self.check(event)

    def check(self, event: ToolCall) -> Decision | None:
        """The decision on one offered tool (names only) or one emitted call (everything)."""
        name = event.tool.name
        violations: list[Violation] = []
        refusal = self._names.refusal(name, event.context)
        if refusal:
            details = f"tool '{shortened(name)}' {refusal}"
            violations.append(Violation("denied_tool", self._actions["denied_tool"], details))
        if event.emitted:
            self._check_emitted(event, violations)
        if not violations:
            return None
        return decision_of(violations, self.name, name)

    def _check_emitted(self, event: ToolCall, violations: list[Violation]) -> None:
        context = event.context
        name = event.tool.name
        options = self.options
        offered = context.scratch.get(_OFFERED)
        if offered is None:
            offered = context.scratch[_OFFERED] = frozenset(tool.name for tool in context.exchange.tools)
        was_offered = name in offered
        if options.require_offered and not was_offered:
            violations.append(
                Violation("unoffered_tool", self._actions["unoffered_tool"],
                          f"tool '{shortened(name)}' was not offered in the request")
            )
        if options.max_tool_calls is not None:
            count = context.scratch[_CALLS_SEEN] = context.scratch.get(_CALLS_SEEN, 0) + 1
            if count > options.max_tool_calls:
                violations.append(
                    Violation("too_many_calls", self._actions["too_many_calls"],
                              f"more than {options.max_tool_calls} tool call(s) in one answer")
                )
        schema = event.tool.parameters
        if options.validate_arguments and was_offered and schema:
            validator = self.schemas.validator(schema)
            problem = schema_problem(validator, event.args) if validator is not None else ""
            if problem:
                violations.append(
                    Violation("invalid_arguments", self._actions["invalid_arguments"],
                              f"arguments of '{shortened(name)}' do not match its schema: {problem}")
                )
        for rule in self._rules:
            if not rule.tool.match(name):
                continue
            for pointer, value in rule.selected(event.args):
                problem = rule.violation(value)
                if problem:
                    argument = pointer.lstrip("/") if pointer.count("/") == 1 else pointer
                    violations.append(
                        Violation("argument_rule", rule.action,
                                  f"argument '{shortened(argument)}' of '{shortened(name)}' {problem} "
                                  f"(rule '{rule.name}')", rule.name)
                    )
                    break  # one finding per rule is enough to decide and to explain
