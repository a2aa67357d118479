"""Built-in policy `secrets`: credentials (API keys, private keys, tokens, passwords) found in
prompts, tool calls, tool results and answers are redacted, blocked or logged."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from capsem_proxy.detectors.base import Detector
from capsem_proxy.detectors.secrets import SECRET_KINDS, SecretsDetector
from capsem_proxy.policies.detector_policy import Action, DetectorOptions, DetectorPolicy

__all__ = ["SecretsOptions", "SecretsPolicy"]


class SecretsOptions(DetectorOptions):
    """Options of SecretsPolicy (plus every option of DetectorOptions)."""

    action: Action = "redact"
    kinds: list[str] = Field(default_factory=lambda: list(SECRET_KINDS), description="secret kinds to look for")
    allow: list[str] = Field(default_factory=list, description="exact values never reported (known test keys)")

    known_kinds: ClassVar[tuple[str, ...]] = tuple(SECRET_KINDS)
    kind_label: ClassVar[str] = "secret"

    @field_validator("kinds")
    @classmethod
    def _kinds_known(cls, kinds: list[str]) -> list[str]:
        return cls.check_kinds(kinds, "kinds")


class SecretsPolicy(DetectorPolicy):
    """Finds credentials; by default redacts them (`[REDACTED:<kind>]`).

    Why redact by default rather than block: a credential in a prompt or a tool result (an agent
    reading a `.env` file, a user pasting a stack trace) must not reach the provider, but the
    model almost never needs the value to do the task, so rewriting it keeps the application
    working while the secret stays home; the decision is audited with the kinds found (never the
    value), so the security team can still rotate the key. Teams that want a hard stop set
    `action: block`, or block only some kinds (`actions: {private_key: block}`). A secret in a
    tool call the model emits is always blocked: the client would run the call with a rewritten
    argument (see DetectorPolicy).

    Streaming: open-ended secrets (PEM blocks, JWTs, long keys) are found from their first
    recognisable characters on, so the default 256-character window suffices; raise
    `window_chars` only for `buffer`-like guarantees on unusual formats.
    """

    name: ClassVar[str] = "secrets"
    reason: ClassVar[str] = "secret"
    options_model: ClassVar[type[DetectorOptions]] = SecretsOptions
    incremental_answers: ClassVar[bool] = True

    def build_detector(self, options: DetectorOptions) -> Detector:
        assert isinstance(options, SecretsOptions)
        return SecretsDetector(kinds=options.kinds, allow=options.allow)
