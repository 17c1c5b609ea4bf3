"""monitor/render.py: the alert document, webhook bytes, Slack Block Kit, console line."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from monitor.config import RuleConfig
from monitor.models import Entry, Hit, Item, Match
from monitor.render import (
    SLACK_SECTION_CHARS,
    alert_document,
    console_line,
    safe_link,
    slack_escape,
    slack_message,
    webhook_body,
)
from monitor.rules import compile_rules

PUBLISHED = datetime(2024, 10, 24, 9, 12, tzinfo=UTC)
DETECTED = datetime(2024, 10, 24, 9, 13, 2, 500_000, tzinfo=UTC)


def make_item(
    title: str = "North Korean troops reach Kursk",
    summary: str = "Officials say North Korean troops arrived near Kursk.",
    content: str = "",
    link: str | None = "https://example.com/news/1",
    published_at: datetime | None = PUBLISHED,
    feed: str = "euromaidan",
) -> Item:
    entry = Entry(
        guid="g1",
        link=link,
        title=title,
        summary=summary,
        content=content,
        author="",
        tags=(),
        published_at=published_at,
    )
    return Item(feed=feed, key="g:g1", entry=entry, language="en", content_hash="h")


def make_document(
    terms: tuple[str, ...] = ("north korean troops",), rule: str = "dprk-troops", **item: Any
) -> dict[str, Any]:
    match = Match(rule, tuple(Hit(term, "title") for term in terms))
    return alert_document("al_123", match, make_item(**item), DETECTED)


# --- the alert document (webhook body) -----------------------------------------------------------


def _product_body_example() -> dict[str, Any]:
    """The webhook body example in PRODUCT.md, with its "…" placeholders filled in."""
    text = """{"type": "alert", "id": "x", "rule": "dprk-troops",
     "matched": ["north korean troops"],
     "story": {"title": "x", "url": "x", "published_at": "2024-10-24T09:12:00Z",
               "summary": "x", "feed": "euromaidan", "also_reported_by": []},
     "detected_at": "2024-10-24T09:13:02Z"}"""
    result: dict[str, Any] = json.loads(text)
    return result


def test_alert_document_extends_the_product_body_only_with_hits() -> None:
    # `hits` (which words matched, where) is our documented addition to PRODUCT.md's body.
    example = _product_body_example()
    document = make_document()
    assert set(document) - set(example) == {"hits"}
    assert set(document["story"]) == set(example["story"])


def test_alert_document_has_the_product_shape() -> None:
    example = _product_body_example()
    document = make_document()
    assert set(example) <= set(document)
    assert set(document["story"]) == set(example["story"])
    assert document["type"] == "alert"
    assert document["id"] == "al_123"
    assert document["rule"] == example["rule"]
    assert document["matched"] == example["matched"]
    assert document["story"]["published_at"] == example["story"]["published_at"]
    assert document["detected_at"] == example["detected_at"]
    assert document["story"]["feed"] == example["story"]["feed"]
    assert document["story"]["also_reported_by"] == []
    assert document["story"]["title"] == "North Korean troops reach Kursk"
    assert document["story"]["url"] == "https://example.com/news/1"
    assert json.loads(webhook_body(document)) == document


def test_alert_document_types_match_the_example() -> None:
    example = _product_body_example()
    document = make_document()
    for key, value in example.items():
        assert type(document[key]) is type(value), key
    for key, value in example["story"].items():
        assert type(document["story"][key]) is type(value), key


def test_alert_document_matched_is_sorted_and_unique() -> None:
    document = make_document(terms=("troops", "kursk", "troops"))
    assert document["matched"] == ["kursk", "troops"]


def test_alert_document_undated_and_linkless() -> None:
    document = make_document(published_at=None, link=None)
    assert document["story"]["published_at"] is None
    assert document["story"]["url"] == ""


def test_alert_document_uses_content_when_summary_is_empty() -> None:
    document = make_document(summary="", content="Body text")
    assert document["story"]["summary"] == "Body text"


def test_alert_document_summary_is_bounded() -> None:
    document = make_document(summary="word " * 20_000)
    assert len(document["story"]["summary"]) <= 600
    assert document["story"]["summary"].endswith("…")


def test_alert_document_times_are_utc() -> None:
    from datetime import timedelta, timezone

    kyiv = timezone(timedelta(hours=3))
    document = make_document(published_at=datetime(2024, 10, 24, 12, 12, tzinfo=kyiv))
    assert document["story"]["published_at"] == "2024-10-24T09:12:00Z"


# --- webhook_body --------------------------------------------------------------------------------


def test_webhook_body_is_stable_bytes() -> None:
    document = make_document(title="Genève “talks” <b> & 北朝鮮")
    body = webhook_body(document)
    assert isinstance(body, bytes)
    assert body == webhook_body(make_document(title="Genève “talks” <b> & 北朝鮮"))
    assert body == webhook_body(json.loads(body))
    assert body.decode("utf-8")  # valid UTF-8
    assert "Genève “talks” <b> & 北朝鮮".encode() in body  # not \\u-escaped
    assert b"\n" not in body
    assert b'"type":"alert"' in body  # compact separators


def test_webhook_body_same_document_other_key_order_same_bytes() -> None:
    document = make_document()
    reordered = dict(reversed(list(document.items())))
    # A document read back from storage comes in the order it was written.
    assert webhook_body(json.loads(webhook_body(document))) == webhook_body(document)
    assert json.loads(webhook_body(reordered)) == json.loads(webhook_body(document))


# --- Slack ---------------------------------------------------------------------------------------

HOSTILE = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U123>",
    "<#C123|general>",
    "<!subteam^S123>",
    "<https://evil|https://bank>",
    "<http://evil.example>",
    "&lt;!channel&gt;",
    "a & b",
    "<<!channel>>",
    "</>",
]


def _texts(message: dict[str, Any]) -> list[str]:
    """Every text field in a Slack message: the fallback and each block's texts."""
    found = [message["text"]]
    for block in message["blocks"]:
        if "text" in block:
            found.append(block["text"]["text"])
        for element in block.get("elements", ()):
            found.append(element["text"])
    return found


def _validate_blocks(message: dict[str, Any]) -> None:
    assert isinstance(message["text"], str) and message["text"]
    assert 1 <= len(message["blocks"]) <= 50
    for raw in message["blocks"]:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()
        assert block.to_dict() == raw  # nothing dropped or unknown


def _links(text: str) -> list[str]:
    return re.findall(r"<([^<>|]*)\|", text)


def _assert_no_feed_markup(message: dict[str, Any], link: str | None) -> None:
    """Only our own `*<link|…>*` heading may hold angle brackets; feed text never does."""
    for text in _texts(message):
        prefix = f"*<{link}|"
        if link is not None and text.startswith(prefix) and text.endswith(">*"):
            text = text[len(prefix) : -len(">*")]
        assert "<" not in text and ">" not in text
        for forbidden in ("<!", "<@", "<http", "<#"):
            assert forbidden not in text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_slack_escapes_hostile_headlines_and_summaries(hostile: str) -> None:
    document = make_document(
        title=f"{hostile} North Korean troops {hostile}",
        summary=f"{hostile} says North Korean troops {hostile} arrived",
        feed=f"feed{hostile}",
        rule=f"rule{hostile}",
    )
    message = slack_message(document)
    _validate_blocks(message)
    _assert_no_feed_markup(message, "https://example.com/news/1")
    heading = message["blocks"][0]["text"]["text"]
    assert heading.startswith("*<https://example.com/news/1|")
    assert _links(heading) == ["https://example.com/news/1"]
    assert slack_escape(hostile) in heading
    snippet = message["blocks"][1]["text"]["text"]
    assert slack_escape(hostile) in snippet
    assert "*North Korean troops*" in snippet


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt;", "&amp;lt;"),  # ampersand first: no double meaning
        ("<https://evil|https://bank>", "&lt;https://evil|https://bank&gt;"),
        ("plain", "plain"),
    ],
)
def test_slack_escape(raw: str, escaped: str) -> None:
    assert slack_escape(raw) == escaped


def test_slack_message_structure() -> None:
    message = slack_message(make_document())
    _validate_blocks(message)
    heading, snippet, context = message["blocks"]
    assert heading["type"] == "section"
    assert heading["text"]["text"] == (
        "*<https://example.com/news/1|North Korean troops reach Kursk>*"
    )
    assert snippet["text"]["text"] == "Officials say *North Korean troops* arrived near Kursk."
    assert context["type"] == "context"
    context_text = context["elements"][0]["text"]
    for part in ("euromaidan", "2024-10-24T09:12:00Z", "dprk-troops", "north korean troops"):
        assert part in context_text
    assert "dprk-troops" in message["text"]
    assert "North Korean troops reach Kursk" in message["text"]


@pytest.mark.parametrize(
    ("summary", "terms", "bold"),
    [
        ("North Korean troops arrived", ("north korean troops",), ["North Korean troops"]),
        ("north-korean troops arrived", ("north korean troops",), ["north-korean troops"]),
        ("NORTH KOREAN TROOPS", ("north korean troops",), ["NORTH KOREAN TROOPS"]),
        ("Talks in Genève", ("geneve",), ["Genève"]),
        (
            "drones then missiles then drones",
            ("drones", "missiles"),
            ["drones", "missiles", "drones"],
        ),
        ("Kyiv & <!here> drones", ("drones",), ["drones"]),
        ("a warning, then war", ("war",), ["war"]),
        ("Северная Корея", ("корея",), ["Корея"]),
    ],
)
def test_slack_snippet_bolds_matched_words(
    summary: str, terms: tuple[str, ...], bold: list[str]
) -> None:
    message = slack_message(make_document(terms=terms, summary=summary))
    _validate_blocks(message)
    snippet = message["blocks"][1]["text"]["text"]
    assert re.findall(r"\*([^*]+)\*", snippet) == bold
    assert snippet.replace("*", "") == slack_escape(summary)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "",
        "not a url",
    ],
)
def test_slack_never_links_unsafe_urls(url: str) -> None:
    message = slack_message(make_document(link=url))
    _validate_blocks(message)
    assert safe_link(url) is None
    heading = message["blocks"][0]["text"]["text"]
    assert heading == "*North Korean troops reach Kursk*"
    for text in _texts(message):
        assert "javascript" not in text.lower()
        assert "<" not in text


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("https://example.com/a", "https://example.com/a"),
        ("HTTP://example.com/a", "HTTP://example.com/a"),
        ("https://example.com/a?x=1&y=2#f", "https://example.com/a?x=1&y=2#f"),
        ("https://example.com/a|<!channel>", "https://example.com/a%7C%3C!channel%3E"),
        ("https://example.com/a b>c", "https://example.com/a%20b%3Ec"),
        ("https://example.com/Genève", "https://example.com/Gen%C3%A8ve"),
        ("https://example.com/%7Euser", "https://example.com/%7Euser"),
    ],
)
def test_safe_link(url: str, linked: str) -> None:
    assert safe_link(url) == linked


def test_slack_link_cannot_be_forged_through_the_url() -> None:
    message = slack_message(make_document(link="https://evil.example/x|https://bank.example>"))
    _validate_blocks(message)
    heading = message["blocks"][0]["text"]["text"]
    assert _links(heading) == ["https://evil.example/x%7Chttps://bank.example%3E"]
    assert heading.count("<") == 1 and heading.count(">") == 1


def test_slack_sections_are_bounded_for_huge_fields() -> None:
    document = make_document(title="North Korean troops " * 5000, summary="troops & " * 12_000)
    assert len("troops & " * 12_000) > 100_000
    message = slack_message(document)
    _validate_blocks(message)
    for block in message["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= SLACK_SECTION_CHARS


def test_slack_sections_are_bounded_for_a_document_with_a_huge_summary() -> None:
    # A document built elsewhere (say, read back from storage) may carry the whole text.
    document = make_document()
    document["story"]["summary"] = "North Korean troops <!channel> & " * 4000
    assert len(document["story"]["summary"]) > 100_000
    message = slack_message(document)
    _validate_blocks(message)
    snippet = message["blocks"][1]["text"]["text"]
    assert len(snippet) <= SLACK_SECTION_CHARS
    assert snippet.startswith("*North Korean troops* &lt;!channel&gt; &amp;")
    _assert_no_feed_markup(message, "https://example.com/news/1")


def test_slack_ampersand_heavy_title_stays_within_limits() -> None:
    message = slack_message(make_document(title="&" * 2000, summary="<" * 2000))
    _validate_blocks(message)
    _assert_no_feed_markup(message, "https://example.com/news/1")


def test_slack_heading_keeps_the_title_with_a_very_long_url() -> None:
    message = slack_message(make_document(link="https://example.com/" + "a" * 5000))
    _validate_blocks(message)
    heading = message["blocks"][0]["text"]["text"]
    assert "North Korean troops reach Kursk" in heading


def test_slack_untitled_story() -> None:
    message = slack_message(make_document(title=""))
    _validate_blocks(message)
    assert "(untitled)" in message["blocks"][0]["text"]["text"]


def test_slack_empty_summary_has_no_snippet_block() -> None:
    message = slack_message(make_document(summary="", content=""))
    _validate_blocks(message)
    assert [block["type"] for block in message["blocks"]] == ["section", "context"]


_HOSTILE_TEXT = st.lists(
    st.sampled_from(["<", ">", "&", "!", "@", "|", "#", "*", " ", "channel", "here", "http"])
    | st.characters(),
    max_size=40,
).map("".join)


@given(_HOSTILE_TEXT, _HOSTILE_TEXT, _HOSTILE_TEXT)
def test_slack_never_lets_feed_markup_through(title: str, summary: str, feed: str) -> None:
    document = make_document(title=title, summary=summary, feed=feed)
    message = slack_message(document)
    _validate_blocks(message)
    _assert_no_feed_markup(message, "https://example.com/news/1")


# --- console -------------------------------------------------------------------------------------


def test_console_line_contains_rule_title_feed_and_url() -> None:
    document = make_document(title="Troops massing near Kursk", terms=("kursk",))
    line = console_line(document)
    assert "dprk-troops" in line
    assert "euromaidan" in line
    assert "https://example.com/news/1" in line
    assert "Troops massing near **Kursk**" in line
    assert line.replace("**", "").count("Troops massing near Kursk") == 1
    assert "2024-10-24T09:12:00Z" in line
    assert "kursk" in line.split("matched:")[1]


def test_console_line_undated_and_linkless() -> None:
    line = console_line(make_document(published_at=None, link=None))
    assert "2024-10-24T09:13:02Z" in line  # falls back to detection time
    assert "\n" not in line
    assert "North Korean troops" in line.replace("**", "")


# --- with real rule matches ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "summary", "bold"),
    [
        ("North Korean troops", "Officials saw north-korean troops.", "north-korean troops"),
        ("deploy", "Pyongyang deployed more soldiers.", "deployed"),
        ("North Korean troops", "Seen: North&<Korean troops>", "North&amp;&lt;Korean troops"),
    ],
)
def test_snippet_bolds_the_words_the_rule_found(term: str, summary: str, bold: str) -> None:
    rules = compile_rules([RuleConfig(name="r", any=(term,))])
    item = make_item(title="Update", summary=summary)
    [match] = rules.match(item)
    message = slack_message(alert_document("al_1", match, item, DETECTED))
    _validate_blocks(message)
    _assert_no_feed_markup(message, "https://example.com/news/1")
    snippet = message["blocks"][1]["text"]["text"]
    assert f"*{bold}*" in snippet
