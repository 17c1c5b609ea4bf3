"""What a config reload changes, worked out on plain data: which feeds' jobs to add,
remove or reschedule, and which edited settings only a restart applies. The daemon
carries the plan out; nothing here touches the scheduler or the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from monitor.config import Config, FeedConfig

# Settings baked into long-lived parts built at start (the database file, the fetcher's
# connection pool and limits, the parser's worker processes).
RESTART_ONLY = (
    "storage",
    "poll.timeout",
    "poll.concurrency",
    "poll.max_body",
    "poll.per_host",
    "poll.proxy",
    "poll.parse_timeout",
    "poll.parse_workers",
    "poll.parse_memory_mb",
)


@dataclass(frozen=True)
class Schedule:
    """How often a feed's job runs, and by how much a run may drift."""

    interval: timedelta
    jitter: timedelta


@dataclass(frozen=True)
class ReloadPlan:
    added: tuple[FeedConfig, ...]
    removed: tuple[str, ...]  # feed names
    # Feeds whose settings changed: each with its new schedule when that changed too.
    changed: tuple[tuple[FeedConfig, Schedule | None], ...]
    restart_only: tuple[str, ...]  # dotted names of edited settings a reload cannot apply

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} feeds added",
            f"{len(self.removed)} removed",
            f"{len(self.changed)} changed",
        ]
        return ", ".join(parts)


def schedule_of(config: Config, feed: FeedConfig) -> Schedule:
    interval = config.feed_interval(feed)
    return Schedule(interval, min(config.poll.jitter, interval / 2))


def plan(old: Config, new: Config) -> ReloadPlan:
    before = {feed.display_name(): feed for feed in old.feeds}
    after = {feed.display_name(): feed for feed in new.feeds}
    changed = []
    for name, feed in after.items():
        previous = before.get(name)
        if previous is None:
            continue
        schedule = schedule_of(new, feed)
        moved = schedule if schedule != schedule_of(old, previous) else None
        if feed != previous or moved is not None:
            changed.append((feed, moved))
    return ReloadPlan(
        added=tuple(feed for name, feed in after.items() if name not in before),
        removed=tuple(name for name in before if name not in after),
        changed=tuple(changed),
        restart_only=tuple(name for name in RESTART_ONLY if _value(old, name) != _value(new, name)),
    )


def _value(config: Config, dotted: str) -> object:
    value: object = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
