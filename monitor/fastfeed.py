"""A fast path for plain, well-formed RSS 2.0 and Atom 1.0 feeds, read with the stdlib's
C-accelerated ElementTree instead of feedparser's SAX handlers (about ten times the work).

The contract is exact equality with feedparser's result as monitor.parse reduces it: item
identity is computed from these fields, so a feed flipping between the two paths must not
change one character. The fast path therefore reads only a whitelist of elements and
attributes whose feedparser handling is simple and known, reuses feedparser's own small
helpers (date parsing, URL joining, its HTML guess for RSS titles, its encoding repairs)
wherever they decide a value, and hands back None, sending the feed to feedparser, for
anything else: declarations, xml:base, unknown elements or attributes where they could
matter, repeated fields, nested markup, non-UTF-8 text, relative links.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.encodings import RE_XML_PI_ENCODING, parse_content_type
from feedparser.exceptions import NonXMLContentType
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin, make_safe_absolute_uri

from monitor.models import Entry, ParsedFeed
from monitor.parse import _bozo_reason, _entry, language_code
from monitor.text import clean

_ATOM = "{http://www.w3.org/2005/Atom}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_SY = "{http://purl.org/rss/1.0/modules/syndication/}"
_ATOM_AUTHOR = _ATOM + "author"
_ATOM_CATEGORY = _ATOM + "category"
_ATOM_CONTENT = _ATOM + "content"
_ATOM_EMAIL = _ATOM + "email"
_ATOM_ENTRY = _ATOM + "entry"
_ATOM_FEED = _ATOM + "feed"
_ATOM_GENERATOR = _ATOM + "generator"
_ATOM_ICON = _ATOM + "icon"
_ATOM_ID = _ATOM + "id"
_ATOM_LINK = _ATOM + "link"
_ATOM_LOGO = _ATOM + "logo"
_ATOM_NAME = _ATOM + "name"
_ATOM_PUBLISHED = _ATOM + "published"
_ATOM_RIGHTS = _ATOM + "rights"
_ATOM_SUBTITLE = _ATOM + "subtitle"
_ATOM_SUMMARY = _ATOM + "summary"
_ATOM_TITLE = _ATOM + "title"
_ATOM_UPDATED = _ATOM + "updated"
_ATOM_URI = _ATOM + "uri"
_CONTENT_ENCODED = _CONTENT + "encoded"
_DC_CREATOR = _DC + "creator"
_DC_DATE = _DC + "date"
_DC_LANGUAGE = _DC + "language"
_DC_SUBJECT = _DC + "subject"
_SY_UPDATE_BASE = _SY + "updateBase"
_SY_UPDATE_FREQUENCY = _SY + "updateFrequency"
_SY_UPDATE_PERIOD = _SY + "updatePeriod"

# Any markup declaration but comments and CDATA: a DOCTYPE may declare entities, and
# feedparser rewrites DOCTYPEs before parsing; neither is worth imitating.
_DECLARATION = re.compile(rb"<!(?!--|\[CDATA\[)")
_XML_DECL = re.compile(
    rb"<\?xml\s+version\s*=\s*([\"'])1\.0\1"
    rb"(?:\s+encoding\s*=\s*([\"'])[A-Za-z0-9._-]+\2)?"
    rb"(?:\s+standalone\s*=\s*([\"'])(?:yes|no)\3)?\s*\?>"
)
# Namespaces whose mere declaration sets feedparser's version, which decides whether it
# guesses HTML in text fields (it does for RSS, not for Atom).
_VERSION_NAMESPACE = re.compile(
    rb"xmlns(?::[^=\s]*)?\s*=\s*[\"']\s*http://(?:purl\.org/rss/1\.0/|my\.netscape\.com/rdf)",
    re.IGNORECASE,
)
# Text that decodes the same whatever of these an ASCII-only document is labelled with.
_ASCII_LABELS = frozenset(
    {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1"}
    | {"windows-1252", "cp1252"}
)
_UTF8_LABELS = frozenset({"utf-8", "utf8"})
_APPLICATION_XML = (
    "application/xml",
    "application/xml-dtd",
    "application/xml-external-parsed-entity",
)
_TEXT_XML = ("text/xml", "text/xml-external-parsed-entity")

_ABSOLUTE_LINK = re.compile(r"https?://", re.IGNORECASE)
_HAS_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
# URLs that urllib's split and unsplit give back as they are: lowercase scheme, a plain
# host; no params, fragment, empty query, whitespace or controls (tests hold this).
_PLAIN_URL = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~!$&'()*+,=:@%/-]*)?"
    r"(?:\?[A-Za-z0-9._~!$&'()*+,=:@%/?-]+)?\Z"
)
# Ids in another scheme than the base's, which urllib's join returns untouched.
_OPAQUE_ID = re.compile(r"(?:urn|tag):(?!//)[!-~]*\Z")
_HTTP_BASE = re.compile(r"https?://")
_C1 = re.compile("[\x80-\x9f]")
_ENTITY_IN_LINK = re.compile("&([A-Za-z0-9_]+);")
_TEXT_TYPES = {None: "text/plain", "text": "text/plain", "html": "text/html"}
_looks_like_html = _FeedParserMixin.looks_like_html
_map_content_type = _FeedParserMixin.map_content_type
_HTML_TYPES = _FeedParserMixin.html_types


_NONE: frozenset[str] = frozenset()


class _Refused(Exception):
    """The feed is not one the fast path is certain about."""


def fast_parse(body: bytes, headers: dict[str, str], url: str) -> ParsedFeed | None:
    """The feed exactly as the feedparser path would give it, or None when not certain."""
    try:
        return _fast_parse(body, headers, url)
    except MemoryError:
        raise
    except Exception:  # _Refused, XML errors, anything unforeseen: feedparser decides
        return None


def _fast_parse(body: bytes, headers: dict[str, str], url: str) -> ParsedFeed:
    headers = {k.lower(): v for k, v in headers.items()}
    headers.setdefault("content-location", url)
    data = body.removeprefix(b"\xef\xbb\xbf")
    if not data.lstrip().startswith(b"<") or _DECLARATION.search(data):
        raise _Refused
    if data.startswith(b"<?") and not _XML_DECL.match(data):
        raise _Refused
    warning = _encoding_warning(headers, data)
    base = _base_uri(headers.get("content-location", ""))
    root = ET.fromstring(data)
    language = headers.get("content-language")
    if root.tag == "rss":
        title, rss_language, entries = _rss(root, base)
        language = rss_language or language
    elif root.tag == _ATOM_FEED:
        if _VERSION_NAMESPACE.search(data):
            raise _Refused
        title, atom_language, entries = _atom(root, base)
        language = atom_language or language
    else:
        raise _Refused
    return ParsedFeed(
        title=clean(title),
        language=language_code(language),
        entries=entries,
        warning=warning,
    )


def _encoding_warning(headers: dict[str, str], data: bytes) -> str | None:
    """feedparser's complaint about the media type, for text it would decode exactly as
    expat does; refuses where it would decode otherwise (RFC 3023 defaults, overrides)."""
    declared = RE_XML_PI_ENCODING.match(data)
    xml_encoding = declared.group(1).decode("utf-8").lower() if declared else ""
    content_type = headers.get("content-type") or ""
    mime, http_encoding = parse_content_type(content_type)
    acceptable = True
    if mime in _APPLICATION_XML or (mime.startswith("application/") and mime.endswith("+xml")):
        encoding = http_encoding or xml_encoding or "utf-8"
    elif mime in _TEXT_XML or (mime.startswith("text/") and mime.endswith("+xml")):
        encoding = http_encoding or "us-ascii"
    elif mime.startswith("text/"):
        acceptable = False
        encoding = http_encoding or "us-ascii"
    elif "content-type" not in headers:
        acceptable = False
        encoding = xml_encoding or "iso-8859-1"
    else:
        acceptable = False
        encoding = xml_encoding or "utf-8"
    if data.isascii():
        if encoding.lower() not in _ASCII_LABELS or xml_encoding not in _ASCII_LABELS | {""}:
            raise _Refused
    else:
        if encoding.lower() not in _UTF8_LABELS or xml_encoding not in _UTF8_LABELS | {""}:
            raise _Refused
        data.decode("utf-8")  # feedparser would fall back to another encoding
    if acceptable:
        return None
    if "content-type" in headers:
        error = NonXMLContentType(f"{headers['content-type']} is not an XML media type")
    else:
        error = NonXMLContentType("no Content-type specified")
    return _bozo_reason({"bozo_exception": error})


@functools.lru_cache(maxsize=1024)
def _base_uri(location: str) -> str:
    """The base feedparser joins links against: the content location, which must already
    be in the form feedparser normalises it to at every element, or we would differ."""
    base: str = make_safe_absolute_uri("", location) or make_safe_absolute_uri(location) or ""
    again: str = (make_safe_absolute_uri(base, base) or base) if base else _urljoin("", "")
    if again != base:
        raise _Refused
    return base


# -- what feedparser does to an element's text ------------------------------------------


def _text(element: ET.Element) -> str:
    if len(element):
        raise _Refused  # nested markup: feedparser would serialise it as XHTML
    return (element.text or "").strip()


def _repaired(text: str) -> str:
    """feedparser's last steps for text it keeps: undo UTF-8 read as Latin-1, then map C1
    controls to the windows-1252 characters they usually stand for."""
    if not text.isascii():
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            text = text.encode("iso-8859-1").decode("utf-8")
        if _C1.search(text):
            text = text.translate(_cp1252)
    return text


def _attributes(element: ET.Element, allowed: frozenset[str]) -> dict[str, str]:
    """Attributes by feedparser's lowercased names; any other attribute, namespaced ones
    (xml:base, xml:lang) included, could change what feedparser reports."""
    attributes: dict[str, str] = {}
    for name, value in element.attrib.items():
        lowered = name.lower()
        if lowered not in allowed or lowered in attributes:
            raise _Refused
        attributes[lowered] = value
    return attributes


def _joined(base: str, text: str, pattern: re.Pattern[str]) -> str:
    if not text:
        return text
    if not pattern.match(text):
        raise _Refused  # relative: feedparser joins it against the content location
    if _PLAIN_URL.match(text) or (_OPAQUE_ID.match(text) and _HTTP_BASE.match(base)):
        return text  # what feedparser's join gives back unchanged, for a quarter of the cost
    joined: str = _urljoin(base, text)
    return joined


def _date(element: ET.Element) -> Any:
    if element.attrib:
        raise _Refused
    return _parsed_date(_repaired(_text(element)))


_MONTHS = {
    name: number
    for number, name in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)
}
_RFC822_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov"
    r"|Dec) ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) (?:GMT|([+-])([0-9]{2})([0-9]{2}))\Z"
)
_W3C_DATE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:Z|([+-])([0-9]{2}):([0-9]{2}))\Z"
)


def _parsed_date(text: str) -> time.struct_time | None:
    """feedparser's date for `text`; the two usual spellings are computed here as its RFC 822
    and W3C-DTF handlers would (tests compare the two), the rest left to it."""
    if match := _RFC822_DATE.match(text):
        day, month, year, hour, minute, second, sign, tz_hours, tz_minutes = match.groups()
        month = _MONTHS[month]
    elif match := _W3C_DATE.match(text):
        year, month, day, hour, minute, second, sign, tz_hours, tz_minutes = match.groups()
    else:
        parsed: time.struct_time | None = _parse_date(text)
        return parsed
    try:
        stamp = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
        offset = timedelta(hours=int(tz_hours), minutes=int(tz_minutes)) if sign else timedelta()
        return (stamp + offset if sign == "-" else stamp - offset).utctimetuple()
    except (ValueError, OverflowError):
        parsed = _parse_date(text)
        return parsed


def _text_type(attributes: dict[str, str]) -> str:
    kind = _TEXT_TYPES.get(attributes.get("type"))
    if kind is None:
        raise _Refused  # xhtml, or a MIME type feedparser may base64-decode
    return kind


def _add_tag(tags: list[dict[str, Any]], term: Any, scheme: Any, label: Any) -> None:
    if not term and not scheme and not label:
        return
    tag = {"term": term, "scheme": scheme, "label": label}
    if tag not in tags:
        tags.append(tag)


def _category(tags: list[dict[str, Any]], element: ET.Element, allowed: frozenset[str]) -> None:
    """feedparser's tag bookkeeping: attributes make a tag, then the text fills its term or
    adds a tag of its own, with duplicates dropped."""
    attributes = _attributes(element, allowed)
    _add_tag(
        tags,
        attributes.get("term"),
        attributes.get("scheme", attributes.get("domain")),
        attributes.get("label"),
    )
    value = _repaired(_text(element))
    if not value:
        return
    if tags and not tags[-1]["term"]:
        tags[-1]["term"] = value
    else:
        _add_tag(tags, value, None, None)


def _leaves(element: ET.Element, allowed: frozenset[str]) -> None:
    """A container we skip, whose children all are harmless leaves, each at most once."""
    _attributes(element, _NONE)
    seen: set[str] = set()
    for child in element:
        if child.tag not in allowed or child.tag in seen or len(child) or child.attrib:
            raise _Refused
        seen.add(child.tag)


# -- RSS 2.0 ------------------------------------------------------------------------------

_CLOUD = frozenset({"domain", "port", "path", "registerprocedure", "protocol"})
_LINK = frozenset({"href", "rel", "type", "title", "hreflang", "length"})
# Channel elements that touch neither the feed's title and language nor its items, with
# the attributes they may carry.
_RSS_CHANNEL_SKIPPED = {
    **dict.fromkeys(
        [
            *"link description copyright managingEditor webMaster pubDate lastBuildDate".split(),
            *"generator docs ttl rating".split(),
            *(_SY_UPDATE_PERIOD, _SY_UPDATE_FREQUENCY, _SY_UPDATE_BASE),
        ],
        _NONE,
    ),
    "category": frozenset({"domain"}),
    "cloud": _CLOUD,
    _ATOM_LINK: _LINK,
}
_RSS_LEAF_CONTAINERS = {
    "image": frozenset({"url", "title", "link", "width", "height", "description"}),
    "textInput": frozenset({"title", "description", "name", "link"}),
    "skipHours": frozenset({"hour"}),
    "skipDays": frozenset({"day"}),
}
_RSS_ITEM_SKIPPED = frozenset(
    {
        "comments",
        "{http://wellformedweb.org/commentAPI/}commentRss",
        "{http://wellformedweb.org/commentAPI/}comment",
        "{http://purl.org/rss/1.0/modules/slash/}comments",
        "{http://rssnamespace.org/feedburner/ext/1.0}origLink",
    }
)
_RSS_CATEGORY = frozenset({"category", _DC_SUBJECT})
_RSS_AUTHOR = frozenset({"author", _DC_CREATOR})
_ENCLOSURE = frozenset({"url", "length", "type"})
# Media RSS attachments, as leaves only: inside media:content a media:title or
# media:description would be read by feedparser as the item's own title or summary.
_MEDIA_ATTRIBUTES = frozenset(
    "url medium type width height filesize duration bitrate framerate samplingrate channels "
    "expression isdefault time".split()
)
_RSS_ATTACHMENTS = {
    "enclosure": _ENCLOSURE,
    **{
        f"{{{namespace}}}{name}": _MEDIA_ATTRIBUTES
        for namespace in ("http://search.yahoo.com/mrss/", "http://search.yahoo.com/mrss")
        for name in ("content", "thumbnail")
    },
}
_RSS_REPEATABLE = _RSS_CATEGORY | set(_RSS_ATTACHMENTS)
_DOMAIN = frozenset({"domain"})
_PERMALINK = frozenset({"ispermalink"})


def _rss(root: ET.Element, base: str) -> tuple[str, str | None, tuple[Entry, ...]]:
    _attributes(root, frozenset({"version"}))
    if len(root) != 1 or root[0].tag != "channel":
        raise _Refused
    channel = root[0]
    _attributes(channel, _NONE)
    title = language = None
    entries: list[Entry] = []
    for child in channel:
        tag = child.tag
        if tag == "item":
            entries.append(_rss_item(child, base))
        elif tag == "title":
            if title is not None:
                raise _Refused
            _attributes(child, _NONE)
            title = _repaired(_text(child))
        elif tag in ("language", _DC_LANGUAGE):
            if language is not None:
                raise _Refused
            _attributes(child, _NONE)
            language = _repaired(_text(child))
        elif tag in _RSS_CHANNEL_SKIPPED:
            _attributes(child, _RSS_CHANNEL_SKIPPED[tag])
            _text(child)
        elif tag in _RSS_LEAF_CONTAINERS:
            _leaves(child, _RSS_LEAF_CONTAINERS[tag])
        else:
            raise _Refused
    return title or "", language, tuple(entries)


def _rss_item(item: ET.Element, base: str) -> Entry:  # noqa: C901 - one branch per element
    _attributes(item, _NONE)
    raw: dict[str, Any] = {}
    tags: list[dict[str, Any]] = []
    link: str | None = None
    guid_link: str | None = None
    content: str | None = None
    seen: set[str] = set()
    for child in item:
        tag = child.tag
        if tag in seen and tag not in _RSS_REPEATABLE:
            raise _Refused  # feedparser keeps the first title, the last link…
        seen.add(tag)
        if tag in _RSS_CATEGORY:
            _category(tags, child, _DOMAIN if tag == "category" else _NONE)
            continue
        if tag in _RSS_ATTACHMENTS:
            _attributes(child, _RSS_ATTACHMENTS[tag])
            _text(child)
            continue
        if tag == "guid":
            is_link = _attributes(child, _PERMALINK).get("ispermalink", "true") == "true"
            text = _text(child)
            if is_link:
                text = _joined(base, text, _HAS_SCHEME)
            raw["id"] = _repaired(text)
            if is_link:
                guid_link = raw["id"]
            continue
        if child.attrib:
            raise _Refused
        if tag == "title":
            text = _text(child)
            kind = "text/html" if _looks_like_html(text) else "text/plain"
            raw["title"] = _repaired(text)
            raw["title_detail"] = {"type": kind}
        elif tag == "link":
            text = _repaired(_joined(base, _text(child), _ABSOLUTE_LINK))
            if "&" in text:
                text = _ENTITY_IN_LINK.sub(r"&\g<1>", text.replace("&amp;", "&"))
            link = text
        elif tag == "description":
            raw["summary"] = _repaired(_text(child))
            raw["summary_detail"] = {"type": "text/html"}
        elif tag == _CONTENT_ENCODED:
            content = _repaired(_text(child))
            raw["content"] = [{"type": "text/html", "value": content}]
        elif tag in _RSS_AUTHOR:
            if "author" in raw:
                raise _Refused
            raw["author"] = _repaired(_text(child))
        elif tag == "pubDate":
            raw["published_parsed"] = _date(child)
        elif tag == _DC_DATE:
            raw["updated_parsed"] = _date(child)
        elif tag in _RSS_ITEM_SKIPPED:
            _text(child)
        else:
            raise _Refused
    return _finished(raw, content, link if link is not None else guid_link, tags)


# -- Atom 1.0 -----------------------------------------------------------------------------

_TYPE = frozenset({"type"})
_ATOM_TEXTS = {_ATOM_TITLE: "title", _ATOM_SUMMARY: "summary"}
_CATEGORY_ATTRIBUTES = frozenset({"term", "scheme", "label"})
_PERSON = frozenset({_ATOM_NAME, _ATOM_EMAIL, _ATOM_URI})
_ATOM_FEED_SKIPPED = {
    _ATOM_ID: _NONE,
    _ATOM_UPDATED: _NONE,
    _ATOM_ICON: _NONE,
    _ATOM_LOGO: _NONE,
    _ATOM_GENERATOR: frozenset({"uri", "version"}),
    _ATOM_CATEGORY: _CATEGORY_ATTRIBUTES,
}


def _atom(root: ET.Element, base: str) -> tuple[str, str | None, tuple[Entry, ...]]:
    language = root.attrib.get(_XML_LANG)
    if set(root.attrib) - {_XML_LANG}:
        raise _Refused
    title = None
    entries: list[Entry] = []
    for child in root:
        tag = child.tag
        if tag == _ATOM_ENTRY:
            entries.append(_atom_entry(child, base))
        elif tag == _ATOM_TITLE:
            if title is not None:
                raise _Refused
            _text_type(_attributes(child, _TYPE))
            title = _repaired(_text(child))
        elif tag in (_ATOM_SUBTITLE, _ATOM_RIGHTS):
            _text_type(_attributes(child, _TYPE))
            _text(child)
        elif tag == _ATOM_LINK:
            _atom_link(child, base)
        elif tag == _ATOM_AUTHOR:
            _person(child)
        elif tag in _ATOM_FEED_SKIPPED:
            _attributes(child, _ATOM_FEED_SKIPPED[tag])
            _text(child)
        else:
            raise _Refused
    return title or "", language.replace("_", "-") if language else None, tuple(entries)


def _atom_link(element: ET.Element, base: str) -> str | None:
    """The joined href when feedparser would take this link as the page's, else None."""
    attributes = _attributes(element, _LINK)
    href = attributes.get("href")
    if not href or not _ABSOLUTE_LINK.match(href):
        raise _Refused  # no href: feedparser reads the text instead; relative: joined
    _text(element)
    rel = attributes.get("rel", "alternate").lower()
    default = "application/atom+xml" if rel == "self" else "text/html"
    kind = attributes.get("type", default).lower()
    if rel == "alternate" and _map_content_type(kind) in _HTML_TYPES:
        joined: str = _urljoin(base, href)
        return joined
    return None


def _person(element: ET.Element) -> str:
    """feedparser's author string: "name (email)", name or email, stripped but otherwise
    as written (it does not repair these)."""
    _attributes(element, _NONE)
    if (element.text or "").strip():
        raise _Refused
    parts: dict[str, str] = {}
    for child in element:
        if child.tag not in _PERSON or child.tag in parts or (child.tail or "").strip():
            raise _Refused
        _attributes(child, _NONE)
        parts[child.tag] = _text(child)
    name, email = parts.get(_ATOM_NAME), parts.get(_ATOM_EMAIL)
    if name and email:
        return f"{name} ({email})"
    return name or email or ""


def _atom_entry(entry: ET.Element, base: str) -> Entry:  # noqa: C901 - one branch per element
    _attributes(entry, _NONE)
    raw: dict[str, Any] = {}
    tags: list[dict[str, Any]] = []
    link: str | None = None
    id_link: str | None = None
    content: str | None = None
    seen: set[str] = set()
    for child in entry:
        tag = child.tag
        if tag == _ATOM_CATEGORY:
            _category(tags, child, _CATEGORY_ATTRIBUTES)
            continue
        if tag == _ATOM_LINK:
            alternate = _atom_link(child, base)
            if alternate is not None:
                if link is not None:
                    raise _Refused  # feedparser keeps the last
                link = alternate
            continue
        if tag in seen:
            raise _Refused
        seen.add(tag)
        if tag == _ATOM_ID:
            _attributes(child, _NONE)
            raw["id"] = id_link = _repaired(_joined(base, _text(child), _HAS_SCHEME))
        elif tag in _ATOM_TEXTS:
            key = _ATOM_TEXTS[tag]
            kind = _text_type(_attributes(child, _TYPE))
            raw[key] = _repaired(_text(child))
            raw[f"{key}_detail"] = {"type": kind}
        elif tag == _ATOM_CONTENT:
            kind = _text_type(_attributes(child, _TYPE))
            content = _repaired(_text(child))
            raw["content"] = [{"type": kind, "value": content}]
        elif tag == _ATOM_AUTHOR:
            raw["author"] = _person(child)
        elif tag == _ATOM_PUBLISHED:
            raw["published_parsed"] = _date(child)
        elif tag == _ATOM_UPDATED:
            raw["updated_parsed"] = _date(child)
        elif tag == _ATOM_RIGHTS:
            _text_type(_attributes(child, _TYPE))
            _text(child)
        else:
            raise _Refused
    return _finished(raw, content, link if link is not None else id_link, tags)


def _finished(
    raw: dict[str, Any], content: str | None, link: str | None, tags: list[dict[str, Any]]
) -> Entry:
    # A summary wins over the content whichever comes first; content alone is copied to
    # the summary, without a type (so read as HTML).
    if content is not None:
        raw.setdefault("summary", content)
    if link is not None:
        raw["link"] = link
    raw["tags"] = tags
    return _entry(raw)
