"""The whole path through the real CLI: loopback feeds in three formats → `poll` in a
subprocess → a loopback webhook receiver that verifies signatures like a real one."""

from __future__ import annotations

import json
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from tests.conftest import run_cli
from tests.feeds import atom10, rss10, rss20, story
from tests.loopback import FeedServer, Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def write_config(tmp_path: Path, feeds: FeedServer, receiver: Receiver) -> Path:
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{timeout: 5s, backfill: 24h}}
feeds:
  - {{url: "{feeds.url}/rss.xml", name: wire}}
  - {{url: "{feeds.url}/atom.xml", name: desk}}
  - {{url: "{feeds.url}/rdf.xml", name: watch}}
rules:
  - name: dprk-troops
    any: ["North Korean troops", "DPRK troops"]
  - name: kyiv-strikes
    all: [Kyiv]
    any: [drone, missile]
    none: [exercise]
notifiers:
  hook: {{type: webhook, url: "{receiver.url}/hook", secret: "{SECRET}"}}
""")
    return config


def received(receiver: Receiver) -> list[tuple[str, str, str]]:
    """(rule, feed, title) of every POST, after checking its signature as a receiver would."""
    verifier = Webhook(SECRET)
    alerts = []
    for post in receiver.posts():
        document = verifier.verify(post.body, post.headers)
        assert document == json.loads(post.body)
        alerts.append((document["rule"], document["story"]["feed"], document["story"]["title"]))
    return sorted(alerts)


def test_poll_alerts_once_per_story_across_three_formats(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    rss_items = [
        story("a1", "North Korean troops spotted near Kursk"),
        story("a2", "Snow expected in Oslo this weekend"),
        story("a3", "North Korean troops: an old story", hours_ago=48),
    ]
    feed_server.publish("/rss.xml", rss20(rss_items))
    feed_server.publish(
        "/atom.xml",
        atom10(
            [
                story("b1", "Analysts count north-korean TROOPS at the front", host="desk.example"),
                story("b2", "Drone strike on Kyiv overnight cuts power", host="desk.example"),
                story("b3", "Kyiv drone exercise planned for Monday", host="desk.example"),
            ]
        ),
    )
    feed_server.publish(
        "/rdf.xml",
        rss10(
            [
                story("c1", "DPRK troops move toward the border", host="watch.example"),
                story("c2", "Markets rally on rate hopes", host="watch.example"),
            ]
        ),
    )
    config = write_config(tmp_path, feed_server, receiver)

    first = run_cli("poll", "-c", str(config), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert received(receiver) == [
        ("dprk-troops", "desk", "Analysts count north-korean TROOPS at the front"),
        ("dprk-troops", "watch", "DPRK troops move toward the border"),
        ("dprk-troops", "wire", "North Korean troops spotted near Kursk"),
        ("kyiv-strikes", "desk", "Drone strike on Kyiv overnight cuts power"),
    ]
    ids = [post.headers["webhook-id"] for post in receiver.posts()]
    assert len(set(ids)) == 4 and all(i.startswith("msg_") for i in ids)

    second = run_cli("poll", "-c", str(config), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert len(receiver.posts()) == 4
    # The unchanged feeds were asked conditionally and answered 304.
    assert all("if-none-match" in r.headers for r in feed_server.requests_to("/rss.xml")[1:])

    rss_items.append(story("a4", "More North Korean troops arrive, Kyiv says"))
    feed_server.publish("/rss.xml", rss20(rss_items))
    third = run_cli("poll", "-c", str(config), cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    posts = receiver.posts()
    assert len(posts) == 5
    newest = json.loads(posts[-1].body)
    assert newest["rule"] == "dprk-troops"
    assert newest["story"]["title"] == "More North Korean troops arrive, Kyiv says"
    assert newest["story"]["url"] == "https://news.example/a4"
    assert newest["matched"] == ["north korean troops"]


def test_webhook_body_has_the_documented_shape(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    feed_server.publish(
        "/rss.xml",
        rss20(
            [
                story(
                    "x",
                    "DPRK troops seen",
                    "<p>DPRK troops &amp; <b>tanks</b> seen near Kursk.</p>",
                )
            ]
        ),
    )
    feed_server.publish("/atom.xml", atom10([]))
    feed_server.publish("/rdf.xml", rss10([]))
    config = write_config(tmp_path, feed_server, receiver)
    result = run_cli("poll", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [post] = receiver.posts()
    body = json.loads(post.body)
    assert set(body) == {"type", "id", "rule", "matched", "story", "detected_at", "hits"}
    assert body["hits"] == [
        {"term": "dprk troops", "field": "summary", "text": "DPRK troops", "start": 0, "end": 11},
        {"term": "dprk troops", "field": "title", "text": "DPRK troops", "start": 0, "end": 11},
    ]
    assert body["type"] == "alert" and body["rule"] == "dprk-troops"
    assert set(body["story"]) == {
        "title",
        "url",
        "published_at",
        "summary",
        "feed",
        "also_reported_by",
    }
    assert body["story"]["summary"] == "DPRK troops & tanks seen near Kursk."
    assert body["story"]["published_at"].endswith("Z")
    assert body["detected_at"].endswith("Z")
    assert post.headers["content-type"] == "application/json"


def test_receiver_down_then_up_loses_nothing(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    feed_server.publish("/rss.xml", rss20([story("d1", "DPRK troops cross river")]))
    feed_server.publish("/atom.xml", atom10([]))
    feed_server.publish("/rdf.xml", rss10([]))
    config = write_config(tmp_path, feed_server, receiver)
    from tests.loopback import Answer

    receiver.default = Answer(503, b"down for maintenance")
    down = run_cli("poll", "-c", str(config), "--drain-timeout", "0", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert "HTTP 503" in down.stderr and "retry at" in down.stderr
    assert receiver.url not in down.stderr  # the webhook URL is a secret
    first_id = receiver.posts()[0].headers["webhook-id"]

    receiver.default = Answer(200, b"ok")
    import time

    time.sleep(1.5)  # the first retry is due about a second later
    up = run_cli("poll", "-c", str(config), cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    posts = receiver.posts()
    assert len(posts) == 2
    assert posts[1].headers["webhook-id"] == first_id
    assert posts[1].body == posts[0].body
