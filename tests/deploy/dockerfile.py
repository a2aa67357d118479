"""A small reader of the repository's Dockerfile: its stages and instructions, continuation lines joined."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Instruction", "Stage", "read_stages"]


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction (CMD ["a", "b"]), else None."""
        text = self.arguments
        if " CMD " in f" {text} ":  # HEALTHCHECK [options] CMD [...]
            text = text.split(" CMD ", 1)[1] if not text.startswith("CMD ") else text[4:]
        text = text.strip()
        return json.loads(text) if text.startswith("[") else None


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [item for item in self.instructions if item.keyword == keyword]

    def env(self) -> dict[str, str]:
        """ENV KEY=VALUE pairs, in order (later ones win)."""
        values: dict[str, str] = {}
        for item in self.all("ENV"):
            for key, value in re.findall(r"(\w+)=(\S+)", item.arguments):
                values[key] = value
        return values


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1].strip() + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def read_stages(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages of the Dockerfile at `path`."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, arguments = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = arguments.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages and keyword == "ARG":
            key, _, default = arguments.partition("=")
            args[key.strip()] = default.strip()
        else:
            stages[-1].instructions.append(Instruction(keyword, arguments.strip()))
    return args, stages
