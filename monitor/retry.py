"""Retry policy as data and a pure function: when a delivery is tried next, or that it
is done. Randomness comes in as a parameter so tests can seed it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from monitor.models import SendResult

# Quick at first, so a blip costs seconds; hours apart later, so an outage costs little.
SCHEDULE = (1.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 7200.0, 18000.0, 36000.0)
JITTER = 0.2
MAX_AGE = timedelta(hours=24)
MAX_RETRY_AFTER = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class Step:
    state: Literal["delivered", "pending", "failed"]
    next_attempt_at: datetime | None = None
    reason: str = ""


def next_step(
    result: SendResult,
    attempts: int,
    created_at: datetime,
    now: datetime,
    rng: random.Random,
    max_age: timedelta = MAX_AGE,
) -> Step:
    """`attempts` counts the attempt just made."""
    if result.outcome == "delivered":
        return Step("delivered")
    if result.outcome == "failed":
        return Step("failed", reason=result.detail)
    if result.retry_after is not None:
        delay = min(max(result.retry_after, 0.0), MAX_RETRY_AFTER)
    else:
        base = SCHEDULE[min(max(attempts, 1) - 1, len(SCHEDULE) - 1)]
        delay = base * rng.uniform(1 - JITTER, 1 + JITTER)
    when = now + timedelta(seconds=delay)
    deadline = created_at + max_age
    if when > deadline:
        # Our schedule overshoots the window: one last try at its end, so a receiver that
        # is down for most of a day still gets the alert. A receiver's Retry-After that
        # reaches past the window cannot be honoured in it.
        if result.retry_after is not None or deadline - now < timedelta(seconds=1):
            return Step("failed", reason=f"{result.detail}; gave up after {attempts} attempts")
        when = deadline
    return Step("pending", when, result.detail)
