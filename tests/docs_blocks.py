"""The YAML blocks of README.md and docs/*.md, as the docs tests read them: every ```yaml fence,
with where it is and whether a `<!-- not-a-config: reason -->` comment just before it marks it as
something else than a whole config file (a fragment, or a file naming a path on the reader's disk)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["REPO_ROOT", "YamlBlock", "doc_files", "yaml_blocks"]

REPO_ROOT = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^```yaml[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_NOT_A_CONFIG = re.compile(r"<!--\s*not-a-config\s*(?::\s*(?P<reason>.*?))?\s*-->\s*$", re.DOTALL)


@dataclass(frozen=True)
class YamlBlock:
    """One ```yaml block of a doc."""

    path: Path
    line: int  # of the opening fence, 1-based
    text: str
    not_a_config: str | None  # the reason given in the marking comment, "" when none is given

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(REPO_ROOT)}:{self.line}"

    def config(self) -> dict:
        loaded = yaml.safe_load(self.text)
        return loaded if isinstance(loaded, dict) else {}


def doc_files() -> list[Path]:
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def yaml_blocks() -> list[YamlBlock]:
    blocks = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            marker = _NOT_A_CONFIG.search(before)
            reason = (marker.group("reason") or "") if marker else None
            line = text.count("\n", 0, match.start()) + 1
            blocks.append(YamlBlock(path, line, match.group("body"), reason))
    return blocks
