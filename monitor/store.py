"""The SQLite store: the only module that speaks SQL. Owns the schema (named
migrations), applies a poll's plan in one transaction (items + alerts + outbox), and
serves the delivery worker and the read-only commands.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import struct
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

from monitor.batching import Pacing, Queued, period, slot, window
from monitor.clock import iso, parse_iso
from monitor.decide import delivery_id
from monitor.health import AfterFailure, Notice
from monitor.identity import digest, title_key
from monitor.models import (
    AlertIntent,
    AlertRecord,
    Delivery,
    DeliveryState,
    Edit,
    Entry,
    FeedState,
    FoundBy,
    Item,
    NewItem,
    PollPlan,
    StoredItem,
    StoryCandidate,
    StorySignature,
)
from monitor.render import with_sources
from monitor.retry import Step
from monitor.story import (
    HEADLINE_WINDOW,
    MIN_WORDS,
    choose_story,
    link_key,
    minhash_bands,
    signature,
)
from monitor.story_index import StoryIndex

migrations = Migrations("news-monitor")

# How many decoded stories a Store keeps. A story's headline, words and first-seen time
# never change once written, so a decoded copy stays true; about 0.5 KB each.
_DECODED_STORIES = 20_000


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


@migrations(name="0002_stories")
def _stories(db: Database) -> None:
    """Stories across feeds, fallback identities within a feed, and what retention needs.
    Rows written by 0001 get their link keys, story signatures and last-seen times here,
    so an upgraded database neither re-alerts nor forgets."""
    for statement in (
        "ALTER TABLE feeds ADD COLUMN last_parsed_at TEXT",
        "ALTER TABLE items ADD COLUMN link_key TEXT",
        "ALTER TABLE items ADD COLUMN title_key TEXT",
        "ALTER TABLE items ADD COLUMN story_id TEXT",
        "ALTER TABLE items ADD COLUMN last_seen_at TEXT",
        "ALTER TABLE items ADD COLUMN matched TEXT NOT NULL DEFAULT '[]'",
        "CREATE INDEX items_link ON items (link_key)",
        "CREATE INDEX items_feed_hash ON items (feed, content_hash)",
        "CREATE INDEX items_story ON items (story_id)",
        """CREATE TABLE stories (
            id TEXT PRIMARY KEY,
            headline_key TEXT,
            words TEXT NOT NULL,
            numbers TEXT NOT NULL,
            entities TEXT NOT NULL,
            first_seen_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL
        )""",
        "CREATE INDEX stories_headline ON stories (headline_key)",
        """CREATE TABLE story_bands (
            band TEXT NOT NULL,
            story_id TEXT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
            PRIMARY KEY (band, story_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX story_bands_story ON story_bands (story_id)",
        "ALTER TABLE alerts ADD COLUMN story_id TEXT",
        "CREATE INDEX alerts_item ON alerts (item_id)",
        "CREATE INDEX deliveries_alert ON deliveries (alert_id)",
        """CREATE TABLE alert_sources (
            alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
            feed TEXT NOT NULL,
            title TEXT NOT NULL,
            url TEXT,
            seen_at TEXT NOT NULL,
            PRIMARY KEY (alert_id, feed)
        )""",
    ):
        db.execute(statement)
    rows = list(db.execute("SELECT * FROM items ORDER BY id").fetchall())
    columns = [c[0] for c in db.execute("SELECT * FROM items LIMIT 0").description]
    for values in rows:
        row = dict(zip(columns, values, strict=True))
        item = _item_from_row(row)
        story = "st_" + digest(item.feed, item.key)
        sig = signature(item)
        matched = [
            r[0] for r in db.execute("SELECT rule FROM alerts WHERE item_id = ?", [row["id"]])
        ]
        db.execute(
            "UPDATE items SET link_key = ?, title_key = ?, story_id = ?, last_seen_at = ?,"
            " matched = ? WHERE id = ?",
            [sig.link_key, title_key(item.entry.title), story, row["first_seen_at"],
             json.dumps(sorted(set(matched))), row["id"]],
        )  # fmt: skip
        # This release's stories table; 0005 gives every story its bands from its words.
        db.execute(
            "INSERT OR IGNORE INTO stories (id, headline_key, words, numbers, entities,"
            " first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [story, sig.headline_key, json.dumps(sorted(sig.words)),
             json.dumps(sorted(sig.numbers)), json.dumps(sorted(sig.entities)),
             row["first_seen_at"], row["first_seen_at"]],
        )  # fmt: skip
        db.execute("UPDATE alerts SET story_id = ? WHERE item_id = ?", [story, row["id"]])
    db.execute("CREATE UNIQUE INDEX alerts_rule_story ON alerts (rule, story_id)")


@migrations(name="0003_batches")
def _batches(db: Database) -> None:
    """Digests and burst folding: a delivery held for a digest names its batch, and a
    notifier's deliveries in a period are counted by creation time."""
    db.execute("ALTER TABLE deliveries ADD COLUMN batch TEXT")
    db.execute("CREATE INDEX deliveries_batch ON deliveries (batch)")
    db.execute("CREATE INDEX deliveries_notifier_created ON deliveries (notifier, created_at)")


@migrations(name="0004_feed_health")
def _feed_health(db: Database) -> None:
    """Backoff, Retry-After, moves, 410s and feed notices. Deliveries lose their foreign
    key to alerts: a delivery now carries an alert or a feed notice."""
    for column in (
        "failing_since TEXT",
        "failing_notified INTEGER NOT NULL DEFAULT 0",
        "last_notice_at TEXT",
        "next_poll_at TEXT",
        "wait_until TEXT",
        "gone_url TEXT",
        "moved_from TEXT",
        "moved_to TEXT",
    ):
        db.execute(f"ALTER TABLE feeds ADD COLUMN {column}")
    db.executescript(
        """
        CREATE TABLE notices (
            id TEXT PRIMARY KEY,
            feed TEXT NOT NULL,
            kind TEXT NOT NULL,
            document TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE deliveries_new (
            id TEXT PRIMARY KEY,
            alert_id TEXT NOT NULL,
            notifier TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            lease_until TEXT,
            last_attempt_at TEXT,
            delivered_at TEXT,
            last_error TEXT,
            batch TEXT
        );
        INSERT INTO deliveries_new SELECT id, alert_id, notifier, state, attempts, created_at,
            next_attempt_at, lease_until, last_attempt_at, delivered_at, last_error, batch
            FROM deliveries;
        DROP TABLE deliveries;
        ALTER TABLE deliveries_new RENAME TO deliveries;
        CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
        CREATE INDEX deliveries_alert ON deliveries (alert_id);
        CREATE INDEX deliveries_batch ON deliveries (batch);
        CREATE INDEX deliveries_notifier_created ON deliveries (notifier, created_at);
        """
    )


@migrations(name="0005_story_index")
def _story_index(db: Database) -> None:
    """Bands move from a table (12 rows per story, written at random places in two
    indexes on every poll) into a column of the story, read into memory for the headline
    window. `seq` numbers stories in the order they were written and is never reused
    (AUTOINCREMENT), so a process finds the stories another one added since it last
    looked. Alerts are indexed by story, for adding sources."""
    # Statement by statement: executescript() would commit the migration's transaction.
    db.execute("DROP TABLE story_bands")
    db.execute(
        """CREATE TABLE stories_new (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            headline_key TEXT,
            words TEXT NOT NULL,
            numbers TEXT NOT NULL,
            entities TEXT NOT NULL,
            bands BLOB NOT NULL,
            first_seen_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL
        )"""
    )
    rows = db.execute(
        "SELECT id, headline_key, words, numbers, entities, first_seen_at, last_seen_at"
        " FROM stories ORDER BY rowid"
    ).fetchall()
    db.conn.executemany(
        "INSERT INTO stories_new (id, headline_key, words, numbers, entities, bands,"
        " first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(ident, headline, words, numbers, entities, _packed(_bands_of(json.loads(words))),
          first_seen, last_seen)
         for ident, headline, words, numbers, entities, first_seen, last_seen in rows],
    )  # fmt: skip
    for statement in (
        "DROP TABLE stories",
        "ALTER TABLE stories_new RENAME TO stories",
        "CREATE INDEX stories_first_seen ON stories (first_seen_at)",
        "CREATE INDEX alerts_story ON alerts (story_id)",
    ):
        db.execute(statement)


def _bands_of(words: list[str]) -> tuple[int, ...]:
    # As signature() makes them: a headline too short for a key has no bands either.
    return minhash_bands(words) if len(words) >= MIN_WORDS else ()


def _packed(bands: Sequence[int]) -> bytes:
    return struct.pack(f"<{len(bands)}Q", *bands)


def _unpacked(blob: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(blob) // 8}Q", blob)


def _insert_story(conn: sqlite3.Connection, story: str, sig: StorySignature, now: str) -> int:
    """Returns the story's number (`seq`), or 0 if a story with this id already exists."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO stories (id, headline_key, words, numbers, entities, bands,"
        " first_seen_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (story, sig.headline_key, json.dumps(sorted(sig.words)), json.dumps(sorted(sig.numbers)),
         json.dumps(sorted(sig.entities)), _packed(sig.bands), now, now),
    )  # fmt: skip
    return int(cursor.lastrowid or 0) if cursor.rowcount else 0


def _index_keys(headline_key: str | None, bands: Iterable[int]) -> list[int | str]:
    keys: list[int | str] = list(bands)
    if headline_key is not None:
        keys.append(headline_key)
    return keys


def _interned(words: str) -> tuple[str, ...]:
    # Thousands of stories share a few thousand stems; one copy of each is enough.
    return tuple([sys.intern(word) for word in json.loads(words)])


def _item_from_row(row: Any) -> Item:
    return Item(
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


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Autocommit at the driver level: every write goes through _write()'s explicit
        # BEGIN IMMEDIATE, so no statement ever joins a transaction by accident.
        self._conn = sqlite3.connect(str(path), isolation_level=None, timeout=10.0)
        self._conn.row_factory = sqlite3.Row
        self.db = Database(self._conn)
        # Decoded candidates by story number; a story's headline, words and first-seen
        # time never change once written, so a decoded copy stays true.
        self._decoded_stories: dict[int, StoryCandidate] = {}
        # Loaded on the first new item, then kept in step with our writes and, through
        # data_version, with other processes' (a daemon and a cron `poll` may share a file).
        self._index: StoryIndex | None = None
        self._data_version: int | None = None
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL: with WAL a commit survives any crash of this process at once, and only a
        # power cut or kernel crash can take back commits not yet synced. Those are polls
        # and bookkeeping, which the next poll redoes. What must survive even that (a send
        # recorded as made) is written with _write(durable=True), whose fsync of the log
        # also makes every earlier commit durable.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # A poll rewrites pages all over the story and band indexes; checkpointing every
        # 40 MB of log instead of SQLite's 4 MB copies each hot page to the database once
        # instead of ten times (a cold pass of 1,000 feeds: 30 s down to 24 s).
        self._conn.execute("PRAGMA wal_autocheckpoint=10000")
        self._conn.execute("PRAGMA foreign_keys=ON")
        migrations.apply(self.db)

    def close(self) -> None:
        with suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()

    @contextmanager
    def _write(self, durable: bool = False) -> Iterator[sqlite3.Connection]:
        if durable:
            self._conn.execute("PRAGMA synchronous=FULL")
        try:
            # IMMEDIATE takes the write lock up front, so two processes (daemon and a
            # cron `poll`) queue on busy_timeout instead of failing a lock upgrade.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                # Stories decoded or indexed inside the transaction may not exist after all.
                self._forget_stories()
                raise
            self._conn.execute("COMMIT")
        finally:
            if durable:
                self._conn.execute("PRAGMA synchronous=NORMAL")

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return list(self._conn.execute(sql, tuple(params)))

    # --- feeds ---------------------------------------------------------------------------

    def feed_state(self, name: str) -> FeedState:
        rows = self._rows("SELECT * FROM feeds WHERE name = ?", [name])
        return _feed_state(rows[0]) if rows else FeedState(name)

    def feed_states(self) -> dict[str, FeedState]:
        return {row["name"]: _feed_state(row) for row in self._rows("SELECT * FROM feeds")}

    def record_unchanged(self, name: str, url: str, now: datetime) -> None:
        with self._write() as conn:
            self._touch_feed(conn, name, url)
            conn.execute(
                f"UPDATE feeds SET last_polled_at = ?, last_success_at = ?, {_HEALTHY}"
                " WHERE name = ?",
                (iso(now), iso(now), name),
            )

    def record_failure(
        self,
        name: str,
        url: str,
        error: str,
        now: datetime,
        step: AfterFailure,
        wait_until: datetime | None = None,
    ) -> None:
        with self._write() as conn:
            self._touch_feed(conn, name, url)
            conn.execute(
                "UPDATE feeds SET last_polled_at = ?, last_error = ?, last_error_at = ?,"
                " consecutive_failures = ?, failing_since = ?, next_poll_at = ?,"
                " wait_until = ? WHERE name = ?",
                (iso(now), error, iso(now), step.failures, iso(step.failing_since),
                 iso(step.next_poll_at), iso(wait_until) if wait_until else None, name),
            )  # fmt: skip

    def record_gone(self, name: str, url: str, now: datetime) -> None:
        """The configured URL answered 410 Gone: it is not polled again until it changes."""
        with self._write() as conn:
            self._touch_feed(conn, name, url)
            conn.execute(
                "UPDATE feeds SET last_polled_at = ?, last_error = 'HTTP 410 Gone',"
                " last_error_at = ?, gone_url = ? WHERE name = ?",
                (iso(now), iso(now), url, name),
            )

    def record_move(self, name: str, configured: str, moved_to: str) -> None:
        with self._write() as conn:
            self._touch_feed(conn, name, configured)
            conn.execute(
                "UPDATE feeds SET moved_from = ?, moved_to = ? WHERE name = ?",
                (configured, moved_to, name),
            )

    def record_notice(self, notice: Notice, notifiers: Sequence[str], now: datetime) -> int:
        """A feed notice, its outbox rows, and the feed's notice bookkeeping, at once.
        Returns how many deliveries were queued (0 if it was recorded before)."""
        with self._write() as conn:
            added = conn.execute(
                "INSERT OR IGNORE INTO notices (id, feed, kind, document, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (notice.id, notice.feed, notice.kind,
                 json.dumps(notice.document, ensure_ascii=False), iso(now)),
            ).rowcount  # fmt: skip
            if notice.kind == "feed_recovered":
                conn.execute("UPDATE feeds SET failing_notified = 0 WHERE name = ?", (notice.feed,))
            else:
                conn.execute(
                    "UPDATE feeds SET failing_notified = ?, last_notice_at = ? WHERE name = ?",
                    (int(notice.kind == "feed_failing"), iso(now), notice.feed),
                )
            if not added:
                return 0
            conn.executemany(
                "INSERT OR IGNORE INTO deliveries (id, alert_id, notifier, state, created_at,"
                " next_attempt_at) VALUES (?, ?, ?, 'pending', ?, ?)",
                [(delivery_id(notice.id, n), notice.id, n, iso(now), iso(now)) for n in notifiers],
            )
        return len(notifiers)

    @staticmethod
    def _touch_feed(conn: sqlite3.Connection, name: str, url: str) -> None:
        conn.execute(
            "INSERT INTO feeds (name, url) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET url = excluded.url",
            (name, url),
        )

    def lookup(self, feed: str, items: Sequence[Item]) -> dict[str, StoredItem]:
        """The recorded items this poll's entries are, by item key. An entry whose key is
        unknown is still the same item when a recorded one in the feed has its link and
        title (the feed rewrote its guid) or its whole content (guid and link rewritten)."""
        found: dict[str, StoredItem] = {}
        for row in self._in(
            "SELECT id, key, content_hash, matched FROM items WHERE feed = ? AND key IN ({})",
            [feed],
            [item.key for item in items],
        ):
            found[row["key"]] = _stored(row, "key")
        rest = [item for item in items if item.key not in found]
        links = {key for key in (link_key(item.entry.link) for item in rest) if key}
        by_link: dict[tuple[str, str], sqlite3.Row] = {}
        for row in self._in(
            "SELECT id, link_key, title_key, content_hash, matched FROM items"
            " WHERE feed = ? AND link_key IN ({}) ORDER BY id",
            [feed],
            list(links),
        ):
            by_link.setdefault((row["link_key"], row["title_key"]), row)
        for item in rest:
            linked = by_link.get((link_key(item.entry.link) or "", title_key(item.entry.title)))
            if linked is not None:
                found[item.key] = _stored(linked, "link")
        rest = [item for item in rest if item.key not in found]
        by_hash: dict[str, sqlite3.Row] = {}
        for row in self._in(
            "SELECT id, content_hash, matched FROM items"
            " WHERE feed = ? AND content_hash IN ({}) ORDER BY id",
            [feed],
            [item.content_hash for item in rest],
        ):
            by_hash.setdefault(row["content_hash"], row)
        for item in rest:
            same = by_hash.get(item.content_hash)
            if same is not None:
                found[item.key] = _stored(same, "content")
        return found

    def _in(self, sql: str, params: list[Any], values: Sequence[object]) -> Iterator[sqlite3.Row]:
        """Rows for `... IN ({})` over many values, in chunks SQLite accepts."""
        for start in range(0, len(values), 500):
            chunk = values[start : start + 500]
            yield from self._conn.execute(sql.format(",".join("?" * len(chunk))), (*params, *chunk))

    # --- one poll, one transaction -------------------------------------------------------

    def apply(
        self, plan: PollPlan, url: str, now: datetime, pacing: Mapping[str, Pacing] | None = None
    ) -> int:
        """Record a poll: new items with their stories, edits, alerts and one outbox row per
        (alert, notifier), all or nothing. An alert is made once per (rule, story); an item
        joining a story is added to the story's alerts as another source. Returns how many
        deliveries were queued."""
        stamp = iso(now)
        queued = 0
        with self._write() as conn:
            self._touch_feed(conn, plan.feed, url)
            conn.execute(
                "UPDATE feeds SET etag = ?, last_modified = ?, body_hash = ?,"
                " first_polled_at = COALESCE(first_polled_at, ?), last_polled_at = ?,"
                " last_success_at = ?, last_parsed_at = ?, items_seen = items_seen + ?,"
                f" {_HEALTHY} WHERE name = ?",
                (plan.etag, plan.last_modified, plan.body_hash, stamp, stamp, stamp, stamp,
                 len(plan.new_items), plan.feed),
            )  # fmt: skip
            placed: dict[str, tuple[int, str]] = {}  # item key → (item id, story id)
            if plan.new_items:
                placed |= self._place_new_items(conn, plan.new_items, now, stamp)
            for edit in plan.edits:
                placed[edit.item.key] = (edit.stored_id, self._update_item(conn, edit, stamp))
            conn.executemany(
                "UPDATE items SET last_seen_at = ? WHERE id = ?",
                [(stamp, item_id) for item_id in plan.seen],
            )
            for alert in plan.alerts:
                if alert.item_key in placed:
                    item_id, story = placed[alert.item_key]
                    queued += self._insert_alert(conn, alert, item_id, story, now, pacing or {})
        return queued

    @staticmethod
    def _insert_item(conn: sqlite3.Connection, new: NewItem, story: str, now: str) -> int | None:
        item, entry = new.item, new.item.entry
        cursor = conn.execute(
            "INSERT OR IGNORE INTO items (feed, key, guid, link, title, summary, content, author,"
            " tags, language, published_at, first_seen_at, content_hash, link_key, title_key,"
            " story_id, last_seen_at, matched)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (item.feed, item.key, entry.guid, entry.link, entry.title, entry.summary,
             entry.content, entry.author, json.dumps(list(entry.tags)), item.language,
             iso(entry.published_at) if entry.published_at else None, now, item.content_hash,
             new.signature.link_key, title_key(entry.title), story, now,
             json.dumps(sorted(set(new.matched)))),
        )  # fmt: skip
        return int(cursor.lastrowid or 0) if cursor.rowcount else None

    @staticmethod
    def _update_item(conn: sqlite3.Connection, edit: Edit, now: str) -> str:
        """Store the edited text and what it matches now; returns the item's story."""
        entry = edit.item.entry
        previous = conn.execute(
            "SELECT matched, story_id FROM items WHERE id = ?", (edit.stored_id,)
        ).fetchone()
        # Rules matched by any version stay matched: an edit back and forth alerts once.
        matched = sorted(set(json.loads(previous["matched"])) | set(edit.matched))
        conn.execute(
            "UPDATE items SET title = ?, summary = ?, content = ?, author = ?, tags = ?,"
            " content_hash = ?, title_key = ?, matched = ?, last_seen_at = ? WHERE id = ?",
            (entry.title, entry.summary, entry.content, entry.author,
             json.dumps(list(entry.tags)), edit.item.content_hash, title_key(entry.title),
             json.dumps(matched), now, edit.stored_id),
        )  # fmt: skip
        return str(previous["story_id"])

    def _place_new_items(
        self, conn: sqlite3.Connection, new_items: Sequence[NewItem], now: datetime, stamp: str
    ) -> dict[str, tuple[int, str]]:
        """Each new item stored in its story: item key → (item id, story id)."""
        index = self._recent_stories(conn, now)
        since = iso(now - HEADLINE_WINDOW)
        placed: dict[str, tuple[int, str]] = {}
        for new in new_items:
            story, joined = self._story_for(conn, index, new, now, stamp, since)
            item_id = self._insert_item(conn, new, story, stamp)
            if item_id is None:
                continue
            placed[new.item.key] = (item_id, story)
            if joined:
                self._add_source(conn, story, new.item, stamp)
        return placed

    def _story_for(
        self,
        conn: sqlite3.Connection,
        index: StoryIndex,
        new: NewItem,
        now: datetime,
        stamp: str,
        since: str,
    ) -> tuple[str, bool]:
        """The story a new item belongs to, and whether it joined one already recorded.
        `index` is the headline window's, up to date; `stamp` is `now` as stored, and
        `since` the window's start."""
        sig = new.signature
        while True:
            candidates = self._story_candidates(conn, index, sig, since)
            chosen = choose_story(sig, candidates, now)
            if chosen is None:
                break
            if conn.execute(
                "UPDATE stories SET last_seen_at = ? WHERE id = ?", (stamp, chosen)
            ).rowcount:
                return chosen, True
            # Another process pruned it since we indexed it: choose among the rest.
            index.forget(next(c.seq for c in candidates if c.id == chosen))
        story = "st_" + digest(new.item.feed, new.item.key)
        number = _insert_story(conn, story, sig, stamp)
        if number:
            index.add(number, stamp, _index_keys(sig.headline_key, sig.bands), sig.words)
            self._remember_story(
                StoryCandidate(
                    id=story,
                    link_key=None,
                    headline_key=sig.headline_key,
                    words=tuple([sys.intern(word) for word in sig.words]),
                    numbers=tuple(sig.numbers),
                    entities=tuple([sys.intern(word) for word in sig.entities]),
                    first_seen_at=now,
                    seq=number,
                )
            )
        return story, False

    def _recent_stories(self, conn: sqlite3.Connection, now: datetime) -> StoryIndex:
        """The index of the headline window, brought up to date. Called inside a write
        transaction, so no other process can add a story while we look."""
        since = iso(now - HEADLINE_WINDOW)
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        index = self._index
        if index is not None and index.needs_rebuild():
            index = None
        recent = (
            "SELECT seq, headline_key, bands, first_seen_at FROM stories"
            " WHERE seq > ? AND first_seen_at >= ? ORDER BY seq"
        )
        if index is None:
            index = StoryIndex.of_packed(
                (number, first_seen, headline, bands)
                for number, headline, bands, first_seen in conn.execute(recent, (0, since))
            )
            for story in self._decoded_stories.values():
                index.describe(story.seq, story.words)
        elif version != self._data_version:
            # Another process wrote since we last looked: add the stories it wrote.
            for number, headline, bands, first_seen in conn.execute(recent, (index.highest, since)):
                index.add(number, first_seen, _index_keys(headline, _unpacked(bands)))
        index.forget_before(since)
        self._index, self._data_version = index, version
        return index

    def _forget_stories(self) -> None:
        self._index = None
        self._decoded_stories.clear()

    def _story_candidates(
        self, conn: sqlite3.Connection, index: StoryIndex, sig: StorySignature, since: str
    ) -> list[StoryCandidate]:
        """Stories sharing the item's canonical link (at any age), or its headline or a
        MinHash band (within the window). Mostly decoded from memory, as the same few
        hundred recent stories answer many bands."""
        found: list[StoryCandidate] = []
        if sig.link_key is not None:
            row = conn.execute(
                "SELECT s.seq FROM items i JOIN stories s ON s.id = i.story_id"
                " WHERE i.link_key = ? ORDER BY i.id LIMIT 1",
                (sig.link_key,),
            ).fetchone()
            linked = self._stories_by_number([row[0]]) if row else []
            found += [replace(story, link_key=sig.link_key) for story in linked]
        numbers = index.find_similar(sig.bands, sig.words, since)
        if sig.headline_key is not None:
            numbers = sorted({*numbers, *index.find([sig.headline_key], since)})
        found += self._stories_by_number(numbers, index)
        return found

    def _stories_by_number(
        self, numbers: list[int], index: StoryIndex | None = None
    ) -> list[StoryCandidate]:
        known = self._decoded_stories
        stories = [known[number] for number in numbers if number in known]
        missing = [number for number in numbers if number not in known]
        if not missing:
            return stories
        for row in self._in(
            "SELECT seq, id, headline_key, words, numbers, entities, first_seen_at FROM stories"
            " WHERE seq IN ({})",
            [],
            missing,
        ):
            story = StoryCandidate(
                id=row["id"],
                link_key=None,
                headline_key=row["headline_key"],
                words=_interned(row["words"]),
                numbers=_interned(row["numbers"]),
                entities=_interned(row["entities"]),
                first_seen_at=parse_iso(row["first_seen_at"]),
                seq=row["seq"],
            )
            stories.append(story)
            self._remember_story(story)
            if index is not None:
                index.describe(story.seq, story.words)
        return stories

    def _remember_story(self, story: StoryCandidate) -> None:
        known = self._decoded_stories
        if len(known) >= _DECODED_STORIES:
            # Oldest decoded first: a long-running daemon keeps about its window.
            for stale in list(itertools.islice(known, _DECODED_STORIES // 4)):
                del known[stale]
        known[story.seq] = story

    @staticmethod
    def _add_source(conn: sqlite3.Connection, story: str, item: Item, now: str) -> None:
        """Record another feed carrying a story on each of the story's alerts. An alert not
        yet sent anywhere carries its sources in its body; once an attempt was made the
        body stays as sent, so a retry repeats the same bytes."""
        alerts = conn.execute(
            "SELECT a.id, a.document FROM alerts a JOIN items i ON i.id = a.item_id"
            " WHERE a.story_id = ? AND i.feed != ?",
            (story, item.feed),
        ).fetchall()
        for alert in alerts:
            added = conn.execute(
                "INSERT OR IGNORE INTO alert_sources (alert_id, feed, title, url, seen_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (alert["id"], item.feed, item.entry.title, item.entry.link, now),
            ).rowcount
            sent = conn.execute(
                "SELECT 1 FROM deliveries WHERE alert_id = ?"
                " AND (attempts > 0 OR lease_until IS NOT NULL) LIMIT 1",
                (alert["id"],),
            ).fetchone()
            if added and not sent:
                sources = _sources(conn, alert["id"])
                document = with_sources(json.loads(alert["document"]), sources)
                conn.execute(
                    "UPDATE alerts SET document = ? WHERE id = ?",
                    (json.dumps(document, ensure_ascii=False), alert["id"]),
                )

    @staticmethod
    def _insert_alert(
        conn: sqlite3.Connection,
        alert: AlertIntent,
        item_id: int,
        story: str,
        at: datetime,
        pacing: Mapping[str, Pacing],
    ) -> int:
        """One alert per (rule, story): a rule that already alerted this story from another
        item (another feed, an earlier version) does not alert again."""
        now = iso(at)
        cursor = conn.execute(
            "INSERT OR IGNORE INTO alerts (id, rule, item_id, document, detected_at, story_id)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (alert.id, alert.rule, item_id, json.dumps(alert.document, ensure_ascii=False), now,
             story),
        )  # fmt: skip
        if not cursor.rowcount:
            return 0
        # Feeds that carried the story before this rule matched it are sources too.
        conn.execute(
            "INSERT OR IGNORE INTO alert_sources (alert_id, feed, title, url, seen_at)"
            " SELECT ?, feed, title, link, first_seen_at FROM items"
            " WHERE story_id = ? AND feed != (SELECT feed FROM items WHERE id = ?) ORDER BY id",
            (alert.id, story, item_id),
        )
        sources = _sources(conn, alert.id)
        if sources:
            document = with_sources(alert.document, sources)
            conn.execute(
                "UPDATE alerts SET document = ? WHERE id = ?",
                (json.dumps(document, ensure_ascii=False), alert.id),
            )
        for delivery, notifier in alert.deliveries:
            paced = pacing.get(notifier, Pacing())
            when = slot(notifier, paced, at, _queued(conn, notifier, paced, at))
            conn.execute(
                "INSERT OR IGNORE INTO deliveries (id, alert_id, notifier, state, created_at,"
                " next_attempt_at, batch) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                (delivery, alert.id, notifier, now, iso(when.due_at), when.batch),
            )
        return len(alert.deliveries)

    # --- the outbox ----------------------------------------------------------------------

    def claim_due(self, now: datetime, lease: timedelta, limit: int = 200) -> list[Delivery]:
        """Pending deliveries that are due, leased so a second process draining the same
        database leaves them alone; a crash lets the lease lapse and they come back."""
        due = (
            "SELECT d.id, d.alert_id, d.notifier, d.attempts, d.created_at, d.batch,"
            " COALESCE(a.document, n.document) AS document"
            " FROM deliveries d LEFT JOIN alerts a ON a.id = d.alert_id"
            " LEFT JOIN notices n ON n.id = d.alert_id"
            " WHERE d.state = 'pending' AND d.next_attempt_at <= ?"
            " AND (d.lease_until IS NULL OR d.lease_until <= ?)"
        )
        with self._write() as conn:
            rows = conn.execute(
                f"{due} ORDER BY d.created_at, d.id LIMIT ?", (iso(now), iso(now), limit)
            ).fetchall()
            # A digest goes out whole: a batch cut by the limit would be sent as two
            # different messages under one webhook-id, and receivers drop the second.
            batches = sorted({row["batch"] for row in rows if row["batch"]})
            if batches:
                taken = {row["id"] for row in rows}
                marks = ",".join("?" * len(batches))
                rows += [
                    row
                    for row in conn.execute(
                        f"{due} AND d.batch IN ({marks}) ORDER BY d.created_at, d.id",
                        (iso(now), iso(now), *batches),
                    )
                    if row["id"] not in taken
                ]
            lease_until = iso(now + lease)
            conn.executemany(
                "UPDATE deliveries SET lease_until = ? WHERE id = ?",
                [(lease_until, row["id"]) for row in rows],
            )
        return [
            Delivery(
                id=row["id"],
                alert_id=row["alert_id"],
                notifier=row["notifier"],
                attempts=row["attempts"],
                document=json.loads(row["document"]),
                created_at=parse_iso(row["created_at"]),
                lease=lease_until,
                batch=row["batch"],
            )
            for row in rows
        ]

    def renew_lease(self, delivery: Delivery, now: datetime, lease: timedelta) -> Delivery | None:
        """Extend this worker's lease right before sending, so a long batch (Slack's pace
        is one message a second) never outlives it. None when the lease was lost: another
        process took the delivery, and it must not be sent twice."""
        renewed = iso(now + lease)
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE deliveries SET lease_until = ? WHERE id = ? AND state = 'pending'"
                " AND lease_until = ?",
                (renewed, delivery.id, delivery.lease),
            )
        return replace(delivery, lease=renewed) if cursor.rowcount else None

    def record_attempt(
        self, delivery_ids: str | Sequence[str], step: Step, now: datetime, durable: bool = True
    ) -> None:
        """The outcome of one send, for the delivery or every member of the digest sent.
        `durable` syncs it (and every commit before it) to disk before returning; without,
        it survives a crash of this process but a power cut may take it back, so the send
        would be made again."""
        ids = [delivery_ids] if isinstance(delivery_ids, str) else list(delivery_ids)
        with self._write(durable) as conn:
            conn.executemany(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1, lease_until = NULL,"
                " last_attempt_at = ?, next_attempt_at = COALESCE(?, next_attempt_at),"
                " delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END,"
                " last_error = ? WHERE id = ?",
                [
                    (
                        step.state,
                        iso(now),
                        iso(step.next_attempt_at) if step.next_attempt_at else None,
                        step.state,
                        iso(now),
                        step.reason or None,
                        delivery_id,
                    )
                    for delivery_id in ids
                ],
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
        return [_item_from_row(row) for row in rows]

    def health_snapshot(self) -> tuple[int, int, datetime | None, datetime | None]:
        """(deliveries pending, feeds failing or gone, last successful poll, last poll)."""
        pending = self.pending_count()
        failing, success, polled = self._conn.execute(
            "SELECT COUNT(*) FILTER (WHERE consecutive_failures > 0 OR gone_url IS NOT NULL),"
            " MAX(last_success_at), MAX(last_polled_at) FROM feeds"
        ).fetchone()
        return pending, failing or 0, _time(success), _time(polled)

    def writable(self) -> str | None:
        """None if a write can be made now, else why not (one sentence)."""
        # The open connection keeps writing through its file descriptor after the file is
        # made read-only (SQLite even lends that descriptor to new connections in this
        # process), so the file's permissions are asked directly: a restart would fail.
        if self.path != ":memory:" and not _writable_file(self.path):
            return "the database file is read-only"
        try:
            probe = sqlite3.connect(self.path, timeout=2.0, isolation_level=None)
        except sqlite3.Error as error:
            return f"the database cannot be opened ({error})"
        try:
            probe.execute("BEGIN IMMEDIATE")
            # A real write, rolled back: a read-only connection can still begin.
            probe.execute("CREATE TABLE _writable_probe (x)")
            probe.execute("ROLLBACK")
        except sqlite3.Error as error:
            return f"the database cannot be written ({error})"
        finally:
            probe.close()
        return None

    def pending_count(self) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")
        return int(row.fetchone()[0])

    # --- what `alerts` shows and `redeliver` requeues -----------------------------------

    def recent_alerts(self, status: str | None = None, limit: int = 20) -> list[AlertRecord]:
        """Newest first; with `status`, only alerts with a delivery in that state."""
        where = (
            "WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id AND d.state = ?)"
            if status
            else ""
        )
        rows = self._rows(
            "SELECT a.id, a.rule, a.detected_at, i.feed, i.title, i.link FROM alerts a"
            f" JOIN items i ON i.id = a.item_id {where}"
            " ORDER BY a.detected_at DESC, a.id LIMIT ?",
            [*([status] if status else []), limit],
        )
        return [
            AlertRecord(
                id=row["id"],
                rule=row["rule"],
                detected_at=parse_iso(row["detected_at"]),
                feed=row["feed"],
                title=row["title"],
                url=row["link"],
                also_reported_by=tuple(
                    r["feed"]
                    for r in self._rows(
                        "SELECT feed FROM alert_sources WHERE alert_id = ? ORDER BY seen_at, feed",
                        [row["id"]],
                    )
                ),
                deliveries=tuple(
                    DeliveryState(
                        id=d["id"],
                        notifier=d["notifier"],
                        state=d["state"],
                        attempts=d["attempts"],
                        next_attempt_at=_time(d["next_attempt_at"]),
                        delivered_at=_time(d["delivered_at"]),
                        last_error=d["last_error"],
                    )
                    for d in self._rows(
                        "SELECT * FROM deliveries WHERE alert_id = ? ORDER BY notifier", [row["id"]]
                    )
                ),
            )
            for row in rows
        ]

    def requeue(self, ids: Sequence[str], now: datetime, failed: bool = False) -> list[str]:
        """Deliveries sent again from scratch: each named one (a delivery id, or an alert id
        for all of its deliveries) that is not already pending, and with `failed` every
        failed one. A fresh retry window starts now; the webhook-id stays the same.
        Returns the delivery ids queued."""
        with self._write() as conn:
            chosen: list[str] = []
            for ident in ids:
                chosen += [
                    row[0]
                    for row in conn.execute(
                        "SELECT id FROM deliveries WHERE (id = ? OR alert_id = ?)"
                        " AND state != 'pending' ORDER BY id",
                        (ident, ident),
                    )
                ]
            if failed:
                chosen += [
                    row[0]
                    for row in conn.execute(
                        "SELECT id FROM deliveries WHERE state = 'failed' ORDER BY created_at, id"
                    )
                ]
            chosen = list(dict.fromkeys(chosen))
            conn.executemany(
                "UPDATE deliveries SET state = 'pending', attempts = 0, created_at = ?,"
                " next_attempt_at = ?, lease_until = NULL, last_error = NULL WHERE id = ?",
                [(iso(now), iso(now), delivery) for delivery in chosen],
            )
        return chosen

    def unknown_ids(self, ids: Sequence[str]) -> list[str]:
        """Of these alert or delivery ids, the ones the database has never heard of."""
        return [
            ident
            for ident in ids
            if not self._rows(
                "SELECT 1 FROM deliveries WHERE id = ? OR alert_id = ? LIMIT 1", [ident, ident]
            )
        ]

    # --- retention -----------------------------------------------------------------------

    def prune(self, now: datetime, retention: timedelta, batch: int = 500) -> int:
        """Forget items not seen in their feed for `retention`, with their alerts, in small
        transactions so a poll never waits long. An item present at the feed's last parse
        is kept however old, so pruning never makes a story still in its feed look new;
        an alert still being delivered keeps its item. Returns how many items went."""
        cutoff = iso(now - retention)
        pruned = 0
        while True:
            with self._write() as conn:
                ids = [
                    row[0]
                    for row in conn.execute(
                        "SELECT i.id FROM items i JOIN feeds f ON f.name = i.feed"
                        " WHERE i.last_seen_at < ? AND i.last_seen_at < f.last_parsed_at"
                        " AND NOT EXISTS (SELECT 1 FROM alerts a JOIN deliveries d"
                        "   ON d.alert_id = a.id WHERE a.item_id = i.id AND d.state = 'pending')"
                        " LIMIT ?",
                        (cutoff, batch),
                    )
                ]
                if ids:
                    marks = ",".join("?" * len(ids))
                    alerts = f"SELECT id FROM alerts WHERE item_id IN ({marks})"
                    conn.execute(f"DELETE FROM deliveries WHERE alert_id IN ({alerts})", ids)
                    conn.execute(f"DELETE FROM alert_sources WHERE alert_id IN ({alerts})", ids)
                    conn.execute(f"DELETE FROM alerts WHERE item_id IN ({marks})", ids)
                    conn.execute(f"DELETE FROM items WHERE id IN ({marks})", ids)
                    pruned += len(ids)
                else:
                    if conn.execute(
                        "DELETE FROM stories WHERE last_seen_at < ? AND NOT EXISTS"
                        " (SELECT 1 FROM items WHERE story_id = stories.id)",
                        (cutoff,),
                    ).rowcount:
                        self._forget_stories()
                    old_notices = (
                        "SELECT id FROM notices WHERE created_at < ? AND NOT EXISTS (SELECT 1"
                        " FROM deliveries d WHERE d.alert_id = notices.id AND d.state = 'pending')"
                    )
                    conn.execute(
                        f"DELETE FROM deliveries WHERE alert_id IN ({old_notices})", (cutoff,)
                    )
                    conn.execute(f"DELETE FROM notices WHERE id IN ({old_notices})", (cutoff,))
            if len(ids) < batch:
                return pruned


# A success ends an outage: failures, backoff and the server's wait are over. The
# "failing" notice flag stays until the "recovered" notice is recorded.
_HEALTHY = (
    "last_error = NULL, consecutive_failures = 0, failing_since = NULL, next_poll_at = NULL,"
    " wait_until = NULL"
)


def _feed_state(row: sqlite3.Row) -> FeedState:
    return FeedState(
        name=row["name"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        body_hash=row["body_hash"],
        first_polled_at=_time(row["first_polled_at"]),
        consecutive_failures=row["consecutive_failures"],
        failing_since=_time(row["failing_since"]),
        failing_notified=bool(row["failing_notified"]),
        last_notice_at=_time(row["last_notice_at"]),
        next_poll_at=_time(row["next_poll_at"]),
        wait_until=_time(row["wait_until"]),
        gone_url=row["gone_url"],
        moved_from=row["moved_from"],
        moved_to=row["moved_to"],
        last_polled_at=_time(row["last_polled_at"]),
        last_success_at=_time(row["last_success_at"]),
        last_error=row["last_error"],
        items_seen=row["items_seen"],
    )


def _writable_file(path: str) -> bool:
    """Writable by us, and meant to be: root may write to a file with no write bits at
    all, but whoever removed them (or the non-root container user after a restart) means
    it to be read-only."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return bool(mode & 0o222) and os.access(path, os.W_OK)


def _time(value: str | None) -> datetime | None:
    return parse_iso(value) if value else None


def _stored(row: sqlite3.Row, found_by: FoundBy) -> StoredItem:
    return StoredItem(
        id=row["id"],
        content_hash=row["content_hash"],
        matched=frozenset(json.loads(row["matched"])),
        found_by=found_by,
    )


def _queued(conn: sqlite3.Connection, notifier: str, pacing: Pacing, now: datetime) -> Queued:
    length = period(pacing)
    if length is None:
        return Queued(0, 0)
    start, _ = window(now, length)
    singles, held = conn.execute(
        "SELECT COUNT(*) - COUNT(batch), COUNT(batch) FROM deliveries"
        " WHERE notifier = ? AND created_at >= ?",
        (notifier, iso(start)),
    ).fetchone()
    return Queued(singles, held)


def _sources(conn: sqlite3.Connection, alert: str) -> list[dict[str, Any]]:
    return [
        {"feed": row["feed"], "title": row["title"], "url": row["url"]}
        for row in conn.execute(
            "SELECT feed, title, url FROM alert_sources WHERE alert_id = ? ORDER BY seen_at, feed",
            (alert,),
        )
    ]
