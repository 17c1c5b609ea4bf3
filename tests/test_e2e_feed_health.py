"""Feed health through the real CLI: a loopback feed that fails, moves, asks us to wait or
is gone, and a loopback receiver that gets the "feed failing"/"recovered"/"gone" notices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import run_cli
from tests.feeds import rss20, story
from tests.loopback import Answer, FeedServer, Receiver, Request

TITLE = "DPRK troops cross the river near Kursk"


def write_config(tmp_path: Path, feeds: FeedServer, receiver: Receiver, extra: str = "") -> Path:
    feeds.publish("/feed.xml", rss20([story("d1", TITLE, hours_ago=0.1)]))
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{timeout: 5s, failing_after: 3}}
feeds:
  - {{url: "{feeds.url}/feed.xml", name: wire}}
rules:
  - {{name: dprk, any: ["DPRK troops"], notify: [hook]}}
notifiers:
  hook: {{type: webhook, url: "{receiver.url}/hook", timeout: 5s}}
{extra}
""")
    return config


def poll(config: Path, tmp_path: Path) -> str:
    result = run_cli("poll", "-c", str(config), "--drain-timeout", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stderr


def documents(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(post.body) for post in receiver.posts()]


def kinds(receiver: Receiver) -> list[str]:
    return [document["type"] for document in documents(receiver)]


def feeds_json(config: Path, tmp_path: Path) -> dict[str, Any]:
    listed = run_cli("feeds", "-c", str(config), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    return dict(row)


def test_three_failures_send_one_failing_notice_and_recovery_one_recovered(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, receiver)
    feed_server.scripted["/feed.xml"] = lambda _: Answer(500, b"down")

    for attempt in (1, 2):
        assert f"poll failed ({attempt} in a row): HTTP 500" in poll(config, tmp_path)
        assert kinds(receiver) == []  # not yet: a blip is not an outage
    poll(config, tmp_path)
    assert kinds(receiver) == ["feed_failing"]
    failing = documents(receiver)[0]
    assert failing["feed"] == "wire" and failing["failures"] == 3
    assert "HTTP 500" in failing["error"]
    row = feeds_json(config, tmp_path)
    assert (row["status"], row["consecutive_failures"]) == ("failing", 3)
    assert "HTTP 500" in row["last_error"]

    poll(config, tmp_path)  # a fourth failure: the same outage, no second notice
    assert kinds(receiver) == ["feed_failing"]

    del feed_server.scripted["/feed.xml"]
    stderr = poll(config, tmp_path)
    assert "feed recovered after 4 failed polls" in stderr
    assert sorted(kinds(receiver)) == ["alert", "feed_failing", "feed_recovered"]
    row = feeds_json(config, tmp_path)
    assert (row["status"], row["consecutive_failures"], row["last_error"]) == ("ok", 0, None)

    poll(config, tmp_path)  # healthy again: nothing more
    assert sorted(kinds(receiver)) == ["alert", "feed_failing", "feed_recovered"]


def test_a_blip_below_the_threshold_sends_nothing(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, receiver)
    feed_server.scripted["/feed.xml"] = lambda _: Answer(503, b"busy")
    poll(config, tmp_path)
    poll(config, tmp_path)
    del feed_server.scripted["/feed.xml"]
    poll(config, tmp_path)
    assert kinds(receiver) == ["alert"]  # no failing notice, so no recovered one either


def test_feed_alerts_choose_who_hears_about_feeds(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, receiver, "feed_alerts: [console]")
    config.write_text(
        config.read_text().replace("notifiers:\n", "notifiers:\n  console: {type: console}\n")
    )
    feed_server.scripted["/feed.xml"] = lambda _: Answer(500, b"down")
    for _ in range(3):
        result = run_cli("poll", "-c", str(config), "--drain-timeout", "3", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert "[feed_failing] feed wire is failing: 3 polls in a row failed" in result.stdout
    assert receiver.posts() == []


def test_410_gone_stops_polling_and_says_so_once(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, receiver)
    feed_server.scripted["/feed.xml"] = lambda _: Answer(410, b"gone")

    stderr = poll(config, tmp_path)
    assert "feed is gone (HTTP 410)" in stderr
    assert kinds(receiver) == ["feed_gone"]
    fetched = len(feed_server.requests_to("/feed.xml"))

    stderr = poll(config, tmp_path)
    assert "skipped: the feed is gone" in stderr
    assert len(feed_server.requests_to("/feed.xml")) == fetched  # not asked again
    assert kinds(receiver) == ["feed_gone"]
    row = feeds_json(config, tmp_path)
    assert row["status"] == "gone" and row["next_poll_at"] is None

    # A new url in the config is polled again.
    feed_server.publish("/new.xml", rss20([story("d1", TITLE, hours_ago=0.1)]))
    config.write_text(config.read_text().replace("/feed.xml", "/new.xml"))
    poll(config, tmp_path)
    assert len(feed_server.requests_to("/new.xml")) == 1
    assert feeds_json(config, tmp_path)["status"] == "ok"


def test_301_moves_the_feed_and_later_polls_go_to_the_new_address(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, receiver)
    feed_server.publish("/moved.xml?key=abcDEF12345", rss20([story("d1", TITLE, hours_ago=0.1)]))
    feed_server.scripted["/feed.xml"] = lambda _: Answer(
        301, b"", {"Location": f"{feed_server.url}/moved.xml?key=abcDEF12345"}
    )

    stderr = poll(config, tmp_path)
    assert "feed moved permanently (HTTP 301/308)" in stderr
    assert f"{feed_server.url}/moved.xml?…" in stderr
    assert "abcDEF12345" not in stderr  # a query can carry a token: never shown
    assert kinds(receiver) == ["alert"]
    assert feeds_json(config, tmp_path)["moved_to"] == f"{feed_server.url}/moved.xml?…"

    poll(config, tmp_path)
    assert len(feed_server.requests_to("/feed.xml")) == 1  # the old address is not asked again
    assert len(feed_server.requests_to("/moved.xml?key=abcDEF12345")) == 2
    assert kinds(receiver) == ["alert"]


def test_a_temporary_redirect_does_not_move_the_feed(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, receiver)
    feed_server.publish("/today.xml", rss20([story("d1", TITLE, hours_ago=0.1)]))
    feed_server.scripted["/feed.xml"] = lambda _: Answer(
        302, b"", {"Location": f"{feed_server.url}/today.xml"}
    )
    assert "moved permanently" not in poll(config, tmp_path)
    poll(config, tmp_path)
    assert len(feed_server.requests_to("/feed.xml")) == 2
    assert feeds_json(config, tmp_path)["moved_to"] is None


def test_429_retry_after_is_respected_by_the_next_pass(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, receiver)
    feed_server.scripted["/feed.xml"] = lambda _: Answer(429, b"slow down", {"Retry-After": "120"})

    assert "HTTP 429" in poll(config, tmp_path)
    stderr = poll(config, tmp_path)
    assert "skipped: the server asked us to wait (Retry-After)" in stderr
    assert len(feed_server.requests_to("/feed.xml")) == 1
    row = feeds_json(config, tmp_path)
    assert row["status"] == "failing" and row["next_poll_at"] is not None


def test_feed_headers_are_sent_and_never_shown(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, receiver)
    config.write_text(
        config.read_text().replace(
            "name: wire}", 'name: wire, headers: {Authorization: "Bearer TOKENsecret456"}}'
        )
    )
    seen: list[Request] = []

    def refuse(request: Request) -> Answer:
        seen.append(request)
        return Answer(401, b"bad token TOKENsecret456")

    feed_server.scripted["/feed.xml"] = refuse
    stderr = poll(config, tmp_path)
    assert seen[0].headers["authorization"] == "Bearer TOKENsecret456"
    assert "HTTP 401" in stderr and "TOKENsecret456" not in stderr
    table = run_cli("feeds", "-c", str(config), cwd=tmp_path)
    assert "TOKENsecret456" not in table.stdout + table.stderr
    assert "failing (1 in a row)" in table.stdout
