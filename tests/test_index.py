"""The rule index never changes an answer: matching through it gives exactly what
evaluating every rule against the item gives, for rules of every shape."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.config import RuleConfig
from monitor.models import Entry, Item, Match
from monitor.rules import compile_rules
from monitor.rules.analysis import FieldText
from monitor.rules.expr import Scope
from monitor.rules.ruleset import ItemText, RuleSet, anchor_alternatives

# Few words, with inflections and shared prefixes, so rules and items often meet.
WORDS = ["troop", "troops", "trooper", "drone", "drones", "kursk", "korea", "korean", "army"]
word = st.sampled_from(WORDS)
phrase = st.lists(word, min_size=1, max_size=3).map(" ".join)


def _term() -> st.SearchStrategy[str]:
    return st.one_of(
        word,
        phrase.map(lambda p: f'"{p}"'),
        st.tuples(phrase, st.integers(0, 3)).map(lambda t: f'"{t[0]}"~{t[1]}'),
        word.map(lambda w: f"{w[:4]}*"),
        word.map(lambda w: f"title:{w}"),
    )


def _query(depth: int = 2) -> st.SearchStrategy[str]:
    if depth == 0:
        return _term()
    inner = _query(depth - 1)
    return st.one_of(
        _term(),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} AND {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} OR {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"({t[0]} AND NOT {t[1]})"),
        st.tuples(inner, inner, st.integers(0, 4)).map(lambda t: f"({t[0]} NEAR/{t[2]} {t[1]})"),
    )


rule_config = st.one_of(
    st.builds(
        lambda any_, all_, none, exact: RuleConfig(
            name="r", any=tuple(any_), all=tuple(all_), none=tuple(none), match=exact
        ),
        st.lists(phrase, min_size=1, max_size=4),
        st.lists(phrase, max_size=2),
        st.lists(word, max_size=1),
        st.sampled_from(["stem", "exact"]),
    ),
    _query().map(lambda q: RuleConfig(name="r", query=q)),
)
text = st.lists(st.sampled_from([*WORDS, "the", "in", "near", "said"]), max_size=14).map(" ".join)


def _item(title: str, summary: str) -> Item:
    entry = Entry("g", "https://example.com/a", title, summary, "", "", (), None)
    return Item("feed", "g:g", entry, "en", "h")


def _every_rule(ruleset: RuleSet, item: Item) -> list[str]:
    """The answer without the index: every rule evaluated."""
    text = ItemText.of(item)
    scope = Scope(text.fields, text.tokens, "en")
    return [rule.name for rule in ruleset.rules if rule.expr.evaluate(scope) is not None]


def _named(configs: list[RuleConfig]) -> list[RuleConfig]:
    return [config.model_copy(update={"name": f"r{n}"}) for n, config in enumerate(configs)]


@settings(max_examples=400, deadline=None)
@given(st.lists(rule_config, min_size=1, max_size=8).map(_named), text, text)
def test_index_gives_the_answer_of_evaluating_every_rule(
    configs: list[RuleConfig], title: str, summary: str
) -> None:
    ruleset = compile_rules(configs)
    item = _item(title, summary)
    matches: list[Match] = ruleset.match(item)
    assert [m.rule for m in matches] == _every_rule(ruleset, item)


def test_or_of_phrases_needs_every_word_of_one_phrase() -> None:
    """Each phrase of an `any` list is its own alternative: one word of a two-word phrase
    does not make the rule a candidate."""
    ruleset = compile_rules([RuleConfig(name="r", any=("north korean", "kursk"))])
    assert ruleset.candidates(ItemText.of(_item("north wind", ""))) == []
    assert ruleset.candidates(ItemText.of(_item("north korean army", ""))) == [0]
    assert ruleset.candidates(ItemText.of(_item("near kursk", ""))) == [0]


def test_negation_alone_is_evaluated_for_every_item() -> None:
    rule = compile_rules([RuleConfig(name="r", query="NOT drones")]).rules[0]
    assert anchor_alternatives(rule.expr, "en") is None


def test_many_alternatives_collapse_to_one_safe_group() -> None:
    """A product of ORs past the limit is replaced by a looser requirement, never a
    stricter one."""
    words = [f"w{n}" for n in range(6)]
    query = " AND ".join(f"({a} OR {b})" for a, b in zip(words[::2], words[1::2], strict=True))
    query = f"({query}) AND (x1 OR x2 OR x3 OR x4 OR x5 OR x6 OR x7)"
    ruleset = compile_rules([RuleConfig(name="r", query=query)])
    item = _item("w1 w2 w5 x7", "")
    assert [m.rule for m in ruleset.match(item)] == ["r"]


# Words that sit inside one another ("troop" in "troops", "kur" in "kursk"), so that a
# token found by a substring search is often not the token.
FIELD_WORDS = ["troop", "troops", "stroop", "kur", "kursk", "ka", "kaka", "Kursk", "ÉTÉ", "été"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(FIELD_WORDS), max_size=12),
    st.lists(st.sampled_from([" ", ", ", "-", "_", " «", "» ", "'"]), min_size=12, max_size=12),
    st.lists(st.sampled_from(["troop", "troops", "kur", "kursk", "ka", "kaka", "ete", "x"])),
)
def test_a_fields_positions_and_spans_are_those_of_the_tokeniser(
    words: list[str], separators: list[str], asked: list[str]
) -> None:
    """Positions found one token at a time, and spans found one token at a time (the
    shortcuts the matchers and explanations take), agree with tokenising the whole field
    and indexing every token."""
    display = "".join(w + s for w, s in zip(words, separators, strict=False))
    field = FieldText.of(display)
    whole = FieldText.of(display)
    everywhere = whole.token_positions()
    spans = whole.spans()
    for token in asked:
        positions = field.positions_of(token)
        assert positions == everywhere.get(token, [])
        for position in positions:
            assert field.span(position, position) == spans[position]
