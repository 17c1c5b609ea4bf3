"""One poll of one feed: load state → fetch → parse → identify → match → decide →
apply. Orchestrates only; every decision is made by the pure core.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor import logs
from monitor.app import App
from monitor.clock import iso_seconds
from monitor.config import FeedConfig
from monitor.decide import plan_poll, to_evaluate
from monitor.health import Notice, after_failure, after_success, gone
from monitor.models import FeedState
from monitor.parse import ParseError
from monitor.render import shown_url

log = logs.get("poll")


@dataclass(frozen=True, slots=True)
class PollReport:
    feed: str
    # "new", "unchanged", "error", "gone" (answered 410 now); not polled: "retired" (410
    # earlier), "waiting" (Retry-After or backoff)
    outcome: str
    new_items: int = 0
    queued: int = 0
    error: str | None = None


async def poll_feed(app: App, feed: FeedConfig, honour_backoff: bool = True) -> PollReport:
    # At most `poll.concurrency` polls between fetch and store: fetching runs no further
    # ahead of parsing than that, so fetched bodies never pile up in memory and no parse
    # waits long for a worker (a second one starts only for a slow feed).
    async with app.polls_in_progress:
        report = await _poll_feed(app, feed, honour_backoff)
    app.metrics.polls.labels(report.outcome).inc()
    return report


async def _poll_feed(app: App, feed: FeedConfig, honour_backoff: bool) -> PollReport:
    """One poll. A feed that answered 410 is not polled, nor one whose server asked us to
    wait (Retry-After); with `honour_backoff`, nor one backing off after failures."""
    name = feed.display_name()
    state = app.store.feed_state(name)
    skipped = _not_now(state, feed, app.clock(), honour_backoff)
    if skipped is not None:
        return skipped
    url = state.address(feed.url)
    headers = {key: value.get_secret_value() for key, value in feed.headers.items()}
    with app.metrics.fetch_seconds.time():
        result = await app.fetcher.fetch(url, state, headers)
    if result.moved_to and result.moved_to != url:
        _moved(app, feed, result.moved_to)
    if result.status == "gone":
        return _gone(app, feed, state)
    if result.status == "error":
        return _failed(app, feed, state, result.error or "fetch failed", result.retry_after)
    if result.status == "not_modified":
        app.store.record_unchanged(name, feed.url, app.clock())
        _recovered(app, state)
        log.debug("not modified (304)", extra={"feed": name})
        return PollReport(name, "unchanged")
    body_hash = hashlib.sha256(result.body).hexdigest()
    if body_hash == state.body_hash:
        # Many servers send no validators; an identical body needs no parse.
        app.store.record_unchanged(name, feed.url, app.clock())
        _recovered(app, state)
        return PollReport(name, "unchanged")
    try:
        # In a worker process with a deadline and a memory cap: one hostile feed costs one
        # poll of that feed, never the daemon.
        # The configured URL as the base, not where redirects ended: feedparser resolves
        # relative guids against it, and an item's identity must survive a move.
        # Identity, story signatures and rule matches come from the same worker: they
        # are pure, and the event loop's process has the store and the network to serve.
        with app.metrics.parse_seconds.time():
            prepared = await app.parser.prepare(
                result.body, result.headers, feed.url, name, feed.tags
            )
    except ParseError as error:
        return _failed(app, feed, state, str(error))
    if prepared.parsed.warning:
        log.debug("ill-formed feed, good items kept: %s", prepared.parsed.warning,
                  extra={"feed": name})  # fmt: skip
    items = prepared.items
    # A feed never recorded before has no items to look up (its first poll, or a new name).
    stored = app.store.lookup(name, items) if state.items_seen else {}
    evaluate = {item.key for item in to_evaluate(items, stored)}
    matches = {
        item.key: list(found)
        for item, found in zip(items, prepared.matches, strict=True)
        if item.key in evaluate
    }
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
        dict(zip((item.key for item in items), prepared.signatures, strict=True)),
    )
    if plan.churned:
        log.warning(
            "guid churn on %s: most items came back under new guids; they are recognised"
            " by link and title instead",
            name,
            extra={"feed": name},
        )
    queued = app.store.apply(plan, feed.url, now, app.pacing())
    app.metrics.items_seen.inc(len(plan.new_items))
    for alert in plan.alerts:
        app.metrics.matches.labels(alert.rule).inc()
    queued += _recovered(app, state)
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


def _not_now(
    state: FeedState, feed: FeedConfig, now: datetime, honour_backoff: bool
) -> PollReport | None:
    if state.is_gone(feed.url):
        return PollReport(state.name, "retired", error="HTTP 410 Gone")
    waits = [state.wait_until] + ([state.next_poll_at] if honour_backoff else [])
    if any(until and now < until for until in waits):
        return PollReport(state.name, "waiting", error=state.last_error)
    return None


def _moved(app: App, feed: FeedConfig, moved_to: str) -> None:
    app.store.record_move(feed.display_name(), feed.url, moved_to)
    log.warning(
        "feed moved permanently (HTTP 301/308) to %s; polling it there from now on."
        " Update its url in the config",
        shown_url(moved_to),
        extra={"feed": feed.display_name()},
    )


def _failed(
    app: App, feed: FeedConfig, state: FeedState, error: str, retry_after: float | None = None
) -> PollReport:
    name = feed.display_name()
    now = app.clock()
    step = after_failure(
        state, error, app.config.feed_interval(feed), now, app.health_policy(), retry_after
    )
    wait_until = now + timedelta(seconds=retry_after) if retry_after is not None else None
    if wait_until is not None:
        wait_until = min(wait_until, step.next_poll_at)
    app.store.record_failure(name, feed.url, error, now, step, wait_until)
    log.warning(
        "poll failed (%d in a row): %s; next try after %s",
        step.failures,
        error,
        iso_seconds(step.next_poll_at),
        extra={"feed": name},
    )
    queued = _notify(app, step.notice)
    return PollReport(name, "error", queued=queued, error=error)


def _gone(app: App, feed: FeedConfig, state: FeedState) -> PollReport:
    name = feed.display_name()
    now = app.clock()
    app.store.record_gone(name, feed.url, now)
    log.error(
        "feed is gone (HTTP 410): it is no longer polled; change its url in the config"
        " to poll it again",
        extra={"feed": name},
    )
    queued = _notify(app, gone(state, now))
    return PollReport(name, "gone", queued=queued, error="HTTP 410 Gone")


def _recovered(app: App, state: FeedState) -> int:
    notice = after_success(state, app.clock())
    if notice is not None:
        log.info("feed recovered after %d failed polls", state.consecutive_failures,
                 extra={"feed": state.name})  # fmt: skip
    return _notify(app, notice)


def _notify(app: App, notice: Notice | None) -> int:
    if notice is None:
        return 0
    targets = app.config.feed_alert_targets()
    queued = app.store.record_notice(notice, targets, app.clock())
    if queued:
        log.info("%s notice queued for %s", notice.kind.replace("_", " "), ", ".join(targets),
                 extra={"feed": notice.feed})  # fmt: skip
    return queued


async def poll_all(app: App, feeds: list[FeedConfig]) -> list[PollReport]:
    """Every feed once, now, concurrently (the fetcher bounds how many at a time): the
    `poll` command. Our own backoff is skipped, since someone asked for this pass; a
    server's Retry-After and a 410 are still respected."""
    reports = await asyncio.gather(*(poll_feed(app, f, honour_backoff=False) for f in feeds))
    for report in reports:
        if report.outcome == "waiting":
            log.info("skipped: the server asked us to wait (Retry-After)",
                     extra={"feed": report.feed})  # fmt: skip
        elif report.outcome == "retired":
            log.info("skipped: the feed is gone (HTTP 410); change its url to poll it again",
                     extra={"feed": report.feed})  # fmt: skip
    return list(reports)


def prune(app: App) -> int:
    """Retention: forget what left its feed longer ago than `retention`."""
    pruned = app.store.prune(app.clock(), app.config.retention)
    if pruned:
        log.info("pruned %d items not seen for %s", pruned, app.config.retention)
    return pruned
