"""`news-monitor alerts` and `redeliver` through the real CLI: a receiver that answers
404 makes a permanent failure, `alerts --status failed` shows it, and `redeliver` sends
it once the receiver is back, with the same webhook-id."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli
from tests.feeds import rss20, story
from tests.loopback import Answer, FeedServer, Receiver


def _config(tmp_path: Path, feeds: FeedServer, receiver: Receiver) -> Path:
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{timeout: 5s}}
feeds:
  - {{url: "{feeds.url}/a.xml", name: wire}}
  - {{url: "{feeds.url}/b.xml", name: desk}}
rules:
  - {{name: troops, any: [troops]}}
notifiers:
  hook: {{type: webhook, url: "{receiver.url}/hook"}}
""")
    return config


def test_failed_delivery_is_listed_and_redelivered(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    feed_server.publish("/a.xml", rss20([story("s1", "Troops cross the river near Kherson")]))
    feed_server.publish(
        "/b.xml",
        rss20([story("s1", "Troops cross the river near Kherson", host="desk.example")]),
    )
    config = _config(tmp_path, feed_server, receiver)
    receiver.default = Answer(404, b"no such hook")
    polled = run_cli("poll", "-c", str(config), cwd=tmp_path)
    assert polled.returncode == 0, polled.stderr
    assert len(receiver.posts()) == 1  # 404 is permanent: no retry

    listed = run_cli("alerts", "-c", str(config), "--status", "failed", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    [record] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert record["rule"] == "troops"
    # The same headline from the other feed; which feed is fetched first varies.
    assert len(record["also_reported_by"]) == 1
    assert {record["feed"], *record["also_reported_by"]} == {"wire", "desk"}
    [delivery] = record["deliveries"]
    assert (delivery["notifier"], delivery["state"], delivery["attempts"]) == ("hook", "failed", 1)
    assert "404" in delivery["last_error"]

    text = run_cli("alerts", "-c", str(config), cwd=tmp_path)
    assert "FAILED after 1 attempt" in text.stdout
    assert f"also reported by: {record['also_reported_by'][0]}" in text.stdout
    none_pending = run_cli("alerts", "-c", str(config), "--status", "pending", cwd=tmp_path)
    assert none_pending.stdout.strip() == "0 alerts with a pending delivery."

    receiver.default = Answer(200, b"ok")
    again = run_cli("redeliver", "-c", str(config), "--failed", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "1 deliveries queued again; 0 still pending." in again.stdout
    first, second = receiver.posts()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery["id"]
    delivered = run_cli(
        "alerts", "-c", str(config), "--status", "delivered", "--json", cwd=tmp_path
    )
    assert [json.loads(line)["id"] for line in delivered.stdout.splitlines()] == [record["id"]]

    # Nothing failed now: --failed queues nothing, and an id nobody knows is an error.
    assert (
        "0 deliveries queued again"
        in run_cli("redeliver", "-c", str(config), "--failed", cwd=tmp_path).stdout
    )
    unknown = run_cli("redeliver", "-c", str(config), "al_nope", cwd=tmp_path)
    assert unknown.returncode == 1
    assert "al_nope" in unknown.stderr
    assert len(receiver.posts()) == 2


def test_redeliver_by_alert_id_resends_a_delivered_alert(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    feed_server.publish("/a.xml", rss20([story("s1", "Troops cross the river near Kherson")]))
    feed_server.publish("/b.xml", rss20([]))
    config = _config(tmp_path, feed_server, receiver)
    assert run_cli("poll", "-c", str(config), cwd=tmp_path).returncode == 0
    listed = run_cli("alerts", "-c", str(config), "--json", cwd=tmp_path)
    [record] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert record["deliveries"][0]["state"] == "delivered"
    assert run_cli("redeliver", "-c", str(config), record["id"], cwd=tmp_path).returncode == 0
    assert len(receiver.posts()) == 2


def test_redeliver_needs_ids_or_failed(tmp_path: Path) -> None:
    result = run_cli("redeliver", cwd=tmp_path)
    assert result.returncode == 2
    assert "--failed" in result.stderr
