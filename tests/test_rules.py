"""monitor/rules: any/all/none keyword rules over title, summary and content."""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from monitor.config import RuleConfig
from monitor.models import Entry, Hit, Item, Match
from monitor.rules import compile_rules
from monitor.rules.ruleset import _hit, _match
from monitor.text import html_to_text, tokens


def make_item(title: str = "", summary: str = "", content: str = "", feed: str = "feed") -> Item:
    entry = Entry(
        guid="g",
        link="https://example.com/a",
        title=title,
        summary=summary,
        content=content,
        author="",
        tags=(),
        published_at=None,
    )
    return Item(feed=feed, key="g:g", entry=entry, language="en", content_hash="h")


@dataclass(frozen=True)
class Row:
    id: str
    rule: dict[str, Any]
    title: str = ""
    summary: str = ""
    content: str = ""
    # None: no match. Otherwise the alert's `matched` list and the (term, field) hits.
    matched: list[str] | None = None
    hits: set[tuple[str, str]] = field(default_factory=set)
    xfail: str | None = None  # a suspected bug: the reason


ROWS = [
    # --- any -------------------------------------------------------------------------------------
    Row(
        "any-one-word-title",
        {"any": ["troops"]},
        title="Troops massing",
        matched=["troops"],
        hits={("troops", "title")},
    ),
    Row(
        "any-second-term",
        {"any": ["drones", "missiles"]},
        summary="missiles hit",
        matched=["missiles"],
        hits={("missiles", "summary")},
    ),
    Row(
        "any-both-terms",
        {"any": ["drones", "missiles"]},
        title="Drones and missiles",
        matched=["drones", "missiles"],
        hits={("drones", "title"), ("missiles", "title")},
    ),
    Row("any-none-present", {"any": ["drones", "missiles"]}, title="artillery fire"),
    Row(
        "any-in-content-only",
        {"any": ["substation"]},
        title="Overnight attack",
        content="a substation was hit",
        matched=["substation"],
        hits={("substation", "content")},
    ),
    Row(
        "any-in-every-field",
        {"any": ["kyiv"]},
        title="Kyiv",
        summary="in Kyiv",
        content="Kyiv again",
        matched=["kyiv"],
        hits={("kyiv", "title"), ("kyiv", "summary"), ("kyiv", "content")},
    ),
    # --- all -------------------------------------------------------------------------------------
    Row(
        "all-every-term",
        {"all": ["Russia", "shells"]},
        title="Russia receives shells",
        matched=["russia", "shells"],
        hits={("russia", "title"), ("shells", "title")},
    ),
    Row("all-one-missing", {"all": ["Russia", "shells"]}, title="Russia receives drones"),
    Row(
        "all-terms-across-fields",
        {"all": ["Russia", "shells"]},
        title="Russia",
        content="more shells",
        matched=["russia", "shells"],
        hits={("russia", "title"), ("shells", "content")},
    ),
    # --- none ------------------------------------------------------------------------------------
    Row("none-vetoes-any", {"any": ["korea"], "none": ["election"]}, title="Korea election"),
    Row(
        "none-vetoes-from-other-field",
        {"any": ["korea"], "none": ["election"]},
        title="Korea news",
        content="the election",
    ),
    Row(
        "none-absent",
        {"any": ["korea"], "none": ["election"]},
        title="Korea troops",
        matched=["korea"],
        hits={("korea", "title")},
    ),
    Row(
        "none-phrase-needs-whole-phrase",
        {"any": ["korea"], "none": ["south korea election"]},
        title="North Korea and the election in South Korea",
        matched=["korea"],
        hits={("korea", "title")},
    ),
    Row(
        "none-phrase-present",
        {"any": ["korea"], "none": ["South Korea election"]},
        title="North Korea reacts to South-Korea election",
    ),
    # --- combinations ----------------------------------------------------------------------------
    Row(
        "all-and-any",
        {"all": ["red line"], "any": ["North Korea", "DPRK"]},
        title="DPRK crosses a red line",
        matched=["dprk", "red line"],
        hits={("red line", "title"), ("dprk", "title")},
    ),
    Row(
        "all-and-any-any-missing",
        {"all": ["red line"], "any": ["North Korea", "DPRK"]},
        title="Iran crosses a red line",
    ),
    Row(
        "all-and-any-all-missing",
        {"all": ["red line"], "any": ["North Korea", "DPRK"]},
        title="DPRK statement",
    ),
    Row(
        "all-any-none-vetoed",
        {"all": ["Kyiv"], "any": ["drones"], "none": ["exercise"]},
        title="Kyiv drones exercise",
    ),
    Row(
        "all-any-none-ok",
        {"all": ["Kyiv"], "any": ["drones"], "none": ["exercise"]},
        title="Kyiv drones attack",
        matched=["drones", "kyiv"],
        hits={("kyiv", "title"), ("drones", "title")},
    ),
    # --- phrases versus words --------------------------------------------------------------------
    Row(
        "phrase-in-order",
        {"any": ["North Korean troops"]},
        title="North Korean troops seen",
        matched=["north korean troops"],
        hits={("north korean troops", "title")},
    ),
    Row("phrase-words-scattered", {"any": ["North Korean troops"]}, title="North troops Korean"),
    Row(
        "phrase-words-out-of-order",
        {"any": ["North Korean troops"]},
        title="troops North Korean",
    ),
    Row(
        "phrase-split-across-fields",
        {"any": ["North Korean troops"]},
        title="North Korean",
        summary="troops",
    ),
    Row(
        "words-scattered-match-as-all",
        {"all": ["North", "Korean", "troops"]},
        title="troops from the North, Korean sources say",
        matched=["korean", "north", "troops"],
        hits={("north", "title"), ("korean", "title"), ("troops", "title")},
    ),
    # --- hyphens, case, accents, quotes, punctuation ---------------------------------------------
    Row(
        "hyphenated-text",
        {"any": ["North Korean troops"]},
        title="north-korean troops",
        matched=["north korean troops"],
        hits={("north korean troops", "title")},
    ),
    Row(
        "hyphenated-rule",
        {"any": ["north-korean troops"]},
        title="North Korean troops",
        matched=["north korean troops"],
        hits={("north korean troops", "title")},
    ),
    Row(
        "dashes",
        {"any": ["North Korean troops"]},
        title="North–Korean—troops",
        matched=["north korean troops"],
        hits={("north korean troops", "title")},
    ),
    Row(
        "upper-case",
        {"any": ["North Korean troops"]},
        title="NORTH KOREAN TROOPS",
        matched=["north korean troops"],
        hits={("north korean troops", "title")},
    ),
    Row(
        "upper-case-rule",
        {"any": ["NORTH KOREAN TROOPS"]},
        title="north korean troops",
        matched=["north korean troops"],
        hits={("north korean troops", "title")},
    ),
    Row(
        "accent-in-text",
        {"any": ["geneve"]},
        title="Talks in Genève",
        matched=["geneve"],
        hits={("geneve", "title")},
    ),
    Row(
        "accent-in-rule",
        {"any": ["Genève"]},
        title="talks in GENEVE",
        matched=["geneve"],
        hits={("geneve", "title")},
    ),
    Row(
        "decomposed-accent-in-text",
        {"any": ["Genève"]},
        title="Gene\u0300ve",
        matched=["geneve"],
        hits={("geneve", "title")},
    ),
    Row(
        "curly-quotes-in-rule",
        {"any": ["“red line”"]},
        title='a "red line" was crossed',
        matched=["red line"],
        hits={("red line", "title")},
    ),
    Row(
        "curly-apostrophe-in-text",
        {"any": ["Pyongyang's arms"]},
        title="Pyongyang’s arms reach Russia",
        matched=["pyongyang s arms"],
        hits={("pyongyang s arms", "title")},
    ),
    Row(
        "punctuation-between-words",
        {"any": ["red line"]},
        summary="It was a red, line? No: «red» — “line”.",
        matched=["red line"],
        hits={("red line", "summary")},
    ),
    Row(
        "punctuation-around-word",
        {"any": ["kyiv"]},
        title="(Kyiv)!",
        matched=["kyiv"],
        hits={("kyiv", "title")},
    ),
    Row(
        "html-stripped-text",
        {"any": ["North Korean troops"]},
        summary=html_to_text("<p>North <b>Korean</b></p><p>troops &amp; more</p>"),
        matched=["north korean troops"],
        hits={("north korean troops", "summary")},
    ),
    Row(
        "zero-width-space-inside-word",
        {"any": ["troops"]},
        title="tro\u200bops",
        matched=["troops"],
        hits={("troops", "title")},
    ),
    # --- other scripts ---------------------------------------------------------------------------
    Row(
        "cyrillic",
        {"any": ["Северная Корея"]},
        title="СЕВЕРНАЯ КОРЕЯ направила войска",
        matched=["северная корея"],
        hits={("северная корея", "title")},
    ),
    Row(
        "cyrillic-yo",
        {"any": ["ещё"]},
        title="Еще одна атака",
        matched=["еще"],
        hits={("еще", "title")},
    ),
    Row("cyrillic-other-word", {"any": ["Корея"]}, title="Кореец"),
    Row(
        "ukrainian",
        {"any": ["Київ"]},
        summary="Атака на КИЇВ",
        matched=["київ"],
        hits={("київ", "summary")},
    ),
    Row(
        "hangul",
        {"any": ["북한군"]},
        title="러시아에 북한군 파병",
        matched=["북한군"],
        hits={("북한군", "title")},
    ),
    Row(
        "hangul-phrase",
        {"any": ["북한군 파병"]},
        content="러시아에 북한군 파병 확인",
        matched=["북한군 파병"],
        hits={("북한군 파병", "content")},
    ),
    Row("hangul-absent", {"any": ["북한군"]}, title="남한 소식"),
    Row(
        "hangul-with-particle",
        {"any": ["북한군"]},
        title="북한군이 러시아에 도착",
        matched=["북한군"],
        hits={("북한군", "title")},
    ),
    Row(
        "hangul-quoted-in-text",
        {"any": ["북한군 파병"]},
        title="‘북한군’ 파병 확인",
        matched=["북한군 파병"],
        hits={("북한군 파병", "title")},
    ),
    Row(
        "hangul-curly-quotes-in-rule",
        {"any": ["“북한군” 파병"]},
        title="북한군 파병 확인",
        matched=["북한군 파병"],
        hits={("북한군 파병", "title")},
    ),
    Row(
        "hangul-hyphen-in-text",
        {"any": ["북한군 파병"]},
        title="북한군-파병 확인",
        matched=["북한군 파병"],
        hits={("북한군 파병", "title")},
    ),
    # --- word boundaries -------------------------------------------------------------------------
    Row("war-not-warning", {"any": ["war"]}, title="A warning was issued"),
    Row("war-not-warfare", {"any": ["war"]}, title="Drone warfare"),
    Row("war-not-postwar", {"any": ["war"]}, title="postwar order"),
    Row(
        "war-in-war-torn",
        {"any": ["war"]},
        title="A war-torn city",
        matched=["war"],
        hits={("war", "title")},
    ),
    Row(
        "war-at-end",
        {"any": ["war"]},
        title="End the war.",
        matched=["war"],
        hits={("war", "title")},
    ),
    Row("phrase-prefix-of-word", {"any": ["red line"]}, title="red liner"),
    Row("phrase-suffix-of-word", {"any": ["red line"]}, title="bored line"),
    Row("digits-boundary", {"any": ["KN-23"]}, title="KN-235 test"),
    Row(
        "digits",
        {"any": ["KN-23"]},
        title="KN 23 missiles",
        matched=["kn 23"],
        hits={("kn 23", "title")},
    ),
    # --- empty fields ----------------------------------------------------------------------------
    Row("empty-item", {"any": ["troops"]}),
]


def _param(row: Row) -> Any:
    marks = [pytest.mark.xfail(reason=row.xfail, strict=True)] if row.xfail else []
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(row) for row in ROWS])
def test_match_table(row: Row) -> None:
    rules = compile_rules([RuleConfig(name="r", **row.rule)])
    matches = rules.match(make_item(row.title, row.summary, row.content))
    if row.matched is None:
        assert matches == []
        return
    [match] = matches
    assert match.rule == "r"
    assert match.matched == row.matched
    assert {(hit.term, hit.field) for hit in match.hits} == row.hits


def test_table_is_large_enough() -> None:
    assert len(ROWS) >= 40
    assert len({row.id for row in ROWS}) == len(ROWS)


INFLECTIONS = [
    ("troops", "one troop"),
    ("troop", "many troops"),
    ("Korean", "Koreans"),
    ("Koreans", "a Korean"),
    ("deploy", "deployed soldiers"),
    ("deployed", "they deploy"),
    ("North Korean troops", "north-korean troop"),
]


@pytest.mark.parametrize(("term", "text"), INFLECTIONS)
def test_plain_words_match_inflections(term: str, text: str) -> None:
    """PRODUCT.md: troops ↔ troop, Korean ↔ Koreans, deploy ↔ deployed."""
    rules = compile_rules([RuleConfig(name="r", any=(term,))])
    [match] = rules.match(make_item(title=text))
    assert [hit.field for hit in match.hits] == ["title"]


@pytest.mark.parametrize(("term", "text"), INFLECTIONS)
def test_match_exact_does_not_match_inflections(term: str, text: str) -> None:
    rules = compile_rules([RuleConfig(name="r", any=(term,), match="exact")])
    assert rules.match(make_item(title=text)) == []
    assert rules.match(make_item(title=term.upper()))  # case still never matters


# --- several rules, scope by feeds and tags ------------------------------------------------------


def test_several_rules_each_report_their_own_terms() -> None:
    rules = compile_rules(
        [
            RuleConfig(name="dprk-troops", any=("North Korean troops",)),
            RuleConfig(name="kursk", any=("Kursk",)),
            RuleConfig(name="unrelated", any=("Taiwan",)),
        ]
    )
    matches = rules.match(make_item(title="North Korean troops in Kursk"))
    assert [(m.rule, m.matched) for m in matches] == [
        ("dprk-troops", ["north korean troops"]),
        ("kursk", ["kursk"]),
    ]


def test_no_rules_no_matches() -> None:
    assert compile_rules([]).match(make_item(title="anything")) == []


SCOPE = [
    # (rule scope, item feed, feed tags, applies)
    ({}, "any-feed", (), True),
    ({"feeds": ("kyiv",)}, "kyiv", (), True),
    ({"feeds": ("kyiv",)}, "other", ("ukraine",), False),
    ({"feeds": ("kyiv", "bbc")}, "bbc", (), True),
    ({"tags": ("ukraine",)}, "f", ("ukraine",), True),
    ({"tags": ("ukraine",)}, "f", ("world", "ukraine"), True),
    ({"tags": ("ukraine",)}, "f", ("world",), False),
    ({"tags": ("ukraine",)}, "f", (), False),
    ({"tags": ("ukraine", "world")}, "f", ("world",), True),
    ({"feeds": ("kyiv",), "tags": ("ukraine",)}, "kyiv", ("ukraine",), True),
    ({"feeds": ("kyiv",), "tags": ("ukraine",)}, "kyiv", ("world",), False),
    ({"feeds": ("kyiv",), "tags": ("ukraine",)}, "bbc", ("ukraine",), False),
]


@pytest.mark.parametrize(("scope", "feed", "feed_tags", "applies"), SCOPE)
def test_rule_scope(
    scope: dict[str, Any], feed: str, feed_tags: tuple[str, ...], applies: bool
) -> None:
    rules = compile_rules([RuleConfig(name="r", any=("troops",), **scope)])
    matches = rules.match(make_item(title="troops", feed=feed), feed_tags)
    assert [m.rule for m in matches] == (["r"] if applies else [])


def test_scope_selects_among_rules() -> None:
    rules = compile_rules(
        [
            RuleConfig(name="everywhere", any=("troops",)),
            RuleConfig(name="ukraine-only", any=("troops",), tags=("ukraine",)),
            RuleConfig(name="korea-feed", any=("troops",), feeds=("nk-news",)),
        ]
    )
    item = make_item(title="troops", feed="nk-news")
    assert [m.rule for m in rules.match(item, ("korea",))] == ["everywhere", "korea-feed"]
    item = make_item(title="troops", feed="kyiv")
    assert [m.rule for m in rules.match(item, ("ukraine",))] == ["everywhere", "ukraine-only"]


# --- property: a rule made of a text's own words matches that text -------------------------------

_TEXT = st.text(
    # Hangul and Han are left out here: see the hangul-* rows and their xfail.
    alphabet=string.ascii_letters + string.digits + " -,.'“”éèüßЖжКкΣσς",
    min_size=1,
    max_size=80,
)


@given(_TEXT, st.data())
def test_rule_from_a_texts_words_matches_it(text: str, data: st.DataObject) -> None:
    words = tokens(text)
    assume(words)  # config rejects terms without letters or digits
    start = data.draw(st.integers(min_value=0, max_value=len(words) - 1))
    end = data.draw(st.integers(min_value=start + 1, max_value=len(words)))
    phrase = " ".join(words[start:end])
    field_name = data.draw(st.sampled_from(["title", "summary", "content"]))
    item = make_item(**{field_name: text})
    for kind in ("any", "all"):
        rules = compile_rules([RuleConfig.model_validate({"name": "r", kind: [phrase.upper()]})])
        [match] = rules.match(item)
        assert match.matched == [phrase]
        assert {(hit.term, hit.field) for hit in match.hits} == {(phrase, field_name)}
    vetoed = compile_rules([RuleConfig(name="r", any=(words[0],), none=(phrase,))])
    assert vetoed.match(item) == []


def test_hits_and_matches_made_fast_are_the_records_themselves() -> None:
    """The matcher builds Hit and Match without their dataclass __init__, for speed: the
    objects must be indistinguishable from constructed ones."""
    hit = _hit("troops", "title", 4, 10, "Troops")
    assert hit == Hit("troops", "title", 4, 10, "Troops")
    assert hash(hit) == hash(Hit("troops", "title", 4, 10, "Troops"))
    assert repr(hit) == repr(Hit("troops", "title", 4, 10, "Troops"))
    match = _match("watch", (hit,))
    assert match == Match("watch", (hit,))
    assert match.matched == ["troops"]
    assert type(hit) is Hit and type(match) is Match
