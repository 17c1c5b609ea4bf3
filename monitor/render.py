"""Alerts → the bytes each service receives: the alert document (webhook JSON), Slack
Block Kit, a console line. All escaping of feed text lives here; nothing here sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from monitor.clock import iso_seconds
from monitor.health import FeedView
from monitor.models import AlertRecord, DeliveryState, Hit, Item, Match, Message
from monitor.text import phrase_spans, tokens, truncate

SUMMARY_CHARS = 600
SLACK_SECTION_CHARS = 3000
SLACK_TITLE_CHARS = 300
MAX_HITS = 20
MAX_LINK_CHARS = 2000


def with_sources(document: dict[str, Any], sources: list[dict[str, Any]]) -> dict[str, Any]:
    """The alert with the other feeds that carried its story."""
    story = {**document["story"], "also_reported_by": sources}
    return {**document, "story": story}


def alert_document(alert_id: str, match: Match, item: Item, detected_at: Any) -> dict[str, Any]:
    """The alert as PRODUCT.md's webhook body: the one document every notifier renders."""
    entry = item.entry
    return {
        "type": "alert",
        "id": alert_id,
        "rule": match.rule,
        "matched": match.matched,
        "story": {
            "title": entry.title,
            "url": entry.link or "",
            "published_at": iso_seconds(entry.published_at) if entry.published_at else None,
            "summary": truncate(entry.summary or entry.content, SUMMARY_CHARS),
            "feed": item.feed,
            "also_reported_by": [],
        },
        "detected_at": iso_seconds(detected_at),
        "hits": [
            {"term": h.term, "field": h.field, "text": h.text, "start": h.start, "end": h.end}
            for h in match.hits[:MAX_HITS]
        ],
    }


def _highlighted_words(document: dict[str, Any]) -> list[str]:
    """The words to bold: as the feed wrote them (an inflection, a prefix match), else the
    rule's terms."""
    found = [hit["text"] for hit in document.get("hits", ()) if hit.get("text")]
    return list(dict.fromkeys(found)) or list(document["matched"])


def webhook_body(document: dict[str, Any]) -> bytes:
    """Compact, stable JSON: the same document always gives the same bytes, so a retry
    re-sends exactly what was signed before."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def digest_document(message: Message) -> dict[str, Any]:
    """A digest as webhook receivers get it: the alert documents it folds, in order."""
    return {"type": "digest", "id": message.id, "count": len(message.alerts),
            "alerts": list(message.alerts)}  # fmt: skip


def message_body(message: Message) -> bytes:
    return webhook_body(digest_document(message) if message.digest else message.alerts[0])


# --- Slack ------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Slack's three control characters, ampersand first, so feed text can never mention
    `<!channel>`, a user, or forge a `<url|label>` link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_link(url: str) -> str | None:
    """An http(s) URL fit to sit inside <…|…>, or None for anything else."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https"):
        return None
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")


def highlight(text: str, matched: list[str], escape: Any, mark: str) -> str:
    """`text` escaped with `escape`, and each matched phrase wrapped in `mark`."""
    spans = sorted(span for term in matched for span in phrase_spans(text, tuple(tokens(term))))
    pieces: list[str] = []
    cursor = 0
    for start, end in spans:
        if start < cursor:
            continue
        pieces.append(escape(text[cursor:start]))
        pieces.append(f"{mark}{escape(text[start:end])}{mark}")
        cursor = end
    pieces.append(escape(text[cursor:]))
    return "".join(pieces)


def is_notice(document: dict[str, Any]) -> bool:
    """A feed notice (failing, recovered, gone) rather than an alert."""
    return document.get("type") in NOTICE_TITLES


NOTICE_TITLES = {
    "feed_failing": "Feed failing",
    "feed_recovered": "Feed recovered",
    "feed_gone": "Feed gone",
}


def notice_text(document: dict[str, Any]) -> tuple[str, str]:
    """(title, sentence) of a feed notice."""
    return f"{NOTICE_TITLES[document['type']]}: {document['feed']}", document["message"]


def slack_message(document: dict[str, Any]) -> dict[str, Any]:
    if is_notice(document):
        title, sentence = notice_text(document)
        text = f"*{slack_escape(title)}*\n{slack_escape(sentence)}"
        return {"text": truncate(slack_escape(sentence), SLACK_SECTION_CHARS),
                "blocks": [_mrkdwn_section(text)]}  # fmt: skip
    story = document["story"]
    title = truncate(story["title"] or "(untitled)", SLACK_TITLE_CHARS)
    link = safe_link(story["url"])
    heading = f"*{_linked(slack_escape(title), story['url'], 2)}*"
    snippet = highlight(story["summary"], _highlighted_words(document), slack_escape, "*")
    context = " · ".join(
        part
        for part in (
            slack_escape(story["feed"]),
            story["published_at"] or "",
            f"rule `{slack_escape(document['rule'])}`",
            "matched: " + slack_escape(", ".join(document["matched"])),
        )
        if part
    )
    blocks: list[dict[str, Any]] = [_mrkdwn_section(heading)]
    if snippet:
        blocks.append(_mrkdwn_section(snippet))
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context, "verbatim": True}]}
    )
    fallback = f"[{document['rule']}] {title}" + (f" {link}" if link else "")
    return {"text": truncate(slack_escape(fallback), SLACK_SECTION_CHARS), "blocks": blocks}


def slack_digest(alerts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One message for many alerts: a header, then one line per alert (linked title, feed,
    rule). At most MAX_DIGEST_ALERTS alerts arrive here, so 50 blocks are never reached."""
    count = _count(alerts)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"news-monitor: {count}"}}
    ]
    for document in alerts:
        story = document["story"]
        title = slack_escape(truncate(story["title"] or "(untitled)", SLACK_TITLE_CHARS))
        source = f"{slack_escape(story['feed'])} · rule `{slack_escape(document['rule'])}`"
        heading = _linked(title, story["url"], len(source) + 4)
        blocks.append(_mrkdwn_section(f"*{heading}*\n{source}"))
    rules = ", ".join(dict.fromkeys(document["rule"] for document in alerts))
    fallback = f"news-monitor: {count} ({rules})"
    return {"text": truncate(slack_escape(fallback), SLACK_SECTION_CHARS), "blocks": blocks}


def _linked(title_markup: str, url: str, room_taken: int) -> str:
    """`<link|title>`, or the bare title when the link is not http(s) or would not fit
    in a section with the title: cutting markup short would break the link."""
    link = safe_link(url)
    if not link or len(link) > MAX_LINK_CHARS:
        return title_markup
    if len(link) + len(title_markup) + 3 + room_taken > SLACK_SECTION_CHARS:
        return title_markup
    return f"<{link}|{title_markup}>"


def _mrkdwn_section(text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate(text, SLACK_SECTION_CHARS), "verbatim": True},
    }


# --- console ----------------------------------------------------------------------------


def console_line(document: dict[str, Any]) -> str:
    if is_notice(document):
        return f"[{document['type']}] {document['message']}"
    story = document["story"]
    title = highlight(story["title"], _highlighted_words(document), lambda text: text, "**")
    when = story["published_at"] or document["detected_at"]
    matched = ", ".join(document["matched"])
    line = f"[{document['rule']}] {title} — {story['feed']}, {when} — matched: {matched}"
    return f"{line}\n    {story['url']}" if story["url"] else line


def console_text(message: Message) -> str:
    lines = [console_line(document) for document in message.alerts]
    if message.digest:
        lines.insert(0, f"--- digest {message.id}: {_count(message.alerts)} ---")
    return "\n".join(lines)


# --- plain text (Apprise, templates) ----------------------------------------------------

# What chat services turn into pings: Discord/Matrix/Telegram `@everyone`, `@here`,
# `@room`, `@user`; Slack `<!channel>`, `<@U123>`, `<#C123>`; Teams `<at>`.
# Discord's role mention is `@&id` (`<@&id>`), its nickname form `<@!id>`.
_AT_MENTION = re.compile(r"@(?=[\w&!#])")
_ANGLE_MENTION = re.compile(r"<(?=[!@#&]|at\b)", re.IGNORECASE)
# In links only what some service turns into a ping: `@everyone`, `@here`, and the id
# forms (`@123`, `@&123`) Apprise's Discord markdown makes into mentions. `/@author`
# (Medium, Mastodon) stays as written.
_URL_MENTION = re.compile(r"@(?=(?:everyone|here|channel|room)\b|[&!#\d])", re.IGNORECASE)
_URL_AFTER_HOST = re.compile(r"^([a-z][a-z0-9+.-]*://[^/?#]*)?(.*)$", re.IGNORECASE | re.DOTALL)


def neutralise_mentions(text: str) -> str:
    """Feed text that can no longer ping anyone: a zero-width space after each `@` and
    `<` that would start a mention. The text still reads the same."""
    return _ANGLE_MENTION.sub("<\u200b", _AT_MENTION.sub("@\u200b", text))


def neutralise_url(url: str) -> str:
    """A link that keeps working but can ping nobody: after the host, `<`, `>` and a
    mention-making `@` are percent-encoded (servers read `%40` in a path as `@`). The host
    part, where `@` separates a user name, is left alone."""
    found = _URL_AFTER_HOST.match(url)
    assert found is not None  # the pattern matches any string
    head, rest = found.group(1) or "", found.group(2)
    rest = _URL_MENTION.sub("%40", rest.replace("<", "%3C").replace(">", "%3E"))
    return _ANGLE_MENTION.sub("<\u200b", head) + rest


def defused(document: dict[str, Any]) -> dict[str, Any]:
    """The alert with every feed-written string made mention-free, for services whose
    formatting we do not control (Apprise targets, user templates)."""

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, str):
            return neutralise_url(value) if key == "url" else neutralise_mentions(value)
        if isinstance(value, dict):
            return {k: walk(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        return value

    return {key: walk(value, key) for key, value in document.items()}


def plain_alert(document: dict[str, Any]) -> tuple[str, str]:
    """(title, body) in plain text; the caller defuses mentions first."""
    if is_notice(document):
        return notice_text(document)
    story = document["story"]
    when = story["published_at"] or document["detected_at"]
    lines = [f"{story['feed']} · {when} · rule {document['rule']}"]
    if story["summary"]:
        lines += ["", story["summary"]]
    if story["url"]:
        lines += ["", story["url"]]
    others = [source["feed"] for source in story.get("also_reported_by", ())]
    if others:
        lines += ["", "Also reported by: " + ", ".join(others)]
    lines += ["", "Matched: " + ", ".join(document["matched"])]
    return story["title"] or "(untitled)", "\n".join(lines)


def plain_digest(alerts: Sequence[dict[str, Any]]) -> tuple[str, str]:
    entries = []
    for document in alerts:
        story = document["story"]
        line = f"• {story['title'] or '(untitled)'} — {story['feed']} (rule {document['rule']})"
        entries.append(f"{line}\n  {story['url']}" if story["url"] else line)
    return f"news-monitor: {_count(alerts)}", "\n".join(entries)


def _count(alerts: Sequence[Any]) -> str:
    return f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}"


# --- dry runs ---------------------------------------------------------------------------


def explanation(item: Item, matches: list[Match]) -> str:
    """What `news-monitor test` prints for one item: each rule it matches, and where."""
    entry = item.entry
    lines = [f"{entry.title or '(untitled)'} — {item.feed}"]
    if entry.link:
        lines.append(f"    {entry.link}")
    for match in matches:
        lines.append(f"  ✔ {match.rule}: matched {', '.join(match.matched)}")
        fields = {
            "title": entry.title,
            "summary": entry.summary,
            "content": entry.content,
            "author": entry.author,
            "tags": " · ".join(entry.tags),
        }
        for name in dict.fromkeys(hit.field for hit in match.hits):
            words = [hit.text for hit in match.hits if hit.field == name]
            shown = _around(fields[name], [h for h in match.hits if h.field == name])
            lines.append(f"      {name}: {highlight(shown, words, lambda text: text, '**')}")
    return "\n".join(lines)


def _around(text: str, hits: list[Hit], width: int = 160) -> str:
    """A window of `text` around its first hit, so long content stays readable."""
    if len(text) <= width or not hits:
        return truncate(text, width)
    start = max(0, hits[0].start - width // 3)
    return ("…" if start else "") + truncate(text[start:], width)


# --- the `alerts` command ---------------------------------------------------------------


def alert_listing(record: AlertRecord) -> str:
    """One alert as `alerts` prints it: the story, who else carried it, each notifier."""
    lines = [f"{iso_seconds(record.detected_at)}  {record.id}  [{record.rule}] {record.title}"]
    lines.append(f"    {record.feed}" + (f" — {record.url}" if record.url else ""))
    if record.also_reported_by:
        lines.append(f"    also reported by: {', '.join(record.also_reported_by)}")
    for delivery in record.deliveries:
        lines.append(f"    {delivery.notifier}: {_delivery_state(delivery)}  ({delivery.id})")
    return "\n".join(lines)


def _delivery_state(delivery: DeliveryState) -> str:
    tries = f"{delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}"
    if delivery.state == "delivered" and delivery.delivered_at:
        return f"delivered {iso_seconds(delivery.delivered_at)} after {tries}"
    error = f"; last error: {delivery.last_error}" if delivery.last_error else ""
    if delivery.state == "failed":
        return f"FAILED after {tries}{error}"
    when = f", next {iso_seconds(delivery.next_attempt_at)}" if delivery.next_attempt_at else ""
    return f"pending, {tries}{when}{error}"


def alert_record_json(record: AlertRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "rule": record.rule,
        "detected_at": iso_seconds(record.detected_at),
        "feed": record.feed,
        "title": record.title,
        "url": record.url,
        "also_reported_by": list(record.also_reported_by),
        "deliveries": [
            {
                "id": d.id,
                "notifier": d.notifier,
                "state": d.state,
                "attempts": d.attempts,
                "next_attempt_at": (
                    iso_seconds(d.next_attempt_at)
                    if d.next_attempt_at and d.state == "pending"
                    else None
                ),
                "delivered_at": iso_seconds(d.delivered_at) if d.delivered_at else None,
                "last_error": d.last_error,
            }
            for d in record.deliveries
        ],
    }


# --- the `feeds` command ----------------------------------------------------------------


def shown_url(url: str) -> str:
    """A feed address fit for logs and tables: its query and any user/password hidden,
    since either can carry a token."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable URL)"
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{query}"


def feeds_table(views: Sequence[FeedView]) -> str:
    """A fixed-width table of every feed's health; errors and moves on their own lines."""
    header = ("FEED", "STATUS", "LAST SUCCESS", "NEXT POLL", "ITEMS")
    rows = [
        (
            view.name,
            view.status + (f" ({view.failures} in a row)" if view.failures else ""),
            iso_seconds(view.last_success_at) if view.last_success_at else "never",
            iso_seconds(view.next_poll_at) if view.next_poll_at else "not polled",
            str(view.items_seen),
        )
        for view in views
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))]
    for view, row in zip(views, rows, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if view.last_error:
            lines.append(f"    last error: {view.last_error}")
        if view.moved_to:
            lines.append(f"    moved permanently to {shown_url(view.moved_to)}; update the config")
    return "\n".join(lines)


def feed_view_json(view: FeedView) -> dict[str, Any]:
    return {
        "feed": view.name,
        "status": view.status,
        "consecutive_failures": view.failures,
        "last_success_at": iso_seconds(view.last_success_at) if view.last_success_at else None,
        "last_error": view.last_error,
        "next_poll_at": iso_seconds(view.next_poll_at) if view.next_poll_at else None,
        "items_seen": view.items_seen,
        "moved_to": shown_url(view.moved_to) if view.moved_to else None,
    }
