"""When a new delivery goes out, and in which digest: pure decisions from a notifier's
pacing and what it has already queued in the current period.

Periods are aligned to the clock (a 15m digest closes at :00, :15, :30 and :45 UTC), so
users can tell when a digest comes and every process agrees on the same windows. Each
digest is a batch with a stable id, which is its `webhook-id` on every retry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# One message holds at most this many alerts: enough for a digest to be read, few enough
# to stay inside Slack's 50 blocks and a chat message's size; more start a second digest.
MAX_DIGEST_ALERTS = 40

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Pacing:
    """A notifier's pacing: `digest` every period, or at most `burst_max` single
    messages per `burst_per`, or neither."""

    digest: timedelta | None = None
    burst_max: int | None = None
    burst_per: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Queued:
    """What a notifier already has in the period a new delivery falls in."""

    singles: int  # deliveries going out one by one
    in_batches: int  # deliveries held for the period's digests


@dataclass(frozen=True, slots=True)
class Slot:
    due_at: datetime
    batch: str | None  # None: sent on its own


def period(pacing: Pacing) -> timedelta | None:
    """The window the counts in `Queued` are taken over."""
    return pacing.digest or (pacing.burst_per if pacing.burst_max else None)


def window(now: datetime, length: timedelta) -> tuple[datetime, datetime]:
    """The clock-aligned window of `length` holding `now`: [start, end)."""
    step = length // timedelta(microseconds=1)
    offset = (now - _EPOCH) // timedelta(microseconds=1)
    start = _EPOCH + timedelta(microseconds=offset - offset % step)
    return start, start + length


def slot(notifier: str, pacing: Pacing, now: datetime, queued: Queued) -> Slot:
    length = period(pacing)
    if length is None:
        return Slot(now, None)
    if pacing.digest is None and pacing.burst_max and queued.singles < pacing.burst_max:
        return Slot(now, None)
    start, end = window(now, length)
    part = queued.in_batches // MAX_DIGEST_ALERTS
    return Slot(end, batch_id(notifier, start, part))


def batch_id(notifier: str, start: datetime, part: int) -> str:
    seed = f"{notifier}\0{start.isoformat()}\0{part}".encode()
    return "dg_" + hashlib.sha256(seed).hexdigest()[:24]
