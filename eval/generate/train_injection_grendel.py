"""Training-only examples for the injection classifier from grendel-redteam's attack packs.

Read as a zip archive (nothing installed or imported from it), downloaded like the other
generators' into `$CAPSEM_EVAL_PACKAGE_DIR` (eval/sources/injection.md names the version, licences and
paths):

- `grendel/packs/_corpora.jsonl` vendors two public sets, each row naming its own licence: deepset's
  prompt injections (Apache-2.0; questions followed by an override, "forget everything above",
  persona and film-scene frames, praise before a new task, much of it in German or mixing German,
  English, French, Spanish and Croatian, misspelt overrides) are positive prompts; AdvBench's
  harmful behaviours (MIT) are requests with no override, persona or framing: negative prompts (the
  attack is the framing, not the topic, as JailbreakBench's behaviours of blastcontain-drill), a
  seeded sample so that they do not outweigh the other negatives.
- the YAML packs: the prompt-injection and jailbreak payloads are positive prompts, the payloads
  written as a tool result or a retrieved document positive documents (alone and planted in a Faker
  document); the control prompts are negative prompts. The MCP packs describe an attack in prose
  (no attack text) and the two tool-abuse packs ask the user's own agent to delete or send something
  (tool misuse, another policy's business): left out.

None of these files is read by the cross-source generators. `grendel_examples(seed)` is deterministic.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import yaml
from faker import Faker

from eval.generate.injection import Wheel
from eval.generate.train_injection_extra import _document

__all__ = ["PACKAGES", "grendel_examples"]

PACKAGES = {"grendel_redteam": "0.1.5"}

_CORPORA = "grendel/packs/_corpora.jsonl"
_PACKS = "grendel/packs/"
# Packs whose payload is what a tool returned or a retriever found: documents.
_DOCUMENT_PACKS = {
    "prompt-injection/indirect-rag-05",
    "prompt-injection/tool-output-inject-06",
    "tool-abuse/confused-deputy-02",
    "tool-abuse/excessive-agency-05",
    "tool-abuse/indirect-injection-tool-output-01",
}
_PROMPT_FOLDERS = ("prompt-injection", "jailbreak")
_ADVBENCH_SAMPLE = 160


def _corpora(wheel: Wheel, rng: random.Random) -> Iterator[tuple[str, bool, str, str]]:
    behaviours = []
    for line in wheel.text(_CORPORA).splitlines():
        row = json.loads(line)
        text = str(row.get("payload") or "").strip()
        if not text:
            continue
        if row["category"] == "prompt-injection":
            yield text, True, "prompts", f"grendel:{row['id']}"
        elif row["id"].startswith("jailbreak/advbench-"):
            behaviours.append((text, row["id"]))
    for text, ident in rng.sample(behaviours, min(_ADVBENCH_SAMPLE, len(behaviours))):
        yield text, False, "prompts", f"grendel-plain:{ident}"


def _packs(wheel: Wheel, rng: random.Random, fake: Faker) -> Iterator[tuple[str, bool, str, str]]:
    for path in wheel.names(_PACKS, ".yaml"):
        pack = yaml.safe_load(wheel.text(path))
        ident = path.removeprefix(_PACKS).removesuffix(".yaml")
        folder = ident.split("/")[0]
        if folder == "controls":
            yield str(pack["prompt"]).strip(), False, "prompts", f"grendel-plain:{ident}"
        elif ident in _DOCUMENT_PACKS:
            payload = str(pack["payload"]).strip()
            yield payload, True, "documents", f"grendel:{ident}"
            yield _document(fake, rng, payload), True, "documents", f"grendel:{ident}"
        elif folder in _PROMPT_FOLDERS:
            yield str(pack["payload"]).strip(), True, "prompts", f"grendel:{ident}"


def grendel_examples(seed: int = 20261208) -> Iterator[tuple[str, bool, str, str]]:
    """(text, label, model, group) tuples, deterministic for `seed`."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    wheel = Wheel("grendel_redteam", PACKAGES["grendel_redteam"])
    yield from _corpora(wheel, rng)
    yield from _packs(wheel, rng, fake)
