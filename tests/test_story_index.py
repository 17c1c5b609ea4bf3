"""Recent stories in memory: the pure index, and the store keeping it true across
processes, rollbacks, deletions and the upgrade from the bands table (0004)."""

from __future__ import annotations

import json
import random
import sqlite3
import struct
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

from monitor.decide import plan_poll
from monitor.models import Entry, FeedState, Item, PollPlan
from monitor.store import Store, migrations
from monitor.story import SIMILARITY_THRESHOLD, _enough_shared, minhash_bands, signature
from monitor.story_index import StoryIndex

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HEADLINE = "North Korean troops arrive in Kursk region"


# --- the index alone ---------------------------------------------------------------------


def test_finds_stories_by_any_shared_key_within_the_window() -> None:
    index = StoryIndex()
    index.add(1, "2026-11-20T00:00:00.000000Z", [10, 11, "a b c d"])
    index.add(2, "2026-11-23T00:00:00.000000Z", [11, 12])
    index.add(3, "2026-11-23T00:00:00.000000Z", [13])
    assert index.find([11], "2026-11-19T00:00:00.000000Z") == [1, 2]
    assert index.find([11], "2026-11-21T00:00:00.000000Z") == [2]  # 1 is too old
    assert index.find(["a b c d", 13], "2026-11-19T00:00:00.000000Z") == [1, 3]
    assert index.find([99, "x"], "2026-11-19T00:00:00.000000Z") == []
    assert index.highest == 3 and len(index) == 3


def test_a_key_holds_many_stories_and_a_story_is_added_once() -> None:
    index = StoryIndex()
    for number in range(1, 6):
        index.add(number, "2026-11-23T00:00:00.000000Z", [7])
    index.add(3, "2026-11-23T00:00:00.000000Z", [7])
    assert index.find([7], "") == [1, 2, 3, 4, 5]


def test_forgotten_stories_are_never_found_and_the_oldest_go_first() -> None:
    index = StoryIndex()
    for number, day in enumerate(("20", "21", "22", "23"), start=1):
        index.add(number, f"2026-11-{day}T00:00:00.000000Z", [5])
    index.forget(3)
    assert index.find([5], "") == [1, 2, 4]
    index.forget_before("2026-11-22T00:00:00.000000Z")
    assert index.find([5], "") == [4]
    assert len(index) == 1 and not index.needs_rebuild()


def test_asks_for_a_rebuild_once_dead_numbers_outweigh_live_ones() -> None:
    index = StoryIndex()
    for number in range(1, 2_003):
        index.add(number, "2026-11-23T00:00:00.000000Z", [number])
    for number in range(1, 1_500):
        index.forget(number)
    assert index.needs_rebuild()


@pytest.mark.parametrize("loaded", [0, 1_000, 2_999], ids=["added", "loaded-then-added", "loaded"])
def test_answers_as_a_plain_mapping_would_while_it_grows(loaded: int) -> None:
    """Stories loaded in bulk (`of`) and added one by one afterwards, over keys that are
    rare, shared by a few and shared by hundreds, some falling in the same buckets."""
    rng = random.Random(5)
    reference: defaultdict[int | str, set[int]] = defaultdict(set)
    keys: list[int | str] = [rng.getrandbits(64) for _ in range(300)] + ["one", "two"]
    keys += [key ^ (1 << 40) for key in keys[:50] if isinstance(key, int)]  # same low bits
    keys += [rng.getrandbits(64) for _ in range(30_000)]  # mostly of one story each
    stories = []
    for number in range(1, 3_000):
        chosen = rng.sample(keys[:352], 6) + rng.sample(keys[352:], 7)
        stories.append((number, "2026-11-23T00:00:00.000000Z", chosen))
        for key in chosen:
            reference[key].add(number)
    index = StoryIndex.of(stories[:loaded])
    for number, first_seen, chosen in stories[loaded:]:
        index.add(number, first_seen, chosen)
    for key in keys:
        assert index.find([key], "") == sorted(reference[key])
    assert index.find([rng.getrandbits(64)], "") == []
    assert index.highest == 2_999 and len(index) == 2_999


def test_loading_packed_rows_answers_as_loading_their_keys() -> None:
    """`of_packed` reads the stories table's own columns (bands as little-endian words, a
    headline key or none); it must file every key exactly as `of` does."""
    rng = random.Random(9)
    pool = [rng.getrandbits(64) for _ in range(400)]
    headlines = ["north korean troops kursk", "floods in valencia", None]
    rows: list[tuple[int, str, str | None, bytes]] = []
    stories: list[tuple[int, str, list[int | str]]] = []
    for number in range(1, 2_000):
        bands = rng.sample(pool, 12) if number % 7 else []  # a short headline has no bands
        headline = headlines[number % 3]
        rows.append((number, "2026-11-23T00:00:00.000000Z", headline,
                     struct.pack(f"<{len(bands)}Q", *bands)))  # fmt: skip
        keys: list[int | str] = [*bands, *([headline] if headline else [])]
        stories.append((number, "2026-11-23T00:00:00.000000Z", keys))
    packed, plain = StoryIndex.of_packed(rows), StoryIndex.of(stories)
    probes: list[int | str] = [*pool, "north korean troops kursk", "floods in valencia", 12345]
    for key in probes:
        assert packed.find([key], "") == plain.find([key], "")
    assert packed.find(pool[:3], "")  # the pool is shared: lookups find stories
    assert packed.highest == plain.highest == 1_999 and len(packed) == len(plain)


def test_a_similar_lookup_keeps_every_story_the_quick_reject_would_keep() -> None:
    """`find_similar` leaves out stories by their word prints alone. On word sets of every
    size, from a vocabulary small enough that prints collide, it must never leave out one
    that shares enough words for `_may_be_same`, and must leave out most that do not."""
    rng = random.Random(8)
    for vocabulary_size in (12, 60, 3_000):
        vocabulary = [f"w{n}" for n in range(vocabulary_size)]
        index = StoryIndex()
        stories: dict[int, frozenset[str]] = {}
        for number in range(1, 1_500):
            words = frozenset(rng.sample(vocabulary, rng.randint(1, min(40, vocabulary_size))))
            stories[number] = words
            index.add(number, "2026-11-23T00:00:00.000000Z", [7], words)
        index.add(1_500, "2026-11-23T00:00:00.000000Z", [7])  # never described: always kept
        dropped = unlike = 0
        for _ in range(100):
            words = frozenset(rng.sample(vocabulary, rng.randint(1, min(40, vocabulary_size))))
            found = index.find_similar([7], words, "")
            assert 1_500 in found
            for number, story_words in stories.items():
                if _enough_shared(words, story_words, SIMILARITY_THRESHOLD):
                    assert number in found, (sorted(words), sorted(story_words))
                else:
                    unlike += 1
                    dropped += number not in found
        assert unlike > 10_000
        if vocabulary_size == 3_000:  # prints rarely collide: nearly all are left out
            assert dropped / unlike > 0.95


def test_a_similar_lookup_honours_the_window_and_forgetting() -> None:
    index = StoryIndex()
    words = frozenset("north korean troops arrive kursk".split())
    index.add(1, "2026-11-20T00:00:00.000000Z", [3], words)
    index.add(2, "2026-11-23T00:00:00.000000Z", [3], words)
    index.add(3, "2026-11-23T00:00:00.000000Z", [3], words)
    index.forget(3)
    assert index.find_similar([3], words, "2026-11-21T00:00:00.000000Z") == [2]
    assert index.find_similar([3], words, "") == [1, 2]


# --- the store keeping it -----------------------------------------------------------------


def item(feed: str, key: str, title: str = HEADLINE) -> Item:
    entry = Entry(key, f"https://{feed}.example/{key}", title, "summary", "", "", (), NOW)
    return Item(feed, key, entry, "en", f"hash-{feed}-{key}")


def plan(*items: Item) -> PollPlan:
    return plan_poll(
        FeedState(items[0].feed, first_polled_at=NOW),
        items,
        {},
        {},
        {},
        NOW,
        timedelta(hours=24),
        (None, None, "body"),
    )


def stories_of(path: Path) -> dict[str, str]:
    """Item key → story id, checking that every story an item names exists."""
    with sqlite3.connect(path) as conn:
        missing = conn.execute(
            "SELECT COUNT(*) FROM items WHERE story_id NOT IN (SELECT id FROM stories)"
        ).fetchone()[0]
        assert missing == 0
        return dict(conn.execute("SELECT feed || '/' || key, story_id FROM items"))


def test_a_story_written_by_another_process_is_found(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    daemon, cron = Store(path), Store(path)
    daemon.apply(plan(item("a", "1", "Storm closes every school in the region today")), "u", NOW)
    cron.apply(plan(item("b", "1")), "u", NOW)  # the daemon's index does not have this one
    daemon.apply(plan(item("c", "1")), "u", NOW)
    found = stories_of(path)
    assert found["c/1"] == found["b/1"] != found["a/1"]


def test_a_story_deleted_by_another_process_is_not_joined(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    store.apply(plan(item("a", "1")), "u", NOW)
    with sqlite3.connect(path) as conn:  # another process's retention pruned it
        conn.execute("DELETE FROM items")
        conn.execute("DELETE FROM stories")
    store.apply(plan(item("b", "1")), "u", NOW)
    assert set(stories_of(path)) == {"b/1"}


def test_stories_of_a_rolled_back_poll_are_forgotten(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = Store(path)
    good = plan(item("a", "1"))
    broken = replace(good, alerts=(object(),))  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        store.apply(broken, "u", NOW)
    store.apply(plan(item("b", "1")), "u", NOW)
    store.apply(plan(item("c", "1")), "u", NOW)
    found = stories_of(path)
    assert set(found) == {"b/1", "c/1"} and found["b/1"] == found["c/1"]


def test_the_same_headline_within_one_poll_is_one_story(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).apply(plan(item("a", "1"), item("a", "2", HEADLINE + " - Wire")), "u", NOW)
    assert len(set(stories_of(path).values())) == 1


def test_upgrading_from_the_bands_table_keeps_every_story_findable(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    db = Database(sqlite3.connect(path, isolation_level=None))
    migrations.apply(db, stop_before="0005_story_index")
    sig = signature(item("a", "1"))
    seen = "2026-11-24T11:00:00.000000Z"
    db.execute(
        "INSERT INTO items (feed, key, guid, link, title, summary, content, author, tags,"
        " first_seen_at, content_hash, story_id, last_seen_at) VALUES"
        " ('a', '1', '1', 'https://a.example/1', ?, '', '', '', '[]', ?, 'h', 'st_old', ?)",
        [HEADLINE, seen, seen],
    )
    db.execute(
        "INSERT INTO stories (id, headline_key, words, numbers, entities, first_seen_at,"
        " last_seen_at) VALUES ('st_old', ?, ?, '[]', ?, ?, ?)",
        [sig.headline_key, json.dumps(sorted(sig.words)), json.dumps(sorted(sig.entities)),
         seen, seen],
    )  # fmt: skip
    db.conn.close()
    store = Store(path)
    store.apply(plan(item("b", "1", "North Korean troops arrive in the Kursk region")), "u", NOW)
    assert stories_of(path)["b/1"] == "st_old"
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        (bands,) = conn.execute("SELECT bands FROM stories WHERE id = 'st_old'").fetchone()
    assert "story_bands" not in tables
    assert len(bands) == 8 * len(minhash_bands(sig.words)) == 96
