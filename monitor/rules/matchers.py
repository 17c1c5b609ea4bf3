"""Expressions compiled for one index into matchers: closures over each word's anchor
numbers, worked out once. A candidate's clauses are then mostly settled by looking an
anchor number up in the small set of those the item holds, which the candidate step has
already collected, instead of walking the expression tree and stemming on the way.

A matcher returns what `Expr.evaluate` returns for the same item, hits in the same order;
tests/test_index.py checks the two against each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from monitor.rules.analysis import FieldText, analyzer
from monitor.rules.expr import (
    Bool,
    Expr,
    Found,
    Near,
    Prefix,
    Scope,
    Words,
    close_hits,
    occurrences,
    text_fields,
)

Anchor = tuple[str, str]
Matcher = Callable[["Probe"], list[Found] | None]
# A matcher and its guard: an anchor number an item must hold for it to match, if it has
# one. Clauses are looked at through their guards first: a clause whose guard is absent
# is settled without reading the clause's matcher at all, and with many rules it is the
# memory read, not the test, that costs.
Compiled = tuple[Matcher, int | None]


class AnchorTable(Protocol):
    def number(self, anchor: Anchor) -> int:
        """The anchor's number: an item's anchor set records whether it holds it."""

    def holders(self, number: int) -> list[str]:
        """The tokens seen so far that hold the anchor: the index keeps this list up to
        date in place, and every token of an item is in it before the item is matched."""


def key_anchor(key: str, language: str) -> Anchor:
    """Word keys are numbered per language: a stem in one language says nothing of a
    token's keys in another."""
    return ("k" + language, key)


def word_anchors(word: str, exact: bool, language: str) -> list[Anchor]:
    if exact:
        return [("t", word)]
    return [key_anchor(key, language) for key in analyzer(language).keys(word)]


@dataclass(slots=True)
class Probe:
    """One item as matchers read it: its fields, its distinct tokens and the anchor
    numbers they hold."""

    fields: Mapping[str, FieldText]
    tokens: set[str]
    present: set[int]
    _text_fields: list[tuple[str, FieldText]] | None = None
    _scopes: dict[str, Scope] | None = None

    def of(self, name: str | None) -> list[tuple[str, FieldText]]:
        if name is not None:
            return [(name, self.fields[name])] if name in self.fields else []
        if self._text_fields is None:
            self._text_fields = text_fields(self.fields)
        return self._text_fields

    def scope(self, language: str) -> Scope:
        if self._scopes is None:
            self._scopes = {}
        found = self._scopes.get(language)
        if found is None:
            found = self._scopes[language] = Scope(self.fields, self.tokens, language)
        return found


def compile_matcher(
    expr: Expr, language: str, table: AnchorTable
) -> tuple[Matcher, tuple[Matcher, ...] | None]:
    """`expr` as a matcher for items in `language`, its words numbered in `table`; and
    when `expr` is one of several clauses (an `any:` list, `a OR b`), each clause's own
    matcher, for `some_of`."""
    if isinstance(expr, Bool) and expr.should and not expr.must and not expr.must_not:
        clauses = [_compile(clause, language, table) for clause in expr.should]
        return _any(clauses), tuple(matcher for matcher, _ in clauses)
    return _compile(expr, language, table)[0], None


def some_of(clauses: tuple[Matcher, ...], chosen: int, probe: Probe) -> list[Found] | None:
    """What the matcher of a rule made of `clauses` returns, given that only the clauses
    whose bits are set in `chosen` can match: the index knows which clauses' words the
    item holds, so the others are not even looked at."""
    found = None
    for number, clause in enumerate(clauses):
        if chosen >> number & 1:
            hits = clause(probe)
            if hits is not None:
                if found is None:
                    found = hits  # every matcher returns a list of its own
                else:
                    found.extend(hits)
    return found


def _compile(expr: Expr, language: str, table: AnchorTable) -> Compiled:
    if isinstance(expr, Words):
        groups = [
            tuple(map(table.number, word_anchors(word, expr.exact, language)))
            for word in expr.words
        ]
        holders = [tuple(map(table.holders, anchors)) for anchors in groups]
        guard = groups[0][0] if len(groups[0]) == 1 else None
        if len(groups) == 1:
            return _word(groups[0], holders[0], expr.label, expr.field), guard
        return _run(groups, holders, expr.label, expr.field, expr.slop), guard
    if isinstance(expr, Prefix):
        anchor = table.number(("p", expr.prefix))
        return _prefix(anchor, table.holders(anchor), expr.prefix, expr.field), anchor
    if isinstance(expr, Bool):
        must = [_compile(clause, language, table) for clause in expr.must]
        should = [_compile(clause, language, table) for clause in expr.should]
        must_not = [_compile(clause, language, table) for clause in expr.must_not]
        if should and not must and not must_not:
            return _any(should), None
        guards = [guard for _, guard in must if guard is not None]
        return _bool(must, should, must_not), guards[0] if guards else None
    if isinstance(expr, Near):
        left, guard = _compile(expr.left, language, table)
        right = _compile(expr.right, language, table)[0]
        distance = expr.distance
        return (lambda probe: close_hits(left(probe), right(probe), distance)), guard
    # Substrings and patterns read the text itself, not words: the tree does it.
    evaluate = expr.evaluate
    return (lambda probe: evaluate(probe.scope(language))), None


def _word(
    anchors: tuple[int, ...], holders: tuple[list[str], ...], label: str, name: str | None
) -> Matcher:
    if len(anchors) == 1:  # a word with one key, which is nearly every word
        (anchor,), (seen,) = anchors, holders

        def match_one(probe: Probe) -> list[Found] | None:
            if anchor not in probe.present:
                return None
            if len(seen) != 1:
                tokens = probe.tokens
                return _every(probe, [t for t in seen if t in tokens], label, name)
            # One token has the key, so it is the item's: _every, inline for speed.
            token = seen[0]
            found = []
            for field_name, text in probe.of(name):
                for position in text.positions_of(token):
                    found.append(_new(Found, (label, field_name, position, position)))
            return found or None

        return match_one

    pairs = tuple(zip(anchors, holders, strict=True))

    def match(probe: Probe) -> list[Found] | None:
        present, tokens = probe.present, probe.tokens
        held = [t for anchor, seen in pairs if anchor in present for t in seen if t in tokens]
        return _every(probe, held, label, name) if held else None

    return match


_new = tuple.__new__  # Found(...) without its Python-level __new__, in the hottest loop


def _every(probe: Probe, tokens: list[str], label: str, name: str | None) -> list[Found] | None:
    """Every occurrence of `tokens`, each a hit of one word."""
    found = []
    for field_name, text in probe.of(name):
        for token in tokens:
            for position in text.positions_of(token):
                found.append(_new(Found, (label, field_name, position, position)))
    return found or None


def _run(
    groups: list[tuple[int, ...]],
    holders: list[tuple[list[str], ...]],
    label: str,
    name: str | None,
    slop: int,
) -> Matcher:
    def match(probe: Probe) -> list[Found] | None:
        present = probe.present
        for anchors in groups:
            if present.isdisjoint(anchors):
                return None
        tokens = probe.tokens
        words = [[t for seen in lists for t in seen if t in tokens] for lists in holders]
        found: list[Found] = []
        for field_name, text in probe.of(name):
            at = text.positions_of
            positions = []
            for alternatives in words:
                here = [p for t in alternatives for p in at(t)]
                if not here:
                    break
                positions.append(here)
            else:
                spans = occurrences(positions, slop)
                found.extend(Found(label, field_name, a, b) for a, b in spans)
        return found or None

    return match


def _prefix(anchor: int, seen: list[str], prefix: str, name: str | None) -> Matcher:
    label = prefix + "*"

    def match(probe: Probe) -> list[Found] | None:
        if anchor not in probe.present:
            return None
        tokens = probe.tokens
        if len(seen) < len(tokens):
            held = tokens.intersection(seen)
        else:  # a short prefix, held by a good part of a language
            held = {token for token in tokens if token.startswith(prefix)}
        return _every(probe, sorted(held), label, name)

    return match


def _bool(must: list[Compiled], should: list[Compiled], must_not: list[Compiled]) -> Matcher:
    needs_should = bool(should) and not must
    required = tuple(guard for _, guard in must if guard is not None)
    musts = tuple(matcher for matcher, _ in must)
    nots, shoulds = tuple(must_not), tuple(should)

    def match(probe: Probe) -> list[Found] | None:
        present = probe.present
        for guard in required:
            if guard not in present:
                return None
        found: list[Found] = []
        for clause in musts:
            hits = clause(probe)
            if hits is None:
                return None
            found.extend(hits)
        for negated, unless in nots:
            if (unless is None or unless in present) and negated(probe) is not None:
                return None
        matched_should = False
        for optional, given in shoulds:
            if given is None or given in present:
                hits = optional(probe)
                if hits is not None:
                    matched_should = True
                    found.extend(hits)
        if needs_should and not matched_should:
            return None
        return found

    return match


def _any(clauses: list[Compiled]) -> Matcher:
    """Clauses of which one must match, as in `any:` lists: most candidates match one."""
    matchers = tuple(matcher for matcher, _ in clauses)
    guards = tuple(guard for _, guard in clauses)

    def match(probe: Probe) -> list[Found] | None:
        present = probe.present
        found = None
        for guard, clause in zip(guards, matchers, strict=True):
            if guard is not None and guard not in present:
                continue
            hits = clause(probe)
            if hits is not None:
                if found is None:
                    found = hits  # every matcher returns a list of its own
                else:
                    found.extend(hits)
        return found

    return match
