"""html_to_text's fast path returns exactly what the HTMLParser reference returns.

Item identity and matching depend on this text, so equality, not similarity, is the contract:
generated markup from a grammar of the constructs HTMLParser treats specially, every summary
in the feedparser corpus, and the benchmark farm's summaries.
"""

from __future__ import annotations

import re
import sys
import unicodedata
import xml.etree.ElementTree as ET
from functools import cache
from html import unescape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import text as text_module
from monitor.text import _parsed_html_to_text as reference
from monitor.text import _simple_html_to_text as fast
from monitor.text import clean, html_to_text
from tests.conftest import REPO, SHARED

sys.path.insert(0, str(REPO / "bench"))
from feedfarm import Farm

CORPUS = SHARED / "corpus" / "feedparser-tests"
_SUMMARY_ELEMENTS = frozenset({"description", "summary", "content", "encoded"})


def _assert_same(markup: str) -> None:
    expected = reference(markup)
    assert html_to_text(markup) == expected, markup
    quick = fast(markup)
    assert quick is None or quick == expected, markup


# --- generated markup ----------------------------------------------------------------------------

_TEXT_BITS = st.sampled_from(
    [
        " ", "  ", "\n", "\t", "\r", "\f", "\x0b", "\x00", "\x1b", "\x1c", "\x7f", "\x85",
        "\x9b", "\xa0", "\u2003", "\u2028", "\u200b", "\u00ad", "\u202e", "\u180e", "\ufeff",
        "&", "&amp", "&amp;", "&AMP;", "&lt;", "&gt", "&nbsp;", "&nbsp", "&rsquo;", "&notit;",
        "&notin;", "&eacute", "&#8217;", "&#8217", "&#x2019;", "&#X2019;", "&#0;", "&#1;",
        "&#x110000;", "&#xD800;", "&#128;", "&#x80;", "&#xfffe;", "&#", "&#x", "&#;", "&;",
        "&bogus;", "&am", "p;", "<", ">", "<<", "< ", "<3", "a<b", "=", "/", '"', "'", ";",
        "ſ", "K", "İ", "é", "Ω", "한", "😀", "x", "word", "Ukraine", "2024",
    ]
)  # fmt: skip
_PLAIN_NAMES = st.sampled_from(
    [
        "p", "br", "div", "li", "h1", "td", "hr", "blockquote", "section", "pre", "b", "i",
        "a", "em", "strong", "span", "img", "font", "o:p", "my-tag", "h10", "x.y", "P", "Br",
        "DIV", "LI", "Em", "A",
    ]
)  # fmt: skip
_ODD_NAMES = st.sampled_from(
    [
        "script", "style", "title", "template", "noscript", "head", "textarea", "xmp", "iframe",
        "plaintext", "SCRIPT", "Style", "TiTlE", "ſcript", "bloc\u212aquote", "p\x0b", "p\xa0",
        "a\x00", "3", "", "p<b", "p=x", "é",
    ]
)  # fmt: skip
_ATTRIBUTE_NAMES = st.sampled_from(["href", "src", "title", "alt", "data-x", "xml:lang", "_a"])
_ODD_ATTRIBUTE_NAMES = st.sampled_from(["b/c", "@x", "ſ", "a\x00", '"', "'", "=x", "<"])
_PLAIN_VALUES = st.sampled_from(
    ["", '="x"', "='y'", "=z", "=/story/1/2", "=x/", '="a>b"', "='<p>'", '="&amp;"', ' = "s"',
     '="<!--"', "=\"it's\"", "='say \"hi\"'", '=""', "=''", "=\n'\n'"]
)  # fmt: skip
_ODD_VALUES = st.one_of(
    st.sampled_from(["=", "= ", " = ", "==", "=/", "=>", "=\xa0x", "=`x`", "='", '="', "=a'b"]),
    st.builds(
        lambda quote, body, spacing: f"{spacing}={spacing}{quote}{body}{quote}",
        st.sampled_from(['"', "'", ""]),
        st.lists(
            st.sampled_from(
                ["x", "/story/1/2", ">", "<", "<p>", "&amp;", "&", " ", "a b", '"', "'", "\n"]
            ),
            max_size=4,
        ).map("".join),
        st.sampled_from(["", " ", "\n"]),
    ),
)


def _tags(odd: bool) -> st.SearchStrategy[str]:
    """Start and end tags: plain ones, or with at least a chance of an oddity anywhere."""
    names = st.one_of(_PLAIN_NAMES, _ODD_NAMES) if odd else _PLAIN_NAMES
    gaps = [" ", "\n", "\t", "  \r\n "] + (["", "/", " / ", "\xa0", "\x0b"] if odd else [])
    attribute_names = st.one_of(_ATTRIBUTE_NAMES, _ODD_ATTRIBUTE_NAMES) if odd else _ATTRIBUTE_NAMES
    values = st.one_of(_PLAIN_VALUES, _ODD_VALUES) if odd else _PLAIN_VALUES
    start_ends = [">", "/>", " />", " >", "\n>"] + (["", " /", "/", "\xa0>", "/ >"] if odd else [])
    end_opens = ["</"] + (["</ ", "</\n"] if odd else [])
    end_ends = [">", " >", "\n>"] + (["", " x>", ' a=">">', "/>", "\xa0>"] if odd else [])
    attribute = st.builds(
        lambda *parts: "".join(parts), st.sampled_from(gaps), attribute_names, values
    )
    start = st.builds(
        lambda name, attributes, end: f"<{name}{attributes}{end}",
        names,
        st.lists(attribute, max_size=3).map("".join),
        st.sampled_from(start_ends),
    )
    end = st.builds(
        lambda opening, name, ending: f"{opening}{name}{ending}",
        st.sampled_from(end_opens),
        names,
        st.sampled_from(end_ends),
    )
    return st.one_of(start, end)


_OTHER_MARKUP = st.sampled_from(
    [
        "<!-- comment -->", "<!-- <p>x</p> -->", "<!--", "<!-->", "<!--->", "<!-- a -- b -->",
        "<!>", "<!x>", "<!DOCTYPE html>", "<!doctype html", "<![CDATA[<b>x</b>]]>", "<![CDATA[",
        "<![if !IE]>", "<?php echo 1 ?>", "<?xml version='1.0'?>", "<?", "<!", "</", "</>",
        "</3>", "< /p>", "<", "<p", "<a href=", '<a href="x', "<a href='x'", "</p",
    ]
)  # fmt: skip
# Mostly text and plain tags, so that many documents hold just one oddity, or none.
_MARKUP = st.lists(
    st.one_of(
        _TEXT_BITS, _TEXT_BITS, _TEXT_BITS, _TEXT_BITS, _tags(odd=False), _tags(odd=False),
        _tags(odd=False), _tags(odd=True), _OTHER_MARKUP, st.text(max_size=6),
    ),
    max_size=12,
).map("".join)  # fmt: skip


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_MARKUP)
def test_fast_path_equals_parser_on_generated_markup(markup: str) -> None:
    _assert_same(markup)


# Simple documents, so that the property above is not decided by the fallback alone; and
# simple documents with exactly one oddity in them, where a fast path that accepts too much
# would show.
_HIDING_TAGS = st.sampled_from(
    ["<script>", "</script>", "<style>", "<title>", "</TITLE>", "<template>", "</template>",
     "<noscript>", "</noscript>", "<head>", "</head>", "<textarea>", "<xmp>", "<iframe/>"]
)  # fmt: skip
_SIMPLE_MARKUP = st.lists(
    st.one_of(_TEXT_BITS, _TEXT_BITS, _tags(odd=False), _tags(odd=False)), max_size=10
).map("".join)
_GAPS = st.sampled_from([" ", "\n", "\t"])
_ENDS = st.sampled_from([">", "/>", " />"])
_ODDITIES = st.one_of(
    _HIDING_TAGS,
    _OTHER_MARKUP,
    st.builds(lambda name, end: f"<{name}{end}", _ODD_NAMES, _ENDS),
    st.builds(lambda name, end: f"</{name}{end}", _ODD_NAMES, st.sampled_from([">", " >"])),
    st.builds(
        lambda name, gap, attribute, value, end: f"<{name}{gap}{attribute}{value}{end}",
        _PLAIN_NAMES, _GAPS, _ODD_ATTRIBUTE_NAMES, _PLAIN_VALUES, _ENDS,
    ),
    st.builds(
        lambda name, gap, attribute, value, end: f"<{name}{gap}{attribute}{value}{end}",
        _PLAIN_NAMES, _GAPS, _ATTRIBUTE_NAMES, _ODD_VALUES, _ENDS,
    ),
    st.builds(
        lambda name, gap, value, end: f"<{name}{gap}href{value}{end}",
        _PLAIN_NAMES, st.sampled_from(["", "/", " / ", "\xa0", "\x0b", "\x1c"]), _PLAIN_VALUES,
        _ENDS,
    ),
    st.builds(
        lambda name, end: f"<{name}{end}",
        _PLAIN_NAMES, st.sampled_from(["", " /", "/", "\xa0>", "/ >", "\x0b>", " x=>", "<"]),
    ),
    st.builds(
        lambda opening, name, end: f"{opening}{name}{end}",
        st.sampled_from(["</", "</ ", "</\n", "</\x0b"]),
        _PLAIN_NAMES,
        st.sampled_from(["", " x>", ' a=">">', "/>", "\xa0>", "\x0b>", "\x0bx>", " / >"]),
    ),
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(_SIMPLE_MARKUP)
def test_fast_path_equals_parser_on_simple_markup(markup: str) -> None:
    _assert_same(markup)


@settings(max_examples=2000, deadline=None)
@given(_SIMPLE_MARKUP, _ODDITIES, _SIMPLE_MARKUP)
def test_fast_path_equals_parser_on_one_oddity(before: str, oddity: str, after: str) -> None:
    _assert_same(before + "x" + oddity + "y" + after)


@pytest.mark.parametrize(
    "markup",
    [
        "&am<b>p;</b>",  # an entity split by a tag stays split
        "&amp<b>;</b>",
        "x &#82<i>17;</i>",
        "a < b &amp<b>c</b>",
        "a &amp< b",
        "<p>text</p>&amp",  # "&" near the end waits for close() in the parser
        "<p>text</p>&ampx",
        "<p>x</p>" + "y" * 40 + "&amp",
        "<P>upper</P><Br/>case",
        "<a href=x/>link</a>",
        "<a title='<p>'>t</a>",
        '<a title="<!--">t</a><!-- -->',
        "<p\x0bclass=x>v</p>",
        "<p\xa0>nbsp</p>",
        "<title>hidden</title>shown",
        "<template>t</template>shown",
        "<noscript>n</noscript><head>h</head>shown",
        'a<p title=">b',  # unterminated: the parser's close() makes it text
        "a<p title='>b",
        "a</p\x0bx>b",
        "a</p x>b",
        "<textarea><b>x</b></textarea>",
        "<b>a</b>\u200b<p>\u200b</p>b",
        "<p>\x00lead</p>",
        "x<br>\u180ey",
        "<o:p></o:p>word",
        "a<<b>c</b>",
        "text <",
        "</p/>after",
        "<p/ >x",
        '<img src="a"/>',
        "<a href = 'x' >y</a >",
    ],
)
def test_fast_path_equals_parser_on_known_edges(markup: str) -> None:
    _assert_same(markup)


# --- what _clean_collapsed relies on --------------------------------------------------------------


def test_character_facts_behind_the_cheap_clean() -> None:
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    spaces = set(re.findall(r"\s", every))
    assert spaces == {char for char in every if char.isspace()}
    assert {char for char in spaces if char.isprintable()} == {" "}
    assert not any(char.isspace() for char in every if unicodedata.category(char) == "Cf")
    assert not any(char.isprintable() for char in every if unicodedata.category(char) == "Cf")
    controls = text_module._CONTROL.findall(every)
    assert all(char.isspace() or not char.isprintable() for char in controls)


@given(st.text(alphabet=st.sampled_from(" \t\n\r\x0b\x00\x1b\x1c\x85\x9b\xa0\u2028\u200b\u180eab")))
def test_cheap_clean_equals_clean(text: str) -> None:
    assert text_module._clean_collapsed(text) == clean(text)


@given(st.text(max_size=40))
def test_cheap_clean_equals_clean_on_any_text(text: str) -> None:
    assert text_module._clean_collapsed(text) == clean(text)


# --- real data -----------------------------------------------------------------------------------

_ELEMENT = re.compile(
    r"<((?:[\w.-]+:)?(?:description|summary|content|encoded))\b[^>]*>(.*?)</\1\s*>", re.S
)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
_HEADER = re.compile(r"\A\s*<!--(.*?)-->", re.S)


@cache
def corpus_markup() -> tuple[str, ...]:
    """Summary texts of the corpus: as the XML holds them, XML-decoded (by ElementTree where
    it parses, by unescape where not), CDATA contents, and the test headers' expectations."""
    found: dict[str, None] = {}
    files = sorted(CORPUS.rglob("*.xml"))
    assert len(files) > 2000, f"corpus missing at {CORPUS}"
    for path in files:
        body = path.read_bytes()
        source = body.decode("utf-8", errors="replace")
        for match in _ELEMENT.finditer(source):
            raw = match.group(2)
            found.update(dict.fromkeys([raw, unescape(raw), *_CDATA.findall(raw)]))
        header = _HEADER.match(source)
        if header:
            found[header.group(1)] = None
        try:
            root = ET.fromstring(body)
        except (ET.ParseError, ValueError, LookupError):  # bogus encodings too
            continue
        for element in root.iter():
            if not isinstance(element.tag, str):
                continue
            if element.tag.rsplit("}", 1)[-1] in _SUMMARY_ELEMENTS:
                found[element.text or ""] = None
                found[ET.tostring(element, encoding="unicode")] = None
    return tuple(markup for markup in found if "<" in markup or "&" in markup)


@cache
def farm_summaries() -> tuple[str, ...]:
    farm = Farm(feeds=60, items=20)
    summaries = []
    for index in range(60):
        for element in ET.fromstring(farm.body(index)).iter():
            local = element.tag.rsplit("}", 1)[-1]
            if local in ("description", "summary") and (element.text or "").startswith("<"):
                summaries.append(element.text or "")
    return tuple(summaries)


def test_fast_path_equals_parser_on_corpus() -> None:
    markups = corpus_markup()
    assert len(markups) > 1000
    for markup in markups:
        _assert_same(markup)


def test_fast_path_equals_parser_on_farm_summaries() -> None:
    summaries = farm_summaries()
    assert len(summaries) == 60 * 20
    for summary in summaries:
        _assert_same(summary)


def test_fast_path_is_taken_for_typical_summaries() -> None:
    assert all(fast(summary) is not None for summary in farm_summaries())
    typical = [
        "<p>Kyiv &amp; Kharkiv</p><p>Ukraine&#8217;s army&nbsp;said <b>so</b>.</p>",
        '<p><img src="https://x.example/a.jpg" alt="A &quot;photo&quot;" width="300" /></p>'
        '<p>Read <a href="https://x.example/a?b=1&amp;c=2" target=_blank>more</a><br/>…</p>',
        "<div class='summary'>\n  <p>Line one.<br>\nLine two.</p>\n</div>",
        '<P>Old <I>style</I> <A HREF="/x">markup</A></P>',
    ]
    assert all(fast(markup) is not None for markup in typical)
    # The real corpus is mostly parser torture tests, yet most of it is simple markup.
    markups = [markup for markup in corpus_markup() if "<" in markup]
    taken = sum(fast(markup) is not None for markup in markups)
    assert taken > len(markups) // 3
