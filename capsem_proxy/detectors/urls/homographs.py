"""Look-alike (homograph) hosts: non-ASCII names that imitate Latin ones (`paypal` with a Cyrillic
`\\u0430`, `apple` spelled in Cyrillic, or a name whose Latin skeleton is an allow-listed domain)."""

from __future__ import annotations

import unicodedata

from capsem_proxy.detectors.confusables import LATIN_LOOKALIKES
from capsem_proxy.detectors.urls.allow_list import HostAllowList

__all__ = ["is_homograph"]

# Script mixes that UTS #39 ("highly restrictive") accepts in one label: Japanese, Chinese, Korean.
_ALLOWED_MIXES = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)


def _script(char: str) -> str:
    if char.isascii():
        return "LATIN" if char.isalpha() else "COMMON"
    if not char.isalpha():
        return "COMMON"
    return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]


def _label_is_homograph(label: str) -> bool:
    """True for a label mixing scripts (`paypal` with a Cyrillic `a`) or made only of Latin
    look-alikes (`apple` spelled in Cyrillic)."""
    scripts = {_script(char) for char in label} - {"COMMON"}
    if len(scripts) > 1 and not any(scripts <= mix for mix in _ALLOWED_MIXES):
        return True
    letters = [char for char in label if char.isalpha()]
    return bool(letters) and all(char in LATIN_LOOKALIKES for char in letters)


def is_homograph(host: str, allowed: HostAllowList) -> bool:
    """True when the non-ASCII `host` imitates a Latin name: mixed scripts, only look-alike
    letters, or a skeleton equal to an allow-listed domain."""
    if host.isascii():
        return False
    if any(_label_is_homograph(label) for label in host.split(".") if not label.isascii()):
        return True
    skeleton = "".join(LATIN_LOOKALIKES.get(char, char) for char in host)
    return skeleton != host and allowed.allows_host(skeleton)
