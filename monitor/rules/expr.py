"""Rule expressions and their evaluation against an item's analysed fields.

`evaluate` returns None when a node does not match, else the list of Found hits that
explain it (empty for a match made only of negations).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, NamedTuple, Union

from monitor.rules.analysis import FieldText, analyzer

TEXT_FIELDS = ("title", "summary", "content")
ALL_FIELDS = (*TEXT_FIELDS, "author", "tags")
REGEX_TIMEOUT = 0.05  # seconds per pattern per field: a hostile text cannot stall us


class Found(NamedTuple):
    """A hit before it is explained: a tuple, as the hottest loops create these."""

    term: str
    field: str
    first: int  # token positions, inclusive
    last: int


@dataclass(slots=True)
class Scope:
    """What an evaluation reads: the item's fields, its distinct tokens and the language to
    stem in. One per item and language, shared by every rule evaluated against that item,
    so the word keys are worked out once per item however many rules read them."""

    fields: Mapping[str, FieldText]
    tokens: set[str]
    language: str
    _text_fields: list[tuple[str, FieldText]] | None = None
    _keys: dict[str, list[str]] | None = None

    def of(self, field: str | None) -> list[tuple[str, FieldText]]:
        if field is not None:
            return [(field, self.fields[field])] if field in self.fields else []
        if self._text_fields is None:
            self._text_fields = text_fields(self.fields)
        return self._text_fields

    def keys(self) -> dict[str, list[str]]:
        """Each word key in the item → the tokens that have it."""
        if self._keys is None:
            keys_of = analyzer(self.language).keys
            self._keys = {}
            for token in self.tokens:
                for key in keys_of(token):
                    tokens = self._keys.get(key)
                    if tokens is None:
                        self._keys[key] = [token]
                    else:
                        tokens.append(token)
        return self._keys


def text_fields(fields: Mapping[str, FieldText]) -> list[tuple[str, FieldText]]:
    """The fields a term without a field prefix is looked for in: those with words."""
    return [(n, fields[n]) for n in TEXT_FIELDS if n in fields and fields[n].tokens]


@dataclass(frozen=True, slots=True)
class Words:
    """A word or a run of words in order; `slop` lets them spread over that many extra
    positions in any order (Lucene's sloppy phrase); `exact` turns stemming off."""

    words: tuple[str, ...]
    exact: bool
    field: str | None = None
    slop: int = 0
    # The keys each word matches by, per language; worked out once, not per item.
    _keys: dict[str, list[tuple[str, ...]]] = dataclass_field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def lookups(self, language: str) -> list[tuple[str, ...]]:
        found = self._keys.get(language)
        if found is None:
            if self.exact:
                found = [(word,) for word in self.words]
            else:
                keys_of = analyzer(language).keys
                found = [keys_of(word) for word in self.words]
            self._keys[language] = found
        return found

    @property
    def label(self) -> str:
        return " ".join(self.words)

    def _tokens(self, scope: Scope) -> list[list[str]] | None:
        """For each word, the item's tokens that are it (or share its key); None as soon
        as one word is missing."""
        lookups = self._keys.get(scope.language) or self.lookups(scope.language)
        tokens = []
        if self.exact:
            for keys in lookups:
                here = [key for key in keys if key in scope.tokens]
                if not here:
                    return None
                tokens.append(here)
            return tokens
        item_keys = scope.keys()
        for keys in lookups:
            if len(keys) == 1:
                found = item_keys.get(keys[0])
                if found is None:
                    return None
                tokens.append(found)
                continue
            here = [t for key in keys for t in item_keys.get(key, ())]
            if not here:
                return None
            tokens.append(here)
        return tokens

    def evaluate(self, scope: Scope) -> list[Found] | None:
        tokens = self._tokens(scope)
        if tokens is None:
            return None
        found: list[Found] = []
        label = " ".join(self.words)
        for name, text in scope.of(self.field):
            at = text.positions_of
            if len(tokens) == 1:  # one word, the common case: every occurrence is a hit
                found.extend(Found(label, name, p, p) for t in tokens[0] for p in at(t))
                continue
            positions = []
            for alternatives in tokens:
                here = [p for t in alternatives for p in at(t)]
                if not here:
                    break
                positions.append(here)
            else:
                spans = occurrences(positions, self.slop)
                found.extend(Found(label, name, a, b) for a, b in spans)
        return found or None


def occurrences(positions: list[list[int]], slop: int) -> list[tuple[int, int]]:
    """Where a run of words occurs, given each word's positions, as first and last
    position: in order and adjacent, or with `slop` any order within that many extra."""
    if len(positions) == 1:
        return [(p, p) for p in positions[0]]
    if slop == 0:
        later = [set(p) for p in positions[1:]]
        return [
            (start, start + len(later))
            for start in positions[0]
            if all(start + offset + 1 in ps for offset, ps in enumerate(later))
        ]
    return _windows(positions, len(positions) - 1 + slop)


def _windows(positions: list[list[int]], width: int) -> list[tuple[int, int]]:
    """Smallest spans holding one position of every word, at most `width` apart."""
    marks = sorted((p, index) for index, ps in enumerate(positions) for p in ps)
    need = len(positions)
    counts = [0] * need
    covered = 0
    left = 0
    spans: list[tuple[int, int]] = []
    for position, index in marks:
        counts[index] += 1
        covered += counts[index] == 1
        while covered == need:
            start = marks[left][0]
            if position - start <= width and (not spans or spans[-1][0] != start):
                spans.append((start, position))
            counts[marks[left][1]] -= 1
            covered -= counts[marks[left][1]] == 0
            left += 1
    return spans


@dataclass(frozen=True, slots=True)
class Prefix:
    prefix: str
    field: str | None = None

    def evaluate(self, scope: Scope) -> list[Found] | None:
        found: list[Found] = []
        for name, text in scope.of(self.field):
            by_token = text.token_positions()
            vocabulary = text.sorted_tokens()
            start = bisect.bisect_left(vocabulary, self.prefix)
            for token in vocabulary[start:]:
                if not token.startswith(self.prefix):
                    break
                found.extend(Found(self.prefix + "*", name, p, p) for p in by_token[token])
        return found or None


@dataclass(frozen=True, slots=True)
class Substring:
    """Words of a script written without spaces (Han, kana) or with attached particles
    (Hangul): each word must lie inside one token, the words in consecutive tokens."""

    words: tuple[str, ...]
    field: str | None = None

    def evaluate(self, scope: Scope) -> list[Found] | None:
        label = " ".join(self.words)
        width = len(self.words)
        found: list[Found] = []
        for name, text in scope.of(self.field):
            tokens = text.tokens
            for start in range(len(tokens) - width + 1):
                if all(word in tokens[start + i] for i, word in enumerate(self.words)):
                    found.append(Found(label, name, start, start + width - 1))
        return found or None


@dataclass(frozen=True, slots=True)
class Pattern:
    """A regular expression over the displayed text (case-insensitive), run by the
    `regex` module with a timeout."""

    source: str
    compiled: Any
    field: str | None = None
    whole_words: bool = False  # Lucene's /regex/: each word must match it entirely

    def evaluate(self, scope: Scope) -> list[Found] | None:
        if self.whole_words:
            return self._words(scope)
        found: list[Found] = []
        for name, text in scope.of(self.field):
            try:
                for hit in self.compiled.finditer(text.display, timeout=REGEX_TIMEOUT):
                    if hit.end() > hit.start():
                        first, last = _tokens_at(text, hit.start(), hit.end())
                        found.append(Found(hit.group(), name, first, last))
            except TimeoutError:  # a pattern out of time on hostile text: no match
                continue
        return found or None

    def _words(self, scope: Scope) -> list[Found] | None:
        found: list[Found] = []
        for name, text in scope.of(self.field):
            try:
                for token, positions in text.token_positions().items():
                    if self.compiled.fullmatch(token, timeout=REGEX_TIMEOUT):
                        start, end = text.span(positions[0], positions[0])
                        label = text.display[start:end]  # the word as the feed wrote it
                        found.extend(Found(label, name, p, p) for p in positions)
            except TimeoutError:  # a pattern out of time on hostile text: no match
                continue
        return found or None


def _tokens_at(text: FieldText, start: int, end: int) -> tuple[int, int]:
    if not text.tokens:
        return 0, 0
    spans = text.spans()
    first = min(bisect.bisect_right([s for s, _ in spans], start) - 1, len(text.tokens) - 1)
    last = max(bisect.bisect_left([e for _, e in spans], end), first)
    return max(first, 0), min(last, len(text.tokens) - 1)


@dataclass(frozen=True, slots=True)
class Near:
    """Two sub-expressions within `distance` words of each other, in either order."""

    left: Expr
    right: Expr
    distance: int

    def evaluate(self, scope: Scope) -> list[Found] | None:
        return close_hits(self.left.evaluate(scope), self.right.evaluate(scope), self.distance)


def close_hits(
    lefts: list[Found] | None, rights: list[Found] | None, distance: int
) -> list[Found] | None:
    """The hits of either side within `distance` words of a hit of the other side."""
    if not lefts or not rights:
        return None
    close = [
        hit
        for a in lefts
        for b in rights
        if a.field == b.field and _gap(a, b) <= distance
        for hit in (a, b)
    ]
    return list(dict.fromkeys(close)) or None


def _gap(a: Found, b: Found) -> int:
    return max(b.first - a.last - 1, a.first - b.last - 1, 0)


@dataclass(frozen=True, slots=True)
class Bool:
    """Lucene's boolean clause: every `must`, none of `must_not`, and at least one
    `should` when there is no `must` and there are `should` clauses."""

    must: tuple[Expr, ...] = ()
    should: tuple[Expr, ...] = ()
    must_not: tuple[Expr, ...] = ()

    def evaluate(self, scope: Scope) -> list[Found] | None:
        found: list[Found] = []
        for clause in self.must:  # required clauses first: most candidates fail here
            hits = clause.evaluate(scope)
            if hits is None:
                return None
            found.extend(hits)
        for clause in self.must_not:
            if clause.evaluate(scope) is not None:
                return None
        matched_should = False
        for clause in self.should:
            hits = clause.evaluate(scope)
            if hits is not None:
                matched_should = True
                found.extend(hits)
        if self.should and not self.must and not matched_should:
            return None
        return found


Expr = Union[Words, Prefix, Substring, Pattern, Near, Bool]  # noqa: UP007
EXPR_TYPES = (Words, Prefix, Substring, Pattern, Near, Bool)
