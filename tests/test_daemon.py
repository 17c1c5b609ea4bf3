"""The real daemon in a subprocess: polls on schedule, keeps going past a dead feed,
delivers as it goes, and exits 0 promptly on SIGTERM or SIGINT."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import cli_env
from tests.feeds import rss20, story
from tests.loopback import Answer, FeedServer, Receiver


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_daemon(config: Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config)],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_run_polls_on_schedule_and_stops_cleanly(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver, stop_signal: signal.Signals
) -> None:
    items = [story("n1", "DPRK troops reach the front")]
    feed_server.publish("/feed.xml", rss20(items))
    dead = f"http://127.0.0.1:{unused_port()}/gone.xml"
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{interval: 1s, timeout: 1s}}
feeds:
  - {{url: "{feed_server.url}/feed.xml", name: live}}
  - {{url: "{dead}", name: dead}}
rules:
  - {{name: dprk, any: ["DPRK troops"]}}
notifiers:
  hook: {{type: webhook, url: "{receiver.url}/hook"}}
""")
    daemon = start_daemon(config, tmp_path)
    try:
        assert wait_until(lambda: len(receiver.posts()) == 1, 10), "first alert never came"
        items.append(story("n2", "More DPRK troops arrive"))
        feed_server.publish("/feed.xml", rss20(items))
        assert wait_until(lambda: len(receiver.posts()) == 2, 10), "second alert never came"
        polls = len(feed_server.requests_to("/feed.xml"))
        assert wait_until(lambda: len(feed_server.requests_to("/feed.xml")) >= polls + 2, 5)
        assert daemon.poll() is None, "the daemon died"
        started = time.monotonic()
        daemon.send_signal(stop_signal)
        _, stderr = daemon.communicate(timeout=10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert daemon.returncode == 0, stderr
    assert time.monotonic() - started < 10
    titles = [json.loads(p.body)["story"]["title"] for p in receiver.posts()]
    assert titles == ["DPRK troops reach the front", "More DPRK troops arrive"]
    dead_lines = [line for line in stderr.splitlines() if "feed=dead" in line]
    assert dead_lines and all(
        "poll failed" in line and "cannot connect" in line for line in dead_lines
    )
    assert "Traceback" not in stderr
    assert "stopped" in stderr.splitlines()[-1]


def test_sigterm_stops_the_daemon_as_pid_1(tmp_path: Path, feed_server: FeedServer) -> None:
    """In a container the daemon may be PID 1, which gets no default signal actions:
    without our own handler SIGTERM would be ignored until Docker's SIGKILL."""
    feed_server.publish("/feed.xml", rss20([story("p1", "Quiet news")]))
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{interval: 1s, timeout: 1s}}
feeds: [{{url: "{feed_server.url}/feed.xml", name: only}}]
notifiers: {{console: {{type: console}}}}
""")
    outer = subprocess.Popen(
        [
            "unshare",
            "--fork",
            "--pid",
            "--mount-proc",
            sys.executable,
            "-m",
            "monitor",
            "run",
            "-c",
            str(config),
        ],
        cwd=tmp_path,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: len(feed_server.requests_to("/feed.xml")) >= 2, 15)
        children = Path(f"/proc/{outer.pid}/task/{outer.pid}/children").read_text().split()
        [init] = [int(pid) for pid in children]
        status = Path(f"/proc/{init}/status").read_text()
        assert re.search(r"^NSpid:\s+\d+\s+1$", status, re.M), "not PID 1 in its namespace"
        started = time.monotonic()
        os.kill(init, signal.SIGTERM)
        _, stderr = outer.communicate(timeout=10)
    finally:
        if outer.poll() is None:
            outer.kill()
            outer.communicate()
    assert outer.returncode == 0, stderr
    assert time.monotonic() - started < 10
    assert "stopped" in stderr


def test_a_failing_feed_backs_off_while_a_good_one_keeps_its_pace(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.publish("/good.xml", rss20([story("n1", "Quiet day")]))
    feed_server.scripted["/bad.xml"] = lambda _: Answer(500, b"down")
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{interval: 1s, jitter: 0s, timeout: 1s, max_backoff: 4s}}
feeds:
  - {{url: "{feed_server.url}/good.xml", name: good}}
  - {{url: "{feed_server.url}/bad.xml", name: bad}}
rules:
  - {{name: r, any: [nothing-matches-this]}}
""")
    daemon = start_daemon(config, tmp_path)
    try:
        # Counted from the first poll, not from the start of a process a busy machine
        # may take seconds to get going.
        assert wait_until(lambda: feed_server.requests_to("/good.xml"), 15)
        time.sleep(9)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, stderr
    good = len(feed_server.requests_to("/good.xml"))
    bad = len(feed_server.requests_to("/bad.xml"))
    # Every second for the good feed; the bad one waits 1, 2, 4, 4 s between tries: about
    # 4 tries in 9 s. Bounds are loose for a busy machine, but far apart from each other.
    assert good >= 7, stderr
    assert 3 <= bad <= 5, stderr
    assert "next try after" in stderr
