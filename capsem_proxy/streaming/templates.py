"""Text events read and split by their shape: most events of a streamed answer are one piece of
text in the same bytes (the OpenAI chunk's id, model and fingerprint, Anthropic's
`content_block_delta` envelope, Gemini's candidate and token counts).

Once such an event was decoded in full, the bytes around its text are a template. An event that
starts and ends with the same bytes, with a plain text between them (no quote, backslash or control
character, valid UTF-8), has the same JSON structure with only that string changed, so it decodes to
the same deltas with its own text: it is read without parsing JSON. A template is verified when it
is made, by decoding it in full with another text in its place; whatever matches no template (tool
calls, a field that changed, an escape in the text, a finish) is decoded in full.

A decoder may name padding fields it never reads (`StreamDecoder.padding_fields`: OpenAI's
`obfuscation`, random characters of random length in every chunk). A template then has a second
gap, after the text, where such a field's plain value goes; it is verified with another value there.

Events a decoder names as silent (`StreamDecoder.silent_events`: a ping, the stream's end, the
same bytes in every stream) are taken as read, without decoding them.

Splitting an event in two (`split_event_text`) works the same way: the full split of an event
written without escapes gives the bytes around each half's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from capsem_proxy.streaming.events import Delta, TextDelta, ThinkingDelta, UsageDelta
from capsem_proxy.streaming.rewrite import split_event_text

__all__ = ["TextEvents", "TextSplits"]

# What may not appear in a text read from a template: it would end the JSON string or escape into it.
_NOT_PLAIN = re.compile(rb'[\x00-\x1f"\\]')
# What may not appear in a padding value read from a template: the same, and any byte outside ASCII.
_NOT_PADDING = re.compile(rb"[^\x20\x21\x23-\x5b\x5d-\x7f]")
# Texts put in a template's place to verify it: plain, and found in no provider's event envelope.
_MARKER = "capsem\u00b7text\u00b7marker"
_PADDING_MARKER = b"capsemPaddingMarker"
# Templates kept per stream (most recently made first), and how many may be made in all: a stream
# whose events keep changing shape goes on being decoded in full, with no verification each time.
_KEPT = 4
_MADE = 8
# Templates made in a row that no event fitted, after which a stream makes no more: events whose
# bytes change beyond their text (counts that grow at every event, a random padding field) are
# then decoded in full without a verification each.
_FRUITLESS = 2

Decode = Callable[[bytes], list[Delta]]


def _cut(raw: bytes, text: str) -> tuple[bytes, bytes] | None:
    """The bytes of `raw` before and after its one plain string `text` (quotes kept outside), or
    None when `text` is not plain or not found exactly once."""
    try:
        plain = text.encode()
    except UnicodeEncodeError:  # a lone surrogate, which only an escape spells
        return None
    if not plain or _NOT_PLAIN.search(plain) is not None:
        return None
    quoted = b'"' + plain + b'"'
    at = raw.find(quoted)
    if at == -1 or raw.find(quoted, at + 1) != -1:
        return None
    return raw[: at + 1], raw[at + len(quoted) - 1 :]


def _openings(padding: tuple[str, ...]) -> tuple[bytes, ...]:
    """How each padding field opens (`,"obfuscation":"`): its plain value runs to the next quote."""
    return tuple(b',"' + name.encode() + b'":"' for name in padding)


def _padding_gap(suffix: bytes, openings: tuple[bytes, ...]) -> tuple[bytes | None, bytes]:
    """`suffix` cut around the plain value of its one padding field: the bytes before the value and
    after it; (None, `suffix`) when it holds no such field."""
    for opening in openings:
        at = suffix.find(opening)
        if at == -1 or suffix.find(opening, at + 1) != -1:
            continue
        start = at + len(opening)
        end = suffix.find(b'"', start)
        if end == -1 or _NOT_PLAIN.search(suffix, start, end) is not None:
            continue
        return suffix[:start], suffix[end:]
    return None, suffix


def _text_and_padding(middle: bytes, between: bytes) -> tuple[bytes, bytes] | None:
    """`middle` (a text, `between`, a padding value) cut into its plain text and its plain ASCII
    padding value; None when it is not made so."""
    end = middle.find(b'"')  # a plain text holds no quote: the first one closes it
    if end <= 0 or not middle.startswith(between, end):
        return None
    padding = middle[end + len(between) :]
    if _NOT_PADDING.search(padding) is not None:
        return None
    return middle[:end], padding


def _plain(raw: bytes, prefix: bytes, suffix: bytes) -> bytes | None:
    """The bytes between `prefix` and `suffix` when `raw` is made of the three and they are a plain,
    non-empty JSON string body; None otherwise."""
    start, end = len(prefix), len(raw) - len(suffix)
    if end <= start or not raw.startswith(prefix) or not raw.endswith(suffix):
        return None
    middle = raw[start:end]
    return middle if _NOT_PLAIN.search(middle) is None else None


class TextEvents:
    """Decodes the events of one stream, text events by a template when one fits.

    `decode` is the full reading (SSE framing, the provider's decoder), which must give the same
    deltas for the same bytes whatever came before and keep no state from an event whose deltas are
    one piece of text or thinking and token counts (`StreamDecoder.text_events_alone`)."""

    __slots__ = ("_decode", "_fruitless", "_made", "_padding", "_silent", "_templates")

    def __init__(self, decode: Decode, padding: tuple[str, ...] = (), silent: frozenset[bytes] = frozenset()) -> None:
        self._decode = decode
        self._padding = _openings(padding)
        self._silent = silent  # events that decode to no delta (`StreamDecoder.silent_events`)
        # (bytes before the text, bytes after it (after the padding value, when there is one), the
        # lengths of these two, the length of all the bytes around the text, the event's deltas,
        # where its text delta is: -1 when it is the only one, its kind: answer text or thinking,
        # and the bytes between the text and the padding value: None when the template has no
        # padding gap)
        self._templates: list[tuple[bytes, bytes, int, int, int, list[Delta], int,
                                    type[TextDelta | ThinkingDelta], bytes | None]] = []
        self._made = 0
        self._fruitless = 0  # templates made since an event last fitted one

    def deltas(self, raw: bytes) -> list[Delta]:
        """What `decode(raw)` gives."""
        size = len(raw)
        for prefix, suffix, start, tail, around, deltas, at, kind, between in self._templates:
            # This runs for every event of the stream: each test is one call on `raw` itself, no
            # part of it is copied but the text.
            if size <= around or not raw.startswith(prefix) or not raw.endswith(suffix):
                continue
            end = size - tail
            if between is not None:
                # The text runs to the first quote, which opens `between`; the padding value runs
                # from there to the suffix, plain ASCII (`_text_and_padding`).
                padding = end
                end = raw.find(b'"', start, padding)
                if end <= start or not raw.startswith(between, end, padding) \
                        or _NOT_PADDING.search(raw, end + len(between), padding) is not None:
                    break
            try:
                text = raw[start:end].decode()
            except UnicodeDecodeError:
                break
            # Plain: no quote, backslash or control character (UTF-8 spells each with its ASCII byte
            # alone, so the text holds one exactly where the bytes do). A printable text holds no
            # control character: the pattern is run only over the others (a no-break space, say).
            if '"' in text or "\\" in text or (not text.isprintable() and _NOT_PLAIN.search(raw, start, end)):
                break
            self._fruitless = 0
            if at < 0:
                return [kind(text)]
            read = list(deltas)
            read[at] = kind(text)
            return read
        if raw in self._silent:
            return []
        deltas = self._decode(raw)
        if self._made < _MADE and self._fruitless < _FRUITLESS and len(deltas) <= 3:
            self._learn(raw, deltas)
        return deltas

    def _learn(self, raw: bytes, deltas: list[Delta]) -> None:
        at = -1
        text_kind: type[TextDelta | ThinkingDelta] = TextDelta
        for index, delta in enumerate(deltas):
            kind = type(delta)
            if kind is TextDelta or kind is ThinkingDelta:
                if at != -1:
                    return
                at, text_kind = index, kind
            elif kind is not UsageDelta:  # counts come from the bytes around the text, the same each time
                return
        if at == -1:
            return
        cut = _cut(raw, deltas[at].text)  # type: ignore[union-attr]
        if cut is None:
            return
        self._made += 1
        prefix, suffix = cut
        expected = list(deltas)
        expected[at] = text_kind(_MARKER)
        between, suffix = _padding_gap(suffix, self._padding)
        gap = b"" if between is None else between + _PADDING_MARKER
        if self._decode(prefix + _MARKER.encode() + gap + suffix) != expected:
            return
        around = len(prefix) + len(suffix) + (0 if between is None else len(between))
        self._templates.insert(0, (prefix, suffix, len(prefix), len(suffix), around, deltas,
                                   at if len(deltas) > 1 else -1, text_kind, between))
        self._fruitless += 1
        del self._templates[_KEPT:]


# Around each half of a split padded event: before its text, between it and the padding value, after the value.
_PaddedHalves = tuple[bytes, bytes, bytes, bytes, bytes, bytes]


def _padded_halves(around: _PaddedHalves, head: bytes, rest: bytes, padding: bytes) -> tuple[bytes, bytes]:
    head_before, head_between, head_after, rest_before, rest_between, rest_after = around
    return (head_before + head + head_between + padding + head_after,
            rest_before + rest + rest_between + padding + rest_after)


class TextSplits:
    """Splits the events of one stream as `split_event_text` does, events of a known shape by a
    template; `padding` as for `TextEvents` (the full split copies a padding value to both halves)."""

    __slots__ = ("_made", "_padded", "_padding", "_sse", "_templates")

    def __init__(self, *, sse: bool, padding: tuple[str, ...] = ()) -> None:
        self._sse = sse
        self._padding = _openings(padding)
        # (bytes before the text, after it; around the head in the first half, around the rest in the second)
        self._templates: list[tuple[bytes, bytes, bytes, bytes, bytes, bytes]] = []
        # The same with a padding gap: (before the text, after the padding value, between the two,
        # and the bytes around each half's text and padding value)
        self._padded: list[tuple[bytes, bytes, bytes, _PaddedHalves]] = []
        self._made = 0

    def __call__(self, raw: bytes, old: str, head: str, rest: str) -> tuple[bytes, bytes] | None:
        for prefix, suffix, head_before, head_after, rest_before, rest_after in self._templates:
            middle = _plain(raw, prefix, suffix)
            if middle is None:
                continue
            quoted = b'"' + middle + b'"'
            if middle != old.encode() or quoted in prefix or quoted in suffix:
                break  # not the event's text, or maybe another text equal to it (the full split refuses that)
            return head_before + head.encode() + head_after, rest_before + rest.encode() + rest_after
        for prefix, suffix, between, around_halves in self._padded:
            if len(raw) <= len(prefix) + len(between) + len(suffix) or not raw.startswith(prefix) \
                    or not raw.endswith(suffix):
                continue
            parts = _text_and_padding(raw[len(prefix) : len(raw) - len(suffix)], between)
            if parts is None:
                break
            text, padding = parts
            quoted = b'"' + text + b'"'
            if text != old.encode() or quoted in prefix or quoted in between or quoted in suffix:
                break
            return _padded_halves(around_halves, head.encode(), rest.encode(), padding)
        halves = split_event_text(raw, old, head, rest, sse=self._sse)
        if halves is not None and self._made < _MADE:
            self._learn(raw, old, head, rest, halves)
        return halves

    def _learn(self, raw: bytes, old: str, head: str, rest: str, halves: tuple[bytes, bytes]) -> None:
        """A template from a full split. In an event written without escapes every string is spelled
        as it reads, so the one place `old` is spelled is where the split found it (as the only text
        equal to it); every other string stays where it is. The halves are serialised anew, and a
        plain string is serialised as it is spelled: the one place each half's text is spelled
        there is where it went. With another plain text, the same bytes surround it. A template
        with a padding gap is checked once more: a full split of it, with other texts and another
        padding value, must give what the template gives."""
        if raw.find(b"\\") != -1:
            return
        cut = _cut(raw, old)
        if cut is None:
            return
        head_cut = _cut(halves[0], head)
        rest_cut = _cut(halves[1], rest)
        if head_cut is None or rest_cut is None:
            return
        self._made += 1
        between, suffix = _padding_gap(cut[1], self._padding)
        if between is None:
            self._templates.insert(0, (*cut, *head_cut, *rest_cut))
            del self._templates[_KEPT:]
            return
        head_between, head_after = _padding_gap(head_cut[1], self._padding)
        rest_between, rest_after = _padding_gap(rest_cut[1], self._padding)
        if head_between is None or rest_between is None:
            return
        template = (head_cut[0], head_between, head_after, rest_cut[0], rest_between, rest_after)
        expected = _padded_halves(template, _MARKER[:6].encode(), _MARKER[6:].encode(), _PADDING_MARKER)
        split = split_event_text(cut[0] + _MARKER.encode() + between + _PADDING_MARKER + suffix, _MARKER,
                                 _MARKER[:6], _MARKER[6:], sse=self._sse)
        if split != expected:
            return
        self._padded.insert(0, (cut[0], suffix, between, template))
        del self._padded[_KEPT:]
