"""Feed bytes + response headers → ParsedFeed of plain-text entries: feedparser for RSS,
Atom and RDF, monitor.jsonfeed for JSON Feed, and before feedparser monitor.fastfeed for
plain RSS 2.0 and Atom 1.0, giving exactly what feedparser would for about a ninth of the
CPU. feedparser is never given a URL or path: it reads local files when handed str or
bytes that look like one, so it only ever sees a BytesIO.
"""

from __future__ import annotations

import calendar
import io
import re
import time
from datetime import UTC, datetime
from typing import Any

from monitor.errors import MonitorError
from monitor.models import Entry, ParsedFeed
from monitor.text import clean, html_to_text

# Matching looks at no more than this much text per field; a feed cannot make us
# tokenise megabytes per item.
MAX_FIELD_CHARS = 65_536
MAX_TITLE_CHARS = 1_000
_OUT_OF_MEMORY = "the feed needs more memory to parse than is allowed"


class ParseError(MonitorError):
    """The body is not a feed we can read."""


class ParseMemoryError(ParseError):
    """Parsing needed more memory than the process may use (a worker's RLIMIT_AS)."""


def parse_feed(body: bytes, headers: dict[str, str], url: str) -> ParsedFeed:
    try:
        return _parse(body, headers, url)
    except MemoryError:
        # Raised anywhere from feedparser to our own text cleaning; under a worker's
        # address-space cap it is this feed's doing, and the caller may want to know.
        raise ParseMemoryError(_OUT_OF_MEMORY) from None


def _parse(body: bytes, headers: dict[str, str], url: str) -> ParsedFeed:
    if not body.strip():
        raise ParseError("the response body is empty")
    # Imported here because monitor.jsonfeed and monitor.fastfeed build on this module's
    # errors, limits and entry reduction.
    from monitor import fastfeed, jsonfeed

    if jsonfeed.looks_like_json(body, headers):
        return jsonfeed.parse_json_feed(body, headers)
    response_headers = _response_headers(body, headers, url)
    fast = fastfeed.fast_parse(body, response_headers, url)
    if fast is not None:
        return fast
    return _parse_with_feedparser(body, response_headers)


def _response_headers(body: bytes, headers: dict[str, str], url: str) -> dict[str, str]:
    """Headers as both parsers read them: lowercased, a misleading default charset dropped,
    the feed's location as `content-location` (where feedparser joins relative links)."""
    response_headers = _trusted_charset({k.lower(): v for k, v in headers.items()}, body)
    response_headers.setdefault("content-location", url)
    return response_headers


def _parse_with_feedparser(body: bytes, response_headers: dict[str, str]) -> ParsedFeed:
    """What feedparser makes of the body; `response_headers` are lowercased, with the
    feed's location as `content-location`."""
    # Imported here: the daemon's own process only needs this module's errors, and
    # feedparser would add 12 MB to it; parser workers import it once.
    import feedparser

    try:
        parsed = feedparser.parse(
            io.BytesIO(body),
            response_headers=response_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except MemoryError:
        raise
    except Exception as error:  # feedparser can raise on hostile input (#304)
        raise ParseError(f"the feed parser failed ({type(error).__name__})") from None
    if isinstance(parsed.get("bozo_exception"), MemoryError):
        # What the loose parser salvaged after a failed allocation is not to be trusted.
        raise ParseMemoryError(_OUT_OF_MEMORY)
    if not parsed.get("version") and not parsed.entries:
        raise ParseError(f"this is not an RSS, Atom or RDF feed ({_bozo_reason(parsed)})")
    feed = parsed.get("feed", {})
    language = feed.get("language") or response_headers.get("content-language")
    return ParsedFeed(
        title=clean(feed.get("title", "")),
        language=language_code(language),
        entries=tuple(_entry(raw) for raw in parsed.entries),
        warning=_bozo_reason(parsed) if parsed.get("bozo") else None,
    )


# What servers label every text file with by default, whatever it holds.
_DEFAULT_CHARSETS = {"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii", "windows-1252"}
_CHARSET_PARAM = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)\"?", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def _trusted_charset(headers: dict[str, str], body: bytes) -> dict[str, str]:
    """The headers, without a default-looking charset that the document itself contradicts.
    The HTTP header wins by the RFCs, but a server labelling a windows-1251 feed
    ISO-8859-1 decodes without error into mojibake, and a Cyrillic rule then silently
    never matches; a document that names its own encoding knows better."""
    content_type = headers.get("content-type", "")
    declared = _CHARSET_PARAM.search(content_type)
    written = _XML_ENCODING.match(body[:200].removeprefix(b"\xef\xbb\xbf"))
    if not declared or not written:
        return headers
    header_charset, document_charset = declared.group(1).lower(), written.group(1).decode().lower()
    if header_charset in _DEFAULT_CHARSETS and document_charset not in _DEFAULT_CHARSETS:
        return {**headers, "content-type": _CHARSET_PARAM.sub("", content_type)}
    return headers


def _bozo_reason(parsed: Any) -> str:
    error = parsed.get("bozo_exception")
    if error is None:
        return "no feed elements found"
    reason = getattr(error, "getMessage", lambda: str(error))()
    return clean(f"{type(error).__name__}: {reason}")[:200]


def language_code(language: str | None) -> str | None:
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
