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
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

import orjson
from jsonschema import Draft202012Validator, SchemaError
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from referencing.exceptions import Unresolvable

from capsem_proxy.decisions import SEVERITY, Decision, Verdict
from capsem_proxy.detectors.urls import HostAllowList, find_urls, parse_url
from capsem_proxy.hooks import RequestContext, ToolCall

__all__ = ["ArgumentRule", "NameLists", "ToolRulesOptions", "ToolRulesPolicy", "check_glob", "compile_globs"]

RuleAction = Literal["block", "confirm", "log"]
CheckKind = Literal["denied_tool", "unoffered_tool", "invalid_arguments", "too_many_calls"]

_VERDICTS = {"block": Verdict.BLOCK, "confirm": Verdict.CONFIRM, "log": Verdict.LOG}
_REASONS = {
    "denied_tool": "unknown_tool",
    "unoffered_tool": "unknown_tool",
    "invalid_arguments": "policy_violation",
    "too_many_calls": "excessive_usage",
    "argument_rule": "high_risk_action",
}
# RequestContext.scratch keys: the names the request offered, and the emitted calls counted so far.
_OFFERED = "tool_rules.offered"
_CALLS_SEEN = "tool_rules.calls"
_MAX_NAME_CHARS = 64


# ----------------------------------------------------------------------------- options


def check_glob(glob: str) -> str:
    """`glob` when it is usable as a name glob; ValueError naming the problem otherwise."""
    if not glob or not glob.strip():
        raise ValueError("empty glob")
    if re.search(r"\[(?![^\]]+\])", glob):
        raise ValueError(f"glob '{glob}' has an unclosed '['")
    return glob


def _check_regex(pattern: str, what: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{what}: bad regular expression '{pattern}': {exc}") from exc
    return pattern


def compile_globs(globs: list[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any of `globs`; None for no globs."""
    if not globs:
        return None
    return re.compile("|".join(fnmatch.translate(glob) for glob in globs), re.IGNORECASE)


class NameLists(BaseModel):
    """Allow and deny lists of tool-name globs. `allow: null` puts no restriction."""

    model_config = ConfigDict(extra="forbid")

    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)

    @field_validator("allow", "deny")
    @classmethod
    def _globs_valid(cls, globs: list[str] | None) -> list[str] | None:
        return [check_glob(glob) for glob in globs] if globs is not None else None


class ArgumentRule(BaseModel):
    """A rule on the arguments of the tools matching `tool`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="names the rule in reasons (default: arguments[<index>])")
    tool: str = Field("*", description="glob over tool names")
    argument: str = Field("*", description="key glob (any depth) or JSON pointer ('/a/*/b', segments may be globs)")
    deny: list[str] = Field(default_factory=list, description="regexes: a value matching any (search) violates")
    allow: list[str] = Field(default_factory=list, description="regexes: a value must match one whole")
    ignore_case: bool = Field(True, description="regexes ignore case")
    path_roots: list[str] = Field(default_factory=list, description="a path value must stay under one of these")
    allowed_hosts: list[str] = Field(
        default_factory=list, description="URL values (or URLs inside values) must lead to these domains/networks"
    )
    allowed_schemes: list[str] = Field(default_factory=lambda: ["http", "https"], description="with allowed_hosts")
    action: RuleAction = "block"

    @field_validator("tool")
    @classmethod
    def _tool_glob(cls, glob: str) -> str:
        return check_glob(glob)

    @field_validator("argument")
    @classmethod
    def _argument_selector(cls, selector: str) -> str:
        if not selector:
            raise ValueError("empty argument selector")
        for segment in selector.strip("/").split("/") if selector.startswith("/") else [selector]:
            check_glob(segment or "*")
        return selector

    @field_validator("deny", "allow")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        return [_check_regex(pattern, f"pattern {index}") for index, pattern in enumerate(patterns)]

    @field_validator("path_roots")
    @classmethod
    def _absolute_roots(cls, roots: list[str]) -> list[str]:
        for root in roots:
            if not root.startswith("/"):
                raise ValueError(f"path root '{root}' is not an absolute path")
        return [posixpath.normpath(root) for root in roots]

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        HostAllowList(hosts)  # raises ValueError naming the bad entry
        return hosts

    @model_validator(mode="after")
    def _checks_something(self) -> ArgumentRule:
        if not (self.deny or self.allow or self.path_roots or self.allowed_hosts):
            raise ValueError("an argument rule needs at least one of deny, allow, path_roots, allowed_hosts")
        return self


class ToolRulesOptions(BaseModel):
    """Options of ToolRulesPolicy."""

    model_config = ConfigDict(extra="forbid")

    allow: list[str] | None = Field(None, description="tool-name globs allowed (null: any)")
    deny: list[str] = Field(default_factory=list, description="tool-name globs denied")
    tenants: dict[str, NameLists] = Field(default_factory=dict, description="tenant id -> lists")
    agents: dict[str, NameLists] = Field(default_factory=dict, description="agent id -> lists (only narrow)")
    require_offered: bool = Field(True, description="refuse calls to tools the request did not offer")
    validate_arguments: bool = Field(True, description="emitted arguments must match the offered tool's schema")
    max_tool_calls: int | None = Field(None, ge=0, description="most tool calls one answer may emit")
    arguments: list[ArgumentRule] = Field(default_factory=list, description="argument rules")
    actions: dict[CheckKind, RuleAction] = Field(default_factory=dict, description="check -> action (default block)")
    schema_cache_size: int = Field(256, ge=1, description="compiled argument schemas kept")

    @field_validator("allow", "deny")
    @classmethod
    def _globs_valid(cls, globs: list[str] | None) -> list[str] | None:
        return [check_glob(glob) for glob in globs] if globs is not None else None


# ----------------------------------------------------------------------------- compiled rules


@dataclass(frozen=True, slots=True)
class _Lists:
    allow: re.Pattern[str] | None
    restricts: bool  # an allow list is set (an empty one allows nothing)
    deny: re.Pattern[str] | None

    @classmethod
    def of(cls, allow: list[str] | None, deny: list[str]) -> _Lists:
        return cls(compile_globs(allow or []), allow is not None, compile_globs(deny))

    def denies(self, name: str) -> bool:
        return self.deny is not None and self.deny.match(name) is not None

    def allows(self, name: str) -> bool:
        return not self.restricts or (self.allow is not None and self.allow.match(name) is not None)


@dataclass(frozen=True, slots=True)
class _Violation:
    kind: str
    action: str
    details: str
    rule: str = ""


class _CompiledRule:
    """An ArgumentRule ready to run."""

    def __init__(self, rule: ArgumentRule, index: int) -> None:
        flags = re.IGNORECASE if rule.ignore_case else 0
        self.name = rule.name or f"arguments[{index}]"
        self.action = rule.action
        self.tool = re.compile(fnmatch.translate(rule.tool), re.IGNORECASE)
        self.pointer = (
            [
                re.compile(fnmatch.translate(segment.replace("~1", "/").replace("~0", "~")))
                for segment in rule.argument[1:].split("/")
            ]
            if rule.argument.startswith("/")
            else None
        )
        self.key = re.compile(fnmatch.translate(rule.argument)) if self.pointer is None else None
        self.deny = [re.compile(pattern, flags) for pattern in rule.deny]
        self.allow = [re.compile(pattern, flags) for pattern in rule.allow]
        self.path_roots = rule.path_roots
        self.hosts = HostAllowList(rule.allowed_hosts) if rule.allowed_hosts else None
        self.schemes = frozenset(scheme.lower() for scheme in rule.allowed_schemes)

    def selected(self, args: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """(JSON pointer, value) of every scalar the rule selects."""
        if self.pointer is not None:
            yield from _pointer_leaves(args, self.pointer, "")
            return
        assert self.key is not None
        seen: set[str] = set()
        for pointer, value in _keyed_values(args, self.key, ""):
            for leaf_pointer, leaf in _leaves(value, pointer):
                if leaf_pointer not in seen:
                    seen.add(leaf_pointer)
                    yield leaf_pointer, leaf

    def violation(self, value: Any) -> str:
        """What is wrong with one selected value ("" when nothing)."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            return ""
        text = value if isinstance(value, str) else str(value)
        if any(pattern.search(text) for pattern in self.deny):
            return "matches a denied pattern"
        if self.allow and not any(pattern.fullmatch(text) for pattern in self.allow):
            return "matches no allowed pattern"
        if not isinstance(value, str):
            return ""
        if self.path_roots and text and not _under_roots(text, self.path_roots):
            return f"is a path outside {', '.join(self.path_roots)}"
        if self.hosts is not None:
            return _host_violation(text, self.hosts, self.schemes)
        return ""


def _leaves(value: Any, pointer: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{pointer}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{pointer}/{index}")
    else:
        yield pointer, value


def _keyed_values(value: Any, key: re.Pattern[str], pointer: str) -> Iterator[tuple[str, Any]]:
    """Values under keys matching `key`, at any depth."""
    if isinstance(value, dict):
        for name, item in value.items():
            path = f"{pointer}/{name}"
            if key.match(str(name)):
                yield path, item
            yield from _keyed_values(item, key, path)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _keyed_values(item, key, f"{pointer}/{index}")


def _pointer_leaves(value: Any, segments: list[re.Pattern[str]], pointer: str) -> Iterator[tuple[str, Any]]:
    if not segments:
        yield from _leaves(value, pointer)
        return
    head, rest = segments[0], segments[1:]
    if isinstance(value, dict):
        for name, item in value.items():
            if head.match(str(name)):
                yield from _pointer_leaves(item, rest, f"{pointer}/{name}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if head.match(str(index)):
                yield from _pointer_leaves(item, rest, f"{pointer}/{index}")


def _under_roots(path: str, roots: list[str]) -> bool:
    """True when `path`, with `..` resolved (relative to the first root), stays under a root."""
    if "\x00" in path or path.startswith("~"):
        return False
    if path[:7].lower() == "file://":
        path = path[7:]
    path = path.replace("\\", "/")
    resolved = posixpath.normpath(path if path.startswith("/") else posixpath.join(roots[0], path))
    return any(resolved == root or resolved.startswith(root.rstrip("/") + "/") for root in roots)


_SCHEME_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_BARE_HOST = re.compile(r"^[\w.\-]+\.[A-Za-z]{2,}(?::\d+)?(?:[/?#]|$)")


def _host_violation(text: str, hosts: HostAllowList, schemes: frozenset[str]) -> str:
    """What is wrong with the URL `text` is, or with the URLs inside it ("" when nothing)."""
    value = text.strip()
    scheme = _SCHEME_PREFIX.match(value)
    if scheme is not None and value[scheme.end() : scheme.end() + 2].replace("\\", "/") == "//":
        candidates = [value]  # scheme://authority…
    elif _BARE_HOST.match(value):
        candidates = ["http://" + value]  # example.com/path: a client would add the scheme
    elif scheme is not None and " " not in value:
        # mailto:, javascript:, data:, file:/x… : a URL without a host to check.
        name = scheme.group(1).lower()
        return f"uses the scheme '{name[:16]}'" if name not in schemes else "holds a URL without a host"
    else:
        candidates = [found.text for found in find_urls(value) if "://" in found.text[:12]]
    for candidate in candidates:
        url = parse_url(candidate)
        if url is None:
            return "holds a URL without a host"
        if url.scheme not in schemes:
            return f"uses the scheme '{url.scheme[:16]}'"
        if not hosts.allows(url):
            return "leads to a host not allow-listed"
    return ""


# ----------------------------------------------------------------------------- JSON schemas


def _as_json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-style schemas as JSON Schema: `STRING` -> `string`, `nullable` -> a null type."""
    if isinstance(schema, list):
        return [_as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {
        # Property names are names, not schemas: only their values are converted.
        key: {name: _as_json_schema(item) for name, item in value.items()}
        if key == "properties" and isinstance(value, dict)
        else _as_json_schema(value)
        for key, value in schema.items()
    }
    kind = converted.get("type")
    if isinstance(kind, str):
        converted["type"] = kind = kind.lower()
        if converted.pop("nullable", False) is True:
            converted["type"] = [kind, "null"]
    elif isinstance(kind, list):
        converted["type"] = [item.lower() if isinstance(item, str) else item for item in kind]
    return converted


_INVALID_SCHEMA = object()


class _SchemaCache:
    """Compiled validators by schema (its canonical JSON), least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._validators: OrderedDict[bytes, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._validators)

    def validator(self, schema: dict[str, Any]) -> Validator | None:
        """The validator of `schema`; None when the schema is not a valid JSON schema."""
        try:
            key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            key = repr(schema).encode()
        found = self._validators.get(key)
        if found is not None:
            self._validators.move_to_end(key)
            return None if found is _INVALID_SCHEMA else found
        json_schema = _as_json_schema(schema)
        cls = validator_for(json_schema, default=Draft202012Validator)
        try:
            cls.check_schema(json_schema)
            compiled: Any = cls(json_schema)
        except SchemaError:
            compiled = _INVALID_SCHEMA
        self._validators[key] = compiled
        if len(self._validators) > self._size:
            self._validators.popitem(last=False)
        return None if compiled is _INVALID_SCHEMA else compiled


def _short(name: Any) -> str:
    text = str(name)
    return text if len(text) <= _MAX_NAME_CHARS else text[:_MAX_NAME_CHARS] + "..."


def _joined(pointer: str, name: Any) -> str:
    return f"{pointer}/{_short(name)}".lstrip("/")


def _describe_schema_error(error: ValidationError) -> str:
    """The schema violation in words, naming arguments but never their values."""
    where = "/" + "/".join(_short(part) for part in error.absolute_path) if error.absolute_path else ""
    keyword = error.validator
    instance = error.instance
    if keyword == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        return f"missing required argument '{_joined(where, missing[0] if missing else '?')}'"
    if keyword == "additionalProperties" and isinstance(instance, dict) and isinstance(error.schema, dict):
        known = error.schema.get("properties") or {}
        patterns = list((error.schema.get("patternProperties") or {}).keys())
        extra = [
            name for name in instance if name not in known and not any(re.search(p, name) for p in patterns)
        ]
        return f"unexpected argument '{_joined(where, extra[0] if extra else '?')}'"
    target = f"argument '{where.lstrip('/')}'" if where else "the arguments"
    if keyword == "type":
        return f"{target} should be of type {error.validator_value}"
    return f"{target} fails the schema's '{keyword}' rule"


# ----------------------------------------------------------------------------- the policy


class ToolRulesPolicy:
    """Tool allow/deny lists, schema validation, call limits and argument rules (see module docstring)."""

    name: ClassVar[str] = "tool-rules"

    def __init__(self, options: ToolRulesOptions) -> None:
        self.options = options
        self._global = _Lists.of(options.allow, options.deny)
        self._tenants = {tenant: _Lists.of(lists.allow, lists.deny) for tenant, lists in options.tenants.items()}
        self._agents = {agent: _Lists.of(lists.allow, lists.deny) for agent, lists in options.agents.items()}
        self._rules = [_CompiledRule(rule, index) for index, rule in enumerate(options.arguments)]
        self._actions: dict[str, str] = {kind: options.actions.get(kind, "block") for kind in get_args(CheckKind)}
        self.schemas = _SchemaCache(options.schema_cache_size)

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> ToolRulesPolicy:
        return cls(ToolRulesOptions.model_validate(options))

    async def on_tool_call(self, event: ToolCall) -> Decision | None:
        return self.check(event)

    def check(self, event: ToolCall) -> Decision | None:
        """The decision on one offered tool (names only) or one emitted call (everything)."""
        context = event.context
        name = event.tool.name
        violations: list[_Violation] = []
        refusal = self._name_refusal(name, context)
        if refusal:
            details = f"tool '{_short(name)}' {refusal}"
            violations.append(_Violation("denied_tool", self._actions["denied_tool"], details))
        if event.emitted:
            self._check_emitted(event, violations)
        if not violations:
            return None
        return self._decision(violations, name)

    def _name_refusal(self, name: str, context: RequestContext) -> str:
        tenant = self._tenants.get(context.tenant_id)
        agent = self._agents.get(context.agent_id) if context.agent_id else None
        for lists in (self._global, tenant, agent):
            if lists is not None and lists.denies(name):
                return "is on a deny list"
        first = tenant if tenant is not None and tenant.restricts else self._global
        if not first.allows(name) or (agent is not None and not agent.allows(name)):
            return "is not on the allow list"
        return ""

    def _check_emitted(self, event: ToolCall, violations: list[_Violation]) -> None:
        context = event.context
        name = event.tool.name
        options = self.options
        offered = context.scratch.get(_OFFERED)
        if offered is None:
            offered = context.scratch[_OFFERED] = frozenset(tool.name for tool in context.exchange.tools)
        was_offered = name in offered
        if options.require_offered and not was_offered:
            violations.append(
                _Violation("unoffered_tool", self._actions["unoffered_tool"],
                           f"tool '{_short(name)}' was not offered in the request")
            )
        if options.max_tool_calls is not None:
            count = context.scratch[_CALLS_SEEN] = context.scratch.get(_CALLS_SEEN, 0) + 1
            if count > options.max_tool_calls:
                violations.append(
                    _Violation("too_many_calls", self._actions["too_many_calls"],
                               f"more than {options.max_tool_calls} tool call(s) in one answer")
                )
        schema = event.tool.parameters
        if options.validate_arguments and was_offered and schema:
            validator = self.schemas.validator(schema)
            if validator is not None:
                try:
                    error = best_match(validator.iter_errors(event.args))
                except Unresolvable:
                    error = None  # a `$ref` to a document elsewhere: nothing is fetched, so no verdict
                if error is not None:
                    violations.append(
                        _Violation("invalid_arguments", self._actions["invalid_arguments"],
                                   f"arguments of '{_short(name)}' do not match its schema: "
                                   f"{_describe_schema_error(error)}")
                    )
        for rule in self._rules:
            if not rule.tool.match(name):
                continue
            for pointer, value in rule.selected(event.args):
                problem = rule.violation(value)
                if problem:
                    argument = pointer.lstrip("/") if pointer.count("/") == 1 else pointer
                    violations.append(
                        _Violation("argument_rule", rule.action,
                                   f"argument '{_short(argument)}' of '{_short(name)}' {problem} "
                                   f"(rule '{rule.name}')", rule.name)
                    )
                    break  # one finding per rule is enough to decide and to explain

    def _decision(self, violations: list[_Violation], name: str) -> Decision:
        governing = max(violations, key=lambda violation: SEVERITY[_VERDICTS[violation.action]])
        verdict = _VERDICTS[governing.action]
        ordered = [governing, *(violation for violation in violations if violation is not governing)]
        return Decision(
            verdict,
            self.name,
            "on_tool_call",
            reason=_REASONS[governing.kind],
            details="; ".join(violation.details for violation in ordered[:3]),
            subject=name,
            extra={
                "kinds": sorted({violation.kind for violation in violations}),
                "rules": [violation.rule for violation in violations if violation.rule],
            },
        )
