"""Plain data passed between stages: parsed items, matches, poll plans, deliveries.
Frozen and slotted; no behaviour beyond trivial derived values.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, TypeVar

_T = TypeVar("_T", bound=type)


def pickled_by_fields(cls: _T) -> _T:
    """Pickle a frozen slotted dataclass as its class and field values, so that unpickling
    is one call of its constructor. dataclasses' own slot-state protocol runs `fields()`
    and a Python loop per object: the daemon unpickled each parsed feed's items, matches
    and signatures three times slower that way (0.26 ms against 0.09 for 20 items)."""
    names = tuple(f.name for f in fields(cls))

    def __reduce__(self: object) -> tuple[type, tuple[object, ...]]:
        return (type(self), tuple([getattr(self, name) for name in names]))

    # Apply after @dataclass: with slots=True it returns a new class, the one to patch.
    setattr(cls, "__reduce__", __reduce__)  # noqa: B010 - mypy forbids assigning a method
    return cls


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry as the feed gave it, reduced to plain text."""

    guid: str | None
    link: str | None
    title: str
    summary: str
    content: str
    author: str
    tags: tuple[str, ...]
    published_at: datetime | None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    language: str | None
    entries: tuple[Entry, ...]
    # feedparser's complaint about an ill-formed feed whose good entries we still use.
    warning: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Item:
    """An entry with its identity within its feed."""

    feed: str
    key: str
    entry: Entry
    language: str | None
    content_hash: str


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Hit:
    """A rule term found in an item: which term, in which field, and where in that
    field's text (character offsets, and the words exactly as the feed wrote them)."""

    term: str
    field: str
    start: int = 0
    end: int = 0
    text: str = ""


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Match:
    rule: str
    hits: tuple[Hit, ...]

    @property
    def matched(self) -> list[str]:
        return sorted({hit.term for hit in self.hits})


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the store remembers of a feed between polls."""

    name: str
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    first_polled_at: datetime | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    failing_notified: bool = False  # a "feed failing" notice went out for this outage
    last_notice_at: datetime | None = None
    next_poll_at: datetime | None = None  # our backoff after failures
    wait_until: datetime | None = None  # the server's Retry-After
    gone_url: str | None = None  # the configured URL that answered 410 Gone
    moved_from: str | None = None  # the configured URL that moved permanently…
    moved_to: str | None = None  # …and where to
    last_polled_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    items_seen: int = 0

    def address(self, configured: str) -> str:
        """Where to poll: the permanent new address of this configured URL, if it moved."""
        return self.moved_to if self.moved_to and self.moved_from == configured else configured

    def is_gone(self, configured: str) -> bool:
        return self.gone_url is not None and self.gone_url == configured


FetchStatus = Literal["ok", "not_modified", "error", "gone"]


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: FetchStatus
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    final_url: str | None = None
    http_status: int | None = None
    error: str | None = None
    # Where every redirect on the way was permanent (301/308): the feed's new address.
    moved_to: str | None = None
    # Seconds the server asked us to wait (429/503 Retry-After).
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class AlertIntent:
    """An alert the decider wants recorded, with one delivery per notifier."""

    id: str
    rule: str
    item_key: str
    document: dict[str, Any]
    deliveries: tuple[tuple[str, str], ...]  # (delivery id, notifier name)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class StorySignature:
    """What an item offers for finding its story among other feeds' items."""

    link_key: str | None  # canonical link, unless it is a site's front page
    headline_key: str | None  # the headline's words, when there are enough of them
    words: frozenset[str]  # the headline's stemmed content words
    numbers: frozenset[str]  # numbers in the headline: "day 980" is not "day 981"
    entities: frozenset[str]  # words written capitalised: names of places, people, bodies
    bands: tuple[int, ...]  # MinHash bands: a shared band makes a candidate


@dataclass(frozen=True, slots=True)
class StoryCandidate:
    """A recorded story the store found by link, headline or band, for the core to judge."""

    id: str
    link_key: str | None
    headline_key: str | None
    # Each word once. The store keeps thousands of these decoded; tuples take a fifth
    # of the memory frozensets do, and a headline's few words need no hashing to compare.
    words: Collection[str]
    numbers: Collection[str]
    entities: Collection[str]
    first_seen_at: datetime
    seq: int = 0  # the store's number for it


FoundBy = Literal["key", "link", "content"]


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item already recorded for a feed, and how this poll's entry was tied to it: by
    its key, or (when a feed rewrites guids) by link and title, or by its whole content."""

    id: int
    content_hash: str
    matched: frozenset[str]  # rules it matched when last evaluated
    found_by: FoundBy = "key"


@dataclass(frozen=True, slots=True)
class NewItem:
    item: Item
    signature: StorySignature
    matched: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Edit:
    """A recorded item whose text changed; it is re-evaluated, and alerts only for rules
    it did not match before."""

    stored_id: int
    item: Item
    matched: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PollPlan:
    """Everything one poll of one feed changes, applied by the store in one transaction."""

    feed: str
    new_items: tuple[NewItem, ...]
    alerts: tuple[AlertIntent, ...]
    backfilled: int
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    first_poll: bool
    edits: tuple[Edit, ...] = ()
    seen: tuple[int, ...] = ()  # recorded items still in the feed: kept past retention
    churned: bool = False  # the feed rewrote most of its guids since the last poll


@dataclass(frozen=True, slots=True)
class Delivery:
    """A due outbox row with the alert document it carries."""

    id: str
    alert_id: str
    notifier: str
    attempts: int
    document: dict[str, Any]
    created_at: datetime
    lease: str = ""  # the lease this worker holds on it, as written in the database
    batch: str | None = None  # the digest it goes out in; None: on its own


@dataclass(frozen=True, slots=True)
class Message:
    """What one send carries: one alert, or a digest of several, under one id that stays
    the same on every retry (the `webhook-id`)."""

    id: str
    alerts: tuple[dict[str, Any], ...]
    digest: bool = False


Outcome = Literal["delivered", "retry", "failed"]


@dataclass(frozen=True, slots=True)
class SendResult:
    """How a notifier's attempt went, classified so retry policy stays out of notifiers."""

    outcome: Outcome
    detail: str = ""
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """One notifier's side of an alert, as `alerts` shows it."""

    id: str
    notifier: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A recorded alert with its story's sources and its deliveries."""

    id: str
    rule: str
    detected_at: datetime
    feed: str
    title: str
    url: str | None
    also_reported_by: tuple[str, ...]
    deliveries: tuple[DeliveryState, ...]
