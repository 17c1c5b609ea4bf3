"""Composition root: builds the store, fetcher, rule set and notifiers from a Config,
and holds the one clock and the one random source everything else is handed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from monitor import logs
from monitor.batching import Pacing
from monitor.clock import utcnow
from monitor.closing import AsyncClosing
from monitor.config import Config, FeedConfig
from monitor.fetch import USER_AGENT, Fetcher
from monitor.health import HealthPolicy
from monitor.metrics import Metrics
from monitor.notify import Notifier, build_notifiers
from monitor.parsing import ParserPool
from monitor.rules.ruleset import rule_specs
from monitor.store import Store

log = logs.get("app")


@dataclass
class App(AsyncClosing):
    config: Config
    store: Store
    fetcher: Fetcher
    notifiers: dict[str, Notifier]
    http: httpx.AsyncClient
    parser: ParserPool
    clock: Callable[[], datetime] = utcnow
    rng: random.Random = field(default_factory=random.Random)
    metrics: Metrics = field(default_factory=Metrics)
    polls_in_progress: asyncio.Semaphore = field(default_factory=asyncio.Semaphore)
    _targets: tuple[Config, dict[str, tuple[str, ...]]] | None = field(default=None, repr=False)

    def feed(self, name: str) -> FeedConfig | None:
        return next((f for f in self.config.feeds if f.display_name() == name), None)

    def pacing(self) -> dict[str, Pacing]:
        """Each notifier's digest or burst setting, for scheduling new deliveries."""
        return {
            name: Pacing(
                digest=notifier.digest,
                burst_max=notifier.burst.max if notifier.burst else None,
                burst_per=notifier.burst.per if notifier.burst else None,
            )
            for name, notifier in self.config.active_notifiers().items()
        }

    def health_policy(self) -> HealthPolicy:
        poll = self.config.poll
        return HealthPolicy(alert_after=poll.failing_after, max_backoff=poll.max_backoff)

    def targets(self) -> dict[str, tuple[str, ...]]:
        """Each rule's notifiers, worked out once per config: every poll asks."""
        if self._targets is None or self._targets[0] is not self.config:
            config = self.config
            targets = {rule.name: config.rule_targets(rule) for rule in config.rules}
            self._targets = (config, targets)
        return self._targets[1]

    async def close(self) -> None:
        await self.parser.close()
        await self.fetcher.close()
        await self.http.aclose()
        self.store.close()


def build(config: Config) -> App:
    logs.redact(config.secrets())
    for name in config.disabled_notifiers:
        log.info("notifier %s is switched off: its url is empty", name, extra={"notifier": name})
    poll = config.poll
    http = _delivery_client()
    parser = ParserPool(
        workers=poll.parse_workers,
        deadline=poll.parse_timeout.total_seconds(),
        memory_bytes=poll.parse_memory_mb * 1024 * 1024,
    )
    parser.use_rules(rule_specs(config.rules))
    return App(
        config=config,
        store=Store(config.storage),
        fetcher=Fetcher(
            poll.timeout.total_seconds(),
            poll.concurrency,
            poll.max_body,
            per_host=poll.per_host,
            # An unset ${HTTPS_PROXY:-} comes out empty: no proxy.
            proxy=(poll.proxy.get_secret_value() if poll.proxy else "") or None,
        ),
        notifiers=build_notifiers(config.active_notifiers(), http),
        http=http,
        parser=parser,
        polls_in_progress=asyncio.Semaphore(poll.concurrency),
    )


def _delivery_client() -> httpx.AsyncClient:
    # Receivers must not redirect us: a 3xx is a failure to report, not to follow.
    return httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": USER_AGENT})
