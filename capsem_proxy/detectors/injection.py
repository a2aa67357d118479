"""Prompt injection and jailbreak detector: weighted signatures plus heuristics over normalised text.

Signatures (capsem_proxy/detectors/data/injection_signatures.yaml) are grouped in families
(instruction override, role-play jailbreaks, system prompt extraction, delimiter and role
injection, tool hijacking, exfiltration, indirect injection, text addressed to the assistant,
authority claims, policy-file templates, obfuscation), in English and some thirty other languages. They are matched with
Aho-Corasick automata over the views `normalize` gives (words, squashed words, folded text with
punctuation), also over rot13 and over base64 / hex payloads found in the text. Heuristics add
an override-verb-near-target-noun rule, invisible-character smuggling and family density, and
lower hits quoted in a text that discusses attacks. The weights of distinct signatures combine
as independent evidence into a score in [0, 1]; at or above the threshold every hit becomes a
Finding of kind `prompt_injection` or `jailbreak`.

A long text is analysed in slices (`analyze_in_slices`): each slice's hits are collected with
the context around it, and the score is computed once over all of them, as for the whole text.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from time import perf_counter
from typing import Any, Literal

import ahocorasick
import yaml

from capsem_proxy.detectors.base import Finding, Reach
from capsem_proxy.detectors.decoded_views import Unscrambler, decoded_views, payloads_of
from capsem_proxy.detectors.exfil_instructions import instructed_destinations
from capsem_proxy.detectors.injection_model import InjectionModel, load_model
from capsem_proxy.detectors.normalize import BIDI_CONTROLS, NormalizedText, normalize, rot13
from capsem_proxy.detectors.phrase_build import build_in_child
from capsem_proxy.detectors.phrases import PrefixPhrases, SquashedPhrases, WordPhrases
from capsem_proxy.detectors.reader_directives import reader_directives
from capsem_proxy.detectors.slices import SliceRanges
from capsem_proxy.linear_regex import LinearPattern, LinearPatternSet, compile_linear

__all__ = [
    "KINDS",
    "Analysis",
    "Hit",
    "InjectionDetector",
    "PhraseTables",
    "Profile",
    "SignatureSet",
    "build_phrase_tables",
    "load_signatures",
]

KINDS = ("prompt_injection", "jailbreak")
Profile = Literal["prompts", "tool_results"]
_DEFAULT_FILE = "injection_signatures.yaml"
_GROUP = re.compile(r"\(([^()]*)\)")
_QUOTED = re.compile(
    r"\"[^\"\n]{1,300}\"|\u201c[^\u201d\n]{1,300}\u201d|\u2018[^\u2019\n]{1,300}\u2019|`[^`\n]{1,300}`"
    r"|(?<!\w)'[^'\n]{1,300}'(?!\w)"
)
# Squashed text (words run together) is matched only for long phrases: short ones would match
# across word boundaries by chance ("dan" in "abundance").
_SQUASHED_MIN_CHARS = 12
# Raw phrases outside ASCII are held by their first characters (see `PrefixPhrases`).
_RAW_OTHER_PREFIX_CHARS = 4
# rot13 of ordinary text is gibberish; only strong signatures are looked for in it.
_ROT13_MIN_WEIGHT = 0.5
_MAX_WEIGHT = 0.97
# The share of the way from the model's threshold to certainty its probability must also cover
# when no signature or heuristic of weight `_SUPPORT_WEIGHT` or more backs it.
_ALONE_MARGIN = 0.5
_SUPPORT_WEIGHT = 0.2
# The weight of an instruction to send data out found in a tool result (see `_document_hits`) at the
# fewest points that make one; each point more adds 0.1. Read without the egress policy's
# allow-list, the weakest readings support other evidence and do not flag alone.
_DOCUMENT_INSTRUCTION_WEIGHT = 0.4
# The weight of a directive to a document's machine reader (before the family's tool-result scale).
_DIRECTIVE_WEIGHT = 0.4


@dataclass(frozen=True, slots=True)
class Hit:
    """One piece of evidence: a signature or heuristic `rule` of `family`, at `source[start:end]`."""

    family: str
    rule: str
    weight: float
    start: int
    end: int


# Not frozen: made for every text scored, and a frozen dataclass sets each field through
# object.__setattr__. Nothing changes one once made (it was never hashable: it holds a dict).
@dataclass(slots=True)
class Analysis:
    """The detector's view of one text: its score, the evidence, and the threshold applied."""

    score: float
    threshold: float
    hits: tuple[Hit, ...] = ()
    kinds_by_family: dict[str, str] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return self.score >= self.threshold and bool(self.hits)

    @property
    def families(self) -> list[str]:
        return sorted({hit.family for hit in self.hits})

    def findings(self, text: str) -> list[Finding]:
        """One Finding per hit span (its kind from the family), all carrying the combined score."""
        if not self.flagged:
            return []
        score = round(self.score, 4)
        seen: set[tuple[str, int, int]] = set()
        findings = []
        # The learned model says "an attack", not which: it takes the kind of the strongest evidence beside it.
        backing = [hit for hit in self.hits if hit.family != "classifier"]
        model_kind = (self.kinds_by_family.get(max(backing, key=lambda hit: hit.weight).family, "prompt_injection")
                      if backing else "prompt_injection")
        for hit in sorted(self.hits, key=lambda hit: (hit.start, hit.end)):
            kind = (model_kind if hit.family == "classifier"
                    else self.kinds_by_family.get(hit.family, "prompt_injection"))
            if (kind, hit.start, hit.end) in seen:
                continue
            seen.add((kind, hit.start, hit.end))
            findings.append(Finding(kind, hit.start, hit.end, text[hit.start:hit.end], score))
        return findings


@dataclass(frozen=True, slots=True)
class _Signature:
    rule: str
    family: str
    weight: float


def _expand(pattern: str) -> list[str]:
    """Every phrase a pattern with `(a|b|)` groups stands for, whitespace normalised."""
    parts = _GROUP.split(pattern)
    # split() alternates literal text and group contents.
    choices = [[part] if index % 2 == 0 else part.split("|") for index, part in enumerate(parts)]
    return sorted({" ".join("".join(combo).split()) for combo in itertools.product(*choices)} - {""})


def _words_key(phrase: str) -> str:
    """`normalize(phrase).words`, built word by word from a cache: the signature file expands to a
    few hundred thousand phrases over a few thousand distinct words."""
    views: list[str] = []
    for word in phrase.split():
        view, joined = _word_key(word)
        if joined:
            # Letters re-joined inside the word (Devanagari marks): its neighbours may join them too,
            # as the whole phrase's gaps say: `normalize` decides.
            return normalize(phrase).words
        if view:
            views.append(view)
    key = " ".join(views)
    # Three one-letter words in a row are re-joined (spaced-out letters): `normalize` decides.
    if _SPACED_LETTERS.search(key):
        return normalize(phrase).words
    return key


# As `normalize` finds spaced-out letters in a words view.
_SPACED_LETTERS = re.compile(r"(?<!\S)[^\W\d_](?: [^\W\d_]){2,}(?!\S)")
_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=65536)
def _word_key(word: str) -> tuple[str, bool]:
    """A word's words view, and whether letters in it were re-joined (then its neighbours may
    join them too)."""
    normalized = normalize(word)
    return normalized.words, len(_WORD.findall(normalized.folded)) != len(normalized.words.split())


def _folded_key(phrase: str) -> str:
    """A raw phrase as the folded view spells it (kana without voicing marks, Hangul and Thai
    as folding leaves them), so that phrases in any script match what they look like."""
    return normalize(phrase).folded


@dataclass(slots=True)
class PhraseTables:
    """The phrase automata of a signature file: most of its memory (see `phrase_build`)."""

    words: WordPhrases
    squashed: SquashedPhrases
    raw: Any  # ahocorasick.Automaton
    # Raw phrases that start with a character outside ASCII (Chinese, Japanese, Korean, Thai…):
    # their own automaton, run only over texts that hold one of their first characters (the
    # automaton's root tries its children one by one, and those phrases start with dozens).
    # Held by their first characters: a node per character took some 8 MiB.
    raw_other: PrefixPhrases
    raw_other_starts: re.Pattern[str] | None
    # The ASCII words of the word phrases (typoglycemia is read back against them): a few thousand.
    vocabulary: frozenset[str] = frozenset()
    # One word of each phrase strong enough to count rot13'd or reversed (`_ROT13_MIN_WEIGHT`): a
    # phrase matches only where all its words are, so a text holding none of these, so rewritten,
    # has no such hit (ordinary text, checked before it is read again).
    strong_anchors: frozenset[str] = frozenset()


def build_phrase_tables(spec: dict[str, Any]) -> PhraseTables:
    """Every phrase of `spec`'s signatures, expanded and compiled (about a second for the shipped file)."""
    words: dict[str, _Signature] = {}
    squashed: dict[str, _Signature] = {}
    raw: dict[str, _Signature] = {}
    for family, body in spec["families"].items():
        for signature in body["signatures"]:
            weight = float(signature["weight"])
            squash = bool(signature.get("squash", True))
            for pattern in signature.get("phrases", []):
                rule = _Signature(pattern, family, weight)
                for phrase in _expand(pattern):
                    key = _words_key(phrase)
                    _keep_strongest(words, f" {key} ", rule)
                    joined = key.replace(" ", "")
                    if squash and len(joined) >= _SQUASHED_MIN_CHARS:
                        _keep_strongest(squashed, joined, rule)
            for pattern in signature.get("raw", []):
                rule = _Signature(pattern, family, weight)
                # Folding is character by character: the pattern folds once, alternatives and all.
                folded = _folded_key(pattern)
                for phrase in _expand(folded) if "|" in folded else [folded]:
                    _keep_strongest(raw, phrase, rule)
    # Some 50,000 keys share a few thousand words: each distinct word is tested once.
    distinct = {word for key in words for word in key.split()}
    vocabulary = frozenset(word for word in distinct if word.isascii() and word.isalpha())
    tables = PhraseTables(WordPhrases(), SquashedPhrases(_SQUASHED_MIN_CHARS), ahocorasick.Automaton(),
                          PrefixPhrases(_RAW_OTHER_PREFIX_CHARS), None, vocabulary)
    # The phrase automata yield (end, (length, rule)) as the character one does with these values.
    strong_anchors: set[str] = set()
    for key, rule in words.items():
        tables.words.add_word(key, rule, strong_anchors if rule.weight >= _ROT13_MIN_WEIGHT else None)
    tables.strong_anchors = frozenset(strong_anchors)
    for key, rule in squashed.items():
        tables.squashed.add_word(key, rule)
    for phrases, table in ((tables.words, words), (tables.squashed, squashed)):
        if table:
            phrases.make_automaton()
    for key, rule in raw.items():
        if key[0].isascii():
            tables.raw.add_word(key, (len(key), rule))
        else:
            tables.raw_other.add_word(key, rule)
    for automaton in (tables.raw, tables.raw_other):
        if len(automaton):
            automaton.make_automaton()
    starts = sorted({key[0] for key in raw if not key[0].isascii()})
    if starts:
        tables.raw_other_starts = re.compile("[" + "".join(re.escape(char) for char in starts) + "]")
    return tables


class SignatureSet:
    """Compiled signatures and heuristic vocabularies from one signatures file. `phrases`, when
    given, are the file's phrase automata built elsewhere (`phrase_build.build_in_child`)."""

    def __init__(self, spec: dict[str, Any], phrases: PhraseTables | None = None) -> None:
        self.kinds: dict[str, str] = {}
        self.scales: dict[str, dict[str, float]] = {}
        self.regexes: list[tuple[LinearPattern, _Signature]] = []
        for family, body in spec["families"].items():
            kind = body.get("kind", "prompt_injection")
            if kind not in KINDS:
                raise ValueError(f"family {family}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
            self.kinds[family] = kind
            self.scales[family] = {str(k): float(v) for k, v in (body.get("scale") or {}).items()}
            for signature in body["signatures"]:
                weight = float(signature["weight"])
                if not 0 < weight <= 1:
                    raise ValueError(f"family {family}: weight {weight} is not in (0, 1]")
                for pattern in signature.get("regex", []):
                    try:
                        compiled = compile_linear(pattern)
                    except ValueError as exc:
                        raise ValueError(f"family {family}: {exc}") from exc
                    self.regexes.append((compiled, _Signature(pattern, family, weight)))
        # One pass tells which regexes match at all; an ordinary text runs none of them.
        self.regex_set = LinearPatternSet([compiled for compiled, _ in self.regexes])
        tables = phrases if phrases is not None else build_phrase_tables(spec)
        self.words = tables.words
        self.squashed = tables.squashed
        self.raw = tables.raw
        self.raw_other = tables.raw_other
        self.raw_other_starts = tables.raw_other_starts
        self.strong_anchors = tables.strong_anchors
        # Whether each phrase table holds any phrase, asked of every text: the tables are complete by
        # now, and their `len` is a Python method.
        self.has_words = bool(len(self.words))
        self.has_squashed = bool(len(self.squashed))
        self.has_raw = bool(len(self.raw))
        self.has_raw_other = bool(len(self.raw_other))
        # The anchors as they read in rot13 and written backwards. Both turn a words view word by word,
        # so the turned text holds an anchor exactly when the text holds one's turned form: looked up
        # in the words as they are, without turning the text for nothing.
        self.rot13_anchors = frozenset(rot13(anchor) for anchor in self.strong_anchors)
        self.reversed_anchors = frozenset(anchor[::-1] for anchor in self.strong_anchors)
        heuristics = spec.get("heuristics", {})
        self.override = _OverrideRule(heuristics["override"]) if "override" in heuristics else None
        # A text holding none of these words has no override, rot13 or backwards hit: each of the
        # three checks first asks whether the text holds one of its own words.
        self.word_triggers = self.rot13_anchors | self.reversed_anchors | (
            self.override.verbs if self.override is not None else frozenset())
        discussion = heuristics.get("discussion", {})
        self.quoted_factor = float(discussion.get("quoted_factor", 1.0))
        self.weak_factor = float(discussion.get("weak_factor", 1.0))
        self.weak_below = float(discussion.get("weak_below", 0.0))
        self.weak_family_cap = float(heuristics.get("weak_family_cap", 1.0))
        self.weak_min_rules = int(heuristics.get("weak_min_rules", 0))
        # Both kinds of cue in one automaton (its values: `_DISCUSSION_CUE` | `_QUOTE_CUE`), so a
        # text is read once for both (`_cues`).
        self.cues = _cue_automaton(discussion.get("cues", []), discussion.get("quote_cues", []))
        self.invisible = heuristics.get("invisible", {})
        self.encoded = heuristics.get("encoded", {})
        self.density = heuristics.get("density", {})
        # Typoglycemia is read back against the words the signatures and the override rule know.
        vocabulary = set(tables.vocabulary)
        if self.override is not None:
            vocabulary |= self.override.verbs | self.override.targets | self.override.qualifiers
        self.unscrambler = Unscrambler(vocabulary)


def _cue_automaton(discussion_patterns: list[str], quote_patterns: list[str]) -> ahocorasick.Automaton:
    """The phrases of both lists of cues as words-view keys, each valued with the flags of the
    lists it is in (`_DISCUSSION_CUE`, `_QUOTE_CUE`)."""
    automaton = ahocorasick.Automaton()
    flags: dict[str, int] = {}
    for flag, group in ((_DISCUSSION_CUE, discussion_patterns), (_QUOTE_CUE, quote_patterns)):
        for pattern in group:
            for phrase in _expand(pattern):
                key = f" {_words_key(phrase)} "
                flags[key] = flags.get(key, 0) | flag
    for key, flag in flags.items():
        automaton.add_word(key, flag)
    if len(automaton):
        automaton.make_automaton()
    return automaton


_DISCUSSION_CUE = 1
_QUOTE_CUE = 2


def _cues(automaton: ahocorasick.Automaton, words: str) -> tuple[bool, bool]:
    """Whether the words view `words` holds a discussion cue, and whether it holds a quotation cue
    (`automaton`: `SignatureSet.cues`)."""
    found = 0
    if len(automaton):
        for _, flags in automaton.iter(f" {words} "):
            found |= flags
            if found == _DISCUSSION_CUE | _QUOTE_CUE:
                break
    return bool(found & _DISCUSSION_CUE), bool(found & _QUOTE_CUE)


def _keep_strongest(table: dict[str, _Signature], key: str, rule: _Signature) -> None:
    if key.strip() and (key not in table or table[key].weight < rule.weight):
        table[key] = rule


class _OverrideRule:
    """An override verb followed closely by what it overrides ("ignore ... instructions")."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.family = spec["family"]
        self.window = int(spec["window"])
        self.strong = float(spec["strong"])
        self.weak = float(spec["weak"])
        # Words of any language, spelt as the words view spells them (no accents, look-alikes folded).
        verbs = _word_set(spec["verbs"])
        # Scrambled verbs ("ignroe", "disrgeard") are as readable as scrambled targets: a set
        # lookup, so the per-text cost stays nil.
        self.verbs = verbs | frozenset(variant for verb in verbs for variant in _scrambles(verb))
        self.targets = _word_set(spec["targets"])
        self.qualifiers = _word_set(spec["qualifiers"])
        self.owner_words = _word_set(spec.get("owner_words", []))
        self.negations = _word_set(spec.get("negations", []))
        self.after_qualifiers = _word_set(spec.get("after_qualifiers", []))
        self._near_targets = _NearMisses(self.targets)
        self._near_qualifiers = _NearMisses(self.qualifiers)

    def hits(self, words: list[str]) -> list[tuple[int, int, float]]:
        """(first word, last word, weight) of each override found in `words`."""
        found: list[tuple[int, int, float]] = []
        if self.verbs.isdisjoint(words):
            return found
        for index, word in enumerate(words):
            if word not in self.verbs:
                continue
            if any(previous in self.negations for previous in words[max(index - 2, 0):index]):
                continue
            between = words[index + 1:index + 1 + self.window]
            for offset, candidate in enumerate(between):
                if candidate in self.targets or self._near_targets.has(candidate):
                    gap = between[:offset]
                    if any(item in self.owner_words for item in gap):
                        break
                    following = words[index + 2 + offset:index + 3 + offset]
                    qualified = any(item in self.qualifiers or self._near_qualifiers.has(item) for item in gap) or any(
                        item in self.after_qualifiers for item in following
                    )
                    found.append((index, index + 1 + offset, self.strong if qualified else self.weak))
                    break
        return found


def _word_set(words: list[str]) -> frozenset[str]:
    return frozenset(key for word in words for key in [_word_key(str(word))[0]] if key)


class _NearMisses:
    """Misspellings of a few long words: one letter added, dropped, changed or two swapped
    ("iunstructions", "instrcutions"), or the inner letters scrambled ("isntructoins", typoglycemia),
    which models read through. Asked only of the words right after an override verb, so the
    per-text cost stays nil; words under `min_length` letters must match exactly."""

    __slots__ = ("_deletes", "_min_length", "_scrambled")

    def __init__(self, words: frozenset[str], min_length: int = 7) -> None:
        long_words = [word for word in words if len(word) >= min_length]
        self._min_length = min_length
        self._scrambled = frozenset(_scrambled(word) for word in long_words)
        self._deletes = frozenset(
            variant for word in long_words for variant in (word, *_one_letter_dropped(word))
        )

    def has(self, word: str) -> bool:
        if len(word) < self._min_length:
            return False
        if word in self._deletes or _scrambled(word) in self._scrambled:
            return True
        return any(variant in self._deletes for variant in _one_letter_dropped(word))


def _scrambles(word: str, min_length: int = 6) -> set[str]:
    """Misspellings of an ASCII word that keep its first and last letters: every order of the
    inner letters of a short word, one swap of neighbours or one letter dropped in a long one."""
    if len(word) < min_length or not word.isascii():
        return set()
    first, inner, last = word[0], word[1:-1], word[-1]
    if len(inner) <= 4:
        return {first + "".join(order) + last for order in itertools.permutations(inner)} - {word}
    swaps = {inner[:i] + inner[i + 1] + inner[i] + inner[i + 2:] for i in range(len(inner) - 1)}
    drops = {inner[:i] + inner[i + 1:] for i in range(len(inner))}
    return {first + variant + last for variant in swaps | drops} - {word}


def _scrambled(word: str) -> str:
    return word[0] + "".join(sorted(word[1:-1])) + word[-1]


def _one_letter_dropped(word: str) -> list[str]:
    return [word[:index] + word[index + 1:] for index in range(len(word))]


def load_signatures(path: str | None = None) -> SignatureSet:
    """The signature set in `path`, or the one shipped with the package: one copy per file in a
    process (`load_signatures()` and `load_signatures(None)` share it)."""
    return _load_signatures(path)


@lru_cache(maxsize=4)
def _load_signatures(path: str | None) -> SignatureSet:
    if path is None:
        text = (files("capsem_proxy.detectors") / "data" / _DEFAULT_FILE).read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    spec = yaml.safe_load(text)
    # Built in a child process, the phrase automata take some 20 MiB here instead of 50: building
    # them in this process leaves its memory fragmented by the expansion's temporaries.
    return SignatureSet(spec, build_in_child(text) if isinstance(spec, dict) else None)


class InjectionDetector:
    """Scores a text for prompt injection / jailbreak; flags it at or above `threshold`.

    `profile` selects the per-place weight scales of the signature file (`tool_results` weighs
    indirect-injection phrasing such as "AI assistant reading this" higher than `prompts`).
    """

    name = "injection"
    # Signatures are phrases; the widest context read around one is a quoted passage (300
    # characters) or the words near an override verb. An encoded payload longer than `after` is
    # decoded as far as a slice reads it.
    reach = Reach(before=512, after=1024, longest=1024)

    def __init__(
        self,
        threshold: float = 0.6,
        profile: Profile = "prompts",
        signatures: SignatureSet | None = None,
        decode_payloads: bool = True,
        model: InjectionModel | None = None,
        model_threshold: float | None = None,
    ) -> None:
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be in [0, 1], not {threshold}")
        self.threshold = threshold
        self.profile = profile
        self.signatures = signatures or load_signatures()
        self.decode_payloads = decode_payloads
        self._scales = {family: scales.get(profile, 1.0) for family, scales in self.signatures.scales.items()}
        # The learned model reads prompts with its `prompts` weights, tool results and documents
        # with its `documents` weights (indirect injection), each with its own threshold.
        self.model = model
        self._model_name = "documents" if profile == "tool_results" else "prompts"
        self.model_threshold = (
            model_threshold if model_threshold is not None
            else model.threshold(self._model_name) if model is not None else 1.0
        )

    @classmethod
    def with_model(cls, threshold: float = 0.6, profile: Profile = "prompts", **options: Any) -> InjectionDetector:
        """A detector fused with the shipped learned model."""
        return cls(threshold, profile, model=load_model(), **options)

    def _probability(self, normalized: NormalizedText) -> tuple[float, float, list[Hit]]:
        """The learned model's probability for the text as written and the strongest over its
        decoded readings (`decoded_views`: reversed, rot13, unscrambled, encoded payloads; 0 when
        it has none), with the signature hits found in the unscrambled reading."""
        assert self.model is not None
        words = normalized.words
        probability = self.model.probability(words, self._model_name)
        decoded = 0.0
        hits: list[Hit] = []
        views = decoded_views(normalized.source, words, self.signatures.unscrambler, self.decode_payloads,
                              normalized.word_list())
        for name, view in views:
            decoded = max(decoded, self.model.probability(view, self._model_name))
            if name == "unscrambled":
                hits.extend(self._unscrambled_hits(normalized, view))
        return probability, decoded, hits

    def _fused_model_hit(self, plain: float, decoded: float, end: int, discussing: bool, hits: list[Hit]) -> list[Hit]:
        """The model's evidence from the stronger of the plain and decoded readings. A decoded
        reading that reaches the model's threshold backs it as a signature would: ordinary text
        is not written backwards, scrambled or encoded."""
        alone = _alone(hits) and decoded < self.model_threshold
        return self._model_hit(max(plain, decoded), end, discussing, alone)

    def _unscrambled_hits(self, normalized: NormalizedText, view: str) -> list[Hit]:
        """Strong signatures in a reading of the words view that keeps every word's place
        (typoglycemia read back): spans map one to one."""
        return self._strong_hits(view, "unscrambled", normalized.words_span)

    def _strong_hits(self, view: str, label: str, span: Callable[[int, int], tuple[int, int]]) -> list[Hit]:
        """Strong signatures (weight `_ROT13_MIN_WEIGHT` or more) in `view`, a rewritten words view
        (rot13, backwards, unscrambled); `span` maps a match's (start, stop) in `view` to the text."""
        found = []
        for end, (length, rule) in self.signatures.words.iter(f" {view} "):
            if rule.weight < _ROT13_MIN_WEIGHT:
                continue
            first, last = span(*_unpad(end, length))
            found.append(Hit(rule.family, f"{label}: {rule.rule}", self._weight(rule), first, last))
        return found

    def _classified(self, hits: list[Hit], normalized: NormalizedText, end: int, discussing: bool) -> list[Hit]:
        """`hits` plus the learned model's evidence when it reaches its threshold: a hit over the
        whole text whose weight maps the model's threshold onto the detector's (so reaching one
        reaches the other); and the signature hits of the text's unscrambled reading.
        `discussing`: whether the text holds a discussion cue."""
        words = normalized.words
        if self.model is None or not words:
            return hits
        plain, decoded, unscrambled = self._probability(normalized)
        hits = [*hits, *unscrambled]
        return [*hits, *self._fused_model_hit(plain, decoded, end, discussing, hits)]

    def _model_hit(self, probability: float, end: int, discussing: bool = False, alone: bool = False) -> list[Hit]:
        """The model's evidence; in a text that discusses attacks (the signatures' discussion
        cues) it counts as weak evidence, as quoted signature hits do: the vocabulary of an
        article about injections is the vocabulary of an injection. With no signature evidence
        beside it (`alone`), the model must be surer: half way from its threshold to certainty."""
        cut = self.model_threshold
        if probability < (cut + (1.0 - cut) * _ALONE_MARGIN if alone else cut):
            return []
        weight = self.threshold + (1.0 - self.threshold) * (probability - cut) / max(1e-9, 1.0 - cut)
        if discussing:
            weight *= self.signatures.weak_factor
        return [Hit("classifier", f"learned model ({self._model_name})", min(weight, _MAX_WEIGHT), 0, end)]

    def scan(self, text: str) -> list[Finding]:
        """One finding per hit when the text's score reaches the threshold, else none."""
        return self.analyze(text).findings(text)

    def analyze(self, text: str) -> Analysis:
        """The score of `text` and the evidence behind it."""
        if not text:
            return Analysis(0.0, self.threshold, (), self.signatures.kinds)
        normalized = normalize(text)
        # Whether the text discusses attacks: asked once, of the signatures and of the model.
        cues = _cues(self.signatures.cues, normalized.words)
        hits = self._hits(text, depth=0, normalized=normalized, cues=cues)
        hits.extend(self._document_hits(text))
        hits = self._classified(hits, normalized, len(text), discussing=cues[0])
        return Analysis(self._combine(hits), self.threshold, tuple(hits), self.signatures.kinds)

    def analyze_in_slices(self, text: str, slice_chars: int) -> Generator[None, None, Analysis]:
        """`analyze(text)` read slice by slice, yielding between slices (for long texts).

        Each slice owns the hits that start in it and is read with `reach` around it; the
        invisible characters are counted in the part each slice owns, and the score is combined
        once, over all hits (at most `_HITS_PER_RULE` of each rule, the strongest among them).
        Discussion cues count within a slice's reading only.
        """
        if not text:
            return Analysis(0.0, self.threshold, (), self.signatures.kinds)
        reach = self.reach
        by_rule: dict[str, list[Hit]] = {}
        invisibles = _Invisibles()
        probability = decoded = 0.0
        discussing = False
        ranges = SliceRanges(len(text), slice_chars)
        for index, (start, stop) in enumerate(ranges):
            if index:
                yield
            began = perf_counter()
            window_start = max(0, start - reach.before)
            window = text[window_start : min(len(text), stop + reach.after)]
            normalized = normalize(window)
            cues = _cues(self.signatures.cues, normalized.words)
            window_discussing = cues[0]
            slice_hits = self._signature_hits(normalized, depth=0, cues=cues)
            if self.model is not None and normalized.words:
                slice_probability, slice_decoded, unscrambled = self._probability(normalized)
                probability, decoded = max(probability, slice_probability), max(decoded, slice_decoded)
                slice_hits.extend(unscrambled)
                discussing = discussing or window_discussing
            for hit in slice_hits:
                begins = window_start + hit.start
                if start <= begins < stop:
                    _keep_hit(by_rule, Hit(hit.family, hit.rule, hit.weight, begins, window_start + hit.end))
            invisibles.count(text, start, stop)
            ranges.took(stop - start, perf_counter() - began)
        hits = sorted((hit for kept in by_rule.values() for hit in kept), key=lambda hit: (hit.start, hit.end))
        hits.extend(self._invisible_hits(invisibles, len(text)))
        hits.extend(self._document_hits(text))
        hits = self._with_density(hits)
        if self.model is not None:
            hits.extend(self._fused_model_hit(probability, decoded, len(text), discussing, hits))
        return Analysis(self._combine(hits), self.threshold, tuple(hits), self.signatures.kinds)

    def _combine(self, hits: list[Hit]) -> float:
        """Noisy-OR of independent evidence: a rule counts once (its strongest hit), hits of one
        family over overlapping text are one piece of evidence (the strongest), and a family
        holding only weak evidence adds at most `weak_family_cap` however many weak hits it has;
        weak evidence alone needs `weak_min_rules` distinct rules to score above that cap."""
        strongest: dict[str, Hit] = {}
        for hit in hits:
            if hit.rule not in strongest or strongest[hit.rule].weight < hit.weight:
                strongest[hit.rule] = hit
        by_family: dict[str, list[Hit]] = {}
        for hit in strongest.values():
            by_family.setdefault(hit.family, []).append(hit)
        remaining = 1.0
        for family_hits in by_family.values():
            family_remaining = 1.0
            family_hits.sort(key=lambda hit: (hit.start, hit.end))
            cluster_end, cluster_weight = -1, 0.0
            for hit in family_hits:
                if hit.start < cluster_end:
                    cluster_end, cluster_weight = max(cluster_end, hit.end), max(cluster_weight, hit.weight)
                    continue
                family_remaining *= 1.0 - cluster_weight
                cluster_end, cluster_weight = hit.end, hit.weight
            family_remaining *= 1.0 - cluster_weight
            family_score = 1.0 - family_remaining
            if max(hit.weight for hit in family_hits) < self.signatures.weak_below:
                family_score = min(family_score, self.signatures.weak_family_cap)
            remaining *= 1.0 - family_score
        score = 1.0 - remaining
        weak_only = all(hit.weight < self.signatures.weak_below for hit in strongest.values())
        if weak_only and len(strongest) < self.signatures.weak_min_rules:
            score = min(score, self.signatures.weak_family_cap)
        return score

    def _weight(self, rule: _Signature, factor: float = 1.0) -> float:
        return min(rule.weight * self._scales.get(rule.family, 1.0) * factor, _MAX_WEIGHT)

    def _document_hits(self, text: str) -> list[Hit]:
        """Tool results only: each destination the text tells its reader to send data to
        (`exfil_instructions`), as evidence of the data-exfiltration family, and each directive to
        the program reading the text (`reader_directives`), of the indirect-injection family."""
        if self.profile != "tool_results":
            return []
        hits = [Hit("data_exfiltration", "instruction to send data to a destination",
                    min(_DOCUMENT_INSTRUCTION_WEIGHT + 0.1 * (reading.points - 4), _MAX_WEIGHT),
                    reading.destination.start, reading.destination.end)
                for reading in instructed_destinations(text)]
        directive = _Signature("directive to the reader of this text", "indirect_injection", _DIRECTIVE_WEIGHT)
        hits.extend(Hit("indirect_injection", rule, self._weight(directive), start, end)
                    for start, end, rule in reader_directives(text))
        return hits

    def _hits(
        self, text: str, depth: int, normalized: NormalizedText | None = None, cues: tuple[bool, bool] | None = None
    ) -> list[Hit]:
        normalized = normalized or normalize(text)
        hits = self._signature_hits(normalized, depth, cues)
        hits.extend(self._invisible_hits(_Invisibles.of(normalized), len(text)))
        return self._with_density(hits)

    def _signature_hits(
        self, normalized: NormalizedText, depth: int, cues: tuple[bool, bool] | None = None
    ) -> list[Hit]:
        """Hits of the signatures, the override rule, rot13 and encoded payloads (no invisible
        characters, no density). `cues`: what `_cues` gives for the text, when known."""
        signatures = self.signatures
        text = normalized.source
        discussing, quote_cue = cues if cues is not None else _cues(signatures.cues, normalized.words)
        quoting = discussing or quote_cue
        quoted = _QuotedSpans(normalized.folded) if quoting else None
        hits: list[Hit] = []

        def factor(weight: float, folded_start: int, folded_end: int) -> float:
            # Text that discusses attacks: quoted phrases are examples, weak hits are the topic.
            if quoted is not None and quoted.contain(folded_start, folded_end):
                return signatures.quoted_factor
            if discussing and weight < signatures.weak_below:
                return signatures.weak_factor
            return 1.0

        def add(rule: _Signature, folded_start: int, folded_end: int, span: tuple[int, int]) -> None:
            scaled = self._weight(rule, factor(rule.weight, folded_start, folded_end))
            hits.append(Hit(rule.family, rule.rule, scaled, span[0], span[1]))

        words = normalized.word_list()  # split once for the phrases, the override rule, rot13 and backwards
        if signatures.has_words:
            for end, (length, rule) in signatures.words.iter(f" {normalized.words} ", words or None):
                start, stop = _unpad(end, length)
                folded = (normalized.words_origin(start), normalized.words_origin(stop - 1) + 1)
                add(rule, folded[0], folded[1], normalized.words_span(start, stop))
        if signatures.has_squashed:
            for end, (length, rule) in signatures.squashed.iter(normalized.squashed):
                start = end - length + 1
                folded = (normalized.squashed_origin(start), normalized.squashed_origin(end) + 1)
                add(rule, folded[0], folded[1], normalized.squashed_span(start, end + 1))
        other_starts = signatures.raw_other_starts
        raw_tables = ((signatures.raw, signatures.has_raw), (signatures.raw_other, signatures.has_raw_other))
        for automaton, present in raw_tables:
            if not present or (automaton is signatures.raw_other and (
                    normalized.folded.isascii() or other_starts is None or not other_starts.search(normalized.folded))):
                continue
            for end, (length, rule) in automaton.iter(normalized.folded):
                start = end - length + 1
                add(rule, start, end + 1, normalized.folded_span(start, end + 1))
        for index in signatures.regex_set.matching(normalized.folded):
            pattern, rule = signatures.regexes[index]
            for match in pattern.finditer(normalized.folded):
                add(rule, match.start(), match.end(), normalized.folded_span(match.start(), match.end()))
        # One set lookup per word tells most texts that none of the three below applies.
        if not signatures.word_triggers.isdisjoint(words):
            hits.extend(self._override_hits(normalized, factor, words))
            hits.extend(self._rot13_hits(normalized, words))
            hits.extend(self._reversed_hits(normalized, words))
        if self.decode_payloads and depth == 0:
            hits.extend(self._encoded_hits(text))
        return hits

    def _override_hits(
        self, normalized: NormalizedText, factor: Callable[[float, int, int], float], words: list[str]
    ) -> list[Hit]:
        """`words`: `normalized.words` split at its spaces."""
        rule = self.signatures.override
        if rule is None or not normalized.words:
            return []
        overrides = rule.hits(words)
        if not overrides:
            return []
        starts = list(itertools.accumulate((len(word) + 1 for word in words[:-1]), initial=0))
        found = []
        for first, last, weight in overrides:
            start, stop = starts[first], starts[last] + len(words[last])
            folded_start, folded_end = normalized.words_origin(start), normalized.words_origin(stop - 1) + 1
            signature = _Signature("override verb near target", rule.family, weight)
            scaled = self._weight(signature, factor(weight, folded_start, folded_end))
            span = normalized.words_span(start, stop)
            found.append(Hit(rule.family, signature.rule, scaled, span[0], span[1]))
        return found

    def _rot13_hits(self, normalized: NormalizedText, words: list[str]) -> list[Hit]:
        if not self.signatures.has_words or not normalized.words:
            return []
        if self.signatures.rot13_anchors.isdisjoint(words):
            return []
        return self._strong_hits(rot13(normalized.words), "rot13", normalized.words_span)

    def _reversed_hits(self, normalized: NormalizedText, words: list[str]) -> list[Hit]:
        """Strong signatures written backwards ("snoitcurtsni suoiverp erongi")."""
        text = normalized.words
        if not self.signatures.has_words or not text:
            return []
        if self.signatures.reversed_anchors.isdisjoint(words):
            return []
        return self._strong_hits(
            text[::-1], "reversed", lambda start, stop: normalized.words_span(len(text) - stop, len(text) - start)
        )

    def _invisible_hits(self, invisibles: _Invisibles, end: int) -> list[Hit]:
        spec = self.signatures.invisible
        if not spec or (not invisibles.tags and not invisibles.in_word and not invisibles.bidi):
            return []
        family = spec["family"]
        found = []
        checks = (
            ("tags", invisibles.tags, "invisible tag characters"),
            ("in_word", invisibles.in_word, "invisible characters inside words"),
            ("bidi", invisibles.bidi, "bidirectional control characters"),
        )
        for key, count, rule in checks:
            if count >= int(spec.get(f"{key}_min", 1 << 30)):
                weight = min(float(spec[f"{key}_weight"]) * self._scales.get(family, 1.0), _MAX_WEIGHT)
                found.append(Hit(family, rule, weight, 0, end))
        return found

    def _encoded_hits(self, text: str) -> list[Hit]:
        spec = self.signatures.encoded
        found = []
        for payload in payloads_of(text):
            inner = self._hits(payload.text, depth=1)
            score = self._combine(inner)
            if score < float(spec.get("min_inner_score", 0.3)):
                continue
            family = spec.get("family", "obfuscation")
            weight = min(score + float(spec.get("bonus", 0.2)), _MAX_WEIGHT)
            found.append(Hit(family, f"{payload.encoding} payload", weight, payload.start, payload.end))
            found.extend(Hit(hit.family, f"{payload.encoding}: {hit.rule}", hit.weight, payload.start, payload.end)
                         for hit in inner)
        return found

    def _with_density(self, hits: list[Hit]) -> list[Hit]:
        spec = self.signatures.density
        if not spec or not hits:
            return hits
        families = {hit.family for hit in hits if hit.weight >= 0.3}
        if len(families) < int(spec["families_min"]):
            return hits
        first = min(hit.start for hit in hits)
        last = max(hit.end for hit in hits)
        return [*hits, Hit("density", "several families of evidence", float(spec["weight"]), first, last)]


# A long text keeps this many hits of one rule: the score reads only the strongest of each
# rule, and a megabyte repeating one phrase would otherwise keep tens of thousands.
_HITS_PER_RULE = 16


def _keep_hit(by_rule: dict[str, list[Hit]], hit: Hit) -> None:
    """Keep `hit` among its rule's first hits, or in place of the weakest when it is stronger."""
    kept = by_rule.setdefault(hit.rule, [])
    if len(kept) < _HITS_PER_RULE:
        kept.append(hit)
        return
    weakest = min(range(len(kept)), key=lambda index: kept[index].weight)
    if hit.weight > kept[weakest].weight:
        kept[weakest] = hit


def _alone(hits: list[Hit]) -> bool:
    """True when no signature or heuristic hit of some weight supports the model's evidence."""
    return not any(hit.weight >= _SUPPORT_WEIGHT for hit in hits)


def _unpad(end: int, length: int) -> tuple[int, int]:
    """The span, in the unpadded words view, of a `length`-long " phrase " match ending at `end`
    in the space-padded view (Aho-Corasick reports the index of a match's last character)."""
    return end - length + 1, end - 1


class _QuotedSpans:
    """The quoted passages of a folded text (they never overlap), found once per text."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, folded: str) -> None:
        spans = [match.span() for match in _QUOTED.finditer(folded)]
        self._starts = [start for start, _ in spans]
        self._ends = [end for _, end in spans]

    def contain(self, start: int, end: int) -> bool:
        """True when [start, end) lies inside one quoted passage."""
        index = bisect.bisect_right(self._starts, start) - 1
        return index >= 0 and end <= self._ends[index]


_INVISIBLE_IN_WORD = re.compile(
    r"(?<=\w)[\u00ad\u034f\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]+(?=\w)"
)


_TAG_CHARACTER = re.compile("[\U000e0020-\U000e007e]")
_BIDI_CONTROL = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")


@dataclass(slots=True)
class _Invisibles:
    """Invisible characters of a text: Unicode tags, runs wedged inside words, bidi controls."""

    tags: int = 0
    in_word: int = 0
    bidi: int = 0

    @classmethod
    def of(cls, normalized: NormalizedText) -> _Invisibles:
        if not normalized.invisible and not normalized.tags:
            return cls()
        return cls(normalized.tags, _invisible_in_words(normalized.source), normalized.bidi)

    def count(self, text: str, start: int, stop: int) -> None:
        """Add those of text[start:stop] (a run inside a word counts where it starts)."""
        part = text[start:stop]
        if part.isascii():
            return
        self.tags += len(_TAG_CHARACTER.findall(part))
        self.bidi += len(_BIDI_CONTROL.findall(part))
        for match in _INVISIBLE_IN_WORD.finditer(text, start):
            if match.start() >= stop:
                break
            self.in_word += 1


def _invisible_in_words(text: str) -> int:
    """Invisible characters wedged between two word characters (never there by accident)."""
    if text.isascii():
        return 0
    return len(_INVISIBLE_IN_WORD.findall(text))
