"""Digests and burst control through the real CLI: `poll` in a subprocess, a loopback feed
and a loopback webhook receiver that verifies signatures as a receiver would."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.conftest import run_cli
from tests.feeds import rss20, story
from tests.loopback import Answer, FeedServer, Receiver, Request

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PLACES = ["Kursk", "Pokrovsk", "Kupiansk", "Toretsk", "Chasiv Yar", "Vuhledar", "Avdiivka"]


def headlines(count: int) -> list[str]:
    # Different places and numbers: each is its own story, so each is its own alert.
    return [f"DPRK troops report {n}: fighting near {PLACES[n]}" for n in range(count)]


def write_config(tmp_path: Path, feeds: FeedServer, hook: str, pacing: str, count: int) -> Path:
    feeds.publish(
        "/feed.xml",
        rss20([story(f"s{n}", title, hours_ago=0.1) for n, title in enumerate(headlines(count))]),
    )
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{timeout: 5s}}
feeds:
  - {{url: "{feeds.url}/feed.xml", name: wire}}
rules:
  - {{name: dprk, any: ["DPRK troops"]}}
notifiers:
  hook: {{type: webhook, url: "{hook}", secret: "{SECRET}", timeout: 5s, {pacing}}}
""")
    return config


def verified(post: Request) -> dict[str, Any]:
    document = Webhook(SECRET).verify(post.body, post.headers)
    assert isinstance(document, dict)
    return document


def outbox(tmp_path: Path) -> list[tuple[str, str | None, int]]:
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        return list(db.execute("SELECT state, batch, attempts FROM deliveries ORDER BY id"))


def test_digest_sends_one_signed_message_for_the_period(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, f"{receiver.url}/hook", "digest: 2s", 5)

    # The 2 s digest closes on the clock's next even second; `poll` waits for it.
    polled = run_cli("poll", "-c", str(config), "--drain-timeout", "10", cwd=tmp_path)
    assert polled.returncode == 0, polled.stderr

    [post] = receiver.posts()
    digest = verified(post)
    assert digest["type"] == "digest"
    assert digest["id"] == post.headers["webhook-id"] and digest["id"].startswith("dg_")
    assert digest["count"] == 5
    assert sorted(a["story"]["title"] for a in digest["alerts"]) == sorted(headlines(5))
    assert {a["type"] for a in digest["alerts"]} == {"alert"}
    assert "delivered digest of 5 alerts" in polled.stderr
    assert [(state, attempts) for state, _, attempts in outbox(tmp_path)] == [("delivered", 1)] * 5
    assert {batch for _, batch, _ in outbox(tmp_path)} == {digest["id"]}

    again = run_cli("poll", "-c", str(config), "--drain-timeout", "3", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(receiver.posts()) == 1  # nothing new, nothing resent


def test_a_failed_digest_is_retried_whole_under_the_same_id(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, f"{receiver.url}/hook", "digest: 1s", 3)
    receiver.script = [Answer(500, b"boom")]  # then the default 200

    polled = run_cli("poll", "-c", str(config), "--drain-timeout", "10", cwd=tmp_path)
    assert polled.returncode == 0, polled.stderr

    first, second = receiver.posts()
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body  # the same message, not a re-cut digest
    assert verified(second)["count"] == 3
    assert [(state, attempts) for state, _, attempts in outbox(tmp_path)] == [("delivered", 2)] * 3


def test_burst_sends_the_first_alerts_alone_and_folds_the_rest(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(
        tmp_path, feed_server, f"{receiver.url}/hook", "burst: {max: 2, per: 2s}", 6
    )

    polled = run_cli("poll", "-c", str(config), "--drain-timeout", "10", cwd=tmp_path)
    assert polled.returncode == 0, polled.stderr

    posts = receiver.posts()
    documents = [verified(post) for post in posts]
    assert [d["type"] for d in documents] == ["alert", "alert", "digest"], polled.stderr
    singles = [d["story"]["title"] for d in documents[:2]]
    folded = [a["story"]["title"] for a in documents[2]["alerts"]]
    assert documents[2]["count"] == 4
    # Every alert arrives exactly once, the burst's first ones one by one.
    assert sorted(singles + folded) == sorted(headlines(6))
    ids = [post.headers["webhook-id"] for post in posts]
    assert ids[0].startswith("msg_") and ids[1].startswith("msg_") and ids[2].startswith("dg_")
    assert [state for state, _, _ in outbox(tmp_path)] == ["delivered"] * 6


def test_alerts_lists_a_held_delivery_with_the_time_its_digest_goes(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, f"{receiver.url}/hook", "digest: 1h", 1)
    # Digest periods follow the clock: too near the end of an hour, the digest would
    # rightly go out during the poll's drain.
    left = 3600 - time.time() % 3600
    if left < 10:
        time.sleep(left + 0.5)

    polled = run_cli("poll", "-c", str(config), "--drain-timeout", "1", cwd=tmp_path)
    assert polled.returncode == 0, polled.stderr
    assert receiver.posts() == []  # the hour is not over

    listed = run_cli("alerts", "-c", str(config), "--json", cwd=tmp_path)
    [record] = [json.loads(line) for line in listed.stdout.splitlines()]
    [delivery] = record["deliveries"]
    assert delivery["state"] == "pending" and delivery["attempts"] == 0
    # Digest windows are aligned to the clock: an hourly digest goes on the hour.
    assert delivery["next_attempt_at"].endswith(":00:00Z")
