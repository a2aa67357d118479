"""Finds URLs in text: each URL's exact span and how it is used (a markdown/HTML image a renderer
fetches on its own, a link, or plain text).

Why by hand rather than with a URL-extraction library: the detector needs each URL's exact span
(to redact it) and its markdown/HTML context (image or link), and must treat the end of a growing
streamed answer as possibly incomplete; the usual extractors give neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["FoundUrl", "UrlContext", "find_urls", "image_reference_labels"]

UrlContext = Literal["image", "link", "text"]

# A scheme URL or a `www.` host; `\` counts as `/` (browsers accept `https:\\host`).
_SCHEME_URL = re.compile(
    r"(?<![A-Za-z0-9+.\-])(?:(?:https?|ftps?|wss?):[/\\]{2,3}|(?<![/\\@\w.-])www\d{0,3}\.(?=\w))[^\s<>\"'`]*",
    re.IGNORECASE,
)
# Protocol-relative targets (`](//host/x.png)`, `src="//host"`): a renderer adds the page's scheme.
_RELATIVE_URL = re.compile(r"//[^\s<>\"'`/\\][^\s<>\"'`]*")
_RELATIVE_PREFIX = re.compile(
    r"(?:\]\(\s*<?|\b(?:src|href|srcset|poster|background|action)\s*=\s*[\"']?|url\(\s*[\"']?)$", re.IGNORECASE
)
_DATA_URL = re.compile(
    r"(?<![\w-])data:[a-z]+/[a-z0-9.+\-]+(?:;[a-z0-9.+\-]+(?:=[a-z0-9.+\-]+)?)*,[^\s<>\"'`)]*", re.IGNORECASE
)
# Script URLs as a markdown target (ending at the `)` that closes it) or as an HTML attribute.
_SCRIPT_TARGET = re.compile(r"\]\(\s*<?((?:javascript|vbscript):[^\n]*)", re.IGNORECASE)
_SCRIPT_ATTRIBUTE = re.compile(r"\b(?:src|href|action)\s*=\s*[\"']?((?:javascript|vbscript):[^\n\"'>]*)", re.IGNORECASE)
_TRAILING = ".,;:!?*_~'\""
_CLOSERS = {")": "(", "]": "[", "}": "{"}
# A markdown reference definition (`[ref]: https://…`) and the images that use one.
_REFERENCE_DEFINITION = re.compile(r"[ ]{0,3}\[([^\]\n]{1,200})\]:[ \t]*<?$")
# The longest line a reference definition can start before its URL: indent, [label] and ": <".
_DEFINITION_CHARS = 256
# Labels hold no brackets: with `[^\]\n]*` every "![" of a text of them read on to its end (quadratic).
_IMAGE_REFERENCE = re.compile(r"!\[([^\[\]\n]*)\]\[([^\[\]\n]*)\]|!\[([^\[\]\n]+)\](?![\[(])")
_HTML_IMAGE_ATTRIBUTE = re.compile(r"\b(?:src|srcset|poster|background)\s*=\s*[\"']?$|url\(\s*[\"']?$", re.IGNORECASE)
_HTML_LINK_ATTRIBUTE = re.compile(r"\b(?:href|action)\s*=\s*[\"']?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FoundUrl:
    """One URL in a text: its span, and whether it is an image a renderer fetches, a link, or plain text."""

    start: int
    end: int
    text: str
    context: UrlContext
    # False when the URL runs to the end of a text that may still grow (a streamed answer).
    complete: bool = True


def _trim(url: str) -> str:
    """`url` without the bracket that closes the markdown target or sentence it sits in (and what
    follows it), nor the punctuation ending the sentence."""
    depth = {")": 0, "]": 0}
    for index, char in enumerate(url):
        if char in "([":
            depth[")" if char == "(" else "]"] += 1
        elif char in depth:
            if depth[char] == 0:
                url = url[:index]
                break
            depth[char] -= 1
    while url:
        last = url[-1]
        if last in _TRAILING or (last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last])):
            url = url[:-1]
        else:
            break
    return url


def _script_end(text: str, start: int, end: int) -> int:
    """Where a `javascript:` target ends: at the `)` closing the markdown target, else at `end`."""
    depth = 0
    for index in range(start, end):
        char = text[index]
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return index
            depth -= 1
    return end


# How far a markdown target written with spaces (`[a](https://x/?q=the user said ...)`) is read on.
_TARGET_REACH = 2048


def _target_end(text: str, end: int, closing: str, *, glued: bool = False) -> int:
    """Where a markdown target (`closing` is `)`) or a quoted HTML attribute (`closing` is its
    quote) that goes on past a space after its URL ends: at its closing character on the same
    line, when what lies between is no markdown title (`"title"`), link or tag. Lenient renderers
    and browsers keep the spaces (percent-encoding them), so the words after the space are still
    part of the URL fetched or opened: data written out in plain words. A line ending in `=` (a
    quoted-printable soft break) does not end it. `glued`: a quote stands right after the URL (a
    markdown title is set apart by a space; `?d={"name":"..."}` is JSON in the target)."""
    close = text.find(closing, end, end + _TARGET_REACH)
    if close == -1:
        return end
    between = text[end:close]
    if "[" in between or "(" in between or "<" in between or (">" in between and closing != ">"):
        return end
    if "\n" in between and between.count("\n") != text.count("=\n", end - 1, close):
        return end
    if closing == ")" and not glued and between.lstrip()[:1] in "\"'":
        return end
    return len(between.rstrip()) + end


_LABEL_REACH = 2000
_BRACKET = re.compile(r"[\[\]]")


class _Labels:
    """Where the markdown label ending at a `]` opens: the `[` that balances it, at most
    `_LABEL_REACH` characters before it. Brackets are paired once per text, as they come (reading
    back up to 2,000 characters from each `](` made a text of many of them quadratic)."""

    __slots__ = ("_opening", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._opening: dict[int, int] | None = None

    def start(self, close: int) -> int:
        """Index of the `[` opening the label that ends with the `]` at `close`, or -1."""
        if self._opening is None:
            opening: dict[int, int] = {}
            open_at: list[int] = []
            for match in _BRACKET.finditer(self._text):
                if match.group() == "[":
                    open_at.append(match.start())
                elif open_at:
                    opening[match.start()] = open_at.pop()
            self._opening = opening
        start = self._opening.get(close, -1)
        return start if start > close - _LABEL_REACH else -1


def image_reference_labels(text: str) -> frozenset[str]:
    """Labels of the reference definitions that images use (`![alt][ref]`, `![ref]`)."""
    if "![" not in text:
        return frozenset()
    labels = set()
    for match in _IMAGE_REFERENCE.finditer(text):
        label = match.group(2) or match.group(1) if match.group(3) is None else match.group(3)
        labels.add((label or "").strip().lower())
    return frozenset(labels)


def _context_of(text: str, start: int, image_references: frozenset[str], labels: _Labels) -> UrlContext:
    """How the URL starting at `start` is used: a markdown/HTML image, a link, or plain text."""
    index = start
    while index > 0 and text[index - 1] in " \t\n<" and start - index < _LABEL_REACH:
        index -= 1
    if text[index - 2 : index] == "](":
        opening = labels.start(index - 2)
        return "image" if opening > 0 and text[opening - 1] == "!" else "link"
    if text[index - 2 : index] == "]:":
        # A reference definition fits on a short line: the line start is looked for that far back only.
        line_start = text.rfind("\n", max(0, start - _DEFINITION_CHARS), start) + 1
        reference = None
        if line_start > 0 or start <= _DEFINITION_CHARS:
            reference = _REFERENCE_DEFINITION.match(text, line_start, start)
        if reference is not None:
            return "image" if reference.group(1).strip().lower() in image_references else "link"
    if start > 0 and text[start - 1] == "<":
        return "link"
    head = text[max(0, start - 40) : start]
    if "=" in head or "(" in head:
        if _HTML_IMAGE_ATTRIBUTE.search(head):
            return "image"
        if _HTML_LINK_ATTRIBUTE.search(head):
            return "link"
    return "text"


def find_urls(
    text: str, *, complete: bool = True, image_references: frozenset[str] | None = None, spaced_targets: bool = True
) -> list[FoundUrl]:
    """Every network, `data:` and `javascript:` URL in `text`, in order, none inside another.

    With `complete=False` a URL running to the end of `text` is marked incomplete: more of it
    may still arrive. `image_references`: the reference labels images use, when `text` is a
    slice of a longer text (default: those of `text`). `spaced_targets`: a markdown target that
    goes on past a space runs to its `)` (see `_target_end`); a reader of instructions asks for
    the URL alone, the words after it being the instruction.
    """
    lowered = text.lower()
    spans: list[tuple[int, int]] = []
    # Each pattern runs only when its literal occurs: substring search is far cheaper than a regex scan.
    if "script:" in lowered:
        for match in _SCRIPT_TARGET.finditer(text):
            spans.append((match.start(1), _script_end(text, match.start(1), match.end(1))))
        for match in _SCRIPT_ATTRIBUTE.finditer(text):
            spans.append((match.start(1), match.end(1)))
    if "data:" in lowered:
        for match in _DATA_URL.finditer(text):
            spans.append((match.start(), match.end()))
    if "//" in text or "\\" in text:
        for match in _SCHEME_URL.finditer(text):
            spans.append((match.start(), match.start() + len(_trim(match.group()))))
        for match in _RELATIVE_URL.finditer(text):
            start = match.start()
            # `https://` puts a colon before the slashes; a renderer's relative URL follows `(`, `=` or a quote.
            if start and text[start - 1] in "(<=\"' \t\n" and _RELATIVE_PREFIX.search(text, max(0, start - 40), start):
                spans.append((start, start + len(_trim(match.group()))))
    elif "www" in lowered:
        for match in _SCHEME_URL.finditer(text):
            spans.append((match.start(), match.start() + len(_trim(match.group()))))
    if not spans:
        return []
    spans.sort(key=lambda span: (span[0], -span[1]))
    if image_references is None:
        image_references = image_reference_labels(text)
    labels = _Labels(text)
    # Where the text's trailing punctuation starts: a URL ending there runs to the end of the text.
    tail = len(text.rstrip(_TRAILING + ")]}")) if not complete else len(text)
    found: list[FoundUrl] = []
    covered = -1
    for start, end in spans:
        if end <= covered or end <= start:
            continue  # inside a URL already found (an `https://` within a `javascript:` target)
        if text[start - 2:start] == "](":
            # A markdown target is the URL up to its `)`: punctuation before it is part of it
            # (`?q=The user is Ana.`), not of the sentence around.
            stop = end
            while stop < len(text) and stop - end < 4 and text[stop] in ".,;:!?":
                stop += 1
            if stop < len(text) and text[stop] == ")":
                end = stop
        if spaced_targets and end < len(text) and text[end] in " \n\"'":
            before = text[start - 2:start]
            # A quote ends a URL everywhere but in a markdown target, whose title follows a space.
            glued = text[end] in "\"'"
            if before == "](":
                end = _target_end(text, end, ")", glued=glued)
            elif not glued and before == "(<" and text[start - 3:start - 2] == "]":
                end = _target_end(text, end, ">")  # `[a](<url with spaces>)`: CommonMark keeps them
            elif not glued and before[-1:] in ("\"", "'") and before[:1] == "=":
                end = _target_end(text, end, before[-1])
        covered = end
        at_end = end >= len(text) or end >= tail
        found.append(
            FoundUrl(
                start, end, text[start:end], _context_of(text, start, image_references, labels), complete or not at_end
            )
        )
    return found
