"""The daemon's lifecycle: start → run → stop. APScheduler 3 runs one async job per
feed on the loop that owns the database; signals only set a flag; stopping waits for
in-flight polls within a budget, then cancels them (a poll's writes are one
transaction, so a cancelled poll leaves nothing half-written).
"""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor import logs
from monitor.app import App
from monitor.clock import iso_seconds
from monitor.config import FeedConfig
from monitor.deliver import run_forever
from monitor.listen import serve
from monitor.metrics import State
from monitor.poll import poll_feed, prune

log = logs.get("daemon")
PRUNE_EVERY = timedelta(hours=1)
STOP_BUDGET = 7.0  # seconds for in-flight work; Docker's SIGKILL comes at 10 s


class Daemon:
    def __init__(self, app: App, listen: tuple[str, int] | None = None) -> None:
        self.app = app
        self.listen = listen
        self.started_at = app.clock()
        self.last_poll_run: datetime | None = None
        self.stop_requested = asyncio.Event()
        self._wake_deliverer = asyncio.Event()
        self._in_flight: set[asyncio.Task[object]] = set()
        self._scheduler = AsyncIOScheduler(timezone="UTC")

    def request_stop(self) -> None:
        self.stop_requested.set()
        self._wake_deliverer.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        for feed in self.app.config.feeds:
            self._schedule(feed)
        self._scheduler.add_job(
            self._prune,
            IntervalTrigger(seconds=PRUNE_EVERY.total_seconds()),
            id="retention",
            next_run_time=self.app.clock(),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(PRUNE_EVERY.total_seconds()),
        )
        self._scheduler.start()
        server = await self._serve() if self.listen else None
        log.info(
            "watching %d feeds with %d rules",
            len(self.app.config.feeds),
            len(self.app.config.rules),
        )
        deliverer = asyncio.create_task(
            run_forever(self.app, self._wake_deliverer, self.stop_requested)
        )
        await self.stop_requested.wait()
        log.info("stopping")
        self._scheduler.shutdown(wait=False)
        if server is not None:
            server.close()
        await self._finish_in_flight(deliverer)
        log.info("stopped")

    def _schedule(self, feed: FeedConfig) -> None:
        interval = self.app.config.feed_interval(feed)
        jitter = min(self.app.config.poll.jitter, interval / 2)
        self._scheduler.add_job(
            self._poll,
            IntervalTrigger(
                seconds=interval.total_seconds(), jitter=int(jitter.total_seconds()) or None
            ),
            args=[feed],
            id=feed.display_name(),
            name=feed.display_name(),
            next_run_time=self.app.clock(),
            max_instances=1,
            coalesce=True,
            # The default grace of 1 s silently skips a run that starts a little late.
            misfire_grace_time=max(int(interval.total_seconds()), 1),
        )

    async def _serve(self) -> asyncio.Server:
        assert self.listen is not None
        host, port = self.listen
        store = self.app.store
        self.app.metrics.watch(lambda: State(*store.health_snapshot()[:3]))
        server = await serve(host, port, self.health, self.app.metrics)
        log.info("serving /healthz and /metrics on %s:%d", host, port)
        return server

    def health(self) -> str | None:
        """None when the daemon does its job; else why not, in one sentence."""
        if self.stop_requested.is_set():
            return "the daemon is stopping"
        if not self._scheduler.running:
            return "the scheduler is not running"
        problem = self.app.store.writable()
        if problem:
            return problem
        feeds = self.app.config.feeds
        if feeds:
            # A poll job runs at least every interval (a backing-off feed still runs its
            # job, to decide to wait): twice the longest one, plus a timeout, is overdue.
            longest = max(self.app.config.feed_interval(feed) for feed in feeds)
            allowed = 2 * longest + self.app.config.poll.timeout + timedelta(seconds=30)
            last = self.last_poll_run or self.started_at
            if self.app.clock() - last > allowed:
                return f"no feed has been polled since {iso_seconds(last)}"
        return None

    async def _poll(self, feed: FeedConfig) -> None:
        self.last_poll_run = self.app.clock()
        if self.stop_requested.is_set():
            return
        task = asyncio.current_task()
        assert task is not None
        self._in_flight.add(task)
        try:
            report = await poll_feed(self.app, feed)
            if report.queued:
                self._wake_deliverer.set()
        except Exception:  # one feed's bug must not take the scheduler down
            log.exception("poll crashed", extra={"feed": feed.display_name()})
        finally:
            self._in_flight.discard(task)

    async def _prune(self) -> None:
        if self.stop_requested.is_set():
            return
        try:
            prune(self.app)
        except Exception:  # retention must not take the scheduler down either
            log.exception("pruning old rows failed; it is tried again next hour")

    async def _finish_in_flight(self, deliverer: asyncio.Task[None]) -> None:
        pending = {*self._in_flight, deliverer}
        _, late = await asyncio.wait(pending, timeout=STOP_BUDGET)
        for task in late:
            task.cancel()
        if late:
            log.warning("abandoned %d unfinished tasks; their work is redone next start", len(late))
            await asyncio.wait(late, timeout=1.0)


async def run(app: App, listen: tuple[str, int] | None = None) -> None:
    async with app:
        await Daemon(app, listen).run()
