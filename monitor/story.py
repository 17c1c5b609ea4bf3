"""Story identity across feeds: the same canonical link, the same headline, or nearly the
same headline within a window. Pure: signatures are computed from an item, and a story
is chosen among candidates the store fetched; the store never decides.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from monitor.identity import canonical_url
from monitor.models import Item, StoryCandidate, StorySignature
from monitor.rules.analysis import analyzer, language_code
from monitor.text import TOKEN, fold

HEADLINE_WINDOW = timedelta(hours=72)
# Chosen on tests/data/headline_pairs.jsonl (bench/headlines.py, bench/RESULTS.md).
SIMILARITY_THRESHOLD = 0.6
MIN_WORDS = 4  # shorter headlines ("Live updates") say too little to join stories by
ROWS_PER_BAND = 2
BANDS = 12

# Words that say nothing about which event a headline reports: function words, and the
# labels outlets put in front of or after a headline.
_STOPWORDS = frozenset(
    """
    a an the of in on at to for from by with and or but as is are was were be been has have
    had it its this that these those than then into over after before about amid says said
    say will would could can may might not no new more says report reports reported
    live breaking update updates updated exclusive watch video analysis opinion explainer
    в на и по с к о из за для что как не это у от до при об
    і та й до від про що як це з у із на
    der die das und in im von mit für auf ist ein eine den dem zu nach
    le la les de des du un une et en au aux pour sur par est dans avec
    """.split()
)
_LABEL = re.compile(r"^\s*(live|breaking|update|updated|exclusive|watch|video)\s*[:|–—-]\s*", re.I)
_SOURCE_SUFFIX = re.compile(r"\s+[|–—-]\s+([^|–—-]{1,40})$")
_PRIME = (1 << 61) - 1


def strip_labels(title: str) -> str:
    """A headline without "LIVE:"-style labels and a trailing " - Outlet" or " | Outlet"."""
    title = _LABEL.sub("", title)
    suffix = _SOURCE_SUFFIX.search(title)
    if suffix and len(TOKEN.findall(suffix.group(1))) <= 4:
        rest = title[: suffix.start()]
        if len(TOKEN.findall(rest)) >= MIN_WORDS:
            title = rest
    return title


def signature(item: Item) -> StorySignature:
    tokens = TOKEN.findall(fold(strip_labels(item.entry.title)))
    keys_of = analyzer(language_code(item.language)).keys
    words = frozenset(
        keys_of(token)[0] for token in tokens if token not in _STOPWORDS and not token.isdigit()
    )
    numbers = frozenset(token for token in tokens if token.isdigit())
    return StorySignature(
        link_key=link_key(item.entry.link),
        headline_key=" ".join(tokens) if len(words) >= MIN_WORDS else None,
        words=words,
        numbers=numbers,
        bands=minhash_bands(words) if len(words) >= MIN_WORDS else (),
    )


def link_key(link: str | None) -> str | None:
    """The canonical link, or None when it cannot tell stories apart: no link, not a web
    link, or a site's front page (some feeds link every item to it)."""
    if not link:
        return None
    canonical = canonical_url(link)
    parts = urlsplit(canonical)
    if parts.scheme not in ("http", "https") or (parts.path in ("", "/") and not parts.query):
        return None
    return canonical


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    """Jaccard similarity of two headlines' word sets."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")


_SEEDS = [
    (int.from_bytes(hashlib.blake2b(f"a{n}".encode(), digest_size=8).digest(), "big") | 1,
     int.from_bytes(hashlib.blake2b(f"b{n}".encode(), digest_size=8).digest(), "big"))
    for n in range(BANDS * ROWS_PER_BAND)
]  # fmt: skip


def minhash_bands(words: Iterable[str]) -> tuple[str, ...]:
    """Locality-sensitive keys: two headlines with Jaccard similarity s share at least one
    band with probability 1 - (1 - s^2)^12 (0.995 at s = 0.6), so near duplicates are
    found by an indexed lookup instead of a comparison with every recent story."""
    hashes = [_word_hash(word) for word in words]
    if not hashes:
        return ()
    mins = [min((a * h + b) % _PRIME for h in hashes) for a, b in _SEEDS]
    return tuple(
        f"{band}:"
        + hashlib.blake2b(
            repr(mins[band * ROWS_PER_BAND : (band + 1) * ROWS_PER_BAND]).encode(), digest_size=8
        ).hexdigest()
        for band in range(BANDS)
    )


def same_headline(item: StorySignature, story: StoryCandidate) -> bool:
    if item.numbers != story.numbers:
        return False
    if item.headline_key is not None and item.headline_key == story.headline_key:
        return True
    return len(item.words) >= MIN_WORDS and similarity(item.words, story.words) >= (
        SIMILARITY_THRESHOLD
    )


def choose_story(
    item: StorySignature, candidates: Sequence[StoryCandidate], now: datetime
) -> str | None:
    """The story this item belongs to: one with the same canonical link, else the most
    similar recent headline (same numbers, similarity at or above the threshold)."""
    if item.link_key is not None:
        for story in candidates:
            if story.link_key == item.link_key:
                return story.id
    recent = [
        story
        for story in candidates
        if story.first_seen_at >= now - HEADLINE_WINDOW and same_headline(item, story)
    ]
    if not recent:
        return None
    best = max(recent, key=lambda s: (similarity(item.words, s.words), s.first_seen_at))
    return best.id
