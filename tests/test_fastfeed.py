"""The fast path gives exactly what feedparser gives, field for field, or steps aside:
item identity is computed from these fields, so a feed flipping between the two paths
must never change one of them."""

from __future__ import annotations

import sys
import warnings
from datetime import UTC, datetime, timedelta
from html import escape

import pytest
from feedparser.datetimes import _parse_date
from feedparser.urls import _urljoin
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor import fastfeed
from monitor.fastfeed import fast_parse
from monitor.models import ParsedFeed
from monitor.parse import (
    ParseError,
    _parse_with_feedparser,
    _response_headers,
    parse_feed,
)
from tests.conftest import REPO, SHARED

CORPUS = SHARED / "corpus" / "feedparser-tests"
URL = "http://feeds.example/news/feed.xml"
HEADER_SETS: list[dict[str, str]] = [
    {},
    {"content-type": "application/rss+xml"},
    {"Content-Type": "application/atom+xml; charset=utf-8"},
    {"content-type": "text/xml"},
    {"content-type": "text/html"},
    {"content-type": "text/plain"},
    {"content-type": "application/xml; charset=iso-8859-1"},
    {"content-type": "application/xml", "content-language": "de_AT"},
]
RSS_TYPE = {"content-type": "application/rss+xml; charset=utf-8"}


def both(
    body: bytes, headers: dict[str, str], url: str = URL
) -> tuple[ParsedFeed | None, ParsedFeed | ParseError]:
    response_headers = _response_headers(body, headers, url)
    fast = fast_parse(body, dict(response_headers), url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            slow: ParsedFeed | ParseError = _parse_with_feedparser(body, response_headers)
        except ParseError as error:
            slow = error
    return fast, slow


def check(
    body: bytes, headers: dict[str, str] | None = None, *, accept: bool | None = None
) -> None:
    """Fast equals feedparser whenever it answers; `accept` says whether it must answer."""
    fast, slow = both(body, RSS_TYPE if headers is None else headers)
    if fast is not None:
        assert fast == slow
    if accept is not None:
        assert (fast is not None) == accept, slow


def test_every_corpus_file_equals_feedparser_whenever_taken() -> None:
    files = sorted(CORPUS.rglob("*.xml"))
    assert len(files) > 2000, f"corpus missing at {CORPUS}"
    taken = dict.fromkeys(range(len(HEADER_SETS)), 0)
    for path in files:
        body = path.read_bytes()
        for index, headers in enumerate(HEADER_SETS):
            fast, slow = both(body, headers)
            if fast is not None:
                taken[index] += 1
                assert fast == slow, (path, headers)
    print(f"fast path taken per header set (of {len(files)} files): {taken}", file=sys.stderr)
    # About 640 of the 2,106 files; far fewer would mean the fast path refuses everything.
    assert min(taken.values()) > 500


def test_every_farm_feed_takes_the_fast_path_and_equals_feedparser() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from feedfarm import Farm
    finally:
        sys.path.remove(str(REPO / "bench"))
    farm = Farm(feeds=60, items=20)
    kinds = set()
    for index in range(60):
        body = farm.body(index)
        atom = b"<feed" in body[:200]
        kinds.add(atom)
        kind = "application/atom+xml" if atom else "application/rss+xml"
        fast, slow = both(body, {"content-type": f"{kind}; charset=utf-8"}, f"{farm.url}/f/{index}")
        assert fast is not None, index
        assert fast == slow
        assert len(fast.entries) == 20
    assert kinds == {True, False}


def rss(items: str, channel: str = "<title>News</title>", head: str = "") -> bytes:
    return (
        f'{head}<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>{channel}{items}</channel></rss>'
    ).encode()


def atom(entries: str, feed: str = "<title>News</title>", attrs: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"{attrs}>'
        f"{feed}{entries}</feed>"
    ).encode()


ITEM = (
    "<item><title>Talks in Geneva</title><link>https://news.example/a?x=1&amp;y=2</link>"
    '<guid isPermaLink="false">id-1</guid><pubDate>Tue, 10 Jun 2003 04:00:00 GMT</pubDate>'
    "<description>&lt;p&gt;Body &amp;amp; more&lt;/p&gt;</description></item>"
)
ENTRY = (
    '<entry><title type="html">A &amp;lt;b&amp;gt;bold&amp;lt;/b&amp;gt; move</title>'
    '<link rel="alternate" href="https://news.example/e1"/><id>urn:uuid:1</id>'
    "<updated>2024-02-29T12:00:00+02:00</updated><author><name>Ann</name>"
    '<email>ann@news.example</email></author><summary type="html">&lt;p&gt;Hi&lt;/p&gt;'
    "</summary></entry>"
)

TAKEN = [
    rss(ITEM),
    rss(ITEM.replace("<title>Talks in Geneva</title>", "<title><![CDATA[<b>Bold</b> &]]></title>")),
    rss(ITEM.replace("Talks in Geneva", "Caf&#233; &amp; bar &lt;b&gt;x&lt;/b&gt;")),
    rss(ITEM.replace("Talks in Geneva", "  \n Spaced\t out  ")),
    rss(
        "<item><title>x</title><content:encoded><![CDATA[<p>Full <em>text</em></p>]]>"
        "</content:encoded><dc:creator>Bob</dc:creator><category>World</category>"
        '<category domain="d">World</category><category>World</category>'
        "<dc:subject>Politics</dc:subject><guid>https://news.example/p/1</guid></item>"
    ),
    rss(
        "<item><description>Lead</description><content:encoded>Full</content:encoded>"
        '<guid isPermaLink="true">https://news.example/p/2</guid>'
        "<link>https://news.example/p/2b</link><author>ann@x.example (Ann)</author></item>"
    ),
    rss("<item><title>No date</title><guid>urn:x:1</guid></item>"),
    rss(
        ITEM.replace(
            "</item>",
            '<media:content xmlns:media="http://search.yahoo.com/mrss/" url="https://x.example/'
            'a.jpg" medium="image" fileSize="12"/><media:content xmlns:media="http://search.yahoo'
            '.com/mrss/" url="https://x.example/b.jpg"/><m:thumbnail xmlns:m="http://search.yahoo'
            '.com/mrss/" url="https://x.example/t.jpg">https://x.example/u.jpg</m:thumbnail>'
            '<enclosure url="https://x.example/a.mp3" length="1" type="audio/mpeg"/></item>',
        )
    ),
    rss("<item><title>Bad date</title><pubDate>someday soon</pubDate></item>"),
    rss("<item><title>Odd date</title><pubDate>Mon, 31 Feb 2003 04:00:00 GMT</pubDate></item>"),
    rss("<item><title>Zone</title><pubDate>Sun, 01 Jan 2006 23:30:00 -0530</pubDate></item>"),
    rss("<item><title>W3C</title><dc:date>2006-01-01T23:30:00-05:30</dc:date></item>"),
    rss(ITEM, channel="<title>News</title><language>uk-UA</language>"),
    rss(ITEM, head='<?xml version="1.0" encoding="UTF-8"?>\n'),
    rss(ITEM, head="\n  \n"),
    b"\xef\xbb\xbf" + rss(ITEM.replace("Geneva", "Gen\u00e8ve")),
    rss(ITEM.replace("Geneva", "\u041a\u0438\u0457\u0432 \u00c3\u00a9")),
    rss(
        ITEM,
        channel="<title>T</title><image><url>https://x.example/i.png</url><title>Img</title>"
        "<link>https://x.example/</link></image><link>https://x.example/</link>",
    ),
    atom(ENTRY),
    atom(ENTRY, attrs=' xml:lang="en_GB"'),
    atom(
        "<entry><title>Plain &amp;lt;b&amp;gt;</title><id>tag:news.example,2024:2</id>"
        '<content type="html">&lt;p&gt;Only content&lt;/p&gt;</content>'
        '<category term="a"/><category term="b" scheme="s"/><category term="a"/>'
        "<published>2024-01-01T00:00:00Z</published></entry>"
    ),
    atom(
        '<entry><id>urn:uuid:3</id><content type="text">A &amp;lt;tag&amp;gt;</content>'
        '<link rel="self" href="https://news.example/self"/></entry>'
    ),
]
REFUSED = [
    rss(ITEM.replace("https://news.example/a?x=1&amp;y=2", "/relative/link")),
    rss(ITEM.replace('<guid isPermaLink="false">id-1</guid>', "<guid>relative-id</guid>")),
    rss(ITEM.replace("<item>", '<item xml:base="https://other.example/">')),
    rss(ITEM + ITEM.replace("<title>", "<title>a</title><title>")),
    rss(ITEM.replace("<description>", "<description><b>raw</b>")),
    rss(ITEM, head='<?xml version="1.0" encoding="iso-8859-1"?>').replace(b"Geneva", b"Gen\xe8ve"),
    rss(ITEM, head='<?xml version="1.0" encoding="windows-1251"?>'),
    rss(ITEM, head='\n<?xml version="1.0" encoding="utf-8"?>'),
    (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x "boom">]><rss version="2.0">'
        b"<channel><title>t</title><item><title>&x;</title></item></channel></rss>"
    ),
    atom(ENTRY.replace('type="html"', 'type="xhtml"').replace("&amp;lt;b&amp;gt;", "")),
    atom(ENTRY.replace('href="https://news.example/e1"', 'href="e1"')),
    atom(ENTRY + ENTRY.replace("<author>", '<link href="https://news.example/e2"/><author>')),
    b"<rss><channel><item><media:title xmlns:media='http://search.yahoo.com/mrss/'>x"
    b"</media:title></item></channel></rss>",
    b"<html><body>not a feed</body></html>",
    rss(
        ITEM.replace(
            "</item>",
            '<media:content xmlns:media="http://search.yahoo.com/mrss/" url="https://x.example/'
            'a.jpg"><media:title>Other title</media:title></media:content></item>',
        )
    ),
]


@pytest.mark.parametrize("body", TAKEN)
def test_plain_feeds_take_the_fast_path_and_equal_feedparser(body: bytes) -> None:
    check(body, accept=True)


@pytest.mark.parametrize("body", REFUSED)
def test_what_the_fast_path_is_unsure_of_goes_to_feedparser(body: bytes) -> None:
    check(body, accept=False)


@pytest.mark.parametrize("headers", HEADER_SETS)
@pytest.mark.parametrize("body", TAKEN + REFUSED)
def test_every_header_set_equals_feedparser(body: bytes, headers: dict[str, str]) -> None:
    check(body, headers)


def test_a_content_type_that_is_not_xml_gives_feedparsers_warning() -> None:
    fast, slow = both(rss(ITEM), {"content-type": "text/html; charset=utf-8"})
    assert fast is not None and fast == slow
    assert fast.warning == "NonXMLContentType: text/html; charset=utf-8 is not an XML media type"


def test_billion_laughs_is_refused_and_safe_end_to_end() -> None:
    from tests.test_hostile import laughs

    body = laughs()
    assert fast_parse(body, dict(RSS_TYPE), URL) is None
    parsed = parse_feed(body, RSS_TYPE, URL)
    assert all(len(entry.title) < 10_000 for entry in parsed.entries)


def test_fast_path_never_raises_on_garbage() -> None:
    for body in (b"<", b"<rss", b"\xff\xfe<\x00r\x00", b"<rss version='2.0'><channel>", b"\x00"):
        assert fast_parse(body, {}, URL) is None


# -- generated feeds ----------------------------------------------------------------------

TEXT = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], max_codepoint=0x2FFF), max_size=60
).map(lambda text: "".join(c for c in text if c in "\t\n\r" or c >= " ") or "x")
MARKUP = st.sampled_from(["", "<b>", "</b>", "&amp;", "&eacute;", "&#233;", "<p>", "</p>", "<x>"])
RICH = st.lists(st.one_of(TEXT, MARKUP), max_size=6).map("".join)
LINK = st.one_of(
    st.from_regex(
        r"https?://[a-z0-9.-]{1,20}(:[0-9]{1,4})?(/[A-Za-z0-9._~%/-]{0,20})?", fullmatch=True
    ),
    st.from_regex(r"https?://[a-z]{1,8}\.example/[ -~]{0,20}", fullmatch=True),
)


def cdata(text: str) -> str:
    return f"<![CDATA[{text}]]>" if "]]>" not in text else escape(text)


@st.composite
def rss_feeds(draw: st.DrawFn) -> bytes:
    items = []
    for _ in range(draw(st.integers(1, 3))):
        title, summary = draw(RICH), draw(RICH)
        wrap = cdata if draw(st.booleans()) else escape
        permalink = draw(st.sampled_from(['isPermaLink="false"', "", 'isPermaLink="true"']))
        guid = draw(LINK) if permalink != 'isPermaLink="false"' else draw(TEXT)
        items.append(
            f"<item><title>{wrap(title)}</title><link>{escape(draw(LINK))}</link>"
            f"<guid {permalink}>{escape(guid)}</guid><description>{wrap(summary)}</description>"
            f"<category>{escape(draw(TEXT))}</category></item>"
        )
    return rss("".join(items), channel=f"<title>{escape(draw(TEXT))}</title>")


@st.composite
def atom_feeds(draw: st.DrawFn) -> bytes:
    entries = []
    for index in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["text", "html"]))
        entries.append(
            f'<entry><title type="{kind}">{escape(draw(RICH))}</title><id>urn:x:{index}</id>'
            f'<link href="{escape(draw(LINK), quote=True)}"/>'
            f"<author><name>{escape(draw(TEXT))}</name></author>"
            f'<summary type="{kind}">{escape(draw(RICH))}</summary></entry>'
        )
    return atom("".join(entries), feed=f"<title>{escape(draw(TEXT))}</title>")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(rss_feeds(), atom_feeds()))
def test_generated_feeds_equal_feedparser(body: bytes) -> None:
    fast, slow = both(body, RSS_TYPE)
    if fast is not None:
        assert fast == slow


@settings(max_examples=100, deadline=None)
@given(title=TEXT.filter(lambda t: t.strip() and "\r" not in t), summary=TEXT)
def test_plain_generated_feeds_take_the_fast_path(title: str, summary: str) -> None:
    item = (
        f"<item><title>{escape(title)}</title><description>{escape(summary)}</description></item>"
    )
    check(rss(item), accept=True)


@settings(max_examples=500, deadline=None)
@given(
    url=st.one_of(
        st.from_regex(r"[a-zA-Z]{1,6}:(//)?[ -~]{0,30}", fullmatch=True),
        st.from_regex(r"(urn|tag):[ -~]{0,30}", fullmatch=True),
        st.from_regex(
            r"https?://[a-z0-9.-]{1,12}(:[0-9]{1,6})?[/?#;:@a-zA-Z0-9%&=.~-]{0,25}", fullmatch=True
        ),
    ),
    base=st.sampled_from([URL, "https://feeds.example/", "http://127.0.0.1:8080/f/1"]),
)
def test_links_left_alone_are_what_feedparsers_join_gives(url: str, base: str) -> None:
    pattern = fastfeed._HAS_SCHEME
    assume(pattern.match(url))
    assert fastfeed._joined(base, url, pattern) == _urljoin(base, url)


DAY = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))


@settings(max_examples=500, deadline=None)
@given(
    when=DAY,
    offset=st.integers(-24 * 60, 24 * 60),
    style=st.sampled_from(["rfc822", "w3c"]),
    day_off=st.integers(-3, 3),
)
def test_dates_read_here_are_feedparsers(
    when: datetime, offset: int, style: str, day_off: int
) -> None:
    sign = "-" if offset < 0 else "+"
    zone_h, zone_m = divmod(abs(offset), 60)
    if style == "rfc822":
        weekday = (when + timedelta(days=day_off)).strftime("%a")
        zone = "GMT" if offset == 0 else f"{sign}{zone_h:02d}{zone_m:02d}"
        text = f"{weekday}, {when.day:02d} {when.strftime('%b')} {when.year:04d} "
        text += f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} {zone}"
    else:
        zone = "Z" if offset == 0 else f"{sign}{zone_h:02d}:{zone_m:02d}"
        text = f"{when.year:04d}-{when.month:02d}-{when.day:02d}T"
        text += f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}{zone}"
    assert fastfeed._parsed_date(text) == _parse_date(text)


@pytest.mark.parametrize(
    "text",
    [
        "Mon, 31 Feb 2003 04:00:00 GMT",
        "Tue, 10 Jun 2003 24:00:00 GMT",
        "Tue, 10 Jun 2003 23:59:60 GMT",
        "2003-02-29T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
        "Fri, 31 Dec 9999 23:59:59 -2359",
        "2003-06-10T04:00:00+99:99",
    ],
)
def test_edge_dates_read_here_are_feedparsers(text: str) -> None:
    assert fastfeed._parsed_date(text) == _parse_date(text)


def test_published_at_comes_out_in_utc() -> None:
    fast, _ = both(rss(ITEM), RSS_TYPE)
    assert fast is not None
    assert fast.entries[0].published_at == datetime(2003, 6, 10, 4, tzinfo=UTC)
