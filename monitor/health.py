"""Feed health as pure decisions: when a failing feed is tried next, and when its failing,
recovered or gone notice is due. The store records them; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from monitor.clock import iso_seconds
from monitor.identity import digest
from monitor.models import FeedState

NoticeKind = Literal["feed_failing", "feed_recovered", "feed_gone"]


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    alert_after: int = 3  # consecutive failures before the "feed failing" notice
    quiet: timedelta = timedelta(hours=6)  # at most one failing notice per feed this often
    max_backoff: timedelta = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class Notice:
    id: str
    feed: str
    kind: NoticeKind
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AfterFailure:
    failures: int
    failing_since: datetime
    next_poll_at: datetime
    notice: Notice | None


def backoff(interval: timedelta, failures: int, cap: timedelta) -> timedelta:
    """The wait before the next try: the interval after one failure, doubling with each
    further one, up to the cap (never below the interval: a feed is not polled faster
    because it fails)."""
    doublings = min(max(failures - 1, 0), 30)
    # In seconds: interval × 2^30 overflows timedelta long before the cap is applied.
    seconds = min(interval.total_seconds() * float(1 << doublings), cap.total_seconds())
    return max(timedelta(seconds=seconds), interval)


def after_failure(
    state: FeedState,
    error: str,
    interval: timedelta,
    now: datetime,
    policy: HealthPolicy,
    retry_after: float | None = None,
) -> AfterFailure:
    failures = state.consecutive_failures + 1
    since = state.failing_since or now
    wait = backoff(interval, failures, policy.max_backoff)
    if retry_after is not None:
        # The server's own wish, within our cap: a week-long Retry-After is not obeyed blindly.
        wait = max(wait, min(timedelta(seconds=retry_after), policy.max_backoff))
    notice = None
    quiet_over = state.last_notice_at is None or now - state.last_notice_at >= policy.quiet
    if failures >= policy.alert_after and not state.failing_notified and quiet_over:
        notice = _notice(
            state.name,
            "feed_failing",
            since,
            now,
            error=error,
            failures=failures,
            sentence=f"feed {state.name} is failing: {failures} polls in a row failed"
            f" since {iso_seconds(since)}; last error: {error}",
        )
    return AfterFailure(failures, since, now + wait, notice)


def after_success(state: FeedState, now: datetime) -> Notice | None:
    """The "recovered" notice, owed only when a "failing" one went out for this outage."""
    if not state.failing_notified or state.failing_since is None:
        return None
    return _notice(
        state.name,
        "feed_recovered",
        state.failing_since,
        now,
        sentence=f"feed {state.name} has recovered; it was failing since"
        f" {iso_seconds(state.failing_since)}",
    )


def gone(state: FeedState, now: datetime) -> Notice:
    return _notice(
        state.name,
        "feed_gone",
        now,
        now,
        error="HTTP 410 Gone",
        sentence=f"feed {state.name} is gone (HTTP 410): it is no longer polled;"
        " change its url in the config to poll it again",
    )


def _notice(
    feed: str, kind: NoticeKind, since: datetime, now: datetime, sentence: str, **extra: Any
) -> Notice:
    # One id per (feed, kind, outage): recording it twice after a crash is a no-op.
    notice_id = "fn_" + digest(feed, kind, iso_seconds(since))
    document = {
        "type": kind,
        "id": notice_id,
        "feed": feed,
        "message": sentence,
        "since": iso_seconds(since),
        "detected_at": iso_seconds(now),
        **extra,
    }
    return Notice(notice_id, feed, kind, document)


@dataclass(frozen=True, slots=True)
class FeedView:
    """One row of `news-monitor feeds`."""

    name: str
    status: str  # "ok", "failing", "gone", "never polled"
    failures: int
    last_success_at: datetime | None
    last_error: str | None
    next_poll_at: datetime | None  # None: never (gone)
    items_seen: int
    moved_to: str | None


def view(name: str, url: str, interval: timedelta, state: FeedState, now: datetime) -> FeedView:
    if state.is_gone(url):
        status, next_poll = "gone", None
    elif state.last_polled_at is None:
        status, next_poll = "never polled", now
    else:
        status = "failing" if state.consecutive_failures else "ok"
        waits = [state.last_polled_at + interval, state.next_poll_at, state.wait_until]
        next_poll = max(when for when in waits if when is not None)
    moved = state.moved_to if state.moved_from == url else None
    return FeedView(
        name,
        status,
        state.consecutive_failures,
        state.last_success_at,
        state.last_error,
        next_poll,
        state.items_seen,
        moved,
    )
