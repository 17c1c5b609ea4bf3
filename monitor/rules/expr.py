"""Rule expressions and their evaluation against an item's analysed fields.

`evaluate` returns None when a node does not match, else the list of Found hits that
explain it (empty for a match made only of negations).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from monitor.rules.analysis import FieldText, analyzer

TEXT_FIELDS = ("title", "summary", "content")
ALL_FIELDS = (*TEXT_FIELDS, "author", "tags")
REGEX_TIMEOUT = 0.05  # seconds per pattern per field: a hostile text cannot stall us


@dataclass(frozen=True, slots=True)
class Found:
    term: str
    field: str
    first: int  # token positions, inclusive
    last: int


@dataclass(frozen=True, slots=True)
class Scope:
    """What an evaluation reads: the item's fields and the language to stem in."""

    fields: Mapping[str, FieldText]
    language: str
    regex_timeouts: list[str]

    def of(self, field: str | None) -> list[tuple[str, FieldText]]:
        names = TEXT_FIELDS if field is None else (field,)
        return [(name, self.fields[name]) for name in names if name in self.fields]


@dataclass(frozen=True, slots=True)
class Words:
    """A word or a run of words in order; `slop` lets them spread over that many extra
    positions in any order (Lucene's sloppy phrase); `exact` turns stemming off."""

    words: tuple[str, ...]
    exact: bool
    field: str | None = None
    slop: int = 0

    @property
    def label(self) -> str:
        return " ".join(self.words)

    def evaluate(self, scope: Scope) -> list[Found] | None:
        found: list[Found] = []
        for name, text in scope.of(self.field):
            for first, last in self._occurrences(text, scope.language):
                found.append(Found(self.label, name, first, last))
        return found or None

    def _occurrences(self, text: FieldText, language: str) -> list[tuple[int, int]]:
        positions = [self._positions(text, word, language) for word in self.words]
        if not all(positions):
            return []
        if len(positions) == 1:
            return [(p, p) for p in positions[0]]
        if self.slop == 0:
            later = [set(p) for p in positions[1:]]
            return [
                (start, start + len(later))
                for start in positions[0]
                if all(start + offset + 1 in ps for offset, ps in enumerate(later))
            ]
        return _windows(positions, len(self.words) - 1 + self.slop)

    def _positions(self, text: FieldText, word: str, language: str) -> list[int]:
        if self.exact:
            return text.token_positions().get(word, [])
        by_key = text.key_positions(language)
        found: list[int] = []
        for key in analyzer(language).keys(word):
            found.extend(by_key.get(key, ()))
        return found


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
        found = [
            Found(self.prefix + "*", name, p, p)
            for name, text in scope.of(self.field)
            for token, positions in text.token_positions().items()
            if token.startswith(self.prefix)
            for p in positions
        ]
        return found or None


@dataclass(frozen=True, slots=True)
class Substring:
    """A term in a script without spaces, found inside the folded text."""

    text: str
    field: str | None = None

    def evaluate(self, scope: Scope) -> list[Found] | None:
        found: list[Found] = []
        for name, text in scope.of(self.field):
            start = text.folded.find(self.text)
            while start >= 0:
                first, last = _tokens_at(text, start, start + len(self.text))
                found.append(Found(self.text, name, first, last))
                start = text.folded.find(self.text, start + 1)
        return found or None


@dataclass(frozen=True, slots=True)
class Pattern:
    """A regular expression over the displayed text (case-insensitive), run by the
    `regex` module with a timeout."""

    source: str
    compiled: Any
    field: str | None = None

    def evaluate(self, scope: Scope) -> list[Found] | None:
        found: list[Found] = []
        for name, text in scope.of(self.field):
            try:
                for hit in self.compiled.finditer(text.display, timeout=REGEX_TIMEOUT):
                    if hit.end() > hit.start():
                        first, last = _tokens_at(text, hit.start(), hit.end())
                        found.append(Found(hit.group(), name, first, last))
            except TimeoutError:
                scope.regex_timeouts.append(self.source)
        return found or None


def _tokens_at(text: FieldText, start: int, end: int) -> tuple[int, int]:
    if not text.tokens:
        return 0, 0
    first = min(bisect.bisect_right(text.starts, start) - 1, len(text.tokens) - 1)
    last = max(bisect.bisect_left(text.ends, end), first)
    return max(first, 0), min(last, len(text.tokens) - 1)


@dataclass(frozen=True, slots=True)
class Near:
    """Two sub-expressions within `distance` words of each other, in either order."""

    left: Expr
    right: Expr
    distance: int

    def evaluate(self, scope: Scope) -> list[Found] | None:
        lefts, rights = self.left.evaluate(scope), self.right.evaluate(scope)
        if not lefts or not rights:
            return None
        close = [
            hit
            for a in lefts
            for b in rights
            if a.field == b.field and _gap(a, b) <= self.distance
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
        for clause in self.must_not:
            if clause.evaluate(scope) is not None:
                return None
        found: list[Found] = []
        for clause in self.must:
            hits = clause.evaluate(scope)
            if hits is None:
                return None
            found.extend(hits)
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
