"""Upgrading a database written by the previous release (only 0001_initial applied).

tests/data/v1.db holds feed "wire" as polled from tests/data/v1-wire.xml: three items
(keys g:wire-1, g:wire-2 and l:https://wire.example/news/border), and rule "troops"
alerts for wire-1 (delivered) and the border item (still pending). After the upgrade
nothing may be lost, nothing already alerted may alert again, and the pending delivery
must still go out: users upgrade in place, with alerts in flight.

The fixture is always copied to tmp_path first; the original is never opened by Store.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from monitor.store import Store
from tests.conftest import run_cli
from tests.loopback import FeedServer, Receiver

DATA = Path(__file__).parent / "data"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEYS = ["g:wire-1", "g:wire-2", "l:https://wire.example/news/border"]
PENDING_DELIVERY = "msg_f572d2e15dfc2120689d6439"  # the v1 alert on the border item
NEW_TITLE = "Ukrainian troops repel an assault near Pokrovsk"


def v1_copy(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.db"
    shutil.copyfile(DATA / "v1.db", path)
    return path


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return [tuple(row) for row in conn.execute(sql)]


def dump(path: Path) -> list[str]:
    """Schema and every row, as SQL text, to compare a database before and after."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_fixture_is_a_v1_database() -> None:
    # Guards the other tests: they only mean something if the fixture is really v1.
    path = DATA / "v1.db"
    assert rows(path, "SELECT name FROM _sqlite_migrations") == [("0001_initial",)]
    assert [r[0] for r in rows(path, "SELECT key FROM items ORDER BY id")] == KEYS


def test_opening_a_v1_database_migrates_it_without_losing_anything(tmp_path: Path) -> None:
    path = v1_copy(tmp_path)

    Store(path).close()

    assert rows(path, "SELECT name FROM _sqlite_migrations ORDER BY id") == [
        ("0001_initial",),
        ("0002_stories",),
        ("0003_batches",),
        ("0004_feed_health",),
        ("0005_story_index",),
    ]
    items = rows(
        path,
        "SELECT key, link_key, story_id, last_seen_at, first_seen_at, matched"
        " FROM items ORDER BY id",
    )
    assert [r[0] for r in items] == KEYS
    # The link key is the canonical link: the tracker on wire-1's link is gone.
    assert [r[1] for r in items] == [
        "https://wire.example/news/dprk-kursk",
        "https://wire.example/news/grid",
        "https://wire.example/news/border",
    ]
    assert all(r[2] for r in items) and len({r[2] for r in items}) == 3
    # Last seen = first seen: retention counts from what v1 knew, not from the upgrade.
    assert all(r[3] == r[4] for r in items)
    # `matched` records the rules that already alerted, so no edit re-alerts them.
    assert [json.loads(str(r[5])) for r in items] == [["troops"], [], ["troops"]]

    alerts = rows(
        path,
        "SELECT a.id, a.story_id, i.story_id, i.key FROM alerts a"
        " JOIN items i ON i.id = a.item_id ORDER BY i.id",
    )
    assert [(r[3], r[1] == r[2]) for r in alerts] == [(KEYS[0], True), (KEYS[2], True)]
    assert all(r[1] for r in alerts)
    assert rows(path, "SELECT id, state, attempts FROM deliveries ORDER BY state") == [
        ("msg_3e189db11f341bcc69c0f8af", "delivered", 1),
        (PENDING_DELIVERY, "pending", 0),
    ]
    # Every item's story exists, so a later item can join it.
    assert rows(
        path, "SELECT COUNT(*) FROM items WHERE story_id NOT IN (SELECT id FROM stories)"
    ) == [(0,)]
    # The original fixture was not touched.
    assert rows(DATA / "v1.db", "SELECT COUNT(*) FROM _sqlite_migrations") == [(1,)]


def wire_with_a_new_item() -> str:
    """The v1 feed as served then, plus one new matching item published just now."""
    xml = (DATA / "v1-wire.xml").read_text(encoding="utf-8")
    new = (
        f"<item><title>{NEW_TITLE}</title>"
        "<link>https://wire.example/news/pokrovsk</link>"
        '<guid isPermaLink="false">wire-4</guid>'
        "<description>Fighting continued overnight.</description>"
        f"<pubDate>{format_datetime(datetime.now(UTC))}</pubDate></item>"
    )
    assert xml.count("</channel>") == 1
    return xml.replace("</channel>", new + "</channel>")


def write_config(tmp_path: Path, db: Path, feed_url: str, receiver: Receiver) -> Path:
    config = tmp_path / "monitor.yaml"
    # The notifier must be called "hook": that is the name in v1's pending delivery.
    config.write_text(f"""
storage: {db}
poll: {{timeout: 5s, backfill: 24h}}
feeds:
  - {{url: "{feed_url}", name: wire}}
rules:
  - name: troops
    any: [troops]
notifiers:
  hook: {{type: webhook, url: "{receiver.url}/hook", secret: "{SECRET}"}}
""")
    return config


def received(receiver: Receiver) -> list[tuple[str, str, str, str]]:
    """(webhook-id, rule, feed, title) of every POST, after checking its signature."""
    verifier = Webhook(SECRET)
    found = []
    for post in receiver.posts():
        document = verifier.verify(post.body, post.headers)
        story = document["story"]
        found.append((post.headers["webhook-id"], document["rule"], story["feed"], story["title"]))
    return sorted(found)


def test_poll_after_upgrade_sends_the_pending_alert_and_only_new_ones(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    db = v1_copy(tmp_path)
    url = feed_server.publish("/wire.xml", wire_with_a_new_item())
    config = write_config(tmp_path, db, url, receiver)

    first = run_cli("poll", "-c", str(config), cwd=tmp_path)
    assert first.returncode == 0, first.stderr

    got = received(receiver)
    # The v1 pending delivery goes out under its own id; the new item alerts once; the
    # two items v1 already alerted (one delivered, one pending) do not alert again.
    assert [g for g in got if g[0] == PENDING_DELIVERY] == [
        (PENDING_DELIVERY, "troops", "wire", "More troops sent to the border")
    ]
    assert sorted(g[1:] for g in got) == [
        ("troops", "wire", "More troops sent to the border"),
        ("troops", "wire", NEW_TITLE),
    ]
    assert rows(db, "SELECT state, COUNT(*) FROM deliveries GROUP BY state") == [("delivered", 3)]

    second = run_cli("poll", "-c", str(config), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert len(receiver.posts()) == 2


def test_opening_a_migrated_database_again_applies_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = v1_copy(tmp_path)
    Store(path).close()
    before = dump(path)

    Store(path).close()

    assert dump(path) == before
    assert rows(path, "SELECT name FROM _sqlite_migrations ORDER BY id") == [
        ("0001_initial",),
        ("0002_stories",),
        ("0003_batches",),
        ("0004_feed_health",),
        ("0005_story_index",),
    ]
