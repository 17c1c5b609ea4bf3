"""Story identity across feeds: the same canonical link, the same headline, or nearly the
same headline within a window. Pure: signatures are computed from an item, and a story
is chosen among candidates the store fetched; the store never decides.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from monitor.identity import canonical_url
from monitor.models import Item, StoryCandidate, StorySignature
from monitor.rules.analysis import analyzer, language_code
from monitor.text import TOKEN, token_spans

HEADLINE_WINDOW = timedelta(hours=72)
# Chosen on tests/data/headline_pairs.jsonl (bench/headlines.py, bench/RESULTS.md).
SIMILARITY_THRESHOLD = 0.7
CONTAINMENT = 0.85
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
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve".split()
    )
}
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
    title = strip_labels(item.entry.title)
    keys_of = analyzer(language_code(item.language)).keys
    words: set[str] = set()
    numbers: set[str] = set()
    entities: set[str] = set()
    folded: list[str] = []
    for token, start, _ in token_spans(title):
        folded.append(token)
        if any(char.isdigit() for char in token):  # "14th", "21%", "$425m", "F-16"
            numbers.add("".join(char for char in token if char.isdigit()))
        elif token in _NUMBER_WORDS:
            numbers.add(_NUMBER_WORDS[token])
        elif token not in _STOPWORDS:
            key = keys_of(token)[0]
            words.add(key)
            if title[start].isupper():  # a name: Kursk, Sweden, IAEA, Storm Bert
                entities.add(key)
    enough = len(words) >= MIN_WORDS
    return StorySignature(
        link_key=link_key(item.entry.link),
        headline_key=" ".join(folded) if enough else None,
        words=frozenset(words),
        numbers=frozenset(numbers),
        entities=frozenset(entities),
        bands=minhash_bands(words) if enough else (),
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


def similarity(a: frozenset[str], b: Collection[str]) -> float:
    """Jaccard similarity of two headlines' word sets (`b` holds each word once)."""
    if not a or not b:
        return 0.0
    shared = _shared(a, b)
    return shared / (len(a) + len(b) - shared)


def _shared(a: frozenset[str], b: Collection[str]) -> int:
    return len(a.intersection(b))


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")


_SEEDS = [
    (int.from_bytes(hashlib.blake2b(f"a{n}".encode(), digest_size=8).digest(), "big") | 1,
     int.from_bytes(hashlib.blake2b(f"b{n}".encode(), digest_size=8).digest(), "big"))
    for n in range(BANDS * ROWS_PER_BAND)
]  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _permuted(word: str) -> tuple[int, ...]:
    """The word under each of the MinHash permutations. Headlines share their frequent
    words, so most of these come from the cache."""
    hashed = _word_hash(word)
    return tuple([(a * hashed + b) % _PRIME for a, b in _SEEDS])


def minhash_bands(words: Iterable[str]) -> tuple[int, ...]:
    """Locality-sensitive keys: two headlines with Jaccard similarity s share at least one
    band with probability 1 - (1 - s^2)^12 (0.995 at s = 0.6), so near duplicates are
    found by a lookup instead of a comparison with every recent story. Each band is a
    64-bit number that also encodes its position, so equal minima in two different bands
    make different keys."""
    permuted = [_permuted(word) for word in words]
    if not permuted:
        return ()
    mins = list(map(min, zip(*permuted, strict=True)))
    return tuple(
        int.from_bytes(
            hashlib.blake2b(
                f"{band}:{mins[band * ROWS_PER_BAND : (band + 1) * ROWS_PER_BAND]}".encode(),
                digest_size=8,
            ).digest(),
            "big",
        )
        for band in range(BANDS)
    )


def same_headline(
    item: StorySignature, story: StoryCandidate, threshold: float = SIMILARITY_THRESHOLD
) -> bool:
    """Nearly the same headline. Template headlines differ in one name or number ("...
    kills 3 in Kharkiv" / "... kills 5 in Odesa", "Sweden joins NATO" / "Finland joins
    NATO"), so each side naming a number or a name the other lacks means two stories.
    Otherwise enough shared words: Jaccard similarity at the threshold, or one headline's
    words nearly all in the other's (an outlet added an attribution or a place)."""
    if _both_differ(item.numbers, story.numbers):
        return False
    if item.headline_key is not None and item.headline_key == story.headline_key:
        return True
    if len(item.words) < MIN_WORDS or len(story.words) < MIN_WORDS:
        return False
    if item.entities.difference(story.words) and not item.words.issuperset(story.entities):
        return False
    return _enough_shared(item.words, story.words, threshold)


def _enough_shared(a: frozenset[str], b: Collection[str], threshold: float) -> bool:
    """Jaccard similarity at the threshold, or the smaller set nearly all in the other."""
    return _enough_of(_shared(a, b), len(a), len(b), threshold)


def _enough_of(shared: int, a_count: int, b_count: int, threshold: float) -> bool:
    # Rises with `shared` (float division is monotonic), which least_shared relies on.
    return bool(shared) and (
        shared / (a_count + b_count - shared) >= threshold
        or shared / min(a_count, b_count) >= CONTAINMENT
    )


@functools.lru_cache(maxsize=4096)
def least_shared(a_count: int, b_count: int) -> int:
    """The fewest words two headlines of these sizes must share to pass the quick reject
    (`_may_be_same` without a common headline key). Lets the story index drop candidates
    by an upper bound on the words they share, without comparing the words themselves."""
    for shared in range(1, min(a_count, b_count) + 1):
        if _enough_of(shared, a_count, b_count, SIMILARITY_THRESHOLD):
            return shared
    return min(a_count, b_count) + 1  # only for an empty set: nothing is enough


def word_print(words: Iterable[str]) -> int:
    """One bit per word among 128, by the process's own string hash (never stored). A
    bit of one print missing from another's stands for at least one word the other
    lacks, so the prints of two headlines bound the words they can share."""
    bits = 0
    for word in words:
        bits |= 1 << (hash(word) & 127)
    return bits


def _may_be_same(item: StorySignature, story: StoryCandidate) -> bool:
    """False only where same_headline is sure to be: the headline keys differ and too few
    words are shared to reach either threshold. Most candidates (a MinHash band shared by
    chance) end here after one set intersection."""
    same_key = item.headline_key is not None and item.headline_key == story.headline_key
    return same_key or _enough_shared(item.words, story.words, SIMILARITY_THRESHOLD)


def _both_differ(a: frozenset[str], b: Collection[str]) -> bool:
    return bool(a.difference(b)) and not a.issuperset(b)


def choose_story(
    item: StorySignature, candidates: Sequence[StoryCandidate], now: datetime
) -> str | None:
    """The story this item belongs to: one with the same canonical link, else the most
    similar recent headline (same numbers, similarity at or above the threshold)."""
    if item.link_key is not None:
        for story in candidates:
            if story.link_key == item.link_key:
                return story.id
    since = now - HEADLINE_WINDOW
    recent = [
        story
        for story in candidates
        if story.first_seen_at >= since and _may_be_same(item, story) and same_headline(item, story)
    ]
    if not recent:
        return None
    # The story id settles exact ties, so the answer never depends on the order the
    # store happened to return candidates in.
    best = max(recent, key=lambda s: (similarity(item.words, s.words), s.first_seen_at, s.id))
    return best.id
