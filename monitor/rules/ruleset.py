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


MAX_GROUPS = 4
Groups = list[frozenset[Anchor]]


def anchor_groups(expr: Expr, language: str) -> Groups | None:
    """Groups of keys an item must hold for `expr` to have any chance: at least one key of
    every group. None when no such groups exist (negations, regexes, substrings), and the
    rule is evaluated for every item."""
    if isinstance(expr, Words):
        return [_word_anchors(word, expr.exact, language) for word in dict.fromkeys(expr.words)]
    if isinstance(expr, Prefix):
        return [frozenset({("p", expr.prefix)})]
    if isinstance(expr, Substring | Pattern):
        return None
    if isinstance(expr, Near):
        parts = [
            g
            for g in (anchor_groups(expr.left, language), anchor_groups(expr.right, language))
            if g
        ]
        return [group for part in parts for group in part] or None
    if expr.must:
        parts = [g for g in (anchor_groups(c, language) for c in expr.must) if g]
        return [group for part in parts for group in part] or None
    if not expr.should:
        return None
    # Any one clause may match, so only a union is required: one group from each clause.
    union: set[Anchor] = set()
    for clause in expr.should:
        groups = anchor_groups(clause, language)
        if not groups:
            return None
        union |= sorted(groups, key=_selectivity)[0]
    return [frozenset(union)]


def _word_anchors(word: str, exact: bool, language: str) -> frozenset[Anchor]:
    if exact:
        return frozenset({("t", word)})
    return frozenset(("k", key) for key in analyzer(language).keys(word))


def _selectivity(group: frozenset[Anchor]) -> tuple[int, int]:
    """Lower is rarer: few alternatives, word keys before prefixes, longer words first."""
    return len(group), -min(len(a[1]) + (0 if a[0] == "p" else 8) for a in group)


def _best(groups: Groups) -> Groups:
    return sorted(groups, key=_selectivity)[:MAX_GROUPS]


@dataclass
class _Postings:
    single: list[int] = field(default_factory=list)  # rules with one group: candidates now
    multi: list[tuple[int, int]] = field(default_factory=list)  # (rule, group bit)


@dataclass
class _Index:
    """Postings from anchor to rules, one dict per anchor kind (token, key, prefix). A rule
    with one group is a candidate as soon as one of its anchors is present; a rule with
    several groups needs an anchor from each, tracked as a bitmask."""

    postings: dict[str, dict[str, _Postings]] = field(
        default_factory=lambda: {"t": {}, "k": {}, "p": {}}
    )
    full: dict[int, int] = field(default_factory=dict)  # rule → bitmask of all its groups
    always: list[int] = field(default_factory=list)
    prefix_lengths: set[int] = field(default_factory=set)

    def add(self, rule: int, groups: Groups) -> None:
        self.full[rule] = (1 << len(groups)) - 1
        for bit, group in enumerate(groups):
            for kind, value in group:
                postings = self.postings[kind].setdefault(value, _Postings())
                if len(groups) == 1:
                    postings.single.append(rule)
                else:
                    postings.multi.append((rule, bit))
                if kind == "p":
                    self.prefix_lengths.add(len(value))


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
                groups = anchor_groups(rule.expr, self._language(rule, item_language))
                if groups:
                    index.add(position, _best(groups))
                else:
                    index.always.append(position)
            self._indexes[item_language] = index
        return index

    def candidates(self, text: ItemText) -> list[int]:
        index = self._index(text.language)
        tokens: set[str] = set()
        for field_text in text.fields.values():
            tokens.update(field_text.token_positions())
        keys: set[str] = set()
        languages = (
            {text.language} if text.language else {language_code(r.language) for r in self.rules}
        )
        for language in languages:
            keys_of = analyzer(language).keys
            for token in tokens:
                keys.update(keys_of(token))
        prefixes = {t[:n] for t in tokens for n in index.prefix_lengths if n <= len(t)}
        chosen = set(index.always)
        satisfied: dict[int, int] = {}
        for kind, present in (("t", tokens), ("k", keys), ("p", prefixes)):
            by_value = index.postings[kind]
            for value in present:
                postings = by_value.get(value)
                if postings is None:
                    continue
                chosen.update(postings.single)
                for rule, bit in postings.multi:
                    satisfied[rule] = satisfied.get(rule, 0) | (1 << bit)
        chosen.update(rule for rule, mask in satisfied.items() if mask == index.full[rule])
        return sorted(chosen)

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
                language, Scope(text.fields, language)
            )
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
