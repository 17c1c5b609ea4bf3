"""Compiled rules and the index over them. Each rule names anchors, keys an item must
contain for the rule to have any chance; an item is evaluated only against the rules
whose anchors it holds, so ten thousand rules cost little more than ten.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitor.models import Hit, Item, Match
from monitor.rules.analysis import FieldText, analyzer, language_code
from monitor.rules.expr import Bool, Expr, Found, Near, Pattern, Prefix, Scope, Substring, Words
from monitor.rules.query import RuleError, keyword_rule, query_rule, regex_rule

if TYPE_CHECKING:  # config imports the rule compiler to validate rules at load time
    from monitor.config import RuleConfig

Anchor = tuple[str, str]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    expr: Expr
    language: str | None
    feeds: frozenset[str]
    tags: frozenset[str]

    def applies_to(self, feed: str, feed_tags: Iterable[str]) -> bool:
        if self.feeds and feed not in self.feeds:
            return False
        return not self.tags or not self.tags.isdisjoint(feed_tags)


def compile_expr(rule: RuleConfig) -> Expr:
    """The rule's parts (word lists, query, regex) joined: each present part must match."""
    exact = rule.match == "exact"
    parts: list[Expr] = []
    if rule.any or rule.all or rule.none:
        parts.append(keyword_rule(rule.any, rule.all, rule.none, exact))
    if rule.query:
        parts.append(query_rule(rule.query, exact))
    if rule.regex:
        parts.append(regex_rule(rule.regex))
    if not parts:
        raise RuleError("a rule needs `any`, `all`, `query` or `regex`")
    return parts[0] if len(parts) == 1 else Bool(must=tuple(parts))


def compile_rule(rule: RuleConfig) -> CompiledRule:
    return CompiledRule(
        name=rule.name,
        expr=compile_expr(rule),
        language=rule.language,
        feeds=frozenset(rule.feeds),
        tags=frozenset(rule.tags),
    )


Groups = list[frozenset[Anchor]]  # an item must hold at least one key of every group
Alternatives = list[Groups]  # ... for at least one alternative
MAX_ALTERNATIVES = 16


def anchor_alternatives(expr: Expr, language: str) -> Alternatives | None:
    """What an item must hold for `expr` to have any chance, as alternatives of groups of
    keys. None when nothing is required (negations, regexes, substrings), and the rule is
    evaluated for every item. `a OR b` gives a's alternatives and b's, so a rule listing
    four phrases is a candidate only for items holding every word of one of them."""
    if isinstance(expr, Words):
        groups = [_word_anchors(word, expr.exact, language) for word in dict.fromkeys(expr.words)]
        return [groups]
    if isinstance(expr, Prefix):
        return [[frozenset({("p", expr.prefix)})]]
    if isinstance(expr, Substring | Pattern):
        return None
    if isinstance(expr, Near):
        return _all_of([expr.left, expr.right], language)
    if expr.must:
        return _all_of(expr.must, language)
    if not expr.should:
        return None
    alternatives: Alternatives = []
    for clause in expr.should:
        found = anchor_alternatives(clause, language)
        if found is None:
            return None
        alternatives.extend(found)
    return alternatives if len(alternatives) <= MAX_ALTERNATIVES else _collapse(alternatives)


def _all_of(clauses: Iterable[Expr], language: str) -> Alternatives | None:
    """Every clause required: each alternative of one joined with each of the next.
    Clauses that require nothing add nothing."""
    joined: Alternatives | None = None
    for clause in clauses:
        found = anchor_alternatives(clause, language)
        if found is None:
            continue
        if joined is None:
            joined = found
            continue
        if len(joined) * len(found) > MAX_ALTERNATIVES:
            joined, found = _collapse(joined), _collapse(found)
        joined = [a + b for a in joined for b in found]
    return joined


def _collapse(alternatives: Alternatives) -> Alternatives:
    """One alternative that every one of these implies: any key of each one's rarest group."""
    rarest = [sorted(groups, key=_selectivity)[0] for groups in alternatives]
    return [[frozenset().union(*rarest)]]


def _word_anchors(word: str, exact: bool, language: str) -> frozenset[Anchor]:
    if exact:
        return frozenset({("t", word)})
    return frozenset(("k", key) for key in analyzer(language).keys(word))


def _selectivity(group: frozenset[Anchor]) -> tuple[int, int]:
    """Lower is rarer: few alternatives, word keys before prefixes, longer words first."""
    return len(group), -min(len(a[1]) + (0 if a[0] == "p" else 8) for a in group)


_ANCHOR_CACHE_LIMIT = 200_000


class _Index:
    """Anchors numbered, and each alternative of each rule filed under the anchors of its
    rarest group (its trigger). An item's tokens are turned into the set of anchor numbers
    they hold (once per distinct token, cached); an alternative filed under one of those
    numbers holds if every other group of it shares a number with the item, and its rule
    is then a candidate."""

    def __init__(self, languages: Iterable[str]) -> None:
        self.languages = tuple(sorted(set(languages)))
        self.ids: dict[Anchor, int] = {}
        self.rule_of: list[int] = []  # alternative → rule
        self.triggers: dict[int, list[int]] = {}  # anchor → alternatives
        self.rest: dict[int, tuple[frozenset[int], ...]] = {}  # alternative → other groups
        self.always: list[int] = []
        self.prefix_lengths: tuple[int, ...] = ()
        self._token_anchors: dict[str, tuple[int, ...]] = {}

    def add(self, rule: int, alternatives: Alternatives | None) -> None:
        if not alternatives:
            self.always.append(rule)
            return
        for groups in alternatives:
            alternative = len(self.rule_of)
            self.rule_of.append(rule)
            numbered = [
                frozenset(self._number(a) for a in g) for g in sorted(groups, key=_selectivity)
            ]
            for anchor in numbered[0]:
                self.triggers.setdefault(anchor, []).append(alternative)
            if len(numbered) > 1:
                self.rest[alternative] = tuple(dict.fromkeys(numbered[1:]))

    def _number(self, anchor: Anchor) -> int:
        number = self.ids.get(anchor)
        if number is None:
            number = self.ids[anchor] = len(self.ids)
            if anchor[0] == "p" and len(anchor[1]) not in self.prefix_lengths:
                self.prefix_lengths = tuple(sorted({*self.prefix_lengths, len(anchor[1])}))
        return number

    def _anchors_of(self, token: str) -> tuple[int, ...]:
        ids = self.ids
        numbers = {ids.get(("t", token))}
        for language in self.languages:
            numbers.update(ids.get(("k", key)) for key in analyzer(language).keys(token))
        numbers.update(ids.get(("p", token[:n])) for n in self.prefix_lengths if n <= len(token))
        return tuple(n for n in numbers if n is not None)

    def candidates(self, tokens: set[str]) -> list[int]:
        # Set operations over cached per-token answers: the interpreter loops only over
        # tokens never seen before and over alternatives actually triggered.
        known = self._token_anchors
        unseen = tokens.difference(known)
        if unseen:
            if len(known) + len(unseen) > _ANCHOR_CACHE_LIMIT:
                known.clear()
                unseen = tokens
            for token in unseen:
                known[token] = self._anchors_of(token)
        present: set[int] = set().union(*map(known.__getitem__, tokens))
        triggered: set[int] = set().union(*filter(None, map(self.triggers.get, present)))
        rest, rule_of = self.rest, self.rule_of
        chosen = set(self.always)
        for alternative in triggered:
            others = rest.get(alternative)
            if others is not None:
                for group in others:
                    if present.isdisjoint(group):
                        break
                else:
                    chosen.add(rule_of[alternative])
            else:
                chosen.add(rule_of[alternative])
        return sorted(chosen)


@dataclass(frozen=True, slots=True)
class ItemText:
    """An item analysed once for every rule: its fields, its distinct tokens, its language."""

    fields: dict[str, FieldText]
    language: str | None
    tokens: set[str]

    @classmethod
    def of(cls, item: Item) -> ItemText:
        entry = item.entry
        fields = {
            "title": FieldText.of(entry.title),
            "summary": FieldText.of(entry.summary),
            "content": FieldText.of(entry.content),
            "author": FieldText.of(entry.author),
            "tags": FieldText.of(" · ".join(entry.tags)),
        }
        tokens = {token for text in fields.values() for token in text.tokens}
        return cls(fields, language_code(item.language) if item.language else None, tokens)


class RuleSet:
    def __init__(self, rules: Sequence[CompiledRule]) -> None:
        self.rules = tuple(rules)
        self._indexes: dict[str | None, _Index] = {}

    def __len__(self) -> int:
        return len(self.rules)

    def _language(self, rule: CompiledRule, item_language: str | None) -> str:
        """The feed's language, else the rule's, else English."""
        return item_language or language_code(rule.language)

    def _index(self, item_language: str | None) -> _Index:
        index = self._indexes.get(item_language)
        if index is None:
            languages = [self._language(rule, item_language) for rule in self.rules]
            index = _Index(languages)
            for position, (rule, language) in enumerate(zip(self.rules, languages, strict=True)):
                index.add(position, anchor_alternatives(rule.expr, language))
            self._indexes[item_language] = index
        return index

    def candidates(self, text: ItemText) -> list[int]:
        """The rules that could match this item; the rest cannot."""
        return self._index(text.language).candidates(text.tokens)

    def match(self, item: Item, feed_tags: Sequence[str] = ()) -> list[Match]:
        return self.match_text(item, ItemText.of(item), feed_tags)

    def match_text(
        self, item: Item, text: ItemText, feed_tags: Sequence[str] = (), scoped: bool = True
    ) -> list[Match]:
        """`scoped=False` ignores rules' `feeds:`/`tags:`, for text that has no feed."""
        matches = []
        scopes: dict[str, Scope] = {}
        for position in self.candidates(text):
            rule = self.rules[position]
            if scoped and not rule.applies_to(item.feed, feed_tags):
                continue
            language = self._language(rule, text.language)
            scope = scopes.get(language) or scopes.setdefault(
                language, Scope(text.fields, text.tokens, language)
            )
            found = rule.expr.evaluate(scope)
            if found is not None:
                matches.append(Match(rule.name, _explain(found, text)))
        return matches


def _explain(found: list[Found], text: ItemText) -> tuple[Hit, ...]:
    hits: dict[tuple[str, str, int], Hit] = {}
    for hit in found:
        field_text = text.fields[hit.field]
        if not field_text.tokens:  # a pattern matched punctuation alone: nothing to point at
            continue
        start, end = field_text.span(hit.first, hit.last)
        key = (hit.term, hit.field, start)
        if key not in hits:
            hits[key] = Hit(hit.term, hit.field, start, end, field_text.display[start:end])
    return tuple(sorted(hits.values(), key=lambda h: (h.field, h.start)))


def compile_rules(rules: Iterable[RuleConfig]) -> RuleSet:
    return RuleSet([compile_rule(rule) for rule in rules])
