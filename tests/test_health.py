"""Feed health decisions (monitor/health.py): backoff, notices, the `feeds` view."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.health import HealthPolicy, after_failure, after_success, backoff, gone, view
from monitor.models import FeedState

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FIVE_MIN = timedelta(minutes=5)
POLICY = HealthPolicy()


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(1, 5), (2, 10), (3, 20), (4, 40), (5, 80), (6, 160), (7, 320), (8, 360), (50, 360)],
)
def test_backoff_doubles_from_the_interval_up_to_the_cap(failures: int, expected: int) -> None:
    assert backoff(FIVE_MIN, failures, timedelta(hours=6)) == timedelta(minutes=expected)


@given(
    st.integers(min_value=1, max_value=10_000),
    st.integers(min_value=1, max_value=86_400),
    st.integers(min_value=1, max_value=86_400),
)
def test_backoff_stays_between_interval_and_cap(failures: int, every: int, cap: int) -> None:
    interval, limit = timedelta(seconds=every), timedelta(seconds=cap)
    wait = backoff(interval, failures, limit)
    assert interval <= wait <= max(interval, limit)


def fail(state: FeedState, now: datetime = NOW, retry_after: float | None = None) -> FeedState:
    """The state the store would hold after this failure."""
    step = after_failure(state, "HTTP 500", FIVE_MIN, now, POLICY, retry_after)
    return replace(
        state,
        consecutive_failures=step.failures,
        failing_since=step.failing_since,
        next_poll_at=step.next_poll_at,
        failing_notified=state.failing_notified or step.notice is not None,
        last_notice_at=now if step.notice else state.last_notice_at,
    )


def test_the_failing_notice_comes_once_at_the_threshold() -> None:
    state = FeedState("wire")
    notices = []
    for n in range(6):
        step = after_failure(state, "HTTP 500", FIVE_MIN, NOW + n * FIVE_MIN, POLICY)
        notices.append(step.notice)
        state = fail(state, NOW + n * FIVE_MIN)
    assert [notice is not None for notice in notices] == [False, False, True, False, False, False]
    notice = notices[2]
    assert notice is not None and notice.kind == "feed_failing"
    assert notice.document["failures"] == 3 and notice.document["since"] == "2026-11-25T12:00:00Z"
    assert state.failing_since == NOW  # the outage started at the first failure


def test_recovered_only_follows_a_failing_notice() -> None:
    blip = fail(fail(FeedState("wire")))
    assert after_success(blip, NOW) is None
    outage = fail(blip)
    recovered = after_success(outage, NOW + timedelta(hours=1))
    assert recovered is not None and recovered.kind == "feed_recovered"
    assert "was failing since 2026-11-25T12:00:00Z" in recovered.document["message"]


def test_at_most_one_failing_notice_per_quiet_period() -> None:
    # Failing, recovered, failing again an hour later: the second outage stays quiet.
    first = fail(fail(fail(FeedState("wire"))))
    assert first.last_notice_at == NOW
    healed = replace(first, consecutive_failures=0, failing_since=None, failing_notified=False)
    later = NOW + timedelta(hours=1)
    again = fail(fail(fail(healed, later), later), later)
    assert not again.failing_notified
    # After the quiet period a new outage is announced again.
    much_later = NOW + timedelta(hours=7)
    step = after_failure(
        replace(again, failing_since=much_later), "x", FIVE_MIN, much_later, POLICY
    )
    assert step.notice is not None


def test_notice_ids_are_stable_per_outage() -> None:
    state = fail(fail(FeedState("wire")))
    one = after_failure(state, "HTTP 500", FIVE_MIN, NOW, POLICY).notice
    two = after_failure(state, "HTTP 502", FIVE_MIN, NOW + timedelta(seconds=5), POLICY).notice
    assert one is not None and two is not None and one.id == two.id


def test_retry_after_is_honoured_within_the_cap() -> None:
    step = after_failure(FeedState("wire"), "HTTP 429", FIVE_MIN, NOW, POLICY, retry_after=3600)
    assert step.next_poll_at == NOW + timedelta(hours=1)
    week = after_failure(FeedState("wire"), "HTTP 429", FIVE_MIN, NOW, POLICY, 7 * 86400)
    assert week.next_poll_at == NOW + POLICY.max_backoff
    short = after_failure(FeedState("wire"), "HTTP 429", FIVE_MIN, NOW, POLICY, retry_after=1)
    assert short.next_poll_at == NOW + FIVE_MIN  # never faster than the interval


def test_gone_notice_says_how_to_resume() -> None:
    notice = gone(FeedState("wire"), NOW)
    assert notice.kind == "feed_gone" and "change its url" in notice.document["message"]


def test_the_feeds_view() -> None:
    url = "https://wire.example/feed"
    assert view("wire", url, FIVE_MIN, FeedState("wire"), NOW).status == "never polled"
    polled = FeedState("wire", last_polled_at=NOW, last_success_at=NOW, items_seen=7)
    row = view("wire", url, FIVE_MIN, polled, NOW)
    assert (row.status, row.next_poll_at, row.items_seen) == ("ok", NOW + FIVE_MIN, 7)
    backing_off = replace(polled, consecutive_failures=4, next_poll_at=NOW + timedelta(hours=1))
    row = view("wire", url, FIVE_MIN, backing_off, NOW)
    assert (row.status, row.next_poll_at) == ("failing", NOW + timedelta(hours=1))
    dead = replace(polled, gone_url=url)
    assert view("wire", url, FIVE_MIN, dead, NOW).next_poll_at is None
    # A 410 on an old url does not retire the feed once the config names a new one.
    assert view("wire", url + "2", FIVE_MIN, dead, NOW).status == "ok"
    moved = replace(polled, moved_from=url, moved_to="https://new.example/feed")
    assert view("wire", url, FIVE_MIN, moved, NOW).moved_to == "https://new.example/feed"
    assert view("wire", url + "2", FIVE_MIN, moved, NOW).moved_to is None
