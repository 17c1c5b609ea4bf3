"""Identity: canonical links, item keys within a feed, stable ids for alerts and
deliveries. Pure; every hash carries a version prefix so the scheme can evolve.
"""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.models import Entry, Item, ParsedFeed
from monitor.text import fold

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


def canonical_url(url: str) -> str:
    """A link as compared for identity: trackers, fragments, default ports, case of
    scheme and host, and query order never make two links differ."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    if port and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    query = sorted(
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in _TRACKER_PARAMS and not key.lower().startswith(_TRACKER_PREFIXES)
    )
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, urlencode(query), ""))


def entry_key(entry: Entry) -> str:
    """guid, else canonical link, else a hash of the words of title and text."""
    if entry.guid:
        key = "g:" + entry.guid
    elif entry.link:
        key = "l:" + canonical_url(entry.link)
    else:
        key = "h:" + digest(fold(entry.title), fold(entry.summary or entry.content))
    return key if len(key) <= _MAX_KEY else key[:2] + digest(key)


def content_hash(entry: Entry) -> str:
    return digest(fold(entry.title), fold(entry.summary), fold(entry.content))


def identify(feed: str, parsed: ParsedFeed) -> list[Item]:
    """Items with keys unique within the feed. A publisher that reuses one guid for two
    different entries gets them told apart by link, deterministically across polls."""
    items: list[Item] = []
    used: set[str] = set()
    for position, entry in enumerate(parsed.entries):
        key = entry_key(entry)
        if key in used:
            key = digest(key, canonical_url(entry.link or ""), content_hash(entry))
            key = f"d:{key}" if key not in used else f"d:{key}:{position}"
        used.add(key)
        items.append(Item(feed, key, entry, parsed.language, content_hash(entry)))
    return items
