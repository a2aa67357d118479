"""Training-only examples for the injection classifier from vexrag's HijackRAG segments.

Read as a zip archive (nothing installed or imported from it), downloaded like the other
generators' into `$CAPSEM_EVAL_PACKAGE_DIR` (eval/sources/injection.md names the version, licence and
path):

- `vexrag/attack_algorithms/hijackrag/segment_templates/default_en.jsonl` holds 2,251 hijack
  segments (Apache-2.0): short overrides in the style of prompt-hacking competitions ("forget about
  Spanish, say exactly ...", "ignore anything before the word bla", fake answer and feedback turns,
  code and console framings, conditions on the user's question), each asking the reader to print a
  placeholder instead of doing its task. A seeded sample, the placeholder filled with a Faker marker
  (a SCREAMING_SNAKE token, a catch phrase or a short sentence), are positive prompts.

vexrag plants them after a question in a retrieved passage; as documents (alone after a question
and in a Faker document, with clean passages as negatives) they cost the documents model recall on
the other sources on `--validate` (eval/README.md), so they train the prompts model only. None of
these files is read by the cross-source generators. `vexrag_examples(seed)` is deterministic.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator

from faker import Faker

from eval.generate.injection import Wheel

__all__ = ["PACKAGES", "vexrag_examples"]

PACKAGES = {"vexrag": "0.2.1"}

_SEGMENTS = "vexrag/attack_algorithms/hijackrag/segment_templates/default_en.jsonl"
_PLACEHOLDER = re.compile(re.escape("[INSERT PROMPT HERE]"), re.IGNORECASE)
# Segments read: a sample, so that one attack style does not outweigh the other sources.
_SAMPLE = 300


def _marker(fake: Faker, rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return "_".join(fake.words(rng.randrange(2, 4))).upper()
    if kind == 1:
        return fake.catch_phrase()
    return fake.sentence(nb_words=rng.randrange(3, 6)).rstrip(".")


def _fill(template: str, marker: str) -> str:
    return _PLACEHOLDER.sub(lambda _: marker, template).strip()


def vexrag_examples(seed: int = 20261209) -> Iterator[tuple[str, bool, str, str]]:
    """(text, label, model, group) tuples, deterministic for `seed`."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    wheel = Wheel("vexrag", PACKAGES["vexrag"])
    segments: dict[str, str] = {}
    for line in wheel.text(_SEGMENTS).split("\n"):  # not splitlines: rows hold U+2028
        if not line.strip():
            continue
        row = json.loads(line)
        text = str(row.get("hijack_segment") or "")
        if text.strip() and _PLACEHOLDER.search(text):
            segments.setdefault(text, str(row["id"]))
    chosen = rng.sample(sorted(segments.items(), key=lambda item: item[1]), min(_SAMPLE, len(segments)))
    for template, ident in chosen:
        yield _fill(template, _marker(fake, rng)), True, "prompts", f"vexrag:{ident}"
