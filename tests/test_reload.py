"""Reloading the config: the pure plan of what changes, then the real daemon reloading on
SIGHUP and on a file edit (`--watch-config`), keeping its config when the new one is
broken, and never alerting twice for what it already alerted."""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import loads
from monitor.reload import Schedule, plan
from tests.feeds import rss20, story
from tests.loopback import Answer, FeedServer, Receiver, Request
from tests.running import Daemon
from tests.test_daemon import wait_until

BASE = """
storage: ./monitor.db
poll: {interval: 5m, jitter: 0s}
feeds:
  - {url: "http://a.example/feed", name: a}
  - {url: "http://b.example/feed", name: b, interval: 10m}
rules:
  - {name: r, any: [troops]}
"""


def test_plan_of_an_unchanged_config_is_empty() -> None:
    old = loads(BASE, "m.yaml", {})
    changes = plan(old, loads(BASE, "m.yaml", {}))
    assert (changes.added, changes.removed, changes.changed, changes.restart_only) == (
        (),
        (),
        (),
        (),
    )


def test_plan_adds_removes_and_changes_feeds_by_name() -> None:
    old = loads(BASE, "m.yaml", {})
    new = loads(
        BASE.replace('  - {url: "http://a.example/feed", name: a}\n', "")
        .replace("b.example/feed", "b.example/other")
        .replace("rules:", '  - {url: "http://c.example/feed", name: c}\nrules:'),
        "m.yaml",
        {},
    )
    changes = plan(old, new)
    assert [feed.display_name() for feed in changes.added] == ["c"]
    assert changes.removed == ("a",)
    [(feed, schedule)] = changes.changed
    assert (feed.display_name(), feed.url, schedule) == ("b", "http://b.example/other", None)


def test_plan_reschedules_feeds_whose_interval_follows_the_default() -> None:
    old = loads(BASE, "m.yaml", {})
    new = loads(BASE.replace("interval: 5m", "interval: 1m"), "m.yaml", {})
    changes = plan(old, new)
    # b has its own interval, so only a moves.
    assert [(f.display_name(), s) for f, s in changes.changed] == [
        ("a", Schedule(timedelta(minutes=1), timedelta(0)))
    ]


def test_plan_names_settings_only_a_restart_applies() -> None:
    old = loads(BASE, "m.yaml", {})
    new = loads(
        BASE.replace("./monitor.db", "./other.db").replace(
            "jitter: 0s", 'jitter: 0s, concurrency: 3, proxy: "http://u:pw@proxy.example:3128"'
        ),
        "m.yaml",
        {},
    )
    changes = plan(old, new)
    assert changes.restart_only == ("storage", "poll.concurrency", "poll.proxy")
    assert "pw" not in repr(changes)


# --- the real daemon ------------------------------------------------------------------


def write_config(
    path: Path, feed_urls: dict[str, str], hook: str, poll: str = "interval: 1s, timeout: 1s"
) -> None:
    feeds = "\n".join(f'  - {{url: "{url}", name: {name}}}' for name, url in feed_urls.items())
    path.write_text(f"""
storage: {path.parent / "monitor.db"}
poll: {{{poll}, jitter: 0s}}
feeds:
{feeds}
rules:
  - {{name: dprk, any: ["DPRK troops"]}}
notifiers:
  hook: {{type: webhook, url: "{hook}"}}
""")


def titles(receiver: Receiver) -> list[str]:
    return sorted(json.loads(post.body)["story"]["title"] for post in receiver.posts())


@pytest.mark.parametrize("how", ["sighup", "watch"])
def test_reload_starts_polling_an_added_feed_without_alerting_twice(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver, how: str
) -> None:
    feed_server.publish("/one.xml", rss20([story("o1", "DPRK troops seen near Kursk")]))
    feed_server.publish("/two.xml", rss20([story("t1", "DPRK troops cross the river")]))
    config = tmp_path / "monitor.yaml"
    write_config(config, {"one": f"{feed_server.url}/one.xml"}, f"{receiver.url}/hook")
    daemon = Daemon(config, *(["--watch-config"] if how == "watch" else []))
    try:
        assert wait_until(lambda: len(receiver.posts()) == 1, 15), "first alert never came"
        write_config(
            config,
            {"one": f"{feed_server.url}/one.xml", "two": f"{feed_server.url}/two.xml"},
            f"{receiver.url}/hook",
        )
        if how == "sighup":
            daemon.send(signal.SIGHUP)
        assert wait_until(lambda: len(feed_server.requests_to("/two.xml")) >= 2, 15), (
            "the added feed is not polled"
        )
        assert wait_until(lambda: len(receiver.posts()) == 2, 10), "no alert from the new feed"
        polls = len(feed_server.requests_to("/one.xml"))
        assert wait_until(lambda: len(feed_server.requests_to("/one.xml")) >= polls + 2, 10)
    finally:
        stderr = daemon.stop()
    assert titles(receiver) == ["DPRK troops cross the river", "DPRK troops seen near Kursk"]
    assert "config reloaded: 1 feeds added, 0 removed, 0 changed" in stderr
    assert "Traceback" not in stderr


def test_a_broken_config_on_sighup_keeps_the_old_one_running(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    items = [story("k1", "DPRK troops seen near Kursk")]
    feed_server.publish("/one.xml", rss20(items))
    config = tmp_path / "monitor.yaml"
    write_config(config, {"one": f"{feed_server.url}/one.xml"}, f"{receiver.url}/hook")
    daemon = Daemon(config)
    try:
        assert wait_until(lambda: len(receiver.posts()) == 1, 15)
        config.write_text(
            config.read_text()
            .replace('any: ["DPRK troops"]', 'query: "DPRK AND (troops"')
            .replace("interval: 1s", "interval: soon")
        )
        daemon.send(signal.SIGHUP)
        # The old rules and feeds still work: a new story still alerts.
        items.append(story("k2", "More DPRK troops arrive"))
        feed_server.publish("/one.xml", rss20(items))
        assert wait_until(lambda: len(receiver.posts()) == 2, 15), "the old config stopped"
        assert daemon.process.poll() is None, "a broken reload killed the daemon"
    finally:
        stderr = daemon.stop()
    problems = [line for line in stderr.splitlines() if "config problem:" in line]
    assert len(problems) == 2, stderr
    assert any("poll.interval" in line for line in problems)
    assert any("rules[0]" in line for line in problems)
    assert all("monitor.yaml:" in line for line in problems), problems
    assert "kept the running config" in stderr
    assert "config reloaded" not in stderr
    assert titles(receiver) == ["DPRK troops seen near Kursk", "More DPRK troops arrive"]


def test_reload_stops_polling_a_removed_feed_and_replaces_the_rules(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    feed_server.publish("/one.xml", rss20([story("a1", "DPRK troops seen near Kursk")]))
    two = [story("b1", "DPRK troops at the border")]
    feed_server.publish("/two.xml", rss20(two))
    config = tmp_path / "monitor.yaml"
    urls = {"one": f"{feed_server.url}/one.xml", "two": f"{feed_server.url}/two.xml"}
    write_config(config, urls, f"{receiver.url}/hook")
    daemon = Daemon(config)
    try:
        assert wait_until(lambda: len(receiver.posts()) == 2, 15)
        write_config(config, {"two": urls["two"]}, f"{receiver.url}/hook")
        config.write_text(config.read_text().replace('any: ["DPRK troops"]', "any: [drone]"))
        daemon.send(signal.SIGHUP)
        assert wait_until(lambda: daemon.logged("config reloaded"), 10)
        polled = len(feed_server.requests_to("/one.xml"))
        two += [story("b2", "A drone hits a depot"), story("b3", "DPRK troops move north")]
        feed_server.publish("/two.xml", rss20(two))
        assert wait_until(lambda: len(receiver.posts()) == 3, 15), "the new rule never matched"
        assert wait_until(lambda: len(feed_server.requests_to("/two.xml")) >= 6, 10)
    finally:
        stderr = daemon.stop()
    assert len(feed_server.requests_to("/one.xml")) <= polled + 1
    assert titles(receiver) == [
        "A drone hits a depot",
        "DPRK troops at the border",
        "DPRK troops seen near Kursk",
    ]
    assert "config reloaded: 0 feeds added, 1 removed, 0 changed" in stderr


def test_sigterm_during_a_slow_poll_exits_promptly_and_a_restart_loses_nothing(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    released = threading.Event()
    stalled = rss20([story("s1", "DPRK troops reach Kursk"), story("s2", "DPRK troops dig in")])

    def slow(request: Request) -> Answer:
        released.wait(60)  # the server takes a minute to answer: a poll in flight
        return Answer(200, stalled.encode(), {"Content-Type": "application/xml"})

    feed_server.scripted["/slow.xml"] = slow
    feed_server.publish("/fast.xml", rss20([story("f1", "DPRK troops fire shells")]))
    config = tmp_path / "monitor.yaml"
    urls = {"slow": f"{feed_server.url}/slow.xml", "fast": f"{feed_server.url}/fast.xml"}
    # Polls take as long as the slow server lets them: up to a minute.
    write_config(config, urls, f"{receiver.url}/hook", poll="interval: 60s, timeout: 60s")
    daemon = Daemon(config)
    try:
        assert wait_until(lambda: len(receiver.posts()) == 1, 15)
        assert feed_server.requests_to("/slow.xml"), "the slow poll never started"
        started = time.monotonic()
        stderr = daemon.stop()
        took = time.monotonic() - started
    finally:
        released.set()
    assert took < 10, f"stopping took {took:.1f} s"
    assert "Traceback" not in stderr
    assert "abandoned 1 unfinished tasks" in stderr

    del feed_server.scripted["/slow.xml"]
    feed_server.publish("/slow.xml", stalled)
    again = Daemon(config)
    try:
        assert wait_until(lambda: len(receiver.posts()) == 3, 15), "the cut poll was lost"
        assert wait_until(lambda: len(feed_server.requests_to("/fast.xml")) == 2, 10)
        time.sleep(1)  # time for a wrong second alert of the fast feed to arrive
    finally:
        again.stop()
    assert titles(receiver) == [
        "DPRK troops dig in",
        "DPRK troops fire shells",
        "DPRK troops reach Kursk",
    ]


def test_renaming_a_feed_on_reload_does_not_alert_its_stories_again(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    feed_server.publish("/one.xml", rss20([story("r1", "DPRK troops seen near Kursk")]))
    config = tmp_path / "monitor.yaml"
    write_config(config, {"one": f"{feed_server.url}/one.xml"}, f"{receiver.url}/hook")
    daemon = Daemon(config)
    try:
        assert wait_until(lambda: len(receiver.posts()) == 1, 15)
        # Same URL, new name: to the store a feed it has never polled.
        write_config(config, {"uno": f"{feed_server.url}/one.xml"}, f"{receiver.url}/hook")
        daemon.send(signal.SIGHUP)
        assert wait_until(lambda: daemon.logged("feed=uno"), 10), "the renamed feed never polled"
        polls = len(feed_server.requests_to("/one.xml"))
        assert wait_until(lambda: len(feed_server.requests_to("/one.xml")) >= polls + 2, 10)
    finally:
        stderr = daemon.stop()
    assert titles(receiver) == ["DPRK troops seen near Kursk"], stderr
    assert "config reloaded: 1 feeds added, 1 removed, 0 changed" in stderr
