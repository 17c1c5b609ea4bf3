"""The daemon's lifecycle: start → run → (reload)* → stop. APScheduler 3 runs one async
job per feed on the loop that owns the database; SIGTERM/SIGINT only set a flag; stopping
waits for in-flight polls within a budget, then cancels them (a poll's writes are one
transaction, so a cancelled poll leaves nothing half-written). SIGHUP, or an edit of the
config file under `--watch-config`, reloads the config: a broken one changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
from collections.abc import Coroutine
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor import config as config_module
from monitor import logs
from monitor.app import App
from monitor.clock import iso_seconds
from monitor.config import Config, FeedConfig
from monitor.deliver import run_forever
from monitor.errors import ConfigError
from monitor.fetch import declare_asyncio
from monitor.listen import serve
from monitor.metrics import State
from monitor.notify import build_notifiers
from monitor.poll import poll_feed, prune
from monitor.reload import Schedule, plan, schedule_of
from monitor.rules.ruleset import rule_specs

log = logs.get("daemon")
PRUNE_EVERY = timedelta(hours=1)
STOP_BUDGET = 7.0  # seconds for in-flight work; Docker's SIGKILL comes at 10 s
HEALTH_SLACK = timedelta(seconds=30)  # for jitter and a busy loop, on top of the intervals


class Daemon:
    def __init__(
        self,
        app: App,
        listen: tuple[str, int] | None = None,
        config_path: str | None = None,
        watch_config: bool = False,
    ) -> None:
        self.app = app
        self.listen = listen
        self.config_path = Path(config_path) if config_path else None
        self.watch_config = watch_config and self.config_path is not None
        self._config_digest = _digest(self.config_path)
        self._reloading = asyncio.Lock()
        self._last_health: str | None = None
        self._background: set[asyncio.Task[object]] = set()
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
        if self.config_path is not None:
            loop.add_signal_handler(signal.SIGHUP, self._reload_soon, "SIGHUP")
        if self.watch_config:
            self._start(self._watch())
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
        if not self.app.config.feeds or not self.app.config.rules:
            # Valid (an empty file is all defaults), but a daemon that can never alert is
            # usually a config mounted at the wrong place.
            log.warning("the config has no feeds or no rules: nothing can ever alert")
        deliverer = asyncio.create_task(
            run_forever(self.app, self._wake_deliverer, self.stop_requested)
        )
        await self.stop_requested.wait()
        log.info("stopping")
        for task in self._background:  # a reload half done is simply not applied
            task.cancel()
        # Paused, not shut down: shutting down would cancel the running polls at once,
        # where they deserve the budget to finish.
        self._scheduler.pause()
        if server is not None:
            server.close()
        await self._finish_in_flight(deliverer)
        self._scheduler.shutdown(wait=False)
        log.info("stopped")

    def _schedule(self, feed: FeedConfig) -> None:
        schedule = schedule_of(self.app.config, feed)
        self._scheduler.add_job(
            self._poll,
            _trigger(schedule),
            args=[feed],
            id=feed.display_name(),
            name=feed.display_name(),
            next_run_time=self.app.clock(),
            max_instances=1,
            coalesce=True,
            # The default grace of 1 s silently skips a run that starts a little late.
            misfire_grace_time=max(int(schedule.interval.total_seconds()), 1),
        )

    def _start(self, work: Coroutine[object, object, object]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _reload_soon(self, reason: str) -> None:
        if not self.stop_requested.is_set():
            self._start(self.reload(reason))

    async def _watch(self) -> None:
        from watchfiles import awatch

        assert self.config_path is not None
        # The directory, not the file: editors and Kubernetes replace files by renaming.
        folder = self.config_path.resolve().parent
        async for _ in awatch(folder, stop_event=self.stop_requested, debounce=300):
            if _digest(self.config_path) != self._config_digest:
                await self.reload("the config file changed")

    async def reload(self, reason: str) -> None:
        """Read and apply the config file; on any problem keep the running config."""
        assert self.config_path is not None
        async with self._reloading:
            digest = _digest(self.config_path)
            log.info("reloading %s (%s)", self.config_path, reason)
            try:
                config = await asyncio.to_thread(config_module.load, self.config_path)
            except ConfigError as error:
                for problem in error.problems:
                    log.error("config problem: %s", problem)
                log.error(
                    "kept the running config: %s has %d problems; fix them and reload again",
                    self.config_path,
                    len(error.problems),
                )
                return
            self._apply(config)
            self._config_digest = digest

    def _apply(self, config: Config) -> None:
        app = self.app
        changes = plan(app.config, config)
        # Values of the old config may still be in flight (a poll, a delivery): keep masking.
        logs.redact([*app.config.secrets(), *config.secrets()])
        app.config = config
        # Each parser worker compiles the new rules before its next parse.
        app.parser.use_rules(rule_specs(config.rules))
        app.notifiers = build_notifiers(config.active_notifiers(), app.http)
        for name in changes.removed:
            self._scheduler.remove_job(name)
        for feed, schedule in changes.changed:
            self._scheduler.modify_job(feed.display_name(), args=[feed])
            if schedule is not None:
                self._scheduler.reschedule_job(feed.display_name(), trigger=_trigger(schedule))
        for feed in changes.added:
            self._schedule(feed)
        for name in changes.restart_only:
            log.warning("%s changed: that takes effect at the next restart", name)
        log.info(
            "config reloaded: %s; watching %d feeds with %d rules",
            changes.summary(),
            len(config.feeds),
            len(config.rules),
        )

    async def _serve(self) -> asyncio.Server:
        assert self.listen is not None
        host, port = self.listen
        store = self.app.store
        self.app.metrics.watch(lambda: State(*store.health_snapshot()[:3]))
        server = await serve(host, port, self.health_report, self.app.metrics)
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
            slack = min(HEALTH_SLACK, longest)
            allowed = 2 * longest + self.app.config.poll.timeout + slack
            now = self.app.clock()
            last = self.last_poll_run or self.started_at
            if now - last > allowed:
                return f"no feed has been polled since {iso_seconds(last)}"
            # Polls that run but all fail (no network, a proxy down) are no better.
            last_success = self.app.store.health_snapshot()[2]
            since = max(last_success, self.started_at) if last_success else self.started_at
            if now - since > allowed:
                return f"no feed has answered since {iso_seconds(since)}"
        return None

    def health_report(self) -> str | None:
        """`health`, with a log line whenever the answer changes: a collector sees when
        and why the daemon turned unhealthy, not only the orchestrator."""
        problem = self.health()
        if problem != self._last_health:
            if problem:
                log.warning("unhealthy: %s", problem)
            elif self._last_health:
                log.info("healthy again")
            self._last_health = problem
        return problem

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
        except asyncio.CancelledError:
            if not self.stop_requested.is_set():
                raise
            # Cut short by the stop: its transaction never committed, so the next start
            # polls the feed again from where the last finished poll left it.
            log.info("poll cut short by the stop", extra={"feed": feed.display_name()})
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


def _trigger(schedule: Schedule) -> IntervalTrigger:
    jitter = int(schedule.jitter.total_seconds()) or None
    return IntervalTrigger(seconds=schedule.interval.total_seconds(), jitter=jitter)


def _digest(path: Path | None) -> bytes | None:
    try:
        return hashlib.sha256(path.read_bytes()).digest() if path else None
    except OSError:
        return None


async def run(
    app: App,
    listen: tuple[str, int] | None = None,
    config_path: str | None = None,
    watch_config: bool = False,
) -> None:
    declare_asyncio()
    async with app:
        await Daemon(app, listen, config_path, watch_config).run()
