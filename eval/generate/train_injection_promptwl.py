"""Training-only examples for the injection classifier from promptwl's red-team wordlists.

Read as a zip archive (nothing installed or imported from it), downloaded like the other
generators' into `$CAPSEM_EVAL_PACKAGE_DIR` (eval/sources/injection.md names the version, licence and
paths). `promptwl/wordlists/<category>/*.txt` hold one attack phrase a line (`#` lines are comments):

- `multilingual/<language>.txt`: the core overrides, developer mode, refusal suppression and
  system-prompt requests in Arabic, German, Spanish, French, Hindi, Italian, Japanese, Portuguese,
  Russian and Chinese;
- `injection/`, `jailbreak/`, `agents/`, `multimodal/`, `extraction/system-prompt-leak.txt`,
  `evasion/language-switching.txt` and `evasion/encoding-obfuscation.txt`: overrides, fake role
  and turn markers, split payloads, personas, authority claims, hypothetical frames, refusal
  suppression, notes to an AI reading a page or a file, prompt-leak probes, switching language or
  encoding to get past a filter.

Every phrase is a positive prompt. Left out: `tokens/` (glitch tokens, separators, confusable letters
and encodings: fragments, not requests), `evasion/invisible-characters.txt` (names of code points)
and `extraction/training-data-extraction.txt` (asking for memorised text, no injection).

None of these files is read by the cross-source generators. `promptwl_examples()` is deterministic
(the archive's order; a repeated phrase is yielded once).
"""

from __future__ import annotations

from collections.abc import Iterator

from eval.generate.injection import Wheel

__all__ = ["PACKAGES", "promptwl_examples"]

PACKAGES = {"promptwl": "0.3.2"}

_LISTS = "promptwl/wordlists/"
_READ = ("multilingual/", "injection/", "jailbreak/", "agents/", "multimodal/",
         "extraction/system-prompt-leak.txt", "evasion/language-switching.txt",
         "evasion/encoding-obfuscation.txt")


def promptwl_examples() -> Iterator[tuple[str, bool, str, str]]:
    """(text, label, model, group) tuples, in the archive's order."""
    wheel = Wheel("promptwl", PACKAGES["promptwl"])
    seen: set[str] = set()
    for path in wheel.names(_LISTS, ".txt"):
        ident = path.removeprefix(_LISTS).removesuffix(".txt")
        if not ident.startswith(_READ) and f"{ident}.txt" not in _READ:
            continue
        for index, line in enumerate(wheel.text(path).splitlines()):
            text = line.strip()
            if not text or text.startswith("#") or text in seen:
                continue
            seen.add(text)
            yield text, True, "prompts", f"promptwl:{ident}:{index}"
