""" "What counts as the same story" (PRODUCT.md), end to end: loopback feeds → the real
`poll` command in a subprocess → a real SQLite file → a loopback webhook receiver that
checks Standard Webhooks signatures. Each test drives several `poll` runs against the
same database, because every rule here is about what must *not* be sent the next time:
one alert per story across feeds, no re-alert when a publisher rewrites guids, a new
alert only for a rule an edit newly matches, no flood from a new feed's archive, and no
re-alert after old rows are pruned."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.conftest import run_cli
from tests.feeds import rss20, story
from tests.loopback import FeedServer, Receiver

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

Rules = dict[str, list[str]]


def write_config(
    tmp_path: Path,
    feeds: FeedServer,
    receiver: Receiver,
    names: list[str],
    rules: Rules,
    extra: str = "",
) -> Path:
    """A config polling /<name>.xml for every name, with `any:` rules (rule → terms) that
    all notify one signed webhook. Lists are written as JSON, which is YAML flow."""
    feed_lines = "".join(f'  - {{url: "{feeds.url}/{name}.xml", name: {name}}}\n' for name in names)
    rule_lines = "".join(
        f"  - name: {name}\n    any: {json.dumps(terms)}\n" for name, terms in rules.items()
    )
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"storage: {tmp_path / 'monitor.db'}\n"
        "poll: {timeout: 5s, backfill: 24h}\n"
        f"{extra}"
        f"feeds:\n{feed_lines}"
        f"rules:\n{rule_lines}"
        "notifiers:\n"
        f'  hook: {{type: webhook, url: "{receiver.url}/hook", secret: "{SECRET}"}}\n'
    )
    return config


def documents(receiver: Receiver) -> list[dict[str, Any]]:
    """Every POSTed alert document, after checking its signature as a receiver would."""
    verifier = Webhook(SECRET)
    found = []
    for post in receiver.posts():
        document = verifier.verify(post.body, post.headers)
        assert document == json.loads(post.body)
        found.append(document)
    return found


def received(receiver: Receiver) -> list[tuple[str, str, str]]:
    """(rule, feed, title) of every POST, sorted."""
    return sorted((d["rule"], d["story"]["feed"], d["story"]["title"]) for d in documents(receiver))


def poll(config: Path) -> subprocess.CompletedProcess[str]:
    result = run_cli("poll", "-c", str(config), cwd=config.parent)
    assert result.returncode == 0, result.stderr
    return result


def item(slug: str, title: str, link: str, guid: str, hours_ago: float = 1.0) -> dict[str, object]:
    """A feed entry whose link and guid are set independently (story() ties them)."""
    entry = story(slug, title, hours_ago=hours_ago)
    entry.update(link=link, id=guid)
    return entry


# --- 1. one story, several feeds ------------------------------------------------------------


def test_same_link_in_three_feeds_alerts_once_with_the_others_as_sources(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    # Three outlets syndicate one article: the links differ only by trackers, `www.`, a
    # trailing slash and parameter order; every feed has its own guid and headline, so
    # only the canonical link says it is one story.
    carried = {
        "wire": ("North Korean troops spotted near Kursk", "https://news.example/kursk-dprk"
                 "?utm_source=wire&utm_medium=rss"),
        "desk": ("Pyongyang soldiers seen in Russia's Kursk region", "https://www.news.example"
                 "/kursk-dprk/?fbclid=IwAR0abc&gclid=xyz"),
        "watch": ("Kursk: Kyiv confirms DPRK soldiers at the front", "https://NEWS.example:443"
                  "/kursk-dprk?mc_cid=1&utm_campaign=daily#top"),
    }  # fmt: skip
    for name, (title, link) in carried.items():
        feed_server.publish(f"/{name}.xml", rss20([item("k", title, link, f"{name}-guid-1")]))
    config = write_config(tmp_path, feed_server, receiver, list(carried), {"kursk": ["Kursk"]})

    poll(config)

    # Delivery runs after every feed was polled, so the one POST names the other two.
    [document] = documents(receiver)
    assert document["rule"] == "kursk"
    first = document["story"]["feed"]
    assert document["story"]["title"] == carried[first][0]
    others = sorted(
        (s["feed"], s["title"], s["url"]) for s in document["story"]["also_reported_by"]
    )
    assert others == sorted(
        (name, title, link) for name, (title, link) in carried.items() if name != first
    )

    poll(config)
    assert len(receiver.posts()) == 1


def test_nearly_the_same_headline_in_two_feeds_alerts_once(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    # No shared link: a tense and an outlet suffix are all that differ.
    feed_server.publish(
        "/wire.xml",
        rss20([item("a", "North Korean troops arrive in Kursk region",
                    "https://wire.example/world/dprk-kursk-1", "wire-1")]),
    )  # fmt: skip
    feed_server.publish(
        "/desk.xml",
        rss20([item("b", "North Korean troops arrived in Kursk region - Example News",
                    "https://desk.example/2026/11/troops-kursk", "desk-1")]),
    )  # fmt: skip
    config = write_config(
        tmp_path, feed_server, receiver, ["wire", "desk"], {"dprk": ["North Korean troops"]}
    )

    poll(config)

    [document] = documents(receiver)
    assert document["rule"] == "dprk"
    [source] = document["story"]["also_reported_by"]
    assert {document["story"]["feed"], source["feed"]} == {"wire", "desk"}
    poll(config)
    assert len(receiver.posts()) == 1


def test_headlines_that_differ_by_a_number_are_two_stories(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    # Daily round-ups share every word but the day: merging them would hide day 981.
    feed_server.publish(
        "/wire.xml",
        rss20([item("a", "Russia-Ukraine war: what we know on day 980",
                    "https://wire.example/day-980", "wire-980")]),
    )  # fmt: skip
    feed_server.publish(
        "/desk.xml",
        rss20([item("b", "Russia-Ukraine war: what we know on day 981",
                    "https://desk.example/day-981", "desk-981")]),
    )  # fmt: skip
    config = write_config(
        tmp_path, feed_server, receiver, ["wire", "desk"], {"roundup": ["what we know"]}
    )

    poll(config)

    assert received(receiver) == [
        ("roundup", "desk", "Russia-Ukraine war: what we know on day 981"),
        ("roundup", "wire", "Russia-Ukraine war: what we know on day 980"),
    ]
    assert all(d["story"]["also_reported_by"] == [] for d in documents(receiver))


# --- 2. a feed that rewrites its guids ------------------------------------------------------


def test_guid_churn_never_realerts(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    # Links, titles and dates stay put; only the guids are fresh uuids on every fetch.
    # Three of the twenty items match; each headline has its own number and words, so
    # none of them is "the same story" as another.
    base = [
        story(
            f"n{n}",
            f"Troops convoy number {n} crosses checkpoint {n}"
            if n % 7 == 0
            else f"Weather bulletin {n} for district {n}",
            hours_ago=1 + n / 10,
            host="churn.example",
        )
        for n in range(20)
    ]
    matching = sorted(str(entry["title"]) for entry in base if "Troops" in str(entry["title"]))
    assert len(matching) == 3

    def publish_fresh_guids() -> None:
        # A new body each time: a byte-identical one would be skipped as unchanged
        # without ever reaching the identity logic under test.
        entries = [dict(entry, id=f"urn:uuid:{uuid.uuid4()}") for entry in base]
        feed_server.publish("/churner.xml", rss20(entries))

    config = write_config(tmp_path, feed_server, receiver, ["churner"], {"troops": ["troops"]})
    publish_fresh_guids()
    poll(config)
    assert received(receiver) == [("troops", "churner", title) for title in matching]

    for _ in range(4):
        publish_fresh_guids()
        later = poll(config)
        assert "guid churn on churner" in later.stderr + later.stdout
        assert len(receiver.posts()) == 3
    assert len(feed_server.requests_to("/churner.xml")) == 5


# --- 3. an edited item ----------------------------------------------------------------------


def test_edit_alerts_only_for_a_newly_matched_rule(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    link = "https://news.example/talks"
    config = write_config(
        tmp_path, feed_server, receiver, ["wire"], {"talks": ["talks"], "drones": ["drone"]}
    )

    feed_server.publish("/wire.xml", rss20([item("t", "Minor update on talks", link, "g1")]))
    poll(config)
    assert received(receiver) == [("talks", "wire", "Minor update on talks")]

    # Same guid, new headline: "talks" already alerted, "drones" is new.
    edited = "Minor update on talks after drone strike"
    feed_server.publish("/wire.xml", rss20([item("t", edited, link, "g1")]))
    poll(config)
    assert received(receiver) == [
        ("drones", "wire", edited),
        ("talks", "wire", "Minor update on talks"),
    ]

    # A further edit that matches only rules already alerted sends nothing.
    again = "Minor update on talks after drone strike near Kyiv, officials say"
    feed_server.publish("/wire.xml", rss20([item("t", again, link, "g1")]))
    poll(config)
    assert len(receiver.posts()) == 2


# --- 4. a new feed's archive ----------------------------------------------------------------


def test_first_poll_alerts_only_items_within_backfill(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    # Every headline carries its own number, so none joins another as one story and
    # each of the two recent ones must alert on its own.
    archive = [
        story(f"old{n}", f"Troops report {n} from sector {n}", hours_ago=72 + n * 96 / 49)
        for n in range(50)
    ]
    recent = [
        story("new1", "Troops rotate out of sector 901", hours_ago=0.5),
        story("new2", "Troops dig in near village 902", hours_ago=0.9),
    ]
    feed_server.publish("/archive.xml", rss20(archive[:25] + recent + archive[25:]))
    config = write_config(tmp_path, feed_server, receiver, ["archive"], {"troops": ["troops"]})

    poll(config)

    assert received(receiver) == [
        ("troops", "archive", "Troops dig in near village 902"),
        ("troops", "archive", "Troops rotate out of sector 901"),
    ]
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        # The archive is remembered, so a later poll does not take it for new.
        assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 52


# --- 5. retention ---------------------------------------------------------------------------


def stored_titles(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "monitor.db") as conn:
        return sorted(row[0] for row in conn.execute("SELECT title FROM items"))


def test_pruning_forgets_what_left_the_feed_and_never_realerts_what_stayed(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    a = story("a", "Troops leave the old base at Alpha")
    b = story("b", "Troops hold the bridge at Bravo")
    c = story("c", "Troops reach the river at Charlie")
    config = write_config(
        tmp_path,
        feed_server,
        receiver,
        ["wire"],
        {"troops": ["troops"]},
        extra="retention: 2s\n",
    )

    feed_server.publish("/wire.xml", rss20([a, b]))
    poll(config)
    assert received(receiver) == [
        ("troops", "wire", "Troops hold the bridge at Bravo"),
        ("troops", "wire", "Troops leave the old base at Alpha"),
    ]

    # A drops out of the feed; B stays. Both are recorded until retention passes.
    feed_server.publish("/wire.xml", rss20([b]))
    poll(config)
    assert len(receiver.posts()) == 2

    # B was last seen (poll 2) longer ago than retention too, but it is still in the
    # feed: the unchanged poll below must prune A and keep B.
    time.sleep(2.3)
    unchanged = poll(config)
    assert feed_server.requests_to("/wire.xml")[-1].headers.get("if-none-match")
    assert stored_titles(tmp_path) == ["Troops hold the bridge at Bravo"], unchanged.stderr
    assert len(receiver.posts()) == 2

    # The feed lists B again next to a new C: only C alerts.
    feed_server.publish("/wire.xml", rss20([b, c]))
    poll(config)
    assert stored_titles(tmp_path) == [
        "Troops hold the bridge at Bravo",
        "Troops reach the river at Charlie",
    ]

    # And once more with B in a body that differs byte-wise, so it is parsed again.
    feed_server.publish("/wire.xml", rss20([c, b], title="Wire, reordered"))
    poll(config)
    assert received(receiver) == [
        ("troops", "wire", "Troops hold the bridge at Bravo"),
        ("troops", "wire", "Troops leave the old base at Alpha"),
        ("troops", "wire", "Troops reach the river at Charlie"),
    ]
