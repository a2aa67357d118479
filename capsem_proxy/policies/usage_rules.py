"""Built-in policy `usage-rules`: which models a request may use and how big it may be.

Checked before every model request (`on_model_call`): the model against allow/deny lists of
globs (case-insensitive), the answer-length cap the caller asked for (`max_tokens`,
`max_output_tokens`…) against `max_output_tokens`, the prompt's length, the request body's
size, and the media types of attached files. Every setting can be given per tenant: a tenant's
value replaces the global one (its allow list included), while deny lists add up, so a
global deny is a ceiling no tenant lifts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from capsem_proxy.decisions import SEVERITY, Decision
from capsem_proxy.hooks import ModelCall
from capsem_proxy.policies.actions import ACTION_VERDICTS
from capsem_proxy.policies.globs import check_glob, check_globs, compile_globs

__all__ = ["UsageLimits", "UsageRulesOptions", "UsageRulesPolicy"]

RuleAction = Literal["block", "confirm", "log"]
CheckKind = Literal[
    "model_not_allowed",
    "output_tokens_over_cap",
    "output_tokens_missing",
    "prompt_too_long",
    "request_too_large",
    "media_type_not_allowed",
]

_REASONS = {
    "model_not_allowed": "policy_violation",
    "media_type_not_allowed": "policy_violation",
    "output_tokens_over_cap": "excessive_usage",
    "output_tokens_missing": "excessive_usage",
    "prompt_too_long": "excessive_usage",
    "request_too_large": "excessive_usage",
}
_MIME_GLOB = re.compile(r"^[\w.+*?\-\[\]!]+/[\w.+*?\-\[\]!]+$")
_MAX_NAME_CHARS = 80


class UsageLimits(BaseModel):
    """Limits for one tenant, or for everyone. Unset (null) settings do not restrict (or, per
    tenant, keep the global value)."""

    model_config = ConfigDict(extra="forbid")

    allow_models: list[str] | None = Field(None, description="model-name globs allowed (null: any)")
    deny_models: list[str] = Field(default_factory=list, description="model-name globs denied")
    max_output_tokens: int | None = Field(None, ge=1, description="largest answer-length cap a request may ask for")
    require_max_output_tokens: bool | None = Field(
        None, description="refuse requests that set no answer-length cap (default false)"
    )
    max_prompt_chars: int | None = Field(None, ge=1, description="system instructions plus prompt, in characters")
    max_request_bytes: int | None = Field(None, ge=1, description="request body size")
    allowed_media_types: list[str] | None = Field(None, description="mime-type globs of attached media (null: any)")

    @field_validator("allow_models", "deny_models")
    @classmethod
    def _model_globs(cls, globs: list[str] | None) -> list[str] | None:
        return check_globs(globs)

    @field_validator("allowed_media_types")
    @classmethod
    def _mime_globs(cls, globs: list[str] | None) -> list[str] | None:
        for glob in globs or []:
            check_glob(glob)
            if not _MIME_GLOB.match(glob):
                raise ValueError(f"'{glob}' is not a media type or glob such as 'image/*'")
        return globs


class UsageRulesOptions(UsageLimits):
    """Options of UsageRulesPolicy: the global limits, per-tenant ones and each check's action."""

    tenants: dict[str, UsageLimits] = Field(default_factory=dict, description="tenant id -> limits")
    actions: dict[CheckKind, RuleAction] = Field(default_factory=dict, description="check -> action (default block)")


@dataclass(frozen=True, slots=True)
class _Limits:
    """One tenant's effective limits, compiled."""

    allow_models: re.Pattern[str] | None
    restricts_models: bool
    deny_models: re.Pattern[str] | None
    max_output_tokens: int | None
    require_max_output_tokens: bool
    max_prompt_chars: int | None
    max_request_bytes: int | None
    media_types: re.Pattern[str] | None
    restricts_media: bool

    @classmethod
    def merged(cls, base: UsageLimits, tenant: UsageLimits | None) -> _Limits:
        def pick(field: str) -> Any:
            value = getattr(tenant, field) if tenant is not None else None
            return value if value is not None else getattr(base, field)

        allow_models = pick("allow_models")
        media = pick("allowed_media_types")
        deny = list(base.deny_models) + (list(tenant.deny_models) if tenant is not None else [])
        return cls(
            allow_models=compile_globs(allow_models or []),
            restricts_models=allow_models is not None,
            deny_models=compile_globs(deny),
            max_output_tokens=pick("max_output_tokens"),
            require_max_output_tokens=bool(pick("require_max_output_tokens")),
            max_prompt_chars=pick("max_prompt_chars"),
            max_request_bytes=pick("max_request_bytes"),
            media_types=compile_globs(media or []),
            restricts_media=media is not None,
        )

    def model_refusal(self, model: str) -> str:
        if self.deny_models is not None and self.deny_models.match(model):
            return "is on the deny list"
        if self.restricts_models and (self.allow_models is None or not self.allow_models.match(model)):
            return "is not on the allow list"
        return ""


class UsageRulesPolicy:
    """Model allow-list and request-size caps (see the module docstring)."""

    name: ClassVar[str] = "usage-rules"

    def __init__(self, options: UsageRulesOptions) -> None:
        self.options = options
        self._default = _Limits.merged(options, None)
        self._tenants = {tenant: _Limits.merged(options, limits) for tenant, limits in options.tenants.items()}
        self._actions: dict[str, str] = {kind: options.actions.get(kind, "block") for kind in get_args(CheckKind)}

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> UsageRulesPolicy:
        return cls(UsageRulesOptions.model_validate(options))

    async def on_model_call(self, event: ModelCall) -> Decision | None:
        return self.check(event)

    def check(self, event: ModelCall) -> Decision | None:
        """The decision on one model request; None when every limit holds."""
        context = event.context
        limits = self._tenants.get(context.tenant_id, self._default)
        exchange = context.exchange
        found: list[tuple[str, str]] = []
        model = event.model_name
        refusal = limits.model_refusal(model)
        if refusal:
            found.append(("model_not_allowed", f"model '{model[:_MAX_NAME_CHARS]}' {refusal}"))
        cap = exchange.max_output_tokens
        if limits.max_output_tokens is not None and cap is not None and cap > limits.max_output_tokens:
            found.append(
                ("output_tokens_over_cap", f"the request asks for up to {cap} output tokens "
                 f"(the limit is {limits.max_output_tokens})")
            )
        elif cap is None and limits.require_max_output_tokens:
            found.append(("output_tokens_missing", "the request sets no limit on output tokens"))
        if limits.max_prompt_chars is not None:
            length = len(event.prompt) + len(event.system_instructions)
            if length > limits.max_prompt_chars:
                found.append(
                    ("prompt_too_long", f"the prompt has {length} characters (the limit is {limits.max_prompt_chars})")
                )
        size = exchange.request_bytes
        if limits.max_request_bytes is not None and size and size > limits.max_request_bytes:
            found.append(
                ("request_too_large", f"the request has {size} bytes (the limit is {limits.max_request_bytes})")
            )
        if limits.restricts_media:
            for part in event.media:
                mime = part.mime_type.split(";", 1)[0].strip().lower()
                if limits.media_types is None or not mime or not limits.media_types.match(mime):
                    found.append(
                        ("media_type_not_allowed", f"media of type '{(mime or 'unknown')[:_MAX_NAME_CHARS]}' "
                         "is not allowed")
                    )
                    break
        if not found:
            return None
        return self._decision(found)

    def _decision(self, found: list[tuple[str, str]]) -> Decision:
        kind, _ = max(found, key=lambda item: SEVERITY[ACTION_VERDICTS[self._actions[item[0]]]])
        ordered = sorted(found, key=lambda item: item[0] != kind)
        return Decision(
            ACTION_VERDICTS[self._actions[kind]],
            self.name,
            "on_model_call",
            reason=_REASONS[kind],
            details="; ".join(details for _, details in ordered),
            extra={"kinds": [item[0] for item in found]},
        )
