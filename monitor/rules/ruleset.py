"""Compiled rules and the index over them. Each rule names anchors, keys an item must
contain for the rule to have any chance; an item is evaluated only against the rules
whose anchors it holds, so ten thousand rules cost little more than ten.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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


def anchors(expr: Expr, language: str) -> frozenset[Anchor] | None:
    """Keys of which an item must hold at least one for `expr` to match; None when no
    such set exists (negations, regexes, substrings) and the rule is always evaluated."""
    if isinstance(expr, Words):
        word = max(expr.words, key=len)  # the longest word is usually the rarest
        if expr.exact:
            return frozenset({("t", word)})
        return frozenset(("k", key) for key in analyzer(language).keys(word))
    if isinstance(expr, Prefix):
        return frozenset({("p", expr.prefix)})
    if isinstance(expr, Substring | Pattern):
        return None
    if isinstance(expr, Near):
        options = [a for a in (anchors(expr.left, language), anchors(expr.right, language)) if a]
        return min(options, key=len) if options else None
    if expr.must:
        options = [a for a in (anchors(c, language) for c in expr.must) if a is not None]
        return min(options, key=len) if options else None
    if not expr.should:
        return None
    union: set[Anchor] = set()
    for clause in expr.should:
        found = anchors(clause, language)
        if found is None:
            return None
        union |= found
    return frozenset(union)


@dataclass
class _Index:
    by_anchor: dict[Anchor, list[int]] = field(default_factory=dict)
    always: list[int] = field(default_factory=list)
    has_prefixes: bool = False


@dataclass(frozen=True, slots=True)
class ItemText:
    """An item analysed once for every rule: its fields and its language."""

    fields: dict[str, FieldText]
    language: str | None

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
        return cls(fields, language_code(item.language) if item.language else None)


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
            index = _Index()
            for position, rule in enumerate(self.rules):
                found = anchors(rule.expr, self._language(rule, item_language))
                if found is None:
                    index.always.append(position)
                    continue
                for anchor in found:
                    index.by_anchor.setdefault(anchor, []).append(position)
                    index.has_prefixes |= anchor[0] == "p"
            self._indexes[item_language] = index
        return index

    def candidates(self, text: ItemText) -> list[int]:
        index = self._index(text.language)
        chosen = set(index.always)
        languages = (
            {text.language} if text.language else {language_code(r.language) for r in self.rules}
        )
        for field_text in text.fields.values():
            for token in field_text.token_positions():
                chosen.update(index.by_anchor.get(("t", token), ()))
                if index.has_prefixes:
                    for end in range(1, len(token) + 1):
                        chosen.update(index.by_anchor.get(("p", token[:end]), ()))
            for language in languages:
                for key in field_text.key_positions(language):
                    chosen.update(index.by_anchor.get(("k", key), ()))
        return sorted(chosen)

    def match(self, item: Item, feed_tags: Sequence[str] = ()) -> list[Match]:
        return self.match_text(item, ItemText.of(item), feed_tags)

    def match_text(
        self, item: Item, text: ItemText, feed_tags: Sequence[str] = (), scoped: bool = True
    ) -> list[Match]:
        """`scoped=False` ignores rules' `feeds:`/`tags:`, for text that has no feed."""
        matches = []
        for position in self.candidates(text):
            rule = self.rules[position]
            if scoped and not rule.applies_to(item.feed, feed_tags):
                continue
            scope = Scope(text.fields, self._language(rule, text.language), [])
            found = rule.expr.evaluate(scope)
            if found is not None:
                matches.append(Match(rule.name, _explain(found, text)))
        return matches


def _explain(found: list[Found], text: ItemText) -> tuple[Hit, ...]:
    hits: dict[tuple[str, str, int], Hit] = {}
    for hit in found:
        field_text = text.fields[hit.field]
        if not field_text.tokens:
            continue
        start, end = field_text.span(hit.first, hit.last)
        hits.setdefault(
            (hit.term, hit.field, start),
            Hit(hit.term, hit.field, start, end, field_text.display[start:end]),
        )
    return tuple(sorted(hits.values(), key=lambda h: (h.field, h.start)))


def compile_rules(rules: Iterable[RuleConfig]) -> RuleSet:
    return RuleSet([compile_rule(rule) for rule in rules])
