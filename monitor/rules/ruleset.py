"""Compiled rules and the index over them. Each rule names anchors, keys an item must
contain for the rule to have any chance; an item is evaluated only against the rules
whose anchors it holds, so ten thousand rules cost a few times what ten cost, not a
thousand times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from monitor.models import Hit, Item, Match
from monitor.rules.analysis import FieldText, analyzer, language_code
from monitor.rules.expr import Bool, Expr, Found, Near, Pattern, Prefix, Substring, Words
from monitor.rules.matchers import (
    Anchor,
    Matcher,
    Probe,
    compile_matcher,
    key_anchor,
    some_of,
    word_anchors,
)
from monitor.rules.query import RuleError, keyword_rule, query_rule, regex_rule

if TYPE_CHECKING:  # config imports the rule compiler to validate rules at load time
    from monitor.config import RuleConfig

# What a rule compiles from, as plain data (strings, tuples, None): parser processes
# compile their own copy of the rule set from it, with no config classes to import.
RuleSpec = dict[str, object]
_SPEC_FIELDS = ("name", "any", "all", "none", "query", "regex", "match", "language", "feeds",
                "tags")  # fmt: skip


@dataclass(frozen=True, slots=True)
class _SpecRule:
    name: str
    any: tuple[str, ...]
    all: tuple[str, ...]
    none: tuple[str, ...]
    query: str | None
    regex: tuple[str, ...]
    match: str
    language: str | None
    feeds: tuple[str, ...]
    tags: tuple[str, ...]


def rule_specs(rules: Iterable[RuleConfig]) -> tuple[RuleSpec, ...]:
    return tuple({name: getattr(rule, name) for name in _SPEC_FIELDS} for rule in rules)


def compile_specs(specs: Iterable[RuleSpec]) -> RuleSet:
    """The rule set `rule_specs` describes, compiled again (rules already validated)."""
    return RuleSet([compile_rule(_SpecRule(**spec)) for spec in specs])  # type: ignore[arg-type]


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


def compile_expr(rule: RuleConfig | _SpecRule) -> Expr:
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


def compile_rule(rule: RuleConfig | _SpecRule) -> CompiledRule:
    return CompiledRule(
        name=rule.name,
        expr=compile_expr(rule),
        language=rule.language,
        feeds=frozenset(rule.feeds),
        tags=frozenset(rule.tags),
    )


class Group(NamedTuple):
    """Keys of which an item must hold at least one, in `field` if it is not None."""

    field: str | None
    anchors: frozenset[Anchor]


Groups = list[Group]  # an item must satisfy every group
Alternatives = list[Groups]  # ... of at least one alternative
MAX_ALTERNATIVES = 16


def anchor_alternatives(expr: Expr, language: str) -> Alternatives | None:
    """What an item must hold for `expr` to have any chance, as alternatives of groups of
    keys. None when nothing is required (negations, regexes, substrings), and the rule is
    evaluated for every item. `a OR b` gives a's alternatives and b's, so a rule listing
    four phrases is a candidate only for items holding every word of one of them."""
    if isinstance(expr, Words):
        words = dict.fromkeys(expr.words)
        anchors = [frozenset(word_anchors(word, expr.exact, language)) for word in words]
        return [[Group(expr.field, group) for group in anchors]]
    if isinstance(expr, Prefix):
        return [[Group(expr.field, frozenset({("p", expr.prefix)}))]]
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
    fields = {group.field for group in rarest}
    field = fields.pop() if len(fields) == 1 else None
    return [[Group(field, frozenset().union(*(group.anchors for group in rarest)))]]


def _selectivity(group: Group) -> tuple[int, int]:
    """Lower is rarer: few alternatives, word keys before prefixes, longer words first."""
    anchors = group.anchors
    return len(anchors), -min(len(a[1]) + (0 if a[0] == "p" else 8) for a in anchors)


_ANCHOR_CACHE_LIMIT = 200_000


class _Index:
    """Anchors numbered, and each alternative of each rule filed under the anchors of its
    rarest group, which *trigger* it. A rule is a candidate for an item when every group
    of one of its alternatives is satisfied by the item. Candidates are then evaluated by
    their matchers against the anchors the item holds.

    With many rules the candidate step waits on memory more than on the interpreter, so
    each distinct token's answer is worked out once and cached as one tuple: the anchors
    it holds and, below zero, codes (see `_code`) for what those anchors trigger. An item
    then costs one lookup per token and one union in C. A code names the rule, or the
    alternative when more must be checked (a group in a field, or a third one), and
    carries one more anchor the item must hold: most triggered alternatives lack it, and
    are dismissed by one lookup in the union without reading anything of the rule from
    memory. For a rule that is a choice of clauses, a code also names its clause, so
    that only clauses whose words the item holds are evaluated."""

    def __init__(self, languages: Iterable[str]) -> None:
        self.languages = tuple(sorted(set(languages)))
        self.ids: dict[Anchor, int] = {}
        self.codes: dict[int, list[int]] = {}  # anchor → codes filed under it
        self.rule_of: list[int] = []  # alternative → rule
        self.checks: list[tuple[_Check, ...]] = []  # alternative → groups codes leave open
        self.always: list[int] = []
        # rule → name, matcher, its clauses' matchers if it is a choice of clauses, and
        # whether it is limited to some feeds or tags
        self.plans: list[tuple[str, Matcher, tuple[Matcher, ...] | None, bool]] = []
        self.prefix_lengths: tuple[int, ...] = ()
        self.seen: dict[str, tuple[int, ...]] = {}  # token → anchors and codes, as above
        self._holders: dict[int, list[str]] = {}  # anchor → the tokens in `seen` holding it

    def add(self, rule: CompiledRule, language: str) -> None:
        position = len(self.plans)
        matcher, clauses = compile_matcher(rule.expr, language, self)
        self.plans.append((rule.name, matcher, clauses, bool(rule.feeds or rule.tags)))
        alternatives = None
        if clauses is not None and isinstance(rule.expr, Bool):
            alternatives = _by_clause(rule.expr, language)
        if alternatives is None:
            whole = anchor_alternatives(rule.expr, language) or []
            alternatives = [(groups, None) for groups in whole]
        if not alternatives:
            self.always.append(position)
            return
        for groups, part in alternatives:
            ordered = list(dict.fromkeys(sorted(groups, key=_selectivity)))
            numbered = [frozenset(map(self.number, group.anchors)) for group in ordered]
            # The trigger settles its own group unless that is in a field (codes do not
            # know fields); a code can carry one more group if it is of a single anchor.
            unsettled = [n for n in range(len(ordered)) if n or ordered[n].field is not None]
            carried = next(
                (n for n in unsettled if ordered[n].field is None and len(numbered[n]) == 1),
                None,
            )
            needs = None if carried is None else next(iter(numbered[carried]))
            rest = [n for n in unsettled if n != carried]
            if rest:
                kind, number = _ALTERNATIVE, len(self.rule_of)
                self.rule_of.append(position)
                self.checks.append(tuple(self._check(ordered[n], numbered[n]) for n in rest))
            else:
                kind, number = _RULE, position
            for anchor in numbered[0]:
                # With no further anchor to carry, a code carries the one it is filed
                # under, which the item holds: every code is then looked at alike.
                code = _code(kind, number, part, anchor if needs is None else needs)
                self.codes.setdefault(anchor, []).append(code)

    def _check(self, group: Group, anchors: frozenset[int]) -> _Check:
        if group.field is None or not _words_only(group):
            return _Check(group.field, anchors, None)
        # A word in a field: whether one of the few tokens seen with it is in the field.
        return _Check(group.field, anchors, tuple(map(self.holders, anchors)))

    def holders(self, number: int) -> list[str]:
        # Kept only for the anchors that matchers and checks ask about.
        return self._holders.setdefault(number, [])

    def number(self, anchor: Anchor) -> int:
        number = self.ids.get(anchor)
        if number is None:
            number = self.ids[anchor] = len(self.ids)
            if anchor[0] == "p" and len(anchor[1]) not in self.prefix_lengths:
                self.prefix_lengths = tuple(sorted({*self.prefix_lengths, len(anchor[1])}))
        return number

    def _see(self, token: str) -> None:
        ids = self.ids
        numbers = {ids.get(("t", token))}
        for language in self.languages:
            keys = analyzer(language).keys(token)
            numbers.update(ids.get(key_anchor(key, language)) for key in keys)
        numbers.update(ids.get(("p", token[:n])) for n in self.prefix_lengths if n <= len(token))
        anchors = tuple(n for n in numbers if n is not None)
        for anchor in anchors:
            holders = self._holders.get(anchor)
            if holders is not None:
                holders.append(token)
        codes = set().union(*filter(None, map(self.codes.get, anchors)))
        self.seen[token] = anchors + tuple(codes)

    def lookup(self, text: ItemText) -> tuple[set[int], list[tuple[int, int]]]:
        """The anchor numbers the item's tokens hold (with codes, below zero), and the
        rules they make candidates, each with the bits of the clauses that can match (or
        _WHOLE). After this, `holders` knows every one of the tokens, as matchers need."""
        tokens = text.tokens
        seen = self.seen
        unseen = tokens.difference(seen)
        if unseen:
            if len(seen) + len(unseen) > _ANCHOR_CACHE_LIMIT:
                seen.clear()
                for holders in self._holders.values():  # matchers hold these very lists
                    holders.clear()
                unseen = tokens
            for token in unseen:
                self._see(token)
        present: set[int] = set().union(*map(seen.__getitem__, tokens))
        checks, rule_of = self.checks, self.rule_of
        chosen = dict.fromkeys(self.always, _WHOLE)
        for code in present:
            if code < 0:  # taken apart as _code put it together, inline for speed
                bits = ~code
                if bits >> _CARRIED_SHIFT not in present:
                    continue
                number = bits >> 1 & _NUMBER_MASK
                if bits & 1 == _ALTERNATIVE:
                    if not self._hold(checks[number], present, text):
                        continue
                    number = rule_of[number]
                chosen[number] = chosen.get(number, 0) | bits >> _PARTS_SHIFT & _PARTS_MASK
        return present, sorted(chosen.items())

    def _hold(self, checks: tuple[_Check, ...], present: set[int], text: ItemText) -> bool:
        for field, anchors, holders in checks:
            if field is None:
                if present.isdisjoint(anchors):
                    return False
            elif holders is not None:  # a word: one of the few tokens holding it is there
                tokens = text.fields[field].token_set()
                for seen in holders:
                    if not tokens.isdisjoint(seen):
                        break
                else:
                    return False
            else:
                held: set[int] = set().union(*map(self.seen.__getitem__, text.fields[field].tokens))
                if held.isdisjoint(anchors):
                    return False
        return True


class _Check(NamedTuple):
    """A group an alternative's codes leave open: which anchors, and in which field if
    any; for words in a field, the lists of tokens seen holding them."""

    field: str | None
    anchors: frozenset[int]
    holders: tuple[list[str], ...] | None


_RULE, _ALTERNATIVE = 0, 1  # what a code names
_NUMBER_BITS = 24
_NUMBER_MASK = (1 << _NUMBER_BITS) - 1
_PARTS_SHIFT = _NUMBER_BITS + 1
_WHOLE = 1 << MAX_ALTERNATIVES  # a rule's bit for "all its clauses", see RuleSet.match_text
_PARTS_MASK = (_WHOLE << 1) - 1
_CARRIED_SHIFT = _PARTS_SHIFT + MAX_ALTERNATIVES + 1


def _code(kind: int, number: int, clause: int | None, carried: int) -> int:
    """A rule or an alternative, the bit of the clause it is an alternative of (_WHOLE if
    of the whole rule), and an anchor the item must hold, as one negative number: the
    bitwise complement of all four side by side, so that codes never meet anchor numbers
    in one set."""
    if number > _NUMBER_MASK:
        raise RuleError(f"more than {_NUMBER_MASK + 1:,} rule alternatives in one rule set")
    part = _WHOLE if clause is None else 1 << clause
    return ~(kind | number << 1 | part << _PARTS_SHIFT | carried << _CARRIED_SHIFT)


def _by_clause(expr: Bool, language: str) -> list[tuple[Groups, int | None]] | None:
    """A choice of clauses' alternatives, each with its clause: those of the whole, when
    they are not too many to keep apart."""
    found = [anchor_alternatives(clause, language) for clause in expr.should]
    if any(alternatives is None for alternatives in found):
        return None
    tagged: list[tuple[Groups, int | None]] = [
        (groups, n) for n, alternatives in enumerate(found) for groups in alternatives or ()
    ]
    return tagged if len(tagged) <= MAX_ALTERNATIVES else None


def _words_only(group: Group) -> bool:
    return all(kind != "p" for kind, _ in group.anchors)


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
            for rule, language in zip(self.rules, languages, strict=True):
                index.add(rule, language)
            self._indexes[item_language] = index
        return index

    def candidates(self, text: ItemText) -> list[int]:
        """The rules that could match this item; the rest cannot."""
        return [rule for rule, _ in self._index(text.language).lookup(text)[1]]

    def match(self, item: Item, feed_tags: Sequence[str] = ()) -> list[Match]:
        return self.match_text(item, ItemText.of(item), feed_tags)

    def match_text(
        self, item: Item, text: ItemText, feed_tags: Sequence[str] = (), scoped: bool = True
    ) -> list[Match]:
        """`scoped=False` ignores rules' `feeds:`/`tags:`, for text that has no feed."""
        index = self._index(text.language)
        present, candidates = index.lookup(text)
        probe = Probe(text.fields, text.tokens, present)
        plans = index.plans
        matches = []
        for position, parts in candidates:
            name, matcher, clauses, limited = plans[position]
            if limited and scoped and not self.rules[position].applies_to(item.feed, feed_tags):
                continue
            if clauses is None or parts & _WHOLE:
                found = matcher(probe)
            elif parts & (parts - 1):
                found = some_of(clauses, parts, probe)
            else:  # one clause's words are in the item, as is usual: that clause alone
                found = clauses[parts.bit_length() - 1](probe)
            if found is not None:
                matches.append(_match(name, _explain(found, text.fields)))
        return matches


_Record = TypeVar("_Record")


def _maker(cls: type[_Record], names: list[str]) -> Callable[..., _Record]:
    """`cls`, or a maker of the same objects that skips the frozen dataclass's __init__
    (its object.__setattr__ per field costs as much as the rest of explaining a match),
    as long as `cls` is the plain record of these fields it is now."""
    if [f.name for f in dataclass_fields(cast(Any, cls))] != names or hasattr(cls, "__post_init__"):
        return cls
    new = object.__new__
    set_each = [getattr(cls, name).__set__ for name in names]  # the slots' own setters
    if len(set_each) == 2:
        first, second = set_each

        def make_two(a: object, b: object) -> _Record:
            record = new(cls)
            first(record, a)
            second(record, b)
            return record

        return make_two
    one, two, three, four, five = set_each

    def make_five(a: object, b: object, c: object, d: object, e: object) -> _Record:
        record = new(cls)
        one(record, a)
        two(record, b)
        three(record, c)
        four(record, d)
        five(record, e)
        return record

    return make_five


_hit = _maker(Hit, ["term", "field", "start", "end", "text"])
_match = _maker(Match, ["rule", "hits"])


def _explain(found: list[Found], fields: dict[str, FieldText]) -> tuple[Hit, ...]:
    if len(found) == 1:  # as most matches are: nothing to merge or sort
        term, name, first, last = found[0]
        field_text = fields[name]
        if not field_text.tokens:
            return ()
        start, end = field_text.span(first, last)
        return (_hit(term, name, start, end, field_text.display[start:end]),)
    hits: dict[tuple[str, str, int], Hit] = {}
    for term, name, first, last in found:
        field_text = fields[name]
        if not field_text.tokens:  # a pattern matched punctuation alone: nothing to point at
            continue
        start, end = field_text.span(first, last)
        key = (term, name, start)
        if key not in hits:
            hits[key] = _hit(term, name, start, end, field_text.display[start:end])
    return tuple(sorted(hits.values(), key=lambda h: (h.field, h.start)))


def compile_rules(rules: Iterable[RuleConfig]) -> RuleSet:
    return RuleSet([compile_rule(rule) for rule in rules])
