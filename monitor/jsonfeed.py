"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org) → ParsedFeed, since feedparser 6.0 reads
only XML. Pure functions. Whatever the body holds, the result is a ParsedFeed or one
ParseError sentence: a JSON document is as untrusted as an XML one, and its shapes
(numbers for strings, objects for lists, nesting a thousand deep) are as hostile.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from monitor.models import Entry, ParsedFeed
from monitor.parse import MAX_FIELD_CHARS, MAX_TITLE_CHARS, ParseError, language_code
from monitor.text import clean, html_to_text

# The spec says https; a few generators wrote http, and nothing else differs.
VERSION_PREFIXES = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
JSON_MEDIA_TYPES = frozenset({"application/feed+json", "application/json"})
_UTF8_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
# json allows "\ud800" on its own; such a string cannot be encoded to UTF-8 (SQLite,
# logs, webhooks all would fail later, far from the feed that caused it).
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# RFC 3339 allows a leap second; datetime does not.
_LEAP_SECOND = re.compile(r"(T\d\d:\d\d:)60")
_MAX_DATE_CHARS = 64


def looks_like_json(body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether the body is for the JSON reader rather than feedparser: it opens with `{`
    (no XML document can), or it is labelled JSON and does not open with `<`."""
    first = _first_byte(body)
    if first == b"{":
        return True
    if first == b"<":
        # Servers label feeds wrongly; the bytes decide when they are unambiguous.
        return False
    return _media_type(headers) in JSON_MEDIA_TYPES


def is_json_feed_version(version: object) -> bool:
    return isinstance(version, str) and version.startswith(VERSION_PREFIXES)


def parse_json_feed(body: bytes, headers: Mapping[str, str]) -> ParsedFeed:
    """A JSON Feed's items as plain-text entries. Items that are not objects are skipped
    and fields of the wrong type ignored; either sets `warning`, as feedparser's bozo
    flag does for ill-formed XML, so the good items are still used."""
    document = _load(body)
    if not isinstance(document, dict) or not is_json_feed_version(document.get("version")):
        raise ParseError(
            "this is not an RSS, Atom, RDF or JSON feed (JSON without a jsonfeed.org version)"
        )
    problems = _Problems()
    raw_items = document.get("items")
    if raw_items is None:
        problems.add("the feed has no items list")
        raw_items = []
    elif not isinstance(raw_items, list):
        raise ParseError(f"this JSON Feed's items are {_kind(raw_items)}, not a list")
    feed_author = _authors(document, problems, "the feed")
    entries = []
    for index, raw in enumerate(raw_items, start=1):
        if not isinstance(raw, dict):
            problems.add(f"item {index} is {_kind(raw)}, not an object; skipped")
            continue
        entries.append(_entry(raw, feed_author, problems, f"item {index}"))
    language = _string(document, "language", problems, "the feed")
    lowered = {key.lower(): value for key, value in headers.items()}
    return ParsedFeed(
        title=clean(_string(document, "title", problems, "the feed") or "")[:MAX_TITLE_CHARS],
        language=language_code(language or lowered.get("content-language")),
        entries=tuple(entries),
        warning=problems.summary(),
    )


class _Problems:
    """What was wrong with the document, for one warning line."""

    def __init__(self) -> None:
        self.first: str | None = None
        self.count = 0

    def add(self, problem: str) -> None:
        self.count += 1
        if self.first is None:
            self.first = problem

    def summary(self) -> str | None:
        if self.first is None:
            return None
        more = f" (and {self.count - 1} more problems)" if self.count > 1 else ""
        return clean(f"JSON Feed: {self.first}{more}")[:200]


def _first_byte(body: bytes) -> bytes:
    start = len(_UTF8_BOM) if body.startswith(_UTF8_BOM) else 0
    # Only a prefix is looked at: a body of megabytes of spaces is no feed anyway.
    head = body[start : start + 4096].lstrip(_WHITESPACE)
    return head[:1]


def _media_type(headers: Mapping[str, str]) -> str:
    for key, value in headers.items():
        if key.lower() == "content-type":
            return value.split(";", 1)[0].strip().lower()
    return ""


def _load(body: bytes) -> Any:
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM) :]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ParseError(
            f"this JSON Feed is not UTF-8 (bad byte at offset {error.start})"
        ) from None
    try:
        # NaN and Infinity are not JSON; Python would accept them as floats.
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise ParseError(
            f"this JSON Feed is not valid JSON ({error.msg} at line {error.lineno}"
            f" column {error.colno})"
        ) from None
    except RecursionError:
        raise ParseError("this JSON Feed is nested too deeply to read") from None
    except _NotJSON as error:
        raise ParseError(f"this JSON Feed is not valid JSON ({error})") from None
    except ValueError:  # Python refuses to convert integers of over 4300 digits
        raise ParseError("this JSON Feed is not valid JSON (a number is too long)") from None


class _NotJSON(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotJSON(f"{name} is not a JSON value")


def _entry(raw: dict[str, Any], feed_author: str, problems: _Problems, where: str) -> Entry:
    content_html = _string(raw, "content_html", problems, where)
    if content_html is not None:
        content = html_to_text(content_html)
    else:
        content = clean(_string(raw, "content_text", problems, where) or "")
    # Per the spec, an item without authors has the feed's.
    author = _authors(raw, problems, where) or feed_author
    return Entry(
        guid=_guid(raw.get("id"), problems, where),
        link=_link(raw, problems, where),
        title=clean(_string(raw, "title", problems, where) or "")[:MAX_TITLE_CHARS],
        summary=clean(_string(raw, "summary", problems, where) or "")[:MAX_FIELD_CHARS],
        content=content[:MAX_FIELD_CHARS],
        author=author[:MAX_TITLE_CHARS],
        tags=_tags(raw.get("tags"), problems, where),
        published_at=_published(raw, problems, where),
    )


def _string(owner: Mapping[str, Any], key: str, problems: _Problems, where: str) -> str | None:
    value = owner.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(f"{where}'s {key} is {_kind(value)}, not text; ignored")
        return None
    return _LONE_SURROGATE.sub("\ufffd", value)


def _guid(value: Any, problems: _Problems, where: str) -> str | None:
    # The spec says readers must turn numeric ids into strings.
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        return str(value)
    elif isinstance(value, float) and math.isfinite(value):
        return repr(value)
    elif isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value).strip() or None
    elif value is None:
        return None
    problems.add(f"{where}'s id is {_kind(value)}; ignored")
    return None


def _link(raw: Mapping[str, Any], problems: _Problems, where: str) -> str | None:
    for key in ("url", "external_url"):
        value = (_string(raw, key, problems, where) or "").strip()
        if value:
            return value
    return None


def _authors(owner: Mapping[str, Any], problems: _Problems, where: str) -> str:
    """1.1's `authors` list, else 1.0's single `author`, as one comma-separated line."""
    authors = owner.get("authors")
    if authors is None:
        single = owner.get("author")
        if single is None:
            return ""
        authors = [single]
    elif not isinstance(authors, list):
        problems.add(f"{where}'s authors are {_kind(authors)}, not a list; ignored")
        return ""
    names = []
    for author in authors:
        if not isinstance(author, dict):
            problems.add(f"{where} has an author that is {_kind(author)}, not an object")
            continue
        name = clean(_string(author, "name", problems, f"{where}'s author") or "")
        if name:
            names.append(name)
    return ", ".join(names)


def _tags(value: Any, problems: _Problems, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add(f"{where}'s tags are {_kind(value)}, not a list; ignored")
        return ()
    tags = []
    for tag in value:
        if not isinstance(tag, str):
            problems.add(f"{where} has a tag that is {_kind(tag)}, not text; ignored")
            continue
        text = clean(_LONE_SURROGATE.sub("\ufffd", tag))[:MAX_TITLE_CHARS]
        if text:
            tags.append(text)
    return tuple(tags)


def _published(raw: Mapping[str, Any], problems: _Problems, where: str) -> datetime | None:
    for key in ("date_published", "date_modified"):
        value = _string(raw, key, problems, where)
        if value:
            return parse_rfc3339(value)
    return None


def parse_rfc3339(value: str) -> datetime | None:
    """An RFC 3339 timestamp in UTC; None for anything unreadable. A time without an
    offset is taken as UTC, as feedparser takes one."""
    if len(value) > _MAX_DATE_CHARS or not value.isascii():
        return None
    text = value.strip().upper()
    try:
        moment = datetime.fromisoformat(_LEAP_SECOND.sub(r"\g<1>59", text))
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"
