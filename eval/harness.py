"""Runs each configured detector policy over its corpus and measures its latency.

Policies are built by the proxy's own loader from eval/detectors.yaml, so what is scored is
exactly what a proxy with that config would run. An item counts as flagged when the policy's
decision is anything but ALLOW (a policy that raises counts as flagged too, as the proxy fails
closed, and is reported as an error). A detector without a corpus, or whose policy cannot be
built yet, is reported as skipped with the reason rather than stopping the run.
"""

from __future__ import annotations

import asyncio
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from capsem_proxy.config import ConfigError, PolicySettings
from capsem_proxy.decisions import Verdict
from capsem_proxy.pipeline import Pipeline
from capsem_proxy.policies.base import ConfiguredPolicy
from capsem_proxy.policies.loader import load_policy
from eval.corpus import SPLITS, Corpus, Item, load_corpora
from eval.events import build_event, request_context, tool_definition
from eval.metrics import ItemOutcome, percentile, summarize

__all__ = [
    "CROSS_SPLIT",
    "DEFAULT_CORPUS_DIR",
    "DEFAULT_CROSS_DIR",
    "DEFAULT_DETECTORS_FILE",
    "EVAL_DIR",
    "HEADLINE_SPLIT",
    "TARGETS_MS",
    "DetectorSpec",
    "EvalConfigError",
    "load_detector_specs",
    "run_eval",
    "typical_prompt",
]

EVAL_DIR = Path(__file__).resolve().parent
DEFAULT_CORPUS_DIR = EVAL_DIR / "corpus"
# Items from held-out sources (split `cross`), one `<detector>.jsonl` each, scored with the corpus.
DEFAULT_CROSS_DIR = EVAL_DIR / "cross"
DEFAULT_DETECTORS_FILE = EVAL_DIR / "detectors.yaml"
HEADLINE_SPLIT = "test"
CROSS_SPLIT = "cross"
# Latency targets on the typical request (p50): each detector, and the default set together.
TARGETS_MS = {"detector_p50": 2.0, "default_set_p50": 5.0}
TYPICAL_PROMPT_CHARS = 2048
_MAX_LISTED_ERRORS = 20
# The tools a typical agent request offers alongside its prompt.
_TYPICAL_TOOLS = [
    {
        "name": "get_weather", "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
    {
        "name": "search_documents", "description": "Full-text search over the team's documents",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}},
            "required": ["query"],
        },
    },
]
_TYPICAL_SYSTEM = "You are a helpful assistant for the operations team. Answer concisely."


class EvalConfigError(ValueError):
    """eval/detectors.yaml is malformed."""


@dataclass(slots=True)
class DetectorSpec:
    """How to build one detector's policy, and whether it belongs to the default set."""

    name: str
    settings: PolicySettings
    default_set: bool


def load_detector_specs(path: Path) -> dict[str, DetectorSpec]:
    """Read eval/detectors.yaml: detector name -> {class, options, hooks?, default_set?}."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EvalConfigError(f"{path}: {exc}") from exc
    if not isinstance(document, dict):
        raise EvalConfigError(f"{path}: expected a mapping of detector name -> {{class, options}}")
    specs = {}
    for name, entry in document.items():
        if not isinstance(entry, dict):
            raise EvalConfigError(f"{path}: '{name}' must be a mapping with 'class' and 'options'")
        entry = dict(entry)
        default_set = bool(entry.pop("default_set", False))
        try:
            settings = PolicySettings.model_validate(entry)
        except ValidationError as exc:
            raise EvalConfigError(f"{path}: '{name}': {exc}") from exc
        specs[str(name)] = DetectorSpec(str(name), settings, default_set)
    return specs


def _build(spec: DetectorSpec) -> tuple[ConfiguredPolicy | None, str | None]:
    """The detector's policy, or why it cannot be built."""
    try:
        policy = load_policy(spec.settings, f"eval/detectors.yaml: {spec.name}")
    except ConfigError as exc:
        return None, str(exc)
    if policy is None:
        return None, "the policy disabled itself"
    return policy, None


async def _score_item(policy: ConfiguredPolicy, item: Item) -> ItemOutcome:
    event = build_event(item)
    if not policy.implements(item.hook):
        return ItemOutcome(item, flagged=False, latency_ms=None)
    hook = policy.hook(item.hook)
    started = time.perf_counter()
    try:
        decision = await hook(event)
    except Exception as exc:  # the proxy fails closed on a policy that raises
        latency_ms = (time.perf_counter() - started) * 1000.0
        return ItemOutcome(item, True, latency_ms, "BLOCK", error=f"{item.id}: {type(exc).__name__}: {exc}")
    latency_ms = (time.perf_counter() - started) * 1000.0
    if decision is None or decision.verdict is Verdict.ALLOW:
        return ItemOutcome(item, False, latency_ms)
    found = decision.extra.get("kinds") if isinstance(decision.extra, dict) else None
    return ItemOutcome(item, True, latency_ms, decision.verdict.value, list(found or []))


def typical_prompt(corpora: dict[str, Corpus], size: int = TYPICAL_PROMPT_CHARS) -> str:
    """About `size` characters of ordinary text: benign prompts of the corpora, in id order."""
    texts = sorted(
        (item.id, item.fields["text"])
        for corpus in corpora.values()
        for item in corpus.items
        if item.category == "benign" and item.hook == "on_model_call" and item.split != CROSS_SPLIT
    )
    prompt = ""
    for _, text in texts:
        prompt = f"{prompt}\n\n{text}" if prompt else text
        if len(prompt) >= size:
            break
    if len(prompt) > size:
        cut = prompt.rfind(" ", 0, size)
        prompt = prompt[: cut if cut > size // 2 else size]
    return prompt


async def _request_latency(policies: list[ConfiguredPolicy], prompt: str, repetitions: int) -> dict[str, Any]:
    """p50/p99 of the whole request check (every hook the request triggers) of `policies`."""
    pipeline = Pipeline(policies)
    tools = [tool_definition(tool) for tool in _TYPICAL_TOOLS]
    samples = []
    for index in range(repetitions + max(10, repetitions // 10)):
        context = request_context(f"latency-{index}", prompt, system=_TYPICAL_SYSTEM, tools=tools)
        started = time.perf_counter()
        await pipeline.check_request(context)
        samples.append((time.perf_counter() - started) * 1000.0)
    measured = samples[-repetitions:]  # the first ones warm caches up
    return {
        "p50_ms": round(percentile(measured, 0.5) or 0.0, 4),
        "p99_ms": round(percentile(measured, 0.99) or 0.0, 4),
        "repetitions": repetitions,
    }


def _display(path: Path) -> str:
    """`path` relative to the repository when it is inside it."""
    root = EVAL_DIR.parent
    return str(path.resolve().relative_to(root)) if path.resolve().is_relative_to(root) else str(path)


def _split_scores(outcomes: list[ItemOutcome]) -> dict[str, Any]:
    splits = {split: summarize([o for o in outcomes if o.item.split == split]) for split in SPLITS}
    splits["all"] = summarize(outcomes)
    return splits


def _with_cross(corpora: dict[str, Corpus], cross_dir: Path | None) -> dict[str, Corpus]:
    """The corpora with the held-out items of `cross_dir` added to their detector's corpus (a
    detector with cross items only gets a corpus of them)."""
    if cross_dir is None:
        return corpora
    for name, cross in load_corpora(cross_dir).items():
        problems = [f"{line} (split must be '{CROSS_SPLIT}')" for line in _misplaced(cross)]
        corpus = corpora.setdefault(name, Corpus(name, cross.path))
        ids = {item.id for item in corpus.items}
        corpus.items.extend(item for item in cross.items if item.split == CROSS_SPLIT and item.id not in ids)
        corpus.errors.extend([*cross.errors, *problems])
        corpus.errors.extend(f"{cross.path}: duplicate id '{item.id}'" for item in cross.items if item.id in ids)
    return corpora


def _misplaced(cross: Corpus) -> list[str]:
    return [f"{cross.path}: {item.id}" for item in cross.items if item.split != CROSS_SPLIT]


async def _evaluate(
    corpus_dir: Path, detectors_file: Path, only: set[str] | None, repetitions: int, cross_dir: Path | None = None
) -> dict[str, Any]:
    started = time.perf_counter()
    cpu_started = time.process_time()
    specs = load_detector_specs(detectors_file)
    corpora = _with_cross(load_corpora(corpus_dir), cross_dir)
    names = sorted(set(specs) | set(corpora))
    if only:
        names = [name for name in names if name in only]
    prompt = typical_prompt(corpora)
    detectors: dict[str, Any] = {}
    built: dict[str, ConfiguredPolicy] = {}
    for name in names:
        spec, corpus = specs.get(name), corpora.get(name)
        entry: dict[str, Any] = {"status": "skipped"}
        detectors[name] = entry
        if spec is None:
            entry["reason"] = f"no entry in {detectors_file.name}"
            continue
        entry["class"] = spec.settings.class_path
        entry["default_set"] = spec.default_set
        policy, problem = _build(spec)
        if policy is None:
            entry["reason"] = f"policy cannot be built: {problem}"
            continue
        built[name] = policy
        if prompt:
            entry["request_latency"] = await _request_latency([policy], prompt, repetitions)
        if corpus is None:
            entry["reason"] = f"no corpus ({corpus_dir.name}/{name}.jsonl)"
            continue
        detector_started = time.perf_counter()
        outcomes = [await _score_item(policy, item) for item in corpus.items]
        entry.update(
            status="ok",
            corpus=_display(corpus.path),
            corpus_error_count=len(corpus.errors),
            corpus_errors=corpus.errors[:_MAX_LISTED_ERRORS],
            item_errors=[o.error for o in outcomes if o.error][:_MAX_LISTED_ERRORS],
            seconds=round(time.perf_counter() - detector_started, 3),
            splits=_split_scores(outcomes),
        )
        entry.pop("reason", None)
    # In the order of detectors.yaml, as a proxy config lists them.
    default_names = [name for name, spec in specs.items() if spec.default_set and (not only or name in only)]
    default_set: dict[str, Any] = {
        "detectors": [name for name in default_names if name in built],
        "missing": [name for name in default_names if name not in built],
    }
    if prompt and default_set["detectors"]:
        chain = [built[name] for name in default_set["detectors"]]
        default_set["request_latency"] = await _request_latency(chain, prompt, repetitions)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": f"{platform.system()} {platform.machine()}",
        "headline_split": HEADLINE_SPLIT,
        "cross_split": CROSS_SPLIT,
        "typical_request": {
            "prompt_chars": len(prompt), "system_chars": len(_TYPICAL_SYSTEM), "offered_tools": len(_TYPICAL_TOOLS),
        },
        "targets_ms": dict(TARGETS_MS),
        "detectors": detectors,
        "default_set": default_set,
        "seconds": round(time.perf_counter() - started, 3),
        # What the run itself cost, whatever else the machine was doing.
        "cpu_seconds": round(time.process_time() - cpu_started, 3),
    }


def run_eval(
    corpus_dir: Path = DEFAULT_CORPUS_DIR,
    detectors_file: Path = DEFAULT_DETECTORS_FILE,
    *,
    only: set[str] | None = None,
    repetitions: int = 300,
    cross_dir: Path | None = None,
) -> dict[str, Any]:
    """Evaluate every detector (or those in `only`) on its corpus and its held-out (`cross`)
    items, and return the report (JSON-able). The held-out items are read from `cross_dir`, by
    default eval/cross/ when the corpus is the repository's own (another corpus has none)."""
    if cross_dir is None and Path(corpus_dir).resolve() == DEFAULT_CORPUS_DIR:
        cross_dir = DEFAULT_CROSS_DIR
    cross = Path(cross_dir) if cross_dir is not None else None
    return asyncio.run(_evaluate(Path(corpus_dir), Path(detectors_file), only, repetitions, cross))
