"""monitor/retry.py: when a delivery is tried next, or that it is done."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from monitor.models import SendResult
from monitor.retry import JITTER, MAX_AGE, MAX_RETRY_AFTER, SCHEDULE, Step, next_step

CREATED = datetime(2024, 10, 24, 9, 0, tzinfo=UTC)


def step(
    result: SendResult, attempts: int = 1, age: timedelta = timedelta(0), seed: int = 7
) -> Step:
    return next_step(result, attempts, CREATED, CREATED + age, random.Random(seed))


def delay_of(
    result: SendResult, attempts: int = 1, age: timedelta = timedelta(0), seed: int = 7
) -> float:
    found = step(result, attempts, age, seed)
    assert found.state == "pending"
    assert found.next_attempt_at is not None
    return (found.next_attempt_at - (CREATED + age)).total_seconds()


RETRY = SendResult("retry", "HTTP 503")


# --- outcomes ------------------------------------------------------------------------------------


def test_delivered() -> None:
    found = step(SendResult("delivered", "HTTP 200"), attempts=3)
    assert found.state == "delivered"
    assert found.next_attempt_at is None


def test_failed_is_permanent_and_keeps_the_reason() -> None:
    found = step(SendResult("failed", "HTTP 404 Not Found"))
    assert found.state == "failed"
    assert found.next_attempt_at is None
    assert found.reason == "HTTP 404 Not Found"


def test_retry_is_pending_with_the_reason() -> None:
    found = step(RETRY)
    assert found.state == "pending"
    assert found.reason == "HTTP 503"
    assert found.next_attempt_at is not None
    assert found.next_attempt_at > CREATED


# --- schedule and jitter -------------------------------------------------------------------------


@pytest.mark.parametrize("attempts", range(1, len(SCHEDULE) + 3))
@pytest.mark.parametrize("seed", range(20))
def test_delay_is_the_schedule_within_jitter(attempts: int, seed: int) -> None:
    base = SCHEDULE[min(attempts, len(SCHEDULE)) - 1]
    delay = delay_of(RETRY, attempts, seed=seed)
    assert base * 0.8 - 1e-9 <= delay <= base * 1.2 + 1e-9


def test_jitter_is_twenty_percent() -> None:
    assert pytest.approx(0.2) == JITTER


def test_jitter_actually_varies_and_spreads_over_the_band() -> None:
    delays = [delay_of(RETRY, 3, seed=seed) for seed in range(200)]
    base = SCHEDULE[2]
    assert len(set(delays)) > 150
    assert min(delays) < base * 0.85
    assert max(delays) > base * 1.15
    assert all(base * 0.8 <= d <= base * 1.2 for d in delays)


def test_same_seed_same_delay() -> None:
    assert delay_of(RETRY, 4, seed=42) == delay_of(RETRY, 4, seed=42)


def test_schedule_grows() -> None:
    assert list(SCHEDULE) == sorted(SCHEDULE)
    assert len(set(SCHEDULE)) == len(SCHEDULE)
    assert SCHEDULE[0] <= 5  # a blip costs seconds
    # Even at the extremes of jitter each step waits longer than the one before.
    for earlier, later in itertools.pairwise(SCHEDULE):
        assert later * (1 - JITTER) > earlier * (1 + JITTER)


def test_delays_grow_with_attempts_for_a_fixed_seed() -> None:
    delays = [delay_of(RETRY, attempts, seed=1) for attempts in range(1, len(SCHEDULE) + 1)]
    assert delays == sorted(delays)


def test_attempts_below_one_use_the_first_step() -> None:
    assert SCHEDULE[0] * 0.8 <= delay_of(RETRY, 0) <= SCHEDULE[0] * 1.2


def test_attempts_past_the_schedule_stay_at_the_last_step() -> None:
    last = SCHEDULE[-1]
    assert last * 0.8 <= delay_of(RETRY, 50) <= last * 1.2


# --- Retry-After ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (0.0, 0.0),
        (1.0, 1.0),
        (30.0, 30.0),
        (120.5, 120.5),
        (3600.0, 3600.0),
        (MAX_RETRY_AFTER, MAX_RETRY_AFTER),
        (MAX_RETRY_AFTER + 1, MAX_RETRY_AFTER),  # capped
        (10 * 86400.0, MAX_RETRY_AFTER),
        (-5.0, 0.0),  # a bogus negative value never schedules in the past
    ],
)
def test_retry_after_is_honoured_exactly_and_capped(retry_after: float, expected: float) -> None:
    result = SendResult("retry", "rate limited", retry_after=retry_after)
    for seed in range(5):
        assert delay_of(result, attempts=1, seed=seed) == pytest.approx(expected)
        assert delay_of(result, attempts=7, seed=seed) == pytest.approx(expected)


def test_retry_after_cap_is_hours_not_days() -> None:
    assert 3600 <= MAX_RETRY_AFTER < MAX_AGE.total_seconds()


# --- giving up -----------------------------------------------------------------------------------


def test_max_age_is_24_hours() -> None:
    assert timedelta(hours=24) == MAX_AGE


@pytest.mark.parametrize(
    ("age", "attempts", "state"),
    [
        (timedelta(0), 1, "pending"),
        (timedelta(hours=12), 8, "pending"),
        (timedelta(hours=23, minutes=59), 1, "pending"),  # 1 s ± 20 % still fits
        # the next step (≥ 8 h) would be past 24 h: one last attempt at the 24 h mark
        (timedelta(hours=23), 9, "pending"),
        (timedelta(hours=24, seconds=1), 1, "failed"),
        (timedelta(days=3), 2, "failed"),
    ],
)
def test_gives_up_past_max_age(age: timedelta, attempts: int, state: str) -> None:
    found = step(RETRY, attempts, age)
    assert found.state == state
    if state == "failed":
        assert found.next_attempt_at is None
        assert "HTTP 503" in found.reason
        assert f"gave up after {attempts} attempts" in found.reason


def test_retry_after_past_max_age_gives_up() -> None:
    result = SendResult("retry", "rate limited", retry_after=3 * 3600.0)
    assert step(result, 5, timedelta(hours=20)).state == "pending"
    assert step(result, 5, timedelta(hours=22)).state == "failed"


def test_custom_max_age() -> None:
    rng = random.Random(3)
    now = CREATED + timedelta(minutes=10)
    found = next_step(RETRY, 4, CREATED, now, rng, max_age=timedelta(minutes=11))
    # 120 s ± 20 % from now is past 11 min: the last attempt comes at the window's end
    assert found.state == "pending"
    assert found.next_attempt_at == CREATED + timedelta(minutes=11)
    at_end = next_step(
        RETRY, 5, CREATED, CREATED + timedelta(minutes=11), rng, max_age=timedelta(minutes=11)
    )
    assert at_end.state == "failed"
    found = next_step(RETRY, 4, CREATED, now, random.Random(3), max_age=timedelta(hours=1))
    assert found.state == "pending"


def test_next_attempt_never_past_max_age() -> None:
    for seed in range(50):
        rng = random.Random(seed)
        for attempts in range(1, 15):
            for hours in (0, 1, 6, 12, 18, 22, 23.9):
                now = CREATED + timedelta(hours=hours)
                found = next_step(RETRY, attempts, CREATED, now, rng)
                if found.state == "pending":
                    assert found.next_attempt_at is not None
                    assert now <= found.next_attempt_at <= CREATED + MAX_AGE
                else:
                    assert found.state == "failed"


def test_a_delivery_retried_on_schedule_gives_up_within_a_day() -> None:
    rng = random.Random(11)
    now, attempts = CREATED, 0
    while True:
        attempts += 1
        found = next_step(RETRY, attempts, CREATED, now, rng)
        if found.state == "failed":
            break
        assert found.next_attempt_at is not None
        now = found.next_attempt_at
        assert attempts < 100
    assert now - CREATED <= MAX_AGE
    assert now - CREATED > MAX_AGE / 2  # kept trying for most of the day
    assert attempts >= len(SCHEDULE) - 2


def test_retries_cover_the_whole_window_with_a_last_attempt_at_its_end() -> None:
    """The schedule sums to about 18 h; a receiver down for 20 h must still get its alert."""
    rng = random.Random(3)
    created = datetime(2026, 1, 1, tzinfo=UTC)
    now, attempts, last = created, 0, None
    while True:
        attempts += 1
        step = next_step(SendResult("retry", "HTTP 503"), attempts, created, now, rng)
        if step.state == "failed":
            break
        assert step.next_attempt_at is not None and step.next_attempt_at > now
        last = now = step.next_attempt_at
    assert last == created + timedelta(hours=24)
    assert "gave up" in step.reason
