"""Identity: canonical links, item keys within a feed, stable ids for alerts and
deliveries. Pure; every hash carries a version prefix so the scheme can evolve.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

from monitor.models import Entry, Item, ParsedFeed
from monitor.text import fold, tokens

_HASH_VERSION = "1"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_TRACKER_PARAMS = frozenset(
    "fbclid gclid dclid gbraid wbraid msclkid mc_cid mc_eid igshid ref_src ref_url "
    "yclid _hsenc _hsmi mkt_tok oly_anon_id oly_enc_id vero_id wt_mc cmpid".split()
)
_TRACKER_PREFIXES = ("utm_", "ga_", "pk_", "mtm_")
_MAX_KEY = 200


def digest(*parts: str, length: int = 24) -> str:
    joined = "\x1f".join((_HASH_VERSION, *parts)).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()[:length]


# Pure, and asked about the same link several times per new item (its key, the store's
# lookup by link, its story signature).
@functools.lru_cache(maxsize=1024)
def canonical_url(url: str) -> str:
    """A link as compared for identity. Trackers, fragments, default ports, the case of
    scheme and host, `www.`, percent-encoding, query order, a trailing slash and AMP
    variants of the page never make two links differ."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        return text
    host = (parts.hostname or "").lower().rstrip(".")
    while host.startswith(("www.", "amp.")) and host.count(".") > 1:
        host = host[4:]
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if port and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    # Parameters stay as written (bytes that are not UTF-8 must not all decode to one
    # replacement character); only their decoded names and values are judged.
    query = "&".join(
        pair
        # Feeds that escape their links twice leave "&amp;" between parameters.
        for pair in parts.query.replace("&amp;", "&").split("&")
        if pair
        and not _is_tracker(*(unquote_plus(p).lower() for p in (*pair.split("=", 1), "")[:2]))
    )
    # w3lib settles percent-encoding, dot segments and query order the way Scrapy does;
    # AMP markers are recognised only after that, in the path as it really is.
    canonical = urlsplit(canonicalize_url(urlunsplit((scheme, host, parts.path or "/", query, ""))))
    path = canonical.path.rstrip("/")
    while True:
        shorter = _AMP_SUFFIX.sub(lambda m: m.group(1) or "", path)
        shorter = _AMP_PATH.sub(lambda m: m.group(1) or m.group(2), shorter).rstrip("/")
        if shorter == path:
            break
        path = shorter
    return urlunsplit(canonical._replace(path=path or "/"))


_AMP_PATH = re.compile(r"(/.+?)/amp/?$|^/amp(/.+)$")
_AMP_SUFFIX = re.compile(r"(\.[a-z0-9]+)?\.amp(?=\.html?$|$)")


def _is_tracker(key: str, value: str) -> bool:
    if key in _TRACKER_PARAMS or key.startswith(_TRACKER_PREFIXES):
        return True
    # The AMP rendering of a page, asked for in the query.
    return (key == "amp" and value in ("", "1", "true")) or (key == "outputtype" and value == "amp")


def entry_key(entry: Entry) -> str:
    """guid, else canonical link, else a hash of the words of title and text."""
    if entry.guid:
        key = "g:" + entry.guid
    elif entry.link:
        key = "l:" + canonical_url(entry.link)
    else:
        key = "h:" + digest(fold(entry.title), fold(entry.summary or entry.content))
    return key if len(key) <= _MAX_KEY else key[:2] + digest(key)


def title_key(title: str) -> str:
    """A headline as compared within a feed: its folded words."""
    return " ".join(tokens(title))


def content_hash(entry: Entry) -> str:
    return digest(fold(entry.title), fold(entry.summary), fold(entry.content))


def identify(feed: str, parsed: ParsedFeed) -> list[Item]:
    """Items with keys unique within the feed. Entries that share a guid (a publisher bug)
    are all told apart by link and content, so their keys do not depend on feed order;
    an entry repeated exactly is one item."""
    keyed = [(entry_key(entry), entry) for entry in parsed.entries]
    shared = {key for key, count in Counter(key for key, _ in keyed).items() if count > 1}
    items: list[Item] = []
    used: set[str] = set()
    for key, entry in keyed:
        hashed = content_hash(entry)
        if key in shared:
            key = "d:" + digest(key, canonical_url(entry.link or ""), hashed)
        if key in used:
            continue
        used.add(key)
        items.append(Item(feed, key, entry, parsed.language, hashed))
    return items
