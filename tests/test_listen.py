"""`run --listen`: the real daemon in a subprocess serves /healthz and /metrics. The
metrics parse with prometheus-client's own parser and move after a poll; /healthz turns
503 when the database file is made read-only."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import cli_env
from tests.feeds import rss20, story
from tests.loopback import FeedServer, Receiver
from tests.test_daemon import unused_port, wait_until


def start(config: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "-c", str(config),
         "--listen", f"127.0.0.1:{port}"],
        cwd=config.parent,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def get(port: int, path: str) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2.0)
    except httpx.HTTPError:
        return None


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_healthz_and_metrics(tmp_path: Path, feed_server: FeedServer, receiver: Receiver) -> None:
    feed_server.publish("/feed.xml", rss20([story("n1", "DPRK troops reach the front")]))
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{interval: 1s, jitter: 0s, timeout: 1s}}
feeds:
  - {{url: "{feed_server.url}/feed.xml", name: wire}}
rules:
  - {{name: dprk, any: ["DPRK troops"]}}
notifiers:
  hook: {{type: webhook, url: "{receiver.url}/hook"}}
""")
    port = unused_port()
    daemon = start(config, port)
    try:
        if not wait_until(lambda: get(port, "/healthz") is not None, 15):
            daemon.terminate()
            pytest.fail(f"the daemon never listened: {daemon.communicate(timeout=10)[1]}")
        assert wait_until(lambda: len(receiver.posts()) == 1, 15)
        healthy = get(port, "/healthz")
        assert healthy is not None and (healthy.status_code, healthy.text) == (200, "ok\n")

        scraped = get(port, "/metrics")
        assert scraped is not None and scraped.status_code == 200
        values = samples(scraped.text)
        assert values[("news_monitor_polls_total", (("outcome", "new"),))] == 1
        assert values[("news_monitor_items_seen_total", ())] == 1
        assert values[("news_monitor_matches_total", (("rule", "dprk"),))] == 1
        delivered = (("notifier", "hook"), ("outcome", "delivered"))
        assert wait_until(
            lambda: (
                samples(get(port, "/metrics").text).get(  # type: ignore[union-attr]
                    ("news_monitor_deliveries_total", delivered)
                )
                == 1
            ),
            5,
        )
        assert values[("news_monitor_fetch_seconds_count", ())] >= 1
        assert values[("news_monitor_feeds_failing", ())] == 0
        assert values[("news_monitor_last_successful_poll_timestamp_seconds", ())] > 0
        # The next polls are 304s: the unchanged counter moves, the new one does not.
        assert wait_until(
            lambda: (
                samples(get(port, "/metrics").text).get(  # type: ignore[union-attr]
                    ("news_monitor_polls_total", (("outcome", "unchanged"),)), 0
                )
                >= 2
            ),
            10,
        )
        missing = get(port, "/nowhere")
        assert missing is not None and missing.status_code == 404

        (tmp_path / "monitor.db").chmod(0o444)
        assert wait_until(
            lambda: (r := get(port, "/healthz")) is not None and r.status_code == 503, 5
        )
        sick = get(port, "/healthz")
        assert sick is not None and "the database file is read-only" in sick.text
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, stderr
    assert "serving /healthz and /metrics on 127.0.0.1" in stderr


def test_a_bad_listen_address_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--listen", "localhost"],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "is not HOST:PORT" in result.stderr


def test_healthz_turns_503_when_every_poll_fails_and_back_when_one_succeeds(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """Polls that run but all fail (network down, proxy gone) are not a healthy daemon;
    each change of health is logged with its reason."""
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{interval: 1s, jitter: 0s, timeout: 1s, max_backoff: 2s}}
feeds: [{{url: "{feed_server.url}/feed.xml", name: wire}}]
notifiers: {{console: {{type: console}}}}
""")
    port = unused_port()
    daemon = start(config, port)  # the feed is not published yet: every poll gets a 404
    try:
        assert wait_until(lambda: get(port, "/healthz") is not None, 15)

        def status() -> tuple[int, str]:
            answer = get(port, "/healthz")
            return (answer.status_code, answer.text) if answer else (0, "")

        assert wait_until(lambda: status()[0] == 503, 15), status()
        assert status()[1].startswith("unhealthy: no feed has answered since ")
        feed_server.publish("/feed.xml", rss20([story("h1", "Quiet news")]))
        assert wait_until(lambda: status() == (200, "ok\n"), 15), status()
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, stderr
    unhealthy = [line for line in stderr.splitlines() if "unhealthy:" in line]
    assert len(unhealthy) == 1 and "no feed has answered since" in unhealthy[0], stderr
    assert "healthy again" in stderr.split(unhealthy[0])[1]
