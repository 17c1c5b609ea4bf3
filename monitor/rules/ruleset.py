"""Keyword rules (`any`, `all`, `none`) over the folded token form of each field.

A term matches a field when its tokens occur there in sequence, so case, accents,
hyphens, quotes and punctuation never matter. Each item is folded once for all rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.config import RuleConfig
from monitor.models import Hit, Item, Match
from monitor.text import token_string, tokens

FIELDS = ("title", "summary", "content")


@dataclass(frozen=True, slots=True)
class Term:
    label: str  # the folded words, as shown in alerts' `matched`
    needle: str  # " word word " for a substring test on a padded token string


def _term(text: str) -> Term:
    words = tokens(text)
    return Term(" ".join(words), " " + " ".join(words) + " ")


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    any: tuple[Term, ...]
    all: tuple[Term, ...]
    none: tuple[Term, ...]
    feeds: frozenset[str]
    tags: frozenset[str]

    def applies_to(self, feed: str, feed_tags: Iterable[str]) -> bool:
        if self.feeds and feed not in self.feeds:
            return False
        return not self.tags or not self.tags.isdisjoint(feed_tags)

    def evaluate(self, fields: dict[str, str]) -> Match | None:
        if any(_hits(term, fields) for term in self.none):
            return None
        hits: list[Hit] = []
        for term in self.all:
            found = _hits(term, fields)
            if not found:
                return None
            hits.extend(found)
        if self.any:
            found = [hit for term in self.any for hit in _hits(term, fields)]
            if not found:
                return None
            hits.extend(found)
        return Match(self.name, tuple(hits))


def _hits(term: Term, fields: dict[str, str]) -> list[Hit]:
    return [Hit(term.label, name) for name, text in fields.items() if term.needle in text]


def compile_rule(rule: RuleConfig) -> CompiledRule:
    return CompiledRule(
        name=rule.name,
        any=tuple(_term(t) for t in rule.any),
        all=tuple(_term(t) for t in rule.all),
        none=tuple(_term(t) for t in rule.none),
        feeds=frozenset(rule.feeds),
        tags=frozenset(rule.tags),
    )


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[CompiledRule, ...]

    def match(self, item: Item, feed_tags: Sequence[str] = ()) -> list[Match]:
        applicable = [r for r in self.rules if r.applies_to(item.feed, feed_tags)]
        if not applicable:
            return []
        entry = item.entry
        fields = {
            "title": token_string(entry.title),
            "summary": token_string(entry.summary),
            "content": token_string(entry.content),
        }
        return [m for r in applicable if (m := r.evaluate(fields)) is not None]


def compile_rules(rules: Iterable[RuleConfig]) -> RuleSet:
    return RuleSet(tuple(compile_rule(rule) for rule in rules))
