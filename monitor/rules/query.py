"""Rules as written → expressions: `any`/`all`/`none` word lists, Lucene query strings
(parsed by luqum) and regex patterns. Rejects what it cannot honour with a sentence
that says what and where.
"""

from __future__ import annotations

import re
from typing import Any

import regex
from luqum import tree
from luqum.exceptions import ParseError as LuqumParseError
from luqum.parser import parser as lucene

from monitor.rules.analysis import is_spaceless
from monitor.rules.expr import (
    ALL_FIELDS,
    EXPR_TYPES,
    Bool,
    Expr,
    Near,
    Pattern,
    Prefix,
    Substring,
    Words,
)
from monitor.text import fold, tokens

_NEAR = re.compile(r"^NEAR/(\d+)$")


class RuleError(ValueError):
    """A rule that cannot be compiled; the message names the problem and where."""


def term(text: str, exact: bool, field: str | None = None, slop: int = 0) -> Expr:
    """A word or phrase as users write it in lists and queries."""
    words = tuple(tokens(text))
    if not words:
        raise RuleError(f"{text!r} has no letters or digits to match")
    if any(is_spaceless(word) for word in words):
        return Substring(words, field)
    return Words(words, exact, field, slop)


def keyword_rule(
    any_of: tuple[str, ...], all_of: tuple[str, ...], none_of: tuple[str, ...], exact: bool
) -> Expr:
    must = tuple(term(t, exact) for t in all_of)
    should = tuple(term(t, exact) for t in any_of)
    if should and must:
        must = (*must, Bool(should=should))
        should = ()
    return Bool(must=must, should=should, must_not=tuple(term(t, exact) for t in none_of))


def regex_rule(patterns: tuple[str, ...]) -> Expr:
    return Bool(should=tuple(Pattern(source, _compile(source)) for source in patterns))


def _compile(source: str) -> Any:
    try:
        return regex.compile(source, regex.IGNORECASE | regex.V1)
    except regex.error as error:
        raise RuleError(f"regex {source!r} does not compile: {error}") from None


# Typographic and national quotation marks work as phrase quotes, as users type them.
_QUOTES = str.maketrans({c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb"})


def query_rule(text: str, exact: bool) -> Expr:
    try:
        parsed = lucene.parse(text.translate(_QUOTES))
    except (LuqumParseError, ValueError, TypeError) as error:
        raise RuleError(f"query does not parse: {_plain(str(error))}") from None
    return _Translator(exact).convert(parsed, None)


def _plain(message: str) -> str:
    return message.replace("Syntax error in input : ", "").rstrip("!").strip()


class _Translator:
    def __init__(self, exact: bool) -> None:
        self.exact = exact

    def convert(self, node: Any, field: str | None) -> Expr:
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is None:
            raise RuleError(f"{type(node).__name__.lower()} queries ({node}) are not supported")
        result: Expr = handler(node, field)
        return result

    def _Word(self, node: tree.Word, field: str | None) -> Expr:
        text = node.value.replace("\\", "")
        if _NEAR.match(text):
            raise RuleError("NEAR/n needs a term on each side")
        if node.has_wildcard():
            stem = text.rstrip("*")
            if "*" in stem or "?" in stem or not stem:
                raise RuleError(f"only a trailing * wildcard is supported ({text!r})")
            prefix = fold(stem)
            if len(tokens(prefix)) != 1:
                raise RuleError(f"a wildcard applies to a single word ({text!r})")
            return Prefix(tokens(prefix)[0], field)
        return term(text, self.exact, field)

    def _Phrase(self, node: tree.Phrase, field: str | None) -> Expr:
        return term(node.value.strip('"'), True, field)

    def _Proximity(self, node: tree.Proximity, field: str | None) -> Expr:
        inner = node.term
        words = inner.value.strip('"') if isinstance(inner, tree.Phrase) else inner.value
        return term(words, True, field, slop=int(node.degree or 1))

    def _SearchField(self, node: tree.SearchField, field: str | None) -> Expr:
        name = node.name.lower()
        if name not in ALL_FIELDS:
            raise RuleError(f"unknown field {node.name!r}; use one of {', '.join(ALL_FIELDS)}")
        return self.convert(node.expr, name)

    def _Group(self, node: tree.Group, field: str | None) -> Expr:
        return self.convert(node.expr, field)

    _FieldGroup = _Group

    def _Regex(self, node: tree.Regex, field: str | None) -> Expr:
        # Lucene applies /regex/ to whole words, unlike a rule's `regex:` list.
        source = node.value.strip("/")
        return Pattern(source, _compile(source), field, whole_words=True)

    def _Boost(self, node: tree.Boost, field: str | None) -> Expr:
        return self.convert(node.expr, field)  # boosts rank results; alerts have no ranking

    def _AndOperation(self, node: tree.AndOperation, field: str | None) -> Expr:
        return self._clauses(node.children, field, default="must")

    def _OrOperation(self, node: tree.OrOperation, field: str | None) -> Expr:
        return self._clauses(node.children, field, default="should")

    def _UnknownOperation(self, node: tree.UnknownOperation, field: str | None) -> Expr:
        children = self._fold_near(list(node.children), field)
        return self._clauses(children, field, default="should")

    def _Not(self, node: tree.Not, field: str | None) -> Expr:
        return Bool(must_not=(self.convert(node.a, field),))

    _Prohibit = _Not

    def _Plus(self, node: tree.Plus, field: str | None) -> Expr:
        return Bool(must=(self.convert(node.a, field),))

    def _Fuzzy(self, node: tree.Fuzzy, field: str | None) -> Expr:
        raise RuleError(
            f"fuzzy matching ({node}) is not supported; stemming already matches inflected forms"
        )

    def _clauses(self, children: list[Any], field: str | None, default: str) -> Expr:
        must: list[Expr] = []
        should: list[Expr] = []
        must_not: list[Expr] = []
        for child in children:
            if isinstance(child, EXPR_TYPES):
                (must if default == "must" else should).append(child)
            elif isinstance(child, tree.Not | tree.Prohibit):
                must_not.append(self.convert(child.a, field))
            elif isinstance(child, tree.Plus):
                must.append(self.convert(child.a, field))
            else:
                (must if default == "must" else should).append(self.convert(child, field))
        if must_not and not must and not should:
            # "a AND NOT b" parses as AND(a, NOT b); a lone negation means "and not".
            return Bool(must_not=tuple(must_not))
        return Bool(tuple(must), tuple(should), tuple(must_not))

    def _fold_near(self, children: list[Any], field: str | None) -> list[Any]:
        """`a NEAR/3 b` arrives as three implicit-OR children; join them into one Near."""
        result: list[Any] = []
        index = 0
        while index < len(children):
            child = children[index]
            near = _NEAR.match(child.value) if isinstance(child, tree.Word) else None
            if near:
                if not result or index + 1 >= len(children):
                    raise RuleError("NEAR/n needs a term on each side")
                left = result.pop()
                left_expr = left if isinstance(left, EXPR_TYPES) else self.convert(left, field)
                right = self.convert(children[index + 1], field)
                result.append(Near(left_expr, right, int(near.group(1))))
                index += 2
                continue
            result.append(child)
            index += 1
        return result
