"""The crash test (RELIABILITY.md T34/T35/T58): the real daemon is SIGKILLed at random
moments, many times, while its feed keeps producing new matching stories and its
receiver is sometimes slow or briefly unavailable. After one final clean run every alert
must have been accepted by the receiver (nothing lost), and any repeat must be the same
message, same webhook-id and same bytes, so an idempotent receiver drops it (nothing
duplicated).

Kills are aimed, by a seeded RNG, at four phases: start-up (imports, migrations), a poll
(just after the feed was served: parse, match, the item+alert+outbox transaction), a
delivery (while the receiver holds a POST it has already accepted: the ambiguous case),
and anywhere (a random delay, as an operator's `kill -9` would land). The invariants are
checked after every kill as well as at the end. A poll split over two commits would lose
an alert only when a kill lands in the millisecond between them: this loop catches that
by luck, not every run. Recording an alert as sent before its POST fails every run.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from standardwebhooks.webhooks import Webhook

from tests.conftest import cli_env, run_cli
from tests.feeds import rss20, story
from tests.loopback import Answer, FeedServer, Receiver, Request

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SEED = 20241124
ROUNDS = 24
# A kill after the outbox claimed deliveries leaves their lease (monitor/deliver.py,
# LEASE_MARGIN = 30 s) to lapse before another process may send them: the final run
# must be allowed to wait that out, and a little more.
FINAL_DRAIN = 45


class CrashReceiver(Receiver):
    """A webhook receiver that is sometimes slow and sometimes answers 503 with a short
    Retry-After, so kills also land mid-POST and across pending retries. It remembers
    which requests it accepted (answered 200), and can hold one POST on demand so the
    test can kill the sender while the receiver already has the alert."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self.accepted: list[Request] = []
        self._in_flight: list[Request] = []
        self._hold_for = 0.0
        self._holding = threading.Event()
        super().__init__()
        # Answering a sender that was just killed fails with a broken pipe; that is the
        # point of the test, not a receiver error worth a traceback.
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]

    def hold_next(self, seconds: float) -> threading.Event:
        """The next POST is accepted but answered only after `seconds`; the event is set
        once that POST has arrived."""
        with self.lock:
            self._hold_for = seconds
            self._holding = threading.Event()
            return self._holding

    def mid_post(self, since: float) -> bool:
        """Whether a POST that arrived at or after `since` still waits for its answer."""
        with self.lock:
            return any(request.at >= since for request in self._in_flight)

    def accepted_ids(self) -> set[str]:
        with self.lock:
            return {r.headers["webhook-id"] for r in self.accepted}

    def cancel_hold(self) -> None:
        with self.lock:
            self._hold_for = 0.0

    def answer(self, request: Request) -> Answer:
        with self.lock:
            held, self._hold_for = self._hold_for, 0.0
            roll = self._rng.random()
            delay = held or (self._rng.uniform(0.05, 0.4) if roll < 0.4 else 0.0)
            refuse = not held and roll > 0.9
            if not refuse:
                # Accepted as soon as the receiver decides so, before the answer goes out:
                # if the sender dies meanwhile, the receiver still has the alert.
                self.accepted.append(request)
            self._in_flight.append(request)
            if held:
                self._holding.set()
        try:
            time.sleep(delay)
        finally:
            with self.lock:
                self._in_flight.remove(request)
        if refuse:
            return Answer(503, b"busy", {"Retry-After": "1"})
        return Answer(200, b"ok")


class Newsroom:
    """The growing feed: each story gets invented place names and a number of its own,
    so no two headlines share more than "Troops" and "near" and none are merged as one
    story (near-identical headlines are, by design)."""

    SYLLABLES = "ka lo vi ren tas mor quel di sab un pry zet gor hal nim oss tev bru".split()

    def __init__(self, feeds: FeedServer, rng: random.Random) -> None:
        self._feeds = feeds
        self._rng = rng
        self._used: set[str] = set()
        self.items: list[dict[str, object]] = []
        self.publish(0)

    def _place(self) -> str:
        while True:
            word = "".join(self._rng.choice(self.SYLLABLES) for _ in range(3)).capitalize()
            if word not in self._used:
                self._used.add(word)
                return word

    def publish(self, count: int) -> None:
        for _ in range(count):
            number = len(self.items) + 1
            title = f"Troops near {self._place()} {self._place()} {self._place()} {number}"
            self.items.append(story(f"s{number}", title, hours_ago=0.05))
        # Newest first, as feeds are.
        self._feeds.publish("/feed.xml", rss20(list(reversed(self.items))))

    @property
    def titles(self) -> set[str]:
        return {str(item["title"]) for item in self.items}


def write_config(tmp_path: Path, feeds: FeedServer, receiver: Receiver) -> Path:
    # 1 s is as often as a feed may be polled here (poll.timeout must not exceed it);
    # no jitter, and a backfill that lets every item alert even on the feed's first poll.
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{interval: 1s, jitter: 0s, timeout: 1s, backfill: 30d}}
feeds:
  - {{url: "{feeds.url}/feed.xml", name: wire}}
rules:
  - {{name: troops, any: [troops]}}
notifiers:
  hook: {{type: webhook, url: "{receiver.url}/hook", secret: "{SECRET}", timeout: 5s}}
""")
    return config


def start_daemon(config: Path, cwd: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config)],
        cwd=cwd,
        env=cli_env(),
        stdout=log,
        stderr=log,
    )


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def check_after_crash(db_path: Path, accepted_ids: set[str]) -> None:
    """What must hold after every kill, before the next start: the file is sound, each
    recorded item that matched has its alert, each alert its outbox row, and nothing is
    marked delivered that the receiver never accepted."""
    if not db_path.exists():
        return  # killed before the database was created
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if "deliveries" not in tables or "matched" not in column_names(db, "items"):
            return  # killed before the migrations committed; they run again next start
        assert orphans(db) == (0, 0)
        delivered = {
            row[0] for row in db.execute("SELECT id FROM deliveries WHERE state = 'delivered'")
        }
        assert delivered <= accepted_ids
    finally:
        db.close()


def column_names(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def orphans(db: sqlite3.Connection) -> tuple[int, int]:
    """(matching items without an alert, alerts without a delivery)."""
    items = db.execute(
        "SELECT COUNT(*) FROM items i WHERE i.matched != '[]'"
        " AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.item_id = i.id)"
    ).fetchone()[0]
    alerts = db.execute(
        "SELECT COUNT(*) FROM alerts a"
        " WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = a.id)"
    ).fetchone()[0]
    return int(items), int(alerts)


class KillLoop:
    """Starts the daemon, lets it run into one phase, SIGKILLs it, checks the aftermath."""

    PHASES = ("startup", "poll", "delivery", "anywhere")
    WEIGHTS = (1, 3, 2, 3)

    def __init__(
        self,
        tmp_path: Path,
        config: Path,
        feeds: FeedServer,
        receiver: CrashReceiver,
        newsroom: Newsroom,
        rng: random.Random,
    ) -> None:
        self.tmp_path, self.config, self.feeds = tmp_path, config, feeds
        self.receiver, self.newsroom, self.rng = receiver, newsroom, rng
        self.db_path = tmp_path / "monitor.db"
        self.log_path = tmp_path / "daemon.log"
        self.phases: Counter[str] = Counter()
        self.held_kills = 0  # kills while the receiver held a POST it had accepted

    def feed_requests(self) -> int:
        return len(self.feeds.requests_to("/feed.xml"))

    def run(self, rounds: int) -> None:
        with self.log_path.open("ab") as log:
            for _ in range(rounds):
                # New stories before every start, so every run has polling and sending to do.
                self.newsroom.publish(self.rng.randint(1, 3))
                phase = self.rng.choices(self.PHASES, self.WEIGHTS)[0]
                polled = self.feed_requests()
                hold = self.receiver.hold_next(2.0) if phase == "delivery" else None
                since = time.monotonic()
                daemon = start_daemon(self.config, self.tmp_path, log)
                try:
                    phase = self._run_into(phase, polled, hold)
                    if self.receiver.mid_post(since):
                        phase += "+mid-post"
                    daemon.send_signal(signal.SIGKILL)
                    daemon.wait(10)
                finally:
                    if daemon.poll() is None:
                        daemon.kill()
                        daemon.wait()
                self.receiver.cancel_hold()
                assert daemon.returncode == -signal.SIGKILL, f"it exited by itself ({phase})"
                self.phases[phase] += 1
                check_after_crash(self.db_path, self.receiver.accepted_ids())

    def _run_into(self, phase: str, polled: int, hold: threading.Event | None) -> str:
        """Sleep until the moment to kill; returns the phase actually reached."""
        if phase == "startup":
            time.sleep(self.rng.uniform(0.05, 0.4))
        elif phase == "poll":
            # Just after the feed was served: parsing, matching, the one transaction, the
            # outbox claim. All of it takes about 15 ms here, feed request to first POST.
            wait_until(lambda: self.feed_requests() > polled, 10)
            time.sleep(self.rng.uniform(0.0, 0.02))
        elif hold is not None:
            # The receiver has accepted this POST and sits on the answer.
            if not hold.wait(10):
                return "delivery-missed"
            time.sleep(self.rng.uniform(0.0, 0.3))
            self.held_kills += 1
        else:
            # Anywhere; more news arrives meanwhile for the next 1 s poll to find.
            pause = self.rng.uniform(0.3, 1.5)
            time.sleep(pause / 2)
            self.newsroom.publish(self.rng.randint(1, 2))
            time.sleep(pause / 2)
        return phase


def check_final_database(db_path: Path, titles: set[str]) -> dict[str, str]:
    """After the clean run: sound file, every published story recorded once with exactly
    one alert and one delivery, all delivered. Returns delivery id → alert id."""
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        recorded = [row[0] for row in db.execute("SELECT title FROM items")]
        assert len(recorded) == len(set(recorded))
        assert set(recorded) == titles  # none missing, none invented
        assert orphans(db) == (0, 0)
        # Each item is its own story, so each has exactly one alert of its own.
        not_one = db.execute(
            "SELECT COUNT(*) FROM items i"
            " WHERE (SELECT COUNT(*) FROM alerts a WHERE a.item_id = i.id) != 1"
        ).fetchone()[0]
        assert not_one == 0
        rows = db.execute("SELECT id, alert_id, state FROM deliveries").fetchall()
    finally:
        db.close()
    assert len(rows) == len(titles)
    assert Counter(state for _, _, state in rows) == {"delivered": len(titles)}
    return {ident: alert for ident, alert, _ in rows}


def check_receiver(accepted: list[Request], alert_of: dict[str, str], titles: set[str]) -> int:
    """The receiver's distinct accepted webhook-ids are exactly the outbox, and a repeat
    is the same message: same bytes under the same id, validly signed. Returns how many
    repeats there were."""
    by_id: dict[str, list[Request]] = defaultdict(list)
    for post in accepted:
        by_id[post.headers["webhook-id"]].append(post)
    assert set(by_id) == set(alert_of)
    verifier = Webhook(SECRET)
    delivered_titles = set()
    for ident, posts in by_id.items():
        assert len({p.body for p in posts}) == 1, ident
        for post in posts:
            assert verifier.verify(post.body, post.headers) == json.loads(post.body)
        document = json.loads(posts[0].body)
        assert document["id"] == alert_of[ident]
        delivered_titles.add(document["story"]["title"])
    assert delivered_titles == titles
    return len(accepted) - len(by_id)


@pytest.mark.timeout(180)
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    rng = random.Random(SEED)
    receiver = CrashReceiver(SEED + 1)
    try:
        newsroom = Newsroom(feed_server, rng)
        config = write_config(tmp_path, feed_server, receiver)
        loop = KillLoop(tmp_path, config, feed_server, receiver, newsroom, rng)
        started = time.monotonic()
        loop.run(ROUNDS)
        killing = time.monotonic() - started

        # The final clean run: one poll, then drain until nothing is pending (waiting out
        # any lease the last kills left behind).
        final = run_cli(
            "poll", "-c", str(config), "--drain-timeout", str(FINAL_DRAIN), cwd=tmp_path, timeout=90
        )
        assert final.returncode == 0, final.stderr
        assert "still pending" not in final.stderr, final.stderr
        daemon_log = loop.log_path.read_text(errors="replace")
        assert "Traceback" not in daemon_log + final.stderr, daemon_log[-3000:]

        alert_of = check_final_database(loop.db_path, newsroom.titles)
        with receiver.lock:
            accepted = list(receiver.accepted)
        repeats = check_receiver(accepted, alert_of, newsroom.titles)
        # Repeats come only from kills that cut a POST short, at most one per kill; and
        # every POST the receiver held while its sender died had to be sent again.
        assert loop.held_kills <= repeats <= ROUNDS
        # Shown with `pytest -s`: where the kills landed and what it cost.
        print(
            f"\n{ROUNDS} kills in {killing:.1f}s ({dict(loop.phases)}); final run"
            f" {time.monotonic() - started - killing:.1f}s; {len(newsroom.titles)} stories;"
            f" {len(accepted)} POSTs accepted for {len(alert_of)} webhook-ids ({repeats}"
            f" repeats), {len(receiver.posts())} POSTs in all"
        )
    finally:
        receiver.close()
