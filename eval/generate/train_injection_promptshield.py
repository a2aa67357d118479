"""Training-only examples for the injection classifier from promptshields' attack database.

Read as a zip archive (nothing installed or imported from it), downloaded like the other
generators' into `$CAPSEM_EVAL_PACKAGE_DIR` (eval/sources/injection.md names the version, licence and
paths). `promptshield/attack_db/<category>/*.json` are lists of rows with a `text` or a `prompt`:

- the attack categories (overrides, personas, developer mode and DAN, hypothetical and fictional
  frames, system-prompt extraction, fake `[SYSTEM]` and `[INST]` markup, many-shot fake dialogue,
  encoded commands, forced answers, instructions hidden in CSV rows, file metadata, HTML, e-mails and
  reviews the user asks about) are positive prompts;
- `benign/` (plain requests, and look-alikes that ignore noise, override a theme, bypass a cache,
  forget a draft or ask about injection and attacks) are negative prompts.

Left out: `crescendo/`, single turns of a multi-turn escalation, each an ordinary question alone.

None of these files is read by the cross-source generators. `promptshield_examples()` is
deterministic (the archive's order).
"""

from __future__ import annotations

from collections.abc import Iterator

from eval.generate.injection import Wheel

__all__ = ["PACKAGES", "promptshield_examples"]

PACKAGES = {"promptshields": "3.2.0"}

_DATABASE = "promptshield/attack_db/"
_BENIGN = "benign"
_LEFT_OUT = {"crescendo"}


def promptshield_examples() -> Iterator[tuple[str, bool, str, str]]:
    """(text, label, model, group) tuples, in the archive's order."""
    wheel = Wheel("promptshields", PACKAGES["promptshields"])
    for path in wheel.names(_DATABASE, ".json"):
        ident = path.removeprefix(_DATABASE).removesuffix(".json")
        category = ident.split("/")[0]
        if category in _LEFT_OUT:
            continue
        plain = category == _BENIGN
        group = f"{'promptshield-plain' if plain else 'promptshield'}:{ident}"
        for index, row in enumerate(wheel.json(path)):
            text = str(row.get("text") or row.get("prompt") or "").strip()
            if text:
                yield text, not plain, "prompts", f"{group}:{index}"
