"""JSON Feed 1.0 and 1.1: every field mapped as the spec means it, routed from parse_feed,
and hostile documents (wrong shapes, deep nesting, bad text) give a feed or one plain
ParseError sentence, never another exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.jsonfeed import looks_like_json, parse_json_feed, parse_rfc3339
from monitor.models import Entry, ParsedFeed
from monitor.parse import MAX_FIELD_CHARS, MAX_TITLE_CHARS, ParseError, parse_feed
from tests.conftest import SHARED

V1 = "https://jsonfeed.org/version/1"
V11 = "https://jsonfeed.org/version/1.1"
JSON_HEADERS = {"Content-Type": "application/feed+json"}


def feed(items: list[Any], version: str = V11, **extra: Any) -> bytes:
    return json.dumps({"version": version, "title": "T", **extra, "items": items}).encode()


def only_entry(body: bytes) -> Entry:
    parsed = parse_feed(body, JSON_HEADERS, "https://example.org/feed.json")
    assert len(parsed.entries) == 1, parsed
    return parsed.entries[0]


# --- the spec's fields, 1.0 and 1.1 ------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "field", "expected"),
    [
        # ids: strings are trimmed; numbers are turned into strings, as the spec asks.
        ({"id": " abc "}, "guid", "abc"),
        ({"id": 42}, "guid", "42"),
        ({"id": 1.5}, "guid", "1.5"),
        ({"id": 123456789012345678901234567890}, "guid", "123456789012345678901234567890"),
        ({"id": ""}, "guid", None),
        ({}, "guid", None),
        # url, else external_url
        ({"url": "https://e.org/a", "external_url": "https://x.org/"}, "link", "https://e.org/a"),
        ({"external_url": "https://x.org/b"}, "link", "https://x.org/b"),
        ({"url": "  ", "external_url": "https://x.org/c"}, "link", "https://x.org/c"),
        ({}, "link", None),
        # text
        ({"title": " Troops\u200b  moved\n"}, "title", "Troops moved"),
        ({"summary": "Two\x1b[2J lines\nhere"}, "summary", "Two [2J lines here"),
        ({"content_html": "<p>Hi <b>world</b></p><script>x()</script>"}, "content", "Hi world"),
        ({"content_text": "a &amp; b <i>"}, "content", "a &amp; b <i>"),
        ({"content_html": "<p>html</p>", "content_text": "text"}, "content", "html"),
        # authors: 1.1's list, 1.0's single object
        ({"authors": [{"name": "Ann"}, {"url": "x"}, {"name": "Bo"}]}, "author", "Ann, Bo"),
        ({"author": {"name": "Cy", "url": "https://cy.example/"}}, "author", "Cy"),
        ({"tags": ["war", " Ukraine ", ""]}, "tags", ("war", "Ukraine")),
        # dates: RFC 3339 to UTC; date_modified when there is no date_published
        (
            {"date_published": "2024-02-07T14:04:00-05:00"},
            "published_at",
            datetime(2024, 2, 7, 19, 4, tzinfo=UTC),
        ),
        (
            {"date_modified": "2024-02-07t14:04:00.5z"},
            "published_at",
            datetime(2024, 2, 7, 14, 4, 0, 500000, tzinfo=UTC),
        ),
        ({"date_published": "yesterday"}, "published_at", None),
        ({"date_published": 1707314640}, "published_at", None),
    ],
)
def test_item_fields_map_to_entries(item: dict[str, Any], field: str, expected: object) -> None:
    entry = only_entry(feed([item]))
    assert getattr(entry, field) == expected


def test_the_corpus_example_yields_its_items() -> None:
    body = (SHARED / "corpus" / "feedparser-tests" / "json" / "example.json").read_bytes()
    parsed = parse_feed(body, {}, "https://example.org/feed.json")
    assert parsed.title == "My Example Feed"
    assert parsed.warning is None
    assert [(e.guid, e.link) for e in parsed.entries] == [
        ("2", "https://example.org/second-item"),
        ("1", "https://example.org/initial-post"),
    ]
    second, first = parsed.entries
    assert second.tags == ("test", "JSON")
    assert second.author == "me"  # the feed's author, as the spec says
    assert first.author == "you"
    assert first.content == "Hello, world!"  # the <script> is not text


def test_version_1_1_feed_language_and_feed_authors() -> None:
    body = feed(
        [{"id": "1", "title": "Hi"}, {"id": "2", "authors": [{"name": "Own"}]}],
        language="uk-UA",
        authors=[{"name": "Desk"}],
    )
    parsed = parse_feed(body, {}, "https://example.org/")
    assert parsed.language == "uk"
    assert [e.author for e in parsed.entries] == ["Desk", "Own"]


def test_content_language_header_when_the_feed_names_none() -> None:
    body = feed([], version=V1)
    parsed = parse_feed(body, {"Content-Language": "de-DE"}, "https://example.org/")
    assert parsed.language == "de"
    assert parsed.entries == ()


def test_fields_are_capped_like_xml_feeds() -> None:
    entry = only_entry(
        feed(
            [
                {
                    "id": "1",
                    "title": "t" * 50_000,
                    "summary": "s " * 100_000,
                    "content_html": "<p>" + "c " * 100_000 + "</p>",
                    "authors": [{"name": "n" * 5_000}],
                    "tags": ["g" * 5_000],
                }
            ]
        )
    )
    assert len(entry.title) == MAX_TITLE_CHARS
    assert len(entry.summary) == len(entry.content) == MAX_FIELD_CHARS
    assert len(entry.author) == len(entry.tags[0]) == MAX_TITLE_CHARS


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-02-07T14:04:00Z", datetime(2024, 2, 7, 14, 4, tzinfo=UTC)),
        ("2024-02-07T14:04:00+02:00", datetime(2024, 2, 7, 12, 4, tzinfo=UTC)),
        ("2024-02-07 14:04:00Z", datetime(2024, 2, 7, 14, 4, tzinfo=UTC)),
        ("2024-02-07T14:04:00", datetime(2024, 2, 7, 14, 4, tzinfo=UTC)),  # no offset: UTC
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),  # leap second
        ("2024-02-30T00:00:00Z", None),
        ("0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC
        ("Tue, 07 Feb 2024 14:04:00 GMT", None),  # RFC 822 is not what the spec says
        ("٢٠٢٤-02-07T14:04:00Z", None),
        ("2024-02-07T14:04:00Z" + " " * 100, None),
        ("", None),
    ],
)
def test_rfc3339_dates(value: str, expected: datetime | None) -> None:
    assert parse_rfc3339(value) == expected


# --- detection and routing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        (b'{"version": "x"}', {}, True),
        (b'\xef\xbb\xbf \n\t{"a": 1}', {}, True),  # BOM and whitespace first
        (b'[{"a": 1}]', {"content-type": "application/json; charset=utf-8"}, True),
        (b"not json", {"Content-Type": "application/feed+json"}, True),
        (b"<rss/>", {"content-type": "application/json"}, False),  # the bytes are XML
        (b"<rss/>", {}, False),
        (b"[1]", {"content-type": "text/plain"}, False),
    ],
)
def test_detection(body: bytes, headers: dict[str, str], expected: bool) -> None:
    assert looks_like_json(body, headers) is expected


def test_an_xml_feed_labelled_json_still_goes_to_feedparser() -> None:
    body = b'<rss version="2.0"><channel><title>X</title><item><title>A</title></item></channel>'
    body += b"</rss>"
    parsed = parse_feed(body, {"content-type": "application/json"}, "https://x.example/")
    assert parsed.title == "X"
    assert [e.title for e in parsed.entries] == ["A"]


def test_http_version_url_and_bom_are_accepted() -> None:
    body = b"\xef\xbb\xbf\n" + feed([{"id": 7}], version="http://jsonfeed.org/version/1")
    assert only_entry(body).guid == "7"


# --- hostile documents -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"version": ', "not valid JSON"),
        (b'{"a": 1} trailing', "not valid JSON"),
        (b"\xff\xfe{\x00}\x00", "not UTF-8"),
        (b"garbage", "not valid JSON"),
        (b'{"version": "https://jsonfeed.org/version/1", "items": NaN}', r"\(NaN is not a JSON"),
        (b'{"x": -Infinity}', r"\(-Infinity is not a JSON value\)"),
        (b'{"x": ' + b"9" * 5000 + b"}", r"not valid JSON \(a number is too long\)"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "nested too deeply"),
        (b'{"title": "no version", "items": []}', "not an RSS, Atom, RDF or JSON feed"),
        (b'{"version": 1.1, "items": []}', "not an RSS, Atom, RDF or JSON feed"),
        (b'["https://jsonfeed.org/version/1"]', "not an RSS, Atom, RDF or JSON feed"),
        (b'"https://jsonfeed.org/version/1"', "not an RSS, Atom, RDF or JSON feed"),
        (feed({"id": "1"}), "items are an object, not a list"),  # type: ignore[arg-type]
        (feed("items"), "items are text, not a list"),  # type: ignore[arg-type]
    ],
)
def test_unreadable_documents_are_refused_in_one_sentence(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as caught:
        parse_feed(body, JSON_HEADERS, "https://x.example/")
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 200


def test_bad_items_are_skipped_and_good_ones_kept() -> None:
    good = {"id": "g", "title": "Good"}
    body = feed([1, "two", None, [good], good, True, {"id": "h"}])
    parsed = parse_feed(body, {}, "https://x.example/")
    assert [e.guid for e in parsed.entries] == ["g", "h"]
    assert parsed.warning is not None
    assert parsed.warning.startswith("JSON Feed: item 1 is a number, not an object; skipped")
    assert "(and 4 more problems)" in parsed.warning


@pytest.mark.parametrize(
    ("item", "field", "expected"),
    [
        ({"id": True}, "guid", None),
        ({"id": {"n": 1}}, "guid", None),
        ({"id": "x", "title": 5}, "title", ""),
        ({"id": "x", "title": ["a"]}, "title", ""),
        ({"id": "x", "url": {"href": "https://e.org/"}}, "link", None),
        ({"id": "x", "content_html": 1, "content_text": "kept"}, "content", "kept"),
        ({"id": "x", "tags": "war"}, "tags", ()),
        ({"id": "x", "tags": [1, None, "ok", ["n"]]}, "tags", ("ok",)),
        ({"id": "x", "authors": {"name": "A"}}, "author", ""),
        ({"id": "x", "authors": ["A", {"name": 3}, {"name": "B"}]}, "author", "B"),
        ({"id": "x", "author": "A"}, "author", ""),
        ({"id": "x", "date_published": ["2024-01-01"]}, "published_at", None),
    ],
)
def test_fields_of_the_wrong_type_are_ignored_with_a_warning(
    item: dict[str, Any], field: str, expected: object
) -> None:
    parsed = parse_feed(feed([item]), {}, "https://x.example/")
    assert getattr(parsed.entries[0], field) == expected
    assert parsed.warning is not None
    assert parsed.warning.startswith("JSON Feed: item 1")


def test_missing_items_is_an_empty_feed_with_a_warning() -> None:
    parsed = parse_feed(json.dumps({"version": V1, "title": "T"}).encode(), {}, "https://x/")
    assert parsed.entries == ()
    assert parsed.warning == "JSON Feed: the feed has no items list"


def test_lone_surrogates_and_controls_never_reach_the_text() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "a\\ud800b",'
        b' "items": [{"id": "x\\udfff", "title": "\\u0000t\\ud83d\\ude00", "tags": ["\\udc00"]}]}'
    )
    parsed = parse_feed(body, {}, "https://x.example/")
    entry = parsed.entries[0]
    assert parsed.title == "a\ufffdb"
    assert entry.guid == "x\ufffd"
    assert entry.title == "t\U0001f600"  # a proper surrogate pair is one character
    assert entry.tags == ("\ufffd",)
    assert_storable(parsed)


def assert_storable(parsed: ParsedFeed) -> None:
    """Every string encodes to UTF-8 (SQLite, logs and webhooks need that) and respects
    the caps."""
    texts = [parsed.title, parsed.language or "", parsed.warning or ""]
    for entry in parsed.entries:
        texts += [entry.guid or "", entry.link or "", entry.author, *entry.tags]
        texts += [entry.title, entry.summary, entry.content]
        assert len(entry.title) <= MAX_TITLE_CHARS
        assert max(len(entry.summary), len(entry.content)) <= MAX_FIELD_CHARS
        assert entry.published_at is None or entry.published_at.tzinfo is UTC
    for text in texts:
        text.encode("utf-8")


# --- property: any JSON at all -------------------------------------------------------------

FIELDS = [
    "version", "title", "items", "id", "url", "external_url", "summary", "content_html",
    "content_text", "author", "authors", "name", "tags", "date_published", "date_modified",
    "language",
]  # fmt: skip
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from([V1, V11, "2024-02-07T14:04:00Z", "<p>x</p>", "\ud800"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), children, max_size=6)
    ),
    max_leaves=40,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(document=json_values)
def test_any_json_document_gives_a_feed_or_a_parse_error(document: object) -> None:
    check_never_raises_else(json.dumps(document).encode())


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    version=st.sampled_from([V1, V11]) | json_scalars,
    items=st.lists(
        st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8) | json_values,
        max_size=6,
    )
    | json_values,
    extra=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4),
)
def test_any_feed_shaped_json_gives_a_feed_or_a_parse_error(
    version: object, items: object, extra: dict[str, object]
) -> None:
    document = {**extra, "version": version, "items": items}
    check_never_raises_else(json.dumps(document).encode())


@given(body=st.binary(max_size=200))
def test_any_bytes_labelled_json_give_a_feed_or_a_parse_error(body: bytes) -> None:
    check_never_raises_else(b"{" + body)


def check_never_raises_else(body: bytes) -> None:
    try:
        parsed = parse_json_feed(body, JSON_HEADERS)
    except ParseError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert_storable(parsed)
