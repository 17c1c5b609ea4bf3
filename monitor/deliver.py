"""The outbox drain: claim due deliveries → send → decide the next step → record.
Deliveries to one notifier go in order; different notifiers proceed side by side, so
a slow receiver never holds up another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from datetime import timedelta

from monitor import logs
from monitor.app import App
from monitor.models import Delivery, SendResult
from monitor.retry import next_step

log = logs.get("deliver")
LEASE_MARGIN = timedelta(seconds=30)


async def deliver_due(app: App) -> int:
    """Send everything due now, once. Returns how many deliveries were attempted."""
    due = app.store.claim_due(app.clock(), LEASE_MARGIN)
    by_notifier: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in due:
        by_notifier[delivery.notifier].append(delivery)
    await asyncio.gather(*(_send_in_order(app, batch) for batch in by_notifier.values()))
    return len(due)


async def _send_in_order(app: App, batch: list[Delivery]) -> None:
    for delivery in batch:
        await _attempt(app, delivery)


async def _attempt(app: App, claimed: Delivery) -> None:
    delivery = app.store.renew_lease(claimed, app.clock(), LEASE_MARGIN)
    if delivery is None:
        log.warning(
            "lease lost before sending; another worker has it",
            extra={"notifier": claimed.notifier, "delivery": claimed.id},
        )
        return
    notifier = app.notifiers.get(delivery.notifier)
    if notifier is None:
        result = SendResult("failed", f"notifier {delivery.notifier} is not configured or is off")
    else:
        try:
            result = await notifier.send(delivery.id, delivery.document)
        except Exception as error:  # a notifier bug must not stop the outbox
            log.exception("notifier crashed", extra={"notifier": delivery.notifier})
            result = SendResult("retry", f"internal error ({type(error).__name__})")
    now = app.clock()
    step = next_step(result, delivery.attempts + 1, delivery.created_at, now, app.rng)
    app.store.record_attempt(delivery.id, step, now)
    context = {"notifier": delivery.notifier, "delivery": delivery.id}
    if step.state == "delivered":
        log.info("delivered alert %s (%s)", delivery.alert_id, result.detail, extra=context)
    elif step.state == "pending" and step.next_attempt_at:
        log.warning(
            "delivery failed, retry at %s: %s",
            step.next_attempt_at.isoformat(timespec="seconds"),
            result.detail,
            extra=context,
        )
    else:
        log.error("delivery failed for good: %s", step.reason, extra=context)


async def drain(app: App, budget: float) -> int:
    """Deliver until nothing is due or `budget` seconds pass; used by `poll` on exit.
    Returns how many deliveries are still pending afterwards."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    # At least one pass, whatever the budget: what is due now is always tried.
    while True:
        attempted = await deliver_due(app)
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        if attempted:
            continue
        wait = _wait_for_next(app, remaining)
        if wait is None:
            break
        await asyncio.sleep(wait)
    return app.store.pending_count()


def _wait_for_next(app: App, remaining: float) -> float | None:
    """Seconds until the next pending delivery is due, if that is within `remaining`."""
    next_due = app.store.next_due_at()
    if next_due is None:
        return None
    wait = max((next_due - app.clock()).total_seconds(), 0.05)
    return wait if wait <= remaining else None


async def run_forever(app: App, wake: asyncio.Event, stop: asyncio.Event) -> None:
    """The daemon's worker: drains whenever a poll queued something or a retry is due."""
    while not stop.is_set():
        # Cleared before draining, so a poll that queues work meanwhile wakes us again.
        wake.clear()
        await deliver_due(app)
        next_due = app.store.next_due_at()
        timeout = 30.0 if next_due is None else (next_due - app.clock()).total_seconds()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=min(max(timeout, 0.05), 30.0))
