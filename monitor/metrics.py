"""What the daemon exposes to Prometheus: counters bumped where things happen, and gauges
read from the database when scraped. One registry per App, so tests and reloads never
share counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# A poll is a request and a parse: seconds, not milliseconds, matter.
_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.polls = Counter(
            "news_monitor_polls", "Feed polls by outcome.", ["outcome"], registry=self.registry
        )
        self.fetch_seconds = Histogram(
            "news_monitor_fetch_seconds", "Time to fetch a feed.", buckets=_SECONDS,
            registry=self.registry,
        )  # fmt: skip
        self.parse_seconds = Histogram(
            "news_monitor_parse_seconds", "Time to parse a feed.", buckets=_SECONDS,
            registry=self.registry,
        )  # fmt: skip
        self.items_seen = Counter(
            "news_monitor_items_seen", "New items recorded.", registry=self.registry
        )
        self.matches = Counter(
            "news_monitor_matches", "Alerts queued, by rule.", ["rule"], registry=self.registry
        )
        self.deliveries = Counter(
            "news_monitor_deliveries",
            "Delivery attempts by notifier and outcome.",
            ["notifier", "outcome"],
            registry=self.registry,
        )

    def watch(self, snapshot: Callable[[], State]) -> None:
        """Gauges read at scrape time from `snapshot`, so they are never stale."""
        self.registry.register(_StateCollector(snapshot))


class State:
    """What the gauges show, read from the database at scrape time."""

    def __init__(self, outbox: int, failing: int, last_success: datetime | None) -> None:
        self.outbox = outbox
        self.failing = failing
        self.last_success = last_success


class _StateCollector(Collector):
    def __init__(self, snapshot: Callable[[], State]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self._snapshot()
        yield GaugeMetricFamily(
            "news_monitor_outbox_depth", "Deliveries pending.", value=state.outbox
        )
        yield GaugeMetricFamily(
            "news_monitor_feeds_failing", "Feeds failing or gone.", value=state.failing
        )
        yield GaugeMetricFamily(
            "news_monitor_last_successful_poll_timestamp_seconds",
            "When a feed was last polled successfully (Unix time).",
            value=state.last_success.timestamp() if state.last_success else 0.0,
        )
