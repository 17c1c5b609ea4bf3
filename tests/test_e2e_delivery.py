"""Delivery faults through the real CLI: `poll` in a subprocess sends one alert to a
loopback receiver that answers 500s, a 429 with Retry-After, a permanent 4xx, or is not
there at all. Checks what PRODUCT.md "What is delivered" promises: retries keep the same
webhook-id and the same bytes, Retry-After is honoured, other 4xx fail for good and are
shown and redeliverable, a receiver that is down leaves the alert pending, not failed."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import cli_env, run_cli
from tests.feeds import rss20, story
from tests.loopback import Answer, FeedServer, Receiver, Request

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TITLE = "DPRK troops cross the river near Kursk"

# monitor/retry.py: SCHEDULE starts 1 s, 5 s, 30 s, each spread by ±20 % jitter.
FIRST_RETRY = (0.8, 1.2)
SECOND_RETRY = (4.0, 6.0)
THIRD_RETRY = (24.0, 36.0)
# Upper bounds only need to tell one step of the schedule from the next; the slack is for
# a busy machine (process wake-up, SQLite commit), not for the schedule itself.
SLACK = 1.0


def write_config(tmp_path: Path, feeds: FeedServer, hook_url: str) -> Path:
    feeds.publish("/feed.xml", rss20([story("d1", TITLE, hours_ago=0.1)]))
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{timeout: 5s}}
feeds:
  - {{url: "{feeds.url}/feed.xml", name: wire}}
rules:
  - {{name: dprk, any: ["DPRK troops"]}}
notifiers:
  hook: {{type: webhook, url: "{hook_url}", secret: "{SECRET}", timeout: 5s}}
""")
    return config


def alert_records(config: Path, tmp_path: Path, *status: str) -> list[dict[str, Any]]:
    """`alerts --json`, optionally `--status X`, as parsed records."""
    args = ["--status", status[0]] if status else []
    listed = run_cli("alerts", "-c", str(config), "--json", *args, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def only_delivery(config: Path, tmp_path: Path) -> dict[str, Any]:
    [record] = alert_records(config, tmp_path)
    assert record["title"] == TITLE
    [delivery] = record["deliveries"]
    assert delivery["notifier"] == "hook"
    return dict(delivery)


def verified(post: Request) -> dict[str, Any]:
    """The document, after checking the signature as a receiver would."""
    document = Webhook(SECRET).verify(post.body, post.headers)
    assert isinstance(document, dict)
    return document


def assert_same_message(posts: list[Request]) -> None:
    """Every attempt is the same message: one webhook-id, byte-identical bodies, each
    validly signed; only webhook-timestamp (and so the signature) may move, forwards."""
    assert len({p.headers["webhook-id"] for p in posts}) == 1
    assert posts[0].headers["webhook-id"].startswith("msg_")
    assert len({p.body for p in posts}) == 1
    for post in posts:
        assert verified(post)["story"]["title"] == TITLE
    stamps = [int(p.headers["webhook-timestamp"]) for p in posts]
    assert stamps == sorted(stamps)


def gaps(posts: list[Request]) -> list[float]:
    return [later.at - earlier.at for earlier, later in pairwise(posts)]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_three_500s_then_200_is_one_delivery_after_four_attempts(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, f"{receiver.url}/hook")
    receiver.script = [Answer(500, b"boom") for _ in range(3)]  # then the default 200

    # Attempt 1 at once, 2 after ~1 s, 3 after ~5 s more: at most 1.2 + 6 = 7.2 s. The 4th
    # is due 24-36 s after the 3rd, past this budget, so `poll` gives up and exits there.
    first = run_cli("poll", "-c", str(config), "--drain-timeout", "10", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    posts = receiver.posts()
    assert len(posts) == 3, first.stderr
    one, two = gaps(posts)
    assert FIRST_RETRY[0] <= one <= FIRST_RETRY[1] + SLACK
    assert SECOND_RETRY[0] <= two <= SECOND_RETRY[1] + SLACK
    assert "HTTP 500" in first.stderr and "retry at" in first.stderr
    assert receiver.url not in first.stderr  # the webhook URL is a secret
    pending = only_delivery(config, tmp_path)
    assert (pending["state"], pending["attempts"]) == ("pending", 3)
    assert "500" in pending["last_error"]

    # The third wait is the 30 s step. Read it at full precision from the outbox, then
    # fast-forward that one row instead of sleeping half a minute: the test moves time,
    # the product code is untouched.
    db = sqlite3.connect(tmp_path / "monitor.db")
    try:
        last, due = db.execute(
            "SELECT last_attempt_at, next_attempt_at FROM deliveries WHERE id = ?",
            (pending["id"],),
        ).fetchone()
        wait = (parse(due) - parse(last)).total_seconds()
        assert THIRD_RETRY[0] - 0.001 <= wait <= THIRD_RETRY[1] + 0.001
        with db:
            db.execute(
                "UPDATE deliveries SET next_attempt_at = ? WHERE id = ?",
                (stamp(datetime.now(UTC)), pending["id"]),
            )
    finally:
        db.close()

    second = run_cli("poll", "-c", str(config), "--drain-timeout", "10", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    posts = receiver.posts()
    assert len(posts) == 4  # three refused, exactly one accepted
    assert posts[0].headers["webhook-id"] == pending["id"]
    assert_same_message(posts)
    delivered = only_delivery(config, tmp_path)
    assert (delivered["state"], delivered["attempts"]) == ("delivered", 4)
    assert delivered["delivered_at"] is not None

    # Delivered is final: a later run sends nothing more.
    third = run_cli("poll", "-c", str(config), "--drain-timeout", "2", cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert len(receiver.posts()) == 4


def test_429_retry_after_is_honoured(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, f"{receiver.url}/hook")
    receiver.script = [Answer(429, b"slow down", {"Retry-After": "2"})]

    result = run_cli("poll", "-c", str(config), "--drain-timeout", "10", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    posts = receiver.posts()
    assert len(posts) == 2, result.stderr
    # The 429 was answered after its request arrived, so "2 s after the 429" is at least
    # 2 s after that arrival. Without Retry-After the first retry would come by 1.2 s.
    [gap] = gaps(posts)
    assert 2.0 <= gap <= 2.0 + SLACK
    assert_same_message(posts)
    assert "HTTP 429" in result.stderr
    delivery = only_delivery(config, tmp_path)
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)


@pytest.mark.parametrize("status", [404, 410])
def test_permanent_4xx_fails_once_and_redeliver_sends_it(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver, status: int
) -> None:
    config = write_config(tmp_path, feed_server, f"{receiver.url}/hook")
    receiver.default = Answer(status, b"no such hook")

    polled = run_cli("poll", "-c", str(config), cwd=tmp_path)
    assert polled.returncode == 0, polled.stderr
    assert f"HTTP {status}" in polled.stderr and "failed for good" in polled.stderr
    assert receiver.url not in polled.stderr
    # A later run does not retry a permanent failure either.
    again = run_cli("poll", "-c", str(config), "--drain-timeout", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    [post] = receiver.posts()  # exactly one attempt

    [record] = alert_records(config, tmp_path, "failed")
    [delivery] = record["deliveries"]
    assert (delivery["state"], delivery["attempts"]) == ("failed", 1)
    assert str(status) in delivery["last_error"]
    assert delivery["id"] == post.headers["webhook-id"]
    assert alert_records(config, tmp_path, "pending") == []

    receiver.default = Answer(200, b"ok")
    redone = run_cli("redeliver", "-c", str(config), "--failed", cwd=tmp_path)
    assert redone.returncode == 0, redone.stderr
    assert "1 deliveries queued again; 0 still pending." in redone.stdout
    posts = receiver.posts()
    assert len(posts) == 2
    assert_same_message(posts)
    assert posts[1].headers["webhook-id"] == delivery["id"]
    assert alert_records(config, tmp_path, "failed") == []
    final = only_delivery(config, tmp_path)
    assert final["state"] == "delivered" and final["last_error"] is None


def test_connection_refused_stays_pending(tmp_path: Path, feed_server: FeedServer) -> None:
    # Nothing listens on this port: every attempt is refused before anything is sent,
    # so the alert is certainly not delivered and must be retried, never given up on.
    config = write_config(tmp_path, feed_server, f"http://127.0.0.1:{unused_port()}/hook")

    down = run_cli("poll", "-c", str(config), "--drain-timeout", "0", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "retry at" in down.stderr and "still pending" in down.stderr
    first = only_delivery(config, tmp_path)
    assert (first["state"], first["attempts"]) == ("pending", 1)
    assert "connect" in first["last_error"].lower()
    assert alert_records(config, tmp_path, "failed") == []

    time.sleep(FIRST_RETRY[1] + 0.1)  # the first retry is due by then
    still = run_cli("poll", "-c", str(config), "--drain-timeout", "0", cwd=tmp_path)
    assert still.returncode == 0, still.stderr
    second = only_delivery(config, tmp_path)
    assert (second["state"], second["attempts"]) == ("pending", 2)
    assert "connect" in second["last_error"].lower()
    assert second["id"] == first["id"]
    assert alert_records(config, tmp_path, "failed") == []


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def stamp(moment: datetime) -> str:
    """The store's own fixed-width UTC format, so the row still sorts and compares."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_extra_headers_reach_the_receiver_and_stay_out_of_logs(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, f"{receiver.url}/hook")
    text = config.read_text().replace(
        f'secret: "{SECRET}", timeout: 5s}}',
        f'secret: "{SECRET}", timeout: 5s, headers: {{Authorization: "Bearer ${{HOOK_TOKEN}}"}}}}',
    )
    config.write_text(text)
    receiver.default = Answer(500, b"unknown token TOKENsecret456")  # an echoing receiver
    env = cli_env(HOOK_TOKEN="TOKENsecret456")

    failed = run_cli("poll", "-c", str(config), "--drain-timeout", "0", cwd=tmp_path, env=env)
    assert failed.returncode == 0, failed.stderr
    [post] = receiver.posts()
    assert post.headers["authorization"] == "Bearer TOKENsecret456"
    assert verified(post)["story"]["title"] == TITLE  # the signature is unaffected
    listed = run_cli("alerts", "-c", str(config), cwd=tmp_path, env=env)
    for output in (failed.stderr, failed.stdout, listed.stdout, listed.stderr):
        assert "TOKENsecret456" not in output
    assert "HTTP 500: unknown token ***" in listed.stdout
