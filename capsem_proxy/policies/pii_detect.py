"""Built-in policy `pii_detect`: personal data (emails, phone numbers, cards, IBANs, national ids,
IP addresses; names and places with an optional NER model) found in prompts, tool results and
answers is redacted, blocked or logged; reversible redaction restores it in the answer."""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from capsem_proxy.detectors.base import Detector
from capsem_proxy.detectors.pii import DEFAULT_PHONE_REGIONS, DEFAULT_PII_KINDS, NER_KINDS, PII_KINDS, PIIDetector
from capsem_proxy.policies.detector_policy import ALL_PLACES, Action, DetectorOptions, DetectorPolicy, Place

__all__ = ["PIIDetectOptions", "PIIDetectPolicy"]


def _default_ner_model(language: str) -> str:
    return "en_core_web_sm" if language == "en" else f"{language}_core_news_sm"


def _spacy_model_missing(model: str) -> str | None:
    """Why `model` cannot be loaded from the installed packages, or None when it can."""
    if importlib.util.find_spec("spacy") is None:
        return "spaCy is not installed (pip install 'capsem-proxy[ner]')"
    import spacy.util

    if not spacy.util.is_package(model):
        return f"the spaCy model '{model}' is not installed as a Python package"
    return None


class PIIDetectOptions(DetectorOptions):
    """Options of PIIDetectPolicy (plus every option of DetectorOptions)."""

    action: Action = "redact"
    # Every place; tool calls the model emits go to the caller's own code, not to the provider, so they
    # are read only when `scan` is spelled out with `tool_calls` (or `emitted_tool_calls: true`).
    # Calls in a request's history do reach the provider: `tool_calls` covers them by default.
    scan: list[Place] = Field(default_factory=lambda: list(ALL_PLACES), description="where to look")
    entities: list[str] = Field(default_factory=lambda: list(DEFAULT_PII_KINDS), description="PII kinds to find")
    min_score: float = Field(0.4, ge=0.0, le=1.0, description="findings scored below this are ignored")
    ner: bool = Field(False, description="also find person and location names with a spaCy NER model")
    ner_model: str | None = Field(None, description="installed spaCy model package (default <language>_core_*_sm)")
    language: str = Field("en", pattern=r"^[a-z]{2}$", description="language of the NER model")
    phone_regions: list[str] = Field(default_factory=lambda: list(DEFAULT_PHONE_REGIONS))
    allow: list[str] = Field(default_factory=list, description="exact values never reported")

    known_kinds: ClassVar[tuple[str, ...]] = tuple(PII_KINDS)
    kind_label: ClassVar[str] = "PII"
    emitted_calls_by_default: ClassVar[bool] = False

    @field_validator("entities")
    @classmethod
    def _entities_known(cls, entities: list[str]) -> list[str]:
        return cls.check_kinds(entities, "entities")

    @field_validator("phone_regions")
    @classmethod
    def _regions_known(cls, regions: list[str]) -> list[str]:
        import phonenumbers

        unknown = [region for region in regions if region not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"phone_regions: unknown region code(s) {', '.join(unknown)} (use ISO codes: US, GB…)")
        return regions

    @model_validator(mode="after")
    def _ner_available(self) -> PIIDetectOptions:
        ner_entities = [kind for kind in self.entities if kind in NER_KINDS]
        if not self.ner:
            if ner_entities:
                raise ValueError(f"entities: {', '.join(ner_entities)} need a NER model: set ner: true")
            return self
        if not ner_entities:
            self.entities = [*self.entities, *NER_KINDS]
        model = self.ner_model or _default_ner_model(self.language)
        missing = _spacy_model_missing(model)
        if missing:
            raise ValueError(
                f"ner: true needs a spaCy model installed as a package, but {missing}. Install the model "
                f"package (pip install <model wheel>) or set ner: false; the proxy never downloads models at run time"
            )
        self.ner_model = model
        return self


class PIIDetectPolicy(DetectorPolicy):
    """Finds personal data; by default redacts it (`[REDACTED:<kind>]`).

    Redaction is the default because most PII in prompts belongs to the caller's own users and
    the task usually survives without it; `reversible: true` gives each value its own
    placeholder (`[REDACTED:email_1]`) and puts the original back in the answer the client
    receives, so the provider never sees it and the user still does. Names and places need
    `ner: true` and an installed spaCy model (checked at start-up, never downloaded); NER is off
    by default because it costs tens of milliseconds per prompt. Tool calls the model emits are
    not scanned by default: they go to the caller's own code, not to the provider (the calls a
    request's history carries are).
    """

    name: ClassVar[str] = "pii"
    reason: ClassVar[str] = "pii"
    options_model: ClassVar[type[DetectorOptions]] = PIIDetectOptions
    incremental_answers: ClassVar[bool] = True

    def build_detector(self, options: DetectorOptions) -> Detector:
        assert isinstance(options, PIIDetectOptions)
        ner = _load_ner(options.ner_model) if options.ner and options.ner_model else None
        return PIIDetector(
            options.entities, min_score=options.min_score, phone_regions=options.phone_regions,
            allow=options.allow, ner=ner,
        )


def _load_ner(model: str) -> Any:
    """The installed spaCy pipeline `model`, with only what named-entity recognition needs."""
    import spacy

    nlp = spacy.load(model)
    needed = [name for name in ("tok2vec", "transformer", "ner") if name in nlp.pipe_names]
    nlp.select_pipes(enable=needed)
    return nlp

