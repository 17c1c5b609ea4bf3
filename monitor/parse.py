"""Feed bytes + response headers → ParsedFeed of plain-text entries (feedparser).
Never given a URL or path: feedparser reads local files when handed str or bytes that
look like one, so it only ever sees a BytesIO.
"""

from __future__ import annotations

import calendar
import io
import time
from datetime import UTC, datetime
from typing import Any

import feedparser

from monitor.errors import MonitorError
from monitor.models import Entry, ParsedFeed
from monitor.text import clean, html_to_text

# Matching looks at no more than this much text per field; a feed cannot make us
# tokenise megabytes per item.
MAX_FIELD_CHARS = 65_536
MAX_TITLE_CHARS = 1_000


class ParseError(MonitorError):
    """The body is not a feed we can read."""


def parse_feed(body: bytes, headers: dict[str, str], url: str) -> ParsedFeed:
    if not body.strip():
        raise ParseError("the response body is empty")
    response_headers = {k.lower(): v for k, v in headers.items()}
    response_headers.setdefault("content-location", url)
    try:
        parsed = feedparser.parse(
            io.BytesIO(body),
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as error:  # feedparser can raise on hostile input (#304)
        raise ParseError(f"the feed parser failed ({type(error).__name__})") from None
    if not parsed.get("version") and not parsed.entries:
        raise ParseError(f"this is not an RSS, Atom or RDF feed ({_bozo_reason(parsed)})")
    feed = parsed.get("feed", {})
    language = feed.get("language") or response_headers.get("content-language")
    return ParsedFeed(
        title=clean(feed.get("title", "")),
        language=_language_code(language),
        entries=tuple(_entry(raw) for raw in parsed.entries),
        warning=_bozo_reason(parsed) if parsed.get("bozo") else None,
    )


def _bozo_reason(parsed: Any) -> str:
    error = parsed.get("bozo_exception")
    if error is None:
        return "no feed elements found"
    reason = getattr(error, "getMessage", lambda: str(error))()
    return clean(f"{type(error).__name__}: {reason}")[:200]


def _language_code(language: str | None) -> str | None:
    if not language:
        return None
    return language.strip().lower().replace("_", "-").split("-")[0] or None


def _entry(raw: Any) -> Entry:
    return Entry(
        guid=_stripped(raw.get("id")),
        link=_stripped(raw.get("link")),
        title=_text_of(raw, "title")[:MAX_TITLE_CHARS],
        summary=_text_of(raw, "summary")[:MAX_FIELD_CHARS],
        content=_content(raw)[:MAX_FIELD_CHARS],
        author=clean(raw.get("author") or "")[:MAX_TITLE_CHARS],
        tags=tuple(
            clean(tag.get("term") or "") for tag in raw.get("tags") or () if tag.get("term")
        ),
        published_at=_published(raw),
    )


def _stripped(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _text_of(raw: Any, key: str) -> str:
    value = raw.get(key) or ""
    detail = raw.get(f"{key}_detail") or {}
    if "html" in (detail.get("type") or "text/html"):
        return html_to_text(value)
    return clean(value)


def _content(raw: Any) -> str:
    parts = []
    for block in raw.get("content") or ():
        value = block.get("value") or ""
        parts.append(html_to_text(value) if "html" in (block.get("type") or "") else clean(value))
    return " ".join(part for part in parts if part)


def _published(raw: Any) -> datetime | None:
    # RSS 1.0 puts dc:date in `updated`; Atom may have only `updated`.
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = raw.get(key)
        if isinstance(value, time.struct_time):
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, OSError):
                return None
    return None
