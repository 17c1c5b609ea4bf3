"""The SQLite store: the only module that speaks SQL. Owns the schema (named
migrations), applies a poll's plan in one transaction (items + alerts + outbox), and
serves the delivery worker and the read-only commands.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

from monitor.clock import iso, parse_iso
from monitor.models import Delivery, Entry, FeedState, Item, PollPlan
from monitor.retry import Step

migrations = Migrations("news-monitor")


@migrations(name="0001_initial")
def _initial(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE feeds (
            name TEXT PRIMARY KEY,
            url TEXT,
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            first_polled_at TEXT,
            last_polled_at TEXT,
            last_success_at TEXT,
            last_error TEXT,
            last_error_at TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            items_seen INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            feed TEXT NOT NULL,
            key TEXT NOT NULL,
            guid TEXT,
            link TEXT,
            title TEXT NOT NULL,
            summary TEXT NOT NULL,
            content TEXT NOT NULL,
            author TEXT NOT NULL,
            tags TEXT NOT NULL,
            language TEXT,
            published_at TEXT,
            first_seen_at TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            UNIQUE (feed, key)
        );
        CREATE INDEX items_first_seen ON items (first_seen_at);
        CREATE TABLE alerts (
            id TEXT PRIMARY KEY,
            rule TEXT NOT NULL,
            item_id INTEGER NOT NULL REFERENCES items (id),
            document TEXT NOT NULL,
            detected_at TEXT NOT NULL
        );
        CREATE INDEX alerts_detected ON alerts (detected_at);
        CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,
            alert_id TEXT NOT NULL REFERENCES alerts (id),
            notifier TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            lease_until TEXT,
            last_attempt_at TEXT,
            delivered_at TEXT,
            last_error TEXT
        );
        CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
        """
    )


class Store:
    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit at the driver level: every write goes through _write()'s explicit
        # BEGIN IMMEDIATE, so no statement ever joins a transaction by accident.
        self._conn = sqlite3.connect(str(path), isolation_level=None, timeout=10.0)
        self._conn.row_factory = sqlite3.Row
        self.db = Database(self._conn)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: an alert recorded as sent must stay recorded even after a power cut.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        migrations.apply(self.db)

    def close(self) -> None:
        with suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so two processes (daemon and a
        # cron `poll`) queue on busy_timeout instead of failing a lock upgrade.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return list(self._conn.execute(sql, tuple(params)))

    # --- feeds ---------------------------------------------------------------------------

    def feed_state(self, name: str) -> FeedState:
        rows = self._rows("SELECT * FROM feeds WHERE name = ?", [name])
        if not rows:
            return FeedState(name)
        row = rows[0]
        first = row["first_polled_at"]
        return FeedState(
            name=name,
            etag=row["etag"],
            last_modified=row["last_modified"],
            body_hash=row["body_hash"],
            first_polled_at=parse_iso(first) if first else None,
            consecutive_failures=row["consecutive_failures"],
        )

    def record_unchanged(self, name: str, url: str, now: datetime) -> None:
        with self._write() as conn:
            self._touch_feed(conn, name, url)
            conn.execute(
                "UPDATE feeds SET last_polled_at = ?, last_success_at = ?, last_error = NULL,"
                " consecutive_failures = 0 WHERE name = ?",
                (iso(now), iso(now), name),
            )

    def record_failure(self, name: str, url: str, error: str, now: datetime) -> int:
        """Returns the feed's consecutive failure count including this one."""
        with self._write() as conn:
            self._touch_feed(conn, name, url)
            conn.execute(
                "UPDATE feeds SET last_polled_at = ?, last_error = ?, last_error_at = ?,"
                " consecutive_failures = consecutive_failures + 1 WHERE name = ?",
                (iso(now), error, iso(now), name),
            )
            row = conn.execute(
                "SELECT consecutive_failures FROM feeds WHERE name = ?", (name,)
            ).fetchone()
        return int(row[0])

    @staticmethod
    def _touch_feed(conn: sqlite3.Connection, name: str, url: str) -> None:
        conn.execute(
            "INSERT INTO feeds (name, url) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET url = excluded.url",
            (name, url),
        )

    def known_keys(self, feed: str, keys: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                row[0]
                for row in self._conn.execute(
                    f"SELECT key FROM items WHERE feed = ? AND key IN ({marks})", (feed, *chunk)
                )
            )
        return found

    # --- one poll, one transaction -------------------------------------------------------

    def apply(self, plan: PollPlan, url: str, now: datetime) -> int:
        """Record a poll: new items, their alerts and one outbox row per (alert, notifier),
        all or nothing. Returns how many deliveries were queued."""
        queued = 0
        with self._write() as conn:
            self._touch_feed(conn, plan.feed, url)
            conn.execute(
                "UPDATE feeds SET etag = ?, last_modified = ?, body_hash = ?,"
                " first_polled_at = COALESCE(first_polled_at, ?), last_polled_at = ?,"
                " last_success_at = ?, last_error = NULL, consecutive_failures = 0,"
                " items_seen = items_seen + ? WHERE name = ?",
                (
                    plan.etag,
                    plan.last_modified,
                    plan.body_hash,
                    iso(now),
                    iso(now),
                    iso(now),
                    len(plan.new_items),
                    plan.feed,
                ),
            )
            item_ids: dict[str, int] = {}
            for item in plan.new_items:
                entry = item.entry
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO items (feed, key, guid, link, title, summary, content,"
                    " author, tags, language, published_at, first_seen_at, content_hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        item.feed,
                        item.key,
                        entry.guid,
                        entry.link,
                        entry.title,
                        entry.summary,
                        entry.content,
                        entry.author,
                        json.dumps(list(entry.tags)),
                        item.language,
                        iso(entry.published_at) if entry.published_at else None,
                        iso(now),
                        item.content_hash,
                    ),
                )
                if cursor.rowcount:
                    item_ids[item.key] = int(cursor.lastrowid or 0)
            for alert in plan.alerts:
                if alert.item_key not in item_ids:
                    continue
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO alerts (id, rule, item_id, document, detected_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        alert.id,
                        alert.rule,
                        item_ids[alert.item_key],
                        json.dumps(alert.document, ensure_ascii=False),
                        iso(now),
                    ),
                )
                if not cursor.rowcount:
                    continue
                for delivery, notifier in alert.deliveries:
                    conn.execute(
                        "INSERT OR IGNORE INTO deliveries (id, alert_id, notifier, state,"
                        " created_at, next_attempt_at) VALUES (?, ?, ?, 'pending', ?, ?)",
                        (delivery, alert.id, notifier, iso(now), iso(now)),
                    )
                    queued += 1
        return queued

    # --- the outbox ----------------------------------------------------------------------

    def claim_due(self, now: datetime, lease: timedelta, limit: int = 200) -> list[Delivery]:
        """Pending deliveries that are due, leased so a second process draining the same
        database leaves them alone; a crash lets the lease lapse and they come back."""
        with self._write() as conn:
            rows = conn.execute(
                "SELECT d.id, d.alert_id, d.notifier, d.attempts, d.created_at, a.document"
                " FROM deliveries d JOIN alerts a ON a.id = d.alert_id"
                " WHERE d.state = 'pending' AND d.next_attempt_at <= ?"
                " AND (d.lease_until IS NULL OR d.lease_until <= ?)"
                " ORDER BY d.created_at, d.id LIMIT ?",
                (iso(now), iso(now), limit),
            ).fetchall()
            conn.executemany(
                "UPDATE deliveries SET lease_until = ? WHERE id = ?",
                [(iso(now + lease), row["id"]) for row in rows],
            )
        return [
            Delivery(
                id=row["id"],
                alert_id=row["alert_id"],
                notifier=row["notifier"],
                attempts=row["attempts"],
                document=json.loads(row["document"]),
                created_at=parse_iso(row["created_at"]),
            )
            for row in rows
        ]

    def record_attempt(self, delivery_id: str, step: Step, now: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1, lease_until = NULL,"
                " last_attempt_at = ?, next_attempt_at = COALESCE(?, next_attempt_at),"
                " delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END,"
                " last_error = ? WHERE id = ?",
                (
                    step.state,
                    iso(now),
                    iso(step.next_attempt_at) if step.next_attempt_at else None,
                    step.state,
                    iso(now),
                    step.reason or None,
                    delivery_id,
                ),
            )

    def next_due_at(self) -> datetime | None:
        row = self._conn.execute(
            "SELECT MIN(COALESCE(MAX(next_attempt_at, lease_until), next_attempt_at))"
            " FROM deliveries WHERE state = 'pending'"
        ).fetchone()
        return parse_iso(row[0]) if row and row[0] else None

    def items_since(self, since: datetime) -> list[Item]:
        """Stored items first seen at or after `since`, oldest first, for replays."""
        rows = self._rows(
            "SELECT * FROM items WHERE first_seen_at >= ? ORDER BY first_seen_at, id",
            [iso(since)],
        )
        return [
            Item(
                feed=row["feed"],
                key=row["key"],
                entry=Entry(
                    guid=row["guid"],
                    link=row["link"],
                    title=row["title"],
                    summary=row["summary"],
                    content=row["content"],
                    author=row["author"],
                    tags=tuple(json.loads(row["tags"])),
                    published_at=parse_iso(row["published_at"]) if row["published_at"] else None,
                ),
                language=row["language"],
                content_hash=row["content_hash"],
            )
            for row in rows
        ]

    def pending_count(self) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")
        return int(row.fetchone()[0])
