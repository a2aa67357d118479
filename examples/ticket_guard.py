"""A native capsem-proxy policy, the worked example of docs/writing-policies.md: prompts that name
a ticket of an internal project are refused, and such ticket ids are redacted from answers."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.hooks import ModelCall, ModelResponse

# A ticket id: a project key, a dash, a number (OPS-1234).
_TICKET = re.compile(r"\b([A-Z][A-Z0-9]{1,9})-[0-9]{1,7}\b")


class TicketGuardOptions(BaseModel):
    """The policy's `options:`, validated when the proxy starts (a typo stops it there)."""

    model_config = ConfigDict(extra="forbid")

    projects: list[str] = Field(min_length=1, description="project keys whose tickets are internal")


class TicketGuard:
    """Refuses prompts naming an internal ticket; redacts internal ticket ids from answers."""

    name = "ticket-guard"
    # The longest ticket id: a streamed answer holds back this many characters, so an id is
    # never released half-seen.
    window_chars: ClassVar[int] = 18

    def __init__(self, options: TicketGuardOptions) -> None:
        self.projects = frozenset(options.projects)

    @classmethod
    def from_config(cls, options: dict[str, Any]) -> TicketGuard:
        return cls(TicketGuardOptions.model_validate(options))

    def _tickets(self, text: str) -> list[str]:
        return [match.group(0) for match in _TICKET.finditer(text) if match.group(1) in self.projects]

    async def on_model_call(self, event: ModelCall) -> Decision | None:
        if self._tickets(event.prompt):
            # `details` is shown to the caller: it says what was found, never the text itself.
            return Decision(Verdict.BLOCK, self.name, "on_model_call", reason="internal_ticket",
                            details="the prompt names an internal ticket")
        return None  # no opinion

    async def on_model_response(self, event: ModelResponse) -> Decision | None:
        found = self._tickets(event.answer.text)
        if not found:
            return None
        return Decision(Verdict.REDACT, self.name, "on_model_response", reason="internal_ticket",
                        details=f"{len(found)} internal ticket id(s)",
                        redactions=[(ticket, "[ticket]") for ticket in dict.fromkeys(found)])
