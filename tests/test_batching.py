"""monitor/batching.py (pure pacing decisions) and how the store applies them: clock-aligned
windows, digest batches with stable ids, burst folding, whole digests claimed at once."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.batching import (
    MAX_DIGEST_ALERTS,
    Pacing,
    Queued,
    Slot,
    batch_id,
    period,
    slot,
    window,
)
from monitor.clock import parse_iso
from monitor.decide import plan_poll
from monitor.models import Entry, FeedState, Hit, Item, Match, PollPlan
from monitor.retry import Step
from monitor.store import Store

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
HOUR = timedelta(hours=1)

# Distinct words, so every headline is its own story and so its own alert.
WORDS = (
    "apple banana cherry damson elder fig grape hazel iris juniper kiwi lemon mango nectar"
    " olive papaya quince rowan sorrel tansy ugli vanilla walnut yarrow zucchini acorn birch"
    " cedar dogwood elm fir gorse holly ivy jasmine kale larch maple nettle oak pine reed"
    " sage teak umber vetch willow"
).split()

moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
lengths = st.timedeltas(min_value=timedelta(microseconds=1), max_value=timedelta(days=30))


# --- window -----------------------------------------------------------------------------


@given(moments, lengths)
def test_a_window_holds_now_and_is_aligned_to_the_epoch(now: datetime, length: timedelta) -> None:
    start, end = window(now, length)
    assert start <= now < end
    assert end - start == length
    assert (start - EPOCH) % length == timedelta(0)


@given(moments)
def test_a_quarter_hour_window_starts_on_the_quarter(now: datetime) -> None:
    start, end = window(now, QUARTER)
    assert start.minute in (0, 15, 30, 45)
    assert (start.second, start.microsecond) == (0, 0)
    assert end - start == QUARTER


@given(moments)
def test_an_hour_window_starts_on_the_hour(now: datetime) -> None:
    start, _ = window(now, HOUR)
    assert (start.minute, start.second, start.microsecond) == (0, 0, 0)
    assert start.hour == now.astimezone(UTC).hour


@given(moments, lengths)
def test_every_moment_of_a_window_shares_it(now: datetime, length: timedelta) -> None:
    start, end = window(now, length)
    assert window(start, length) == (start, end)
    assert window(end - timedelta(microseconds=1), length) == (start, end)
    assert window(end, length) == (end, end + length)  # the end belongs to the next one


@pytest.mark.parametrize(
    ("now", "length", "expected"),
    [
        (datetime(2026, 11, 24, 12, 7, 31, tzinfo=UTC), QUARTER, (12, 0, 12, 15)),
        (datetime(2026, 11, 24, 12, 15, tzinfo=UTC), QUARTER, (12, 15, 12, 30)),
        (datetime(2026, 11, 24, 12, 59, 59, 999_999, tzinfo=UTC), QUARTER, (12, 45, 13, 0)),
        (datetime(2026, 11, 24, 12, 59, 59, 999_999, tzinfo=UTC), HOUR, (12, 0, 13, 0)),
    ],
)
def test_window_examples(
    now: datetime, length: timedelta, expected: tuple[int, int, int, int]
) -> None:
    start, end = window(now, length)
    assert (start.hour, start.minute, end.hour, end.minute) == expected
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0)


def test_a_window_is_the_same_whatever_the_timezone_now_is_written_in() -> None:
    from datetime import timezone

    kyiv = timezone(timedelta(hours=2))
    local = datetime(2026, 11, 24, 14, 7, tzinfo=kyiv)  # 12:07 UTC
    assert window(local, QUARTER) == window(datetime(2026, 11, 24, 12, 7, tzinfo=UTC), QUARTER)


# --- slot -------------------------------------------------------------------------------


@given(moments, st.integers(0, 500), st.integers(0, 500))
def test_no_pacing_sends_now_on_its_own(now: datetime, singles: int, held: int) -> None:
    assert slot("hook", Pacing(), now, Queued(singles, held)) == Slot(now, None)
    assert period(Pacing()) is None


def test_a_burst_period_without_a_maximum_is_no_pacing() -> None:
    pacing = Pacing(burst_per=QUARTER)
    assert period(pacing) is None
    assert slot("hook", pacing, NOW, Queued(1000, 0)) == Slot(NOW, None)


@given(moments, st.integers(0, MAX_DIGEST_ALERTS - 1))
def test_a_digest_delivery_waits_for_the_end_of_its_window(now: datetime, held: int) -> None:
    pacing = Pacing(digest=QUARTER)
    placed = slot("hook", pacing, now, Queued(0, held))
    start, end = window(now, QUARTER)
    assert placed.due_at == end
    assert placed.batch == batch_id("hook", start, 0)
    assert placed.batch is not None and placed.batch.startswith("dg_")


def test_a_digest_ignores_single_sends_when_counting() -> None:
    pacing = Pacing(digest=QUARTER)
    assert slot("hook", pacing, NOW, Queued(500, 3)) == slot("hook", pacing, NOW, Queued(0, 3))


def test_digest_batch_ids_are_stable_and_distinct() -> None:
    pacing = Pacing(digest=QUARTER)
    first = slot("hook", pacing, NOW, Queued(0, 0)).batch
    # The same notifier, window and part: the same id, from any moment in the window.
    assert slot("hook", pacing, NOW + timedelta(minutes=14), Queued(0, 7)).batch == first
    assert batch_id("hook", NOW, 0) == batch_id("hook", NOW, 0) == first
    others = {
        slot("slack", pacing, NOW, Queued(0, 0)).batch,  # another notifier
        slot("hook", pacing, NOW + QUARTER, Queued(0, 0)).batch,  # the next window
        slot("hook", pacing, NOW, Queued(0, MAX_DIGEST_ALERTS)).batch,  # the next part
        slot("hook", Pacing(digest=HOUR), NOW - HOUR, Queued(0, 0)).batch,  # an earlier one
    }
    assert first not in others and len(others) == 4


@given(
    st.text(min_size=1, max_size=20),
    st.text(min_size=1, max_size=20),
    moments,
    st.integers(0, 5),
)
def test_batch_ids_differ_for_different_notifiers(
    one: str, other: str, start: datetime, part: int
) -> None:
    if one != other:
        assert batch_id(one, start, part) != batch_id(other, start, part)
    assert batch_id(one, start, part) != batch_id(one, start, part + 1)
    assert batch_id(one, start, part) != batch_id(one, start + timedelta(seconds=1), part)


def test_the_41st_held_delivery_starts_a_new_digest() -> None:
    pacing = Pacing(digest=QUARTER)
    fortieth = slot("hook", pacing, NOW, Queued(0, MAX_DIGEST_ALERTS - 1))
    forty_first = slot("hook", pacing, NOW, Queued(0, MAX_DIGEST_ALERTS))
    eighty_first = slot("hook", pacing, NOW, Queued(0, 2 * MAX_DIGEST_ALERTS))
    assert MAX_DIGEST_ALERTS == 40
    assert fortieth.batch == batch_id("hook", NOW, 0)
    assert forty_first.batch == batch_id("hook", NOW, 1)
    assert eighty_first.batch == batch_id("hook", NOW, 2)
    assert fortieth.due_at == forty_first.due_at == NOW + QUARTER


@given(moments, st.integers(1, 50), st.data())
def test_a_burst_sends_alone_below_its_maximum_and_folds_above(
    now: datetime, most: int, data: st.DataObject
) -> None:
    pacing = Pacing(burst_max=most, burst_per=timedelta(minutes=5))
    below = data.draw(st.integers(0, most - 1))
    assert slot("hook", pacing, now, Queued(below, 0)) == Slot(now, None)
    above = data.draw(st.integers(most, most + 100))
    held = data.draw(st.integers(0, 100))
    start, end = window(now, timedelta(minutes=5))
    folded = slot("hook", pacing, now, Queued(above, held))
    assert folded == Slot(end, batch_id("hook", start, held // MAX_DIGEST_ALERTS))


# --- the store --------------------------------------------------------------------------


def item(key: str, title: str) -> Item:
    entry = Entry(key, f"https://x.example/{key}", title, "summary", "", "", (), NOW)
    return Item("wire", key, entry, "en", "hash-" + key)


def headlines(count: int) -> list[Item]:
    assert count <= len(WORDS) ** 2
    return [
        item(f"k{n}", f"{WORDS[n % len(WORDS)].title()} {WORDS[n // len(WORDS)]} troops")
        for n in range(count)
    ]


def plan(items: list[Item], notifiers: tuple[str, ...] = ("hook",)) -> PollPlan:
    matches = {i.key: [Match("r", (Hit("troops", "title"),))] for i in items}
    return plan_poll(
        FeedState("wire", first_polled_at=NOW),
        items,
        {},
        matches,
        {"r": notifiers},
        NOW,
        timedelta(hours=24),
        ("etag", None, "body"),
    )


Row = tuple[str, str, str | None, str, int, str | None]


def rows(path: Path) -> list[Row]:
    """(id, notifier, batch, next_attempt_at, attempts, state) of every delivery."""
    with sqlite3.connect(path) as conn:
        return list(
            conn.execute(
                "SELECT id, notifier, batch, next_attempt_at, attempts, state FROM deliveries"
                " ORDER BY id"
            )
        )


def test_a_digest_notifiers_deliveries_share_one_batch_and_due_time(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    pacing = {"hook": Pacing(digest=QUARTER)}
    assert store.apply(plan(headlines(5), ("hook", "console")), "u", NOW, pacing) == 10

    held = [row for row in rows(path) if row[1] == "hook"]
    alone = [row for row in rows(path) if row[1] == "console"]
    assert len(held) == 5 and len(alone) == 5
    assert {row[2] for row in held} == {batch_id("hook", NOW, 0)}
    assert {parse_iso(row[3]) for row in held} == {NOW + QUARTER}
    # A notifier without pacing is not held.
    assert {row[2] for row in alone} == {None}
    assert {parse_iso(row[3]) for row in alone} == {NOW}

    # Before the window closes only the unpaced ones are due; at its end, the digest.
    lease = timedelta(hours=1)  # the unpaced ones stay leased throughout
    early = store.claim_due(NOW, lease)
    assert sorted(d.notifier for d in early) == ["console"] * 5
    assert store.claim_due(NOW + QUARTER - timedelta(microseconds=1), lease) == []
    digest = store.claim_due(NOW + QUARTER, lease)
    assert len(digest) == 5
    assert {d.batch for d in digest} == {batch_id("hook", NOW, 0)}


def test_claim_due_takes_a_digest_whole_whatever_the_limit(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.apply(plan(headlines(7)), "u", NOW, {"hook": Pacing(digest=QUARTER)})
    claimed = store.claim_due(NOW + QUARTER, timedelta(seconds=30), limit=2)
    assert len(claimed) == 7
    assert len({d.id for d in claimed}) == 7
    # Every member is leased: nothing is left for a second worker.
    assert store.claim_due(NOW + QUARTER, timedelta(seconds=30)) == []


def test_a_window_with_more_than_forty_alerts_makes_two_digests(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    total = MAX_DIGEST_ALERTS + 5
    assert store.apply(plan(headlines(total)), "u", NOW, {"hook": Pacing(digest=QUARTER)}) == total
    sizes: dict[str | None, int] = {}
    for row in rows(path):
        sizes[row[2]] = sizes.get(row[2], 0) + 1
    assert sizes == {batch_id("hook", NOW, 0): MAX_DIGEST_ALERTS, batch_id("hook", NOW, 1): 5}

    # A limit that cuts into either digest still brings each digest it touches whole.
    claimed = store.claim_due(NOW + QUARTER, timedelta(seconds=30), limit=1)
    taken: dict[str | None, int] = {}
    for delivery in claimed:
        taken[delivery.batch] = taken.get(delivery.batch, 0) + 1
    assert len(taken) == 1
    [(batch, size)] = taken.items()
    assert size == sizes[batch]
    rest = store.claim_due(NOW + QUARTER, timedelta(seconds=30), limit=1)
    assert len(claimed) + len(rest) == total
    assert {d.batch for d in rest} == set(sizes) - {batch}


def test_a_second_poll_in_the_window_joins_the_same_digest(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    pacing = {"hook": Pacing(digest=QUARTER)}
    first, second = headlines(2)
    store.apply(plan([first]), "u", NOW, pacing)
    store.apply(plan([second]), "u", NOW + timedelta(minutes=10), pacing)
    store.apply(plan([item("late", "Zebra quokka troops")]), "u", NOW + QUARTER, pacing)
    batches = [row[2] for row in rows(path)]
    assert batches.count(batch_id("hook", NOW, 0)) == 2
    assert batches.count(batch_id("hook", NOW + QUARTER, 0)) == 1


def test_a_burst_sends_its_maximum_alone_and_folds_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    per = timedelta(minutes=5)
    pacing = {"hook": Pacing(burst_max=2, burst_per=per)}
    assert store.apply(plan(headlines(5)), "u", NOW, pacing) == 5
    found = rows(path)
    singles = [row for row in found if row[2] is None]
    folded = [row for row in found if row[2] is not None]
    assert len(singles) == 2 and len(folded) == 3
    assert {parse_iso(row[3]) for row in singles} == {NOW}
    assert {parse_iso(row[3]) for row in folded} == {NOW + per}
    assert {row[2] for row in folded} == {batch_id("hook", NOW, 0)}

    # The next period starts the count again.
    store.apply(plan([item("next", "Zebra quokka troops")]), "u", NOW + per, pacing)
    [fresh] = [row for row in rows(path) if row[0] not in {r[0] for r in found}]
    assert fresh[2] is None and parse_iso(fresh[3]) == NOW + per


def test_record_attempt_with_a_list_updates_every_member(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    store.apply(plan(headlines(4)), "u", NOW, {"hook": Pacing(digest=QUARTER)})
    due = NOW + QUARTER
    claimed = store.claim_due(due, timedelta(seconds=30))
    retry_at = due + timedelta(seconds=5)
    store.record_attempt([d.id for d in claimed], Step("pending", retry_at, "HTTP 503"), due)
    with sqlite3.connect(path) as conn:
        found = list(
            conn.execute(
                "SELECT attempts, next_attempt_at, lease_until, last_error FROM deliveries"
            )
        )
    assert len(found) == 4
    assert {(a, parse_iso(n), lease, error) for a, n, lease, error in found} == {
        (1, retry_at, None, "HTTP 503")
    }

    again = store.claim_due(retry_at, timedelta(seconds=30))
    assert sorted(d.id for d in again) == sorted(d.id for d in claimed)
    store.record_attempt([d.id for d in again], Step("delivered"), retry_at)
    assert store.pending_count() == 0
    assert {(row[4], row[5]) for row in rows(path)} == {(2, "delivered")}


def test_record_attempt_still_takes_a_single_id(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    store.apply(plan(headlines(2)), "u", NOW)
    one, other = store.claim_due(NOW, timedelta(seconds=30))
    store.record_attempt(one.id, Step("delivered"), NOW)
    states = {row[0]: row[5] for row in rows(path)}
    assert states == {one.id: "delivered", other.id: "pending"}
