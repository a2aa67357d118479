"""The options of `tool-rules`, validated at load so a bad config names its key and reason."""

from __future__ import annotations

import posixpath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from capsem_proxy.detectors.urls import check_host_entries
from capsem_proxy.linear_regex import check_linear
from capsem_proxy.policies.globs import check_glob, check_globs

__all__ = ["ArgumentRule", "CheckKind", "NameLists", "RuleAction", "ToolRulesOptions"]

RuleAction = Literal["block", "confirm", "log"]
CheckKind = Literal["denied_tool", "unoffered_tool", "invalid_arguments", "too_many_calls"]


class NameLists(BaseModel):
    """Allow and deny lists of tool-name globs. `allow: null` puts no restriction."""

    model_config = ConfigDict(extra="forbid")

    allow: list[str] | None = None
    deny: list[str] = Field(default_factory=list)

    @field_validator("allow", "deny")
    @classmethod
    def _globs_valid(cls, globs: list[str] | None) -> list[str] | None:
        return check_globs(globs)


class ArgumentRule(BaseModel):
    """A rule on the arguments of the tools matching `tool`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", description="names the rule in reasons (default: arguments[<index>])")
    tool: str = Field("*", description="glob over tool names")
    argument: str = Field("*", description="key glob (any depth) or JSON pointer ('/a/*/b', segments may be globs)")
    deny: list[str] = Field(
        default_factory=list, description="regexes (RE2 syntax, linear time): a value matching any (search) violates"
    )
    allow: list[str] = Field(
        default_factory=list, description="regexes (RE2 syntax, linear time): a value must match one whole"
    )
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
        return [check_linear(pattern, f"pattern {index}") for index, pattern in enumerate(patterns)]

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
        return check_host_entries(hosts)

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
        return check_globs(globs)
