"""One poll of one feed: load state → fetch → parse → identify → match → decide →
apply. Orchestrates only; every decision is made by the pure core.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

from monitor import logs
from monitor.app import App
from monitor.config import FeedConfig
from monitor.decide import plan_poll, to_evaluate
from monitor.identity import identify
from monitor.parse import ParseError, parse_feed

log = logs.get("poll")


@dataclass(frozen=True, slots=True)
class PollReport:
    feed: str
    outcome: str  # "new", "unchanged", "error"
    new_items: int = 0
    queued: int = 0
    error: str | None = None


async def poll_feed(app: App, feed: FeedConfig) -> PollReport:
    name = feed.display_name()
    state = app.store.feed_state(name)
    result = await app.fetcher.fetch(feed.url, state)
    if result.status == "error":
        return _failed(app, feed, result.error or "fetch failed")
    if result.status == "not_modified":
        app.store.record_unchanged(name, feed.url, app.clock())
        log.debug("not modified (304)", extra={"feed": name})
        return PollReport(name, "unchanged")
    body_hash = hashlib.sha256(result.body).hexdigest()
    if body_hash == state.body_hash:
        # Many servers send no validators; an identical body needs no parse.
        app.store.record_unchanged(name, feed.url, app.clock())
        return PollReport(name, "unchanged")
    try:
        parsed = await asyncio.to_thread(
            parse_feed, result.body, result.headers, result.final_url or feed.url
        )
    except ParseError as error:
        return _failed(app, feed, str(error))
    if parsed.warning:
        log.debug("ill-formed feed, good items kept: %s", parsed.warning, extra={"feed": name})
    items = identify(name, parsed)
    stored = app.store.lookup(name, items)
    matches = {item.key: app.rules.match(item, feed.tags) for item in to_evaluate(items, stored)}
    now = app.clock()
    plan = plan_poll(
        state,
        items,
        stored,
        matches,
        app.targets(),
        now,
        app.config.poll.backfill,
        (result.etag, result.last_modified, body_hash),
    )
    if plan.churned:
        log.warning(
            "guid churn on %s: most items came back under new guids; they are recognised"
            " by link and title instead",
            name,
            extra={"feed": name},
        )
    queued = app.store.apply(plan, feed.url, now, app.pacing())
    if plan.first_poll:
        log.info(
            "first poll: %d items remembered, %d older than backfill not alerted, %d alerts queued",
            len(plan.new_items),
            plan.backfilled,
            len(plan.alerts),
            extra={"feed": name},
        )
    elif plan.new_items or plan.edits:
        log.info(
            "%d new items, %d edited, %d alerts queued",
            len(plan.new_items),
            len(plan.edits),
            len(plan.alerts),
            extra={"feed": name},
        )
    return PollReport(name, "new", len(plan.new_items), queued)


def _failed(app: App, feed: FeedConfig, error: str) -> PollReport:
    name = feed.display_name()
    failures = app.store.record_failure(name, feed.url, error, app.clock())
    log.warning("poll failed (%d in a row): %s", failures, error, extra={"feed": name})
    return PollReport(name, "error", error=error)


async def poll_all(app: App, feeds: list[FeedConfig]) -> list[PollReport]:
    """Every feed once, concurrently (the fetcher bounds how many at a time)."""
    return list(await asyncio.gather(*(poll_feed(app, feed) for feed in feeds)))


def prune(app: App) -> int:
    """Retention: forget what left its feed longer ago than `retention`."""
    pruned = app.store.prune(app.clock(), app.config.retention)
    if pruned:
        log.info("pruned %d items not seen for %s", pruned, app.config.retention)
    return pruned
