"""Hostile servers and broken feeds through the real CLI, all in one `news-monitor poll`
pass: every hostile feed fails alone, with its own state and log line, and the good
feeds polled beside them still alert on time. Then the bomb cases once more, measuring
the peak memory of the process that polls them.

The network cases come from tests.hostile (raw TCP); the broken documents from the
ordinary FeedServer. Every feed URL carries a query token that must never be shown.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from tests import hostile
from tests.conftest import cli_env, run_cli
from tests.feeds import rss20, story
from tests.hostile import HostileServer
from tests.loopback import FeedServer, Receiver

TIMEOUT = 3  # poll.timeout in seconds
MAX_BODY = 1 << 20
TOKEN = "tokQ7xHostile93"
PASSWD = Path("/etc/passwd")

TOO_LARGE = f"response larger than {MAX_BODY} bytes"
TIMED_OUT = f"timed out after {TIMEOUT}s"
BROKE_HTTP = "the server broke the HTTP protocol"


@dataclass(frozen=True)
class Failing:
    name: str
    path: str
    error: str  # what feeds --json and the log line must say


# Served by HostileServer.
NETWORK = [
    Failing("drip-body", hostile.DRIP_BODY, TIMED_OUT),
    Failing("drip-headers", hostile.DRIP_HEADERS, TIMED_OUT),
    Failing("endless", hostile.ENDLESS, TOO_LARGE),
    Failing("huge", hostile.HUGE, TOO_LARGE),
    Failing("huge-unsized", hostile.HUGE_UNSIZED, TOO_LARGE),
    Failing("gzip-bomb", hostile.GZIP_BOMB, TOO_LARGE),
    Failing("redirect-loop", hostile.LOOP_A, "more than 5 redirects"),
    Failing("garbage", hostile.GARBAGE, BROKE_HTTP),
    Failing("cut-headers", hostile.CUT_HEADERS, BROKE_HTTP),
]
# Served by FeedServer: an answer that is not a feed.
NOT_FEEDS = [
    Failing("empty", "/empty.xml", "the response body is empty"),
    Failing("html", "/page.html", "this is not an RSS, Atom or RDF feed"),
]
FAILING = NETWORK + NOT_FEEDS

# Feeds that must alert in the same pass, with the title each alert carries.
ALERTING = {
    "good-1": "DPRK troops cross the river near Kursk",
    "good-2": "Satellite images show DPRK troops massing at Vladivostok port",
    "bom": "DPRK troops reported along the Belgorod border crossing",
    "ill-formed": "Ministry confirms DPRK troops & artillery shipment arrived",
    "xxe": "Leaked deployment list names DPRK troops end",
    "cp1251-declared": "Войска КНДР замечены под Курском",
    "no-charset": "Колонна техники КНДР прошла через Суджу",
}
# Feeds that parse, store their items and alert nothing.
QUIET = ["laughs", "cp1251-undeclared"]


def pub_date(hours_ago: float = 0.5) -> str:
    return format_datetime(datetime.now(UTC) - timedelta(hours=hours_ago))


def raw_rss(items: str, prolog: str = '<?xml version="1.0" encoding="utf-8"?>') -> str:
    return (
        f'{prolog}<rss version="2.0"><channel><title>Raw</title>'
        f"<link>https://raw.example/</link><description>d</description>{items}</channel></rss>"
    )


def raw_item(slug: str, title: str, extra: str = "") -> str:
    return (
        f"<item><title>{title}</title><link>https://raw.example/{slug}</link>"
        f"<guid>urn:raw:{slug}</guid><pubDate>{pub_date()}</pubDate>{extra}</item>"
    )


def laughs(levels: int = 9) -> bytes:
    """Billion laughs, declared on one line so the declarations reach expat."""
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, levels + 1)
    )
    prolog = f'<?xml version="1.0"?><!DOCTYPE rss [{entities}]>'
    return raw_rss(raw_item("laughs", f"Laughs &lol{levels};"), prolog).encode()


def publish_documents(feeds: FeedServer) -> None:
    """Every FeedServer-served case of the pass, at `/<name>.xml?token=…`."""

    def put(name: str, body: str | bytes, content_type: str = "application/rss+xml") -> None:
        feeds.publish(f"/{name}.xml?token={TOKEN}", body, content_type)

    put("good-1", rss20([story("g1", ALERTING["good-1"], hours_ago=0.2)]))
    put("good-2", rss20([story("g2", ALERTING["good-2"], hours_ago=0.2)]))
    put("bom", b"\xef\xbb\xbf" + raw_rss(raw_item("bom", ALERTING["bom"])).encode())
    ill = ALERTING["ill-formed"]  # its bare `&` is not well-formed XML, and it is cut short
    put("ill-formed", raw_rss(raw_item("ill", ill)).removesuffix("</channel></rss>") + "<item><ti")
    xxe = '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    put("xxe", raw_rss(raw_item("xxe", "Leaked deployment list names DPRK troops &x; end"), xxe))
    put("laughs", laughs())
    cp1251 = '<?xml version="1.0" encoding="windows-1251"?>'
    body = raw_rss(raw_item("ru1", ALERTING["cp1251-declared"]), cp1251).encode("cp1251")
    put("cp1251-declared", body, "application/rss+xml; charset=utf-8")
    body = raw_rss(raw_item("ru2", "Учения флота КНДР"), '<?xml version="1.0"?>').encode("cp1251")
    put("cp1251-undeclared", body, "application/rss+xml; charset=utf-8")
    put("no-charset", raw_rss(raw_item("ru3", ALERTING["no-charset"]), "").encode(), "text/xml")
    put("empty", b"")
    put("html", b"<!doctype html><html><body><p>Sign in to read</p></body></html>", "text/html")


def write_config(
    tmp_path: Path, feeds: list[tuple[str, str]], receiver: Receiver, poll: str
) -> Path:
    listed = "\n".join(f'  - {{url: "{url}", name: {name}}}' for name, url in feeds)
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{{poll}}}
feeds:
{listed}
rules:
  - {{name: dprk, any: ["DPRK troops"], notify: [hook]}}
  - {{name: kndr, any: ["КНДР"], notify: [hook]}}
notifiers:
  hook: {{type: webhook, url: "{receiver.url}/hook", timeout: 5s}}
""")
    return config


# Every feed of a loopback test lives on 127.0.0.1; on the real web these would be
# different hosts, so the per-host politeness limit is lifted to let them run at once.
FAST_POLL = f"timeout: {TIMEOUT}s, max_body: {MAX_BODY}, per_host: 32, concurrency: 32"


@dataclass(frozen=True)
class Pass:
    stdout: str
    stderr: str
    seconds: float
    alerts: dict[str, list[dict[str, Any]]]  # feed name → alert documents it raised
    posted_within: float  # seconds from the start of `poll` to the last webhook POST
    feeds: dict[str, dict[str, Any]]  # `feeds --json`, by feed name
    feeds_output: str  # `feeds --json` and the `feeds` table, as printed
    items: dict[str, list[tuple[str, str, str]]]  # feed → stored (title, summary, content)
    test_url_output: str  # `news-monitor test --url` on the xxe feed
    leftover_threads: int
    server_errors: list[str]


def stored_items(database: Path) -> dict[str, list[tuple[str, str, str]]]:
    items: dict[str, list[tuple[str, str, str]]] = {}
    with closing(sqlite3.connect(database)) as db:
        for feed, title, summary, content in db.execute(
            "SELECT feed, title, summary, content FROM items"
        ):
            items.setdefault(feed, []).append((title, summary, content))
    return items


@pytest.fixture(scope="module")
def one_pass(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pass]:
    """One `poll` over every case, then everything the tests below look at."""
    tmp_path = tmp_path_factory.mktemp("hostile")
    bad, feeds, receiver = HostileServer(), FeedServer(), Receiver()
    try:
        hostile.gzip_bomb()  # built before the clock starts
        publish_documents(feeds)
        listed = [(case.name, f"{bad.url}{case.path}?token={TOKEN}") for case in NETWORK]
        served = [case.name for case in NOT_FEEDS] + list(ALERTING) + QUIET
        listed += [(name, f"{feeds.url}/{name}.xml?token={TOKEN}") for name in served]
        config = write_config(tmp_path, listed, receiver, FAST_POLL)

        started = time.monotonic()
        result = run_cli("poll", "-c", str(config), "--drain-timeout", "5", cwd=tmp_path)
        seconds = time.monotonic() - started
        assert result.returncode == 0, result.stderr
        alerts: dict[str, list[dict[str, Any]]] = {}
        posts = receiver.posts()
        for post in posts:
            document = json.loads(post.body)
            alerts.setdefault(document["story"]["feed"], []).append(document)
        posted_within = max((post.at for post in posts), default=started) - started

        listing = run_cli("feeds", "-c", str(config), "--json", cwd=tmp_path)
        table = run_cli("feeds", "-c", str(config), cwd=tmp_path)
        assert listing.returncode == 0 and table.returncode == 0, listing.stderr + table.stderr
        rows = [json.loads(line) for line in listing.stdout.splitlines()]
        xxe = f"{feeds.url}/xxe.xml?token={TOKEN}"
        dry_run = run_cli("test", "-c", str(config), "--all", "--url", xxe, cwd=tmp_path)
        assert dry_run.returncode == 0, dry_run.stderr
    finally:
        bad.close()
        feeds.close()
        receiver.close()
    yield Pass(
        stdout=result.stdout,
        stderr=result.stderr,
        seconds=seconds,
        alerts=alerts,
        posted_within=posted_within,
        feeds={row["feed"]: row for row in rows},
        feeds_output=listing.stdout + listing.stderr + table.stdout + table.stderr,
        items=stored_items(tmp_path / "monitor.db"),
        test_url_output=dry_run.stdout + dry_run.stderr,
        leftover_threads=len(bad.threads()),
        server_errors=list(bad.errors),
    )


def log_lines(stderr: str, feed: str) -> list[str]:
    return [line for line in stderr.splitlines() if f" feed={feed} " in line]


@pytest.mark.parametrize("case", FAILING, ids=lambda case: case.name)
def test_each_hostile_feed_fails_alone_with_its_reason(one_pass: Pass, case: Failing) -> None:
    row = one_pass.feeds[case.name]
    assert (row["status"], row["consecutive_failures"]) == ("failing", 1)
    assert case.error in row["last_error"]
    assert row["last_success_at"] is None and row["items_seen"] == 0
    [line] = log_lines(one_pass.stderr, case.name)
    assert re.search(
        rf"WARNING +feed={case.name} poll failed \(1 in a row\): [^;]*{re.escape(case.error)}"
        r"[^;]*; next try after \d{4}-\d\d-\d\dT",
        line,
    ), line
    assert case.name not in one_pass.alerts


@pytest.mark.parametrize("name", list(ALERTING), ids=str)
def test_good_and_salvageable_feeds_alert_in_the_same_pass(one_pass: Pass, name: str) -> None:
    [alert] = one_pass.alerts[name]
    assert alert["story"]["title"] == ALERTING[name]
    row = one_pass.feeds[name]
    assert (row["status"], row["consecutive_failures"], row["last_error"]) == ("ok", 0, None)
    [line] = log_lines(one_pass.stderr, name)
    assert re.search(r"first poll: \d items remembered, \d older than backfill .*, 1 alerts", line)


def test_the_pass_takes_one_timeout_not_one_per_hostile_feed(one_pass: Pass) -> None:
    slow = sum(case.error == TIMED_OUT for case in NETWORK)
    assert slow >= 2
    # Started, waited out the slowest feed once, delivered: not `slow` × TIMEOUT or more.
    print(f"pass: {one_pass.seconds:.1f}s, last alert at {one_pass.posted_within:.1f}s")
    assert TIMEOUT <= one_pass.seconds < TIMEOUT + 4, one_pass.seconds
    assert one_pass.posted_within < TIMEOUT + 4
    assert sorted(one_pass.alerts) == sorted(ALERTING)


def test_nothing_crashes_and_no_token_is_shown(one_pass: Pass) -> None:
    everything = one_pass.stdout + one_pass.stderr + one_pass.feeds_output
    assert "Traceback" not in everything
    assert TOKEN not in everything + one_pass.test_url_output
    assert "token=" not in everything
    assert one_pass.stderr.count("poll failed") == len(FAILING)
    assert one_pass.leftover_threads == 0 and one_pass.server_errors == []


def test_an_entity_bomb_is_neither_expanded_nor_fatal(one_pass: Pass) -> None:
    row = one_pass.feeds["laughs"]
    assert (row["status"], row["items_seen"]) == ("ok", 1)
    [(title, summary, content)] = one_pass.items["laughs"]
    assert title.startswith("Laughs")
    assert "lollol" not in title + summary + content
    assert len(title + summary + content) < 1_000


def test_an_external_entity_never_brings_a_local_file_in(one_pass: Pass) -> None:
    first_line = PASSWD.read_text().splitlines()[0]  # e.g. root:x:0:0:root:/root:/bin/bash
    assert first_line
    stored = " ".join(" ".join(fields) for rows in one_pass.items.values() for fields in rows)
    alerts = json.dumps(one_pass.alerts, ensure_ascii=False)
    for text in (stored, alerts, one_pass.test_url_output):
        assert first_line not in text and "/bin/" not in text
    # The item itself did come through, in the poll and in the dry run.
    assert "Leaked deployment list names DPRK troops" in stored
    assert "Leaked deployment list names DPRK troops" in one_pass.test_url_output
    assert "1 of 1 items match" in one_pass.test_url_output


def test_wrong_and_missing_charsets_still_store_the_items(one_pass: Pass) -> None:
    # Declared windows-1251 in the document, served as utf-8: read as what it says it is.
    [(title, _, _)] = one_pass.items["cp1251-declared"]
    assert title == ALERTING["cp1251-declared"]
    # No charset at all on text/xml, utf-8 inside: XML's default wins.
    [(title, _, _)] = one_pass.items["no-charset"]
    assert title == ALERTING["no-charset"]
    # Nothing says windows-1251 anywhere: no way to know; stored, undecodable as it is.
    row = one_pass.feeds["cp1251-undeclared"]
    assert (row["status"], row["items_seen"]) == ("ok", 1)
    [(title, _, _)] = one_pass.items["cp1251-undeclared"]
    assert title and "\ufffd" not in title
    # A byte-order mark is not part of the text.
    [(title, _, _)] = one_pass.items["bom"]
    assert not title.startswith("\ufeff")


def test_an_ill_formed_feed_keeps_its_good_items(one_pass: Pass) -> None:
    titles = [title for title, _, _ in one_pass.items["ill-formed"]]
    assert ALERTING["ill-formed"] in titles


def test_a_windows_1251_feed_served_as_latin_1_still_reads_as_cyrillic(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    prolog = '<?xml version="1.0" encoding="windows-1251"?>'
    title = "Войска КНДР замечены под Курском"
    body = raw_rss(raw_item("ru", title), prolog).encode("cp1251")
    url = feed_server.publish("/ru.xml", body, "application/rss+xml; charset=ISO-8859-1")
    config = write_config(tmp_path, [("ru", url)], receiver, FAST_POLL)
    result = run_cli("poll", "-c", str(config), "--drain-timeout", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert len(stored_items(tmp_path / "monitor.db")["ru"]) == 1  # stored either way
    assert [json.loads(post.body)["story"]["title"] for post in receiver.posts()] == [title]


# Memory: the bomb cases polled by a fresh process, measured from a dedicated parent so
# RUSAGE_CHILDREN covers nothing else (it is the peak of the largest waited-for child).
_MEASURE = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"code": done.returncode, "stderr": done.stderr, "peak_kib": peak}))
"""


def peak_of_poll(config: Path, cwd: Path) -> tuple[int, str]:
    """Peak RSS (KiB) of `news-monitor poll` on this config, and its stderr."""
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "monitor", "poll", "-c",
         str(config), "--drain-timeout", "0"],
        cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    report = json.loads(measured.stdout)
    assert report["code"] == 0, report["stderr"]
    return int(report["peak_kib"]), str(report["stderr"])


def test_memory_stays_bounded_on_the_bomb_cases(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    # The default 10 MiB body cap: the bombs would need 50 MB, 256 MiB, or without end.
    poll = "timeout: 10s, per_host: 32"
    feed_server.publish("/tiny.xml", rss20([story("t", "Quiet day at the harbour")]))
    feed_server.publish("/laughs.xml", laughs())
    (tmp_path / "baseline").mkdir()
    (tmp_path / "bombs").mkdir()
    with HostileServer() as bad:
        hostile.gzip_bomb()
        baseline_config = write_config(
            tmp_path / "baseline", [("tiny", f"{feed_server.url}/tiny.xml")], receiver, poll
        )
        bombs = [
            ("gzip-bomb", f"{bad.url}{hostile.GZIP_BOMB}"),
            ("huge", f"{bad.url}{hostile.HUGE}"),
            ("huge-unsized", f"{bad.url}{hostile.HUGE_UNSIZED}"),
            ("endless", f"{bad.url}{hostile.ENDLESS}"),
            ("laughs", f"{feed_server.url}/laughs.xml"),
        ]
        bombs_config = write_config(tmp_path / "bombs", bombs, receiver, poll)
        baseline, _ = peak_of_poll(baseline_config, tmp_path / "baseline")
        peak, stderr = peak_of_poll(bombs_config, tmp_path / "bombs")
        assert bad.idle(2.0)  # every connection handler ended once the poll hung up
        assert bad.errors == []
    print(f"peak RSS: baseline {baseline >> 10} MiB, bombs {peak >> 10} MiB")
    # Each bomb was cut off by the body cap (not by a timeout), or parsed without expanding.
    for name in ("gzip-bomb", "huge", "huge-unsized", "endless"):
        assert re.search(rf"feed={name} poll failed \(1 in a row\): response larger than", stderr)
    assert re.search(r"feed=laughs first poll: 1 items remembered", stderr), stderr
    assert baseline > 10 << 10  # a real measurement of a Python process, in KiB
    assert peak < baseline + (100 << 10), (baseline, peak)


def test_the_hostile_server_drips_and_ends_every_thread_on_close() -> None:
    server = HostileServer(drip_every=0.2)
    port = int(server.url.rsplit(":", 1)[1])
    with (
        socket.create_connection(("127.0.0.1", port)) as dripping,
        socket.create_connection(("127.0.0.1", port)) as flooding,
    ):
        try:
            dripping.sendall(b"GET /drip-body?token=x HTTP/1.1\r\nHost: t\r\n\r\n")
            flooding.sendall(b"GET /endless HTTP/1.1\r\nHost: t\r\n\r\n")  # never read
            received = b""
            while b"<title>" not in received:
                received += dripping.recv(4096)
            assert received.startswith(b"HTTP/1.1 200 OK\r\n")
            started = time.monotonic()
            drops = [dripping.recv(1) for _ in range(3)]
            assert drops == [b"x"] * 3 and time.monotonic() - started >= 0.5
            while server.requests_to(hostile.ENDLESS) == 0:
                time.sleep(0.01)
            assert len(server.threads()) == 3  # the acceptor and two connection handlers
            assert not server.idle(0.3)
        finally:
            started = time.monotonic()
            server.close()
            closed_in = time.monotonic() - started
    assert server.threads() == [] and closed_in < 2
    assert server.sent[hostile.ENDLESS] > 0 and server.errors == []


def test_the_gzip_bomb_is_small_and_inflates_to_hundreds_of_megabytes() -> None:
    bomb = hostile.gzip_bomb()
    assert len(bomb) < 300_000
    inflate, inflated, rest = zlib.decompressobj(zlib.MAX_WBITS | 16), 0, bomb
    while rest:
        inflated += len(inflate.decompress(rest, 1 << 24))
        rest = inflate.unconsumed_tail
    assert inflate.eof and inflated == hostile.BOMB_DECODED_BYTES
