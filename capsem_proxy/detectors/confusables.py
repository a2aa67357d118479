"""Look-alikes of Latin letters that Unicode compatibility normalisation leaves alone (Cyrillic `\\u0430`,
Greek `\\u03bf`, small capitals…), read once from the reviewed table shipped with the package.

Unicode's confusables list is far larger; only look-alikes of the 26 Latin letters matter for
matching English phrases and for spotting hosts that imitate Latin names, so a short table
(`data/confusables.tsv`) ships instead of a dependency.
"""

from __future__ import annotations

from importlib.resources import files

__all__ = ["LATIN_LOOKALIKES"]

_CONFUSABLES_FILE = files("capsem_proxy.detectors") / "data" / "confusables.tsv"


def _load() -> dict[str, str]:
    """character -> the Latin letter it imitates."""
    table: dict[str, str] = {}
    for line in _CONFUSABLES_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            code, latin, _name = line.split("\t", 2)
            table[chr(int(code[2:], 16))] = latin
    return table


LATIN_LOOKALIKES: dict[str, str] = _load()
