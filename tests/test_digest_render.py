"""monitor/render.py for digests and plain-text targets: Slack digests that hostile feeds
cannot break out of, the digest document, and mention-free text for Apprise and templates."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from monitor.batching import MAX_DIGEST_ALERTS
from monitor.models import Entry, Hit, Item, Match, Message
from monitor.render import (
    MAX_LINK_CHARS,
    SLACK_SECTION_CHARS,
    alert_document,
    console_text,
    defused,
    digest_document,
    message_body,
    neutralise_mentions,
    neutralise_url,
    plain_alert,
    plain_digest,
    safe_link,
    slack_digest,
    webhook_body,
)

ZWSP = "\u200b"
DETECTED = datetime(2026, 11, 24, 12, 0, 5, tzinfo=UTC)
PUBLISHED = datetime(2026, 11, 24, 11, 58, tzinfo=UTC)

HOSTILE_TITLES = [
    "<!channel> DPRK troops",
    "<!here|here> troops",
    "<@U123> look: troops",
    "<#C0123|general> troops",
    "<https://evil.example|click here> troops",
    "Troops & tanks &lt;!channel&gt;",
    "troops " + "<" * 400,
    "troops " + "&" * 2000,
    "Very long troops headline " * 300,
    "",
    "@everyone @here troops",
    "*bold* _it_ ~strike~ `code` > quote",
]
HOSTILE_URLS = [
    "https://news.example/a",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https://evil.example/x|https://bank.example>",
    "https://evil.example/<!channel>",
    "",
    "ftp://files.example/x",
    "https://news.example/" + "a" * 5000,
    "HTTPS://NEWS.EXAMPLE/UPPER",
    "https://news.example/@everyone",
]


def document(
    title: str = "DPRK troops reach Kursk",
    url: str = "https://news.example/a",
    feed: str = "wire",
    rule: str = "dprk",
    summary: str = "Officials say DPRK troops arrived.",
    n: int = 0,
) -> dict[str, Any]:
    entry = Entry(f"g{n}", url, title, summary, "", "", (), PUBLISHED)
    item = Item(feed, f"k{n}", entry, "en", f"h{n}")
    match = Match(rule, (Hit("troops", "title", 0, 6, "troops"),))
    return alert_document(f"al_{n}", match, item, DETECTED)


def hostile_alerts(count: int = MAX_DIGEST_ALERTS) -> list[dict[str, Any]]:
    alerts = []
    for n in range(count):
        alert = document(
            title=HOSTILE_TITLES[n % len(HOSTILE_TITLES)],
            url=HOSTILE_URLS[n % len(HOSTILE_URLS)],
            feed=f"feed<!channel>{n}",
            rule=f"rule <@U{n}>",
            n=n,
        )
        alerts.append(alert)
    return alerts


# --- Slack digest -----------------------------------------------------------------------


def section_texts(message: dict[str, Any]) -> list[str]:
    return [block["text"]["text"] for block in message["blocks"] if block["type"] == "section"]


def without_own_link(text: str, url: str) -> str:
    """The text with our one `<link|` … `>` heading removed, if it is there."""
    link = safe_link(url)
    if link and f"*<{link}|" in text:
        head, _, rest = text.partition(f"*<{link}|")
        label, _, tail = rest.partition(">*")
        return head + label + tail
    return text


def test_a_hostile_digest_of_forty_is_valid_block_kit_within_slack_limits() -> None:
    alerts = hostile_alerts()
    message = slack_digest(alerts)

    blocks = message["blocks"]
    assert len(blocks) == 1 + MAX_DIGEST_ALERTS <= 50
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.validate_json()
        assert block.to_dict() == raw  # nothing dropped or unknown
    header = blocks[0]
    assert header["type"] == "header"
    assert len(header["text"]["text"]) <= 150
    assert header["text"]["text"] == "news-monitor: 40 alerts"
    assert isinstance(message["text"], str) and 0 < len(message["text"]) <= SLACK_SECTION_CHARS
    sections = section_texts(message)
    assert len(sections) == MAX_DIGEST_ALERTS
    for raw in blocks[1:]:
        # verbatim: Slack must not turn a plain `@here` or `#channel` into a live one.
        assert raw["text"]["type"] == "mrkdwn" and raw["text"]["verbatim"] is True
    for text in sections:
        assert len(text) <= SLACK_SECTION_CHARS


def test_a_hostile_digest_has_no_live_mentions_or_forged_links() -> None:
    alerts = hostile_alerts()
    message = slack_digest(alerts)
    texts = [message["text"], *section_texts(message)]
    for text in texts:
        for live in ("<!", "<@", "<#"):
            assert live not in text
    for alert, text in zip(alerts, section_texts(message), strict=True):
        url = alert["story"]["url"]
        rest = without_own_link(text, url)
        assert "<" not in rest and ">" not in rest, text
        links = re.findall(r"<([^<>|]*)\|", text)
        link = safe_link(url)
        if link and len(link) <= MAX_LINK_CHARS:
            assert links == [link]
            assert urlsplit(link).scheme.lower() in ("http", "https")
        else:
            assert links == []  # javascript:, data:, ftp:, empty, too long: plain title


def test_a_digest_line_shows_title_feed_and_rule_escaped() -> None:
    message = slack_digest(
        [document(title="Troops & <tanks>", feed="wire & co", rule="dprk", n=1), document(n=2)]
    )
    first = section_texts(message)[0]
    assert first == (
        "*<https://news.example/a|Troops &amp; &lt;tanks&gt;>*\nwire &amp; co · rule `dprk`"
    )
    assert message["blocks"][0]["text"]["text"] == "news-monitor: 2 alerts"
    assert message["text"] == "news-monitor: 2 alerts (dprk)"


def test_a_digest_of_one_says_one_alert() -> None:
    message = slack_digest([document()])
    assert message["blocks"][0]["text"]["text"] == "news-monitor: 1 alert"


def test_a_digest_fallback_lists_each_rule_once_escaped() -> None:
    alerts = [document(rule="a<!channel>", n=1), document(rule="b", n=2), document(rule="b", n=3)]
    assert slack_digest(alerts)["text"] == "news-monitor: 3 alerts (a&lt;!channel&gt;, b)"


def test_a_digest_line_with_a_long_link_and_an_escaped_title_stays_whole() -> None:
    url = "https://news.example/" + "a" * (MAX_LINK_CHARS - 30)
    assert safe_link(url) == url and len(url) <= MAX_LINK_CHARS
    [text] = section_texts(slack_digest([document(title="&" * 400, url=url)]))
    assert len(text) <= SLACK_SECTION_CHARS
    assert text.count("<") == text.count(">")  # the link is closed
    assert text.endswith("wire · rule `dprk`")


# --- the digest document ----------------------------------------------------------------


def test_digest_document_folds_the_alerts_in_order() -> None:
    alerts = (document(n=1), document(title="Другий заголовок", n=2), document(n=3))
    message = Message("dg_abc", alerts, digest=True)
    folded = digest_document(message)
    assert folded == {"type": "digest", "id": "dg_abc", "count": 3, "alerts": list(alerts)}
    body = message_body(message)
    assert json.loads(body) == folded
    assert "Другий заголовок".encode() in body  # UTF-8, not \u escapes
    assert b'": ' not in body and b'", "' not in body  # compact separators


def test_a_single_alert_body_is_the_alert_document_itself() -> None:
    alert = document()
    body = message_body(Message("msg_1", (alert,)))
    assert body == webhook_body(alert)
    assert json.loads(body) == alert
    assert json.loads(body)["type"] == "alert"


def test_message_body_is_stable_bytes_for_a_retry() -> None:
    alerts = (document(n=1), document(n=2))
    first = message_body(Message("dg_x", alerts, digest=True))
    assert first == message_body(Message("dg_x", copy.deepcopy(alerts), digest=True))
    # The alerts as the store reads them back: the same bytes, so a retry signs the same.
    stored = tuple(json.loads(json.dumps(alert, ensure_ascii=False)) for alert in alerts)
    assert first == message_body(Message("dg_x", stored, digest=True))
    assert first != message_body(Message("dg_y", alerts, digest=True))


def test_console_text_heads_a_digest_with_its_id_and_count() -> None:
    alerts = (document(title="First troops", n=1), document(title="Second troops", n=2))
    lines = console_text(Message("dg_abc", alerts, digest=True)).splitlines()
    assert lines[0] == "--- digest dg_abc: 2 alerts ---"
    assert lines[1].startswith("[dprk] First **troops** — wire")
    assert [line for line in lines if line.startswith("[dprk]")][1].startswith("[dprk] Second")
    single = console_text(Message("msg_1", alerts[:1]))
    assert not single.startswith("---") and "First" in single


# --- neutralise_mentions ----------------------------------------------------------------

_MENTIONISH = st.lists(
    st.sampled_from(
        [
            "@",
            "<",
            ">",
            "!",
            "#",
            "&",
            "|",
            " ",
            "everyone",
            "here",
            "channel",
            "room",
            "at",
            "AT",
            "U123",
            "é",
            "_",
            "1",
            ZWSP,
            "\n",
        ]
    )
    | st.characters(),
    max_size=40,
).map("".join)

_LIVE = [
    re.compile(r"@\w"),  # @everyone, @here, @room, @user
    re.compile(r"<[!@#]"),  # Slack <!channel>, <@U123>, <#C123>
    re.compile(r"<at\b", re.IGNORECASE),  # Teams <at>
]


@given(_MENTIONISH)
def test_neutralised_text_has_nothing_live_and_reads_the_same(text: str) -> None:
    out = neutralise_mentions(text)
    for live in _LIVE:
        assert not live.search(out), (text, out)
    for word in ("@everyone", "@here", "<!", "<@", "<#"):
        assert word not in out.lower()
    assert out.replace(ZWSP, "") == text.replace(ZWSP, "")
    assert neutralise_mentions(out) == out  # idempotent: defusing twice changes nothing


@given(_MENTIONISH.filter(lambda text: ZWSP not in text))
def test_removing_the_zero_width_spaces_gives_back_the_input(text: str) -> None:
    assert neutralise_mentions(text).replace(ZWSP, "") == text


@given(st.text(alphabet=st.characters(exclude_characters="@<")))
def test_text_without_at_or_angle_is_left_alone(text: str) -> None:
    assert neutralise_mentions(text) == text


@pytest.mark.parametrize(
    ("raw", "defused_text"),
    [
        ("@everyone", f"@{ZWSP}everyone"),
        ("<!channel>", f"<{ZWSP}!channel>"),
        ("<@U123>", f"<{ZWSP}@{ZWSP}U123>"),
        ("<#C1|general>", f"<{ZWSP}#C1|general>"),
        ("<at>Boss</at>", f"<{ZWSP}at>Boss</at>"),
        ("a @ b", "a @ b"),
        ("3 < 4 > 2", "3 < 4 > 2"),
        # An email address in feed text is touched too: it reads the same, but a copied
        # address carries the invisible character.
        ("mail press@agency.org", f"mail press@{ZWSP}agency.org"),
    ],
)
def test_neutralise_mentions_examples(raw: str, defused_text: str) -> None:
    assert neutralise_mentions(raw) == defused_text


# --- neutralise_url ---------------------------------------------------------------------

_ORDINARY_URLS = st.builds(
    lambda scheme, host, path, query: f"{scheme}://{host}/{path}" + (f"?{query}" if query else ""),
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,20}\.(example|org|com)", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9._~/%-]{0,40}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9=&_-]{0,30}", fullmatch=True),
)


@given(_ORDINARY_URLS)
def test_ordinary_urls_pass_unchanged(url: str) -> None:
    assert neutralise_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "https://medium.com/@author/a-post-123",
        "https://mastodon.social/@Gargron/109",
        "https://user:pw@news.example/a",
        "mailto:press@agency.org",
        "https://news.example/@heresy",  # not @here: a word boundary is needed
        "https://news.example/a?q=%40everyone",
    ],
)
def test_urls_with_other_ats_pass_unchanged(url: str) -> None:
    assert neutralise_url(url) == url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.example/@everyone", "https://x.example/%40everyone"),
        ("https://x.example/@Here/now", "https://x.example/%40Here/now"),
        ("https://x.example/a?to=@channel", "https://x.example/a?to=%40channel"),
        ("https://x.example/@room", "https://x.example/%40room"),
    ],
)
def test_urls_with_a_broadcast_mention_are_percent_encoded(url: str, expected: str) -> None:
    out = neutralise_url(url)
    assert out == expected
    assert urlsplit(out).hostname == urlsplit(url).hostname  # still the same site


def test_a_url_with_userinfo_keeps_its_host() -> None:
    url = "https://rss@here.news/a"
    assert urlsplit(neutralise_url(url)).hostname == "here.news"


# --- defused ----------------------------------------------------------------------------


def test_defused_neutralises_feed_text_and_keeps_links_working() -> None:
    original = document(
        title="@everyone <!channel> DPRK troops",
        summary="<@U123> says troops",
        url="https://news.example/a?x=1&y=2",
        feed="wire@desk",
    )
    original["story"]["also_reported_by"] = [
        {"feed": "other", "title": "<!here> troops", "url": "https://other.example/b"}
    ]
    kept = copy.deepcopy(original)

    out = defused(original)

    assert original == kept  # the stored document is not changed
    story = out["story"]
    assert story["url"] == "https://news.example/a?x=1&y=2"
    assert story["also_reported_by"][0]["url"] == "https://other.example/b"
    assert story["title"] == f"@{ZWSP}everyone <{ZWSP}!channel> DPRK troops"
    assert story["summary"] == f"<{ZWSP}@{ZWSP}U123> says troops"
    assert story["also_reported_by"][0]["title"] == f"<{ZWSP}!here> troops"
    assert story["feed"] == f"wire@{ZWSP}desk"
    # Everything that is not a string is left as it was.
    assert out["hits"][0]["start"] == 0 and out["hits"][0]["end"] == 6
    assert story["published_at"] == original["story"]["published_at"]
    assert out["matched"] == ["troops"] and out["rule"] == "dprk"


def test_defused_url_with_a_broadcast_mention_still_links_to_the_same_page() -> None:
    out = defused(document(url="https://news.example/@everyone/story"))
    assert out["story"]["url"] == "https://news.example/%40everyone/story"
    assert safe_link(out["story"]["url"]) == out["story"]["url"]


@given(_MENTIONISH, _MENTIONISH, _MENTIONISH)
def test_defused_feed_text_has_nothing_live(title: str, summary: str, other: str) -> None:
    out = defused(document(title=title, summary=summary, feed=other))
    for text in (out["story"]["title"], out["story"]["summary"], out["story"]["feed"]):
        for live in _LIVE:
            assert not live.search(text)


@pytest.mark.parametrize(
    "url", ["https://evil.example/<@123456789>", "https://evil.example/<!channel>"]
)
def test_defused_url_carries_no_mention_markup(url: str) -> None:
    out = defused(document(url=url))["story"]["url"]
    assert "<@" not in out and "<!" not in out


# --- plain text ---------------------------------------------------------------------------


def test_plain_alert_has_title_and_every_part_in_the_body() -> None:
    alert = document(title="DPRK troops reach Kursk", summary="Officials say so.")
    alert["story"]["also_reported_by"] = [{"feed": "other", "title": "t", "url": None}]
    title, body = plain_alert(alert)
    assert title == "DPRK troops reach Kursk"
    assert body.splitlines() == [
        "wire · 2026-11-24T11:58:00Z · rule dprk",
        "",
        "Officials say so.",
        "",
        "https://news.example/a",
        "",
        "Also reported by: other",
        "",
        "Matched: troops",
    ]


def test_plain_alert_of_an_untitled_linkless_story() -> None:
    title, body = plain_alert(document(title="", url="", summary=""))
    assert title == "(untitled)"
    assert "https://" not in body and "Also reported by" not in body


def test_plain_digest_lists_each_alert_with_its_link() -> None:
    alerts = [document(title="One troops", n=1), document(title="", url="", n=2)]
    title, body = plain_digest(alerts)
    assert title == "news-monitor: 2 alerts"
    assert body.splitlines() == [
        "• One troops — wire (rule dprk)",
        "  https://news.example/a",
        "• (untitled) — wire (rule dprk)",
    ]
