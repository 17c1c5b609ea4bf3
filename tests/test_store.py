"""The store on a real SQLite file: migrations, one transaction per poll, idempotent
apply, leases on the outbox."""

from __future__ import annotations

import random
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.decide import plan_poll
from monitor.health import HealthPolicy, after_failure
from monitor.models import Entry, FeedState, Hit, Item, Match, PollPlan, SendResult
from monitor.retry import Step, next_step
from monitor.store import Store

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def item(key: str, title: str) -> Item:
    entry = Entry(key, f"https://x.example/{key}", title, "summary", "", "", (), NOW)
    return Item("wire", key, entry, "en", "hash-" + key)


def plan(*items: Item, rule: str = "r", notifiers: tuple[str, ...] = ("hook",)) -> PollPlan:
    matches = {i.key: [Match(rule, (Hit("troops", "title"),))] for i in items}
    return plan_poll(
        FeedState("wire", first_polled_at=NOW),
        items,
        {},
        matches,
        {rule: notifiers},
        NOW,
        timedelta(hours=24),
        ("etag", None, "body"),
    )


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_migrations_are_named_recorded_and_applied_once(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    Store(path).close()
    Store(path).close()
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
        assert names == [
            "0001_initial",
            "0002_stories",
            "0003_batches",
            "0004_feed_health",
            "0005_story_index",
        ]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_apply_records_items_alerts_and_outbox_together(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    queued = store.apply(
        plan(item("a", "A"), item("b", "B"), notifiers=("hook", "slack")),
        "https://x.example/feed",
        NOW,
    )
    assert queued == 4
    assert (count(path, "items"), count(path, "alerts"), count(path, "deliveries")) == (2, 2, 4)
    found = store.lookup("wire", [item("a", "A"), item("b", "B"), item("c", "C")])
    assert set(found) == {"a", "b"}
    assert store.feed_state("wire").etag == "etag"


def test_apply_is_idempotent(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    the_plan = plan(item("a", "A"))
    assert store.apply(the_plan, "u", NOW) == 1
    assert store.apply(the_plan, "u", NOW) == 0
    assert store.pending_count() == 1


def test_a_failure_inside_apply_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    good = plan(item("a", "A"))
    unserialisable = replace(good.alerts[0], document={"not json": object()})
    broken = replace(good, alerts=(unserialisable,))
    with pytest.raises(TypeError):
        store.apply(broken, "u", NOW)
    assert (count(path, "items"), count(path, "alerts"), count(path, "feeds")) == (0, 0, 0)
    assert store.apply(good, "u", NOW) == 1


def test_claims_are_leased_and_lapse(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.apply(plan(item("a", "A")), "u", NOW)
    lease = timedelta(seconds=30)
    [claimed] = store.claim_due(NOW, lease)
    assert claimed.document["story"]["title"] == "A"
    assert store.claim_due(NOW + timedelta(seconds=10), lease) == []
    [again] = store.claim_due(NOW + timedelta(seconds=31), lease)
    assert again.id == claimed.id


def test_a_renewed_lease_outlives_a_long_batch_and_a_lost_one_is_not_sent(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.db")
    store.apply(plan(item("a", "A"), item("b", "B")), "u", NOW)
    lease = timedelta(seconds=30)
    first, second = store.claim_due(NOW, lease)
    # The worker is slow: 25 s into its batch it renews the first before sending it.
    renewed = store.renew_lease(first, NOW + timedelta(seconds=25), lease)
    assert renewed is not None
    assert store.renew_lease(renewed, NOW + timedelta(seconds=40), lease) is not None
    # The second's lease lapsed at 30 s and another process claimed it at 31 s.
    later = NOW + timedelta(seconds=31)
    [taken] = store.claim_due(later, lease)
    assert taken.id == second.id
    assert store.renew_lease(second, later, lease) is None  # the first worker backs off
    assert store.renew_lease(taken, later, lease) is not None
    # A delivery recorded as sent cannot be renewed either.
    store.record_attempt(first.id, Step("delivered"), later)
    assert store.renew_lease(renewed, later, lease) is None


def test_attempts_move_deliveries_through_their_states(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    store.apply(plan(item("a", "A"), item("b", "B")), "u", NOW)
    first, second = store.claim_due(NOW, timedelta(seconds=30))
    retry = next_step(SendResult("retry", "HTTP 503"), 1, NOW, NOW, random.Random(1))
    store.record_attempt(first.id, retry, NOW)
    store.record_attempt(second.id, Step("delivered"), NOW)
    assert store.pending_count() == 1
    assert store.claim_due(NOW, timedelta(seconds=30)) == []
    assert store.next_due_at() == retry.next_attempt_at
    [due] = store.claim_due(retry.next_attempt_at or NOW, timedelta(seconds=30))
    assert due.id == first.id and due.attempts == 1
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT state, delivered_at FROM deliveries WHERE id = ?", (second.id,)
        ).fetchone()
    assert row[0] == "delivered" and row[1]


def test_failures_count_up_and_success_resets(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    for expected in (1, 2):
        state = store.feed_state("wire")
        step = after_failure(state, "HTTP 500", timedelta(minutes=5), NOW, HealthPolicy())
        store.record_failure("wire", "u", "HTTP 500", NOW, step, NOW + timedelta(minutes=1))
        state = store.feed_state("wire")
        assert state.consecutive_failures == expected
        assert state.failing_since == NOW and state.last_error == "HTTP 500"
        assert state.next_poll_at == step.next_poll_at
        assert state.wait_until == NOW + timedelta(minutes=1)
    store.record_unchanged("wire", "u", NOW)
    state = store.feed_state("wire")
    assert state.consecutive_failures == 0
    assert (state.failing_since, state.next_poll_at, state.wait_until) == (None, None, None)
    assert state.last_error is None


def test_writable_reports_a_read_only_database_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert store.writable() is None
    (tmp_path / "s.db").chmod(0o444)
    assert store.writable() == "the database file is read-only"
    (tmp_path / "s.db").chmod(0o644)
    assert store.writable() is None
    store.close()


def _statements(store: Store) -> list[str]:
    seen: list[str] = []
    store._conn.set_trace_callback(seen.append)
    return seen


def test_only_a_durable_write_waits_for_the_disk(tmp_path: Path) -> None:
    store = Store(tmp_path / "sync.db")
    seen = _statements(store)
    store.apply(plan(item("a", "Troops cross the river")), "https://x.example/feed", NOW)
    assert not [s for s in seen if "synchronous" in s]
    [delivery] = store.claim_due(NOW, timedelta(minutes=1))
    seen.clear()
    store.record_attempt(delivery.id, Step("delivered"), NOW)
    assert seen[0] == "PRAGMA synchronous=FULL" and seen[-1] == "PRAGMA synchronous=NORMAL"
    assert seen.index("BEGIN IMMEDIATE") < seen.index("COMMIT") < len(seen) - 1
    seen.clear()
    store.record_attempt(delivery.id, Step("delivered"), NOW, durable=False)
    assert not [s for s in seen if "synchronous" in s]
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL


def test_a_failed_durable_write_leaves_the_connection_at_normal(tmp_path: Path) -> None:
    store = Store(tmp_path / "sync.db")
    with pytest.raises(RuntimeError), store._write(durable=True):
        raise RuntimeError("boom")
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1
