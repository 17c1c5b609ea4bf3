"""The outbox drain: claim due deliveries → send → decide the next step → record.
Deliveries to one notifier go in order; different notifiers proceed side by side, so
a slow receiver never holds up another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import replace
from datetime import timedelta

from monitor import logs
from monitor.app import App
from monitor.clock import iso_seconds
from monitor.models import Delivery, Message, SendResult
from monitor.retry import next_step

log = logs.get("deliver")
LEASE_MARGIN = timedelta(seconds=30)
SYNC_EVERY = 0.25  # seconds of sends whose outcomes a power cut may take back


async def deliver_due(app: App) -> int:
    """Send everything due now, once. Returns how many deliveries were attempted."""
    due = app.store.claim_due(app.clock(), LEASE_MARGIN)
    by_notifier: dict[str, list[list[Delivery]]] = defaultdict(list)
    batches: dict[str, list[Delivery]] = {}
    for delivery in due:
        if delivery.batch is None:
            by_notifier[delivery.notifier].append([delivery])
        elif delivery.batch in batches:
            batches[delivery.batch].append(delivery)
        else:
            batches[delivery.batch] = [delivery]
            by_notifier[delivery.notifier].append(batches[delivery.batch])
    await asyncio.gather(*(_send_in_order(app, sends) for sends in by_notifier.values()))
    return len(due)


async def _send_in_order(app: App, sends: list[list[Delivery]]) -> None:
    loop = asyncio.get_running_loop()
    synced_at = loop.time()
    for index, members in enumerate(sends):
        # An fsync per send would cost more than a console or a fast webhook does; the
        # outcomes of a burst are synced at its end and at least every SYNC_EVERY, so a
        # power cut can re-send no more than that much (a crash of ours re-sends none).
        durable = index == len(sends) - 1 or loop.time() - synced_at >= SYNC_EVERY
        await _attempt(app, members, durable)
        if durable:
            synced_at = loop.time()


async def _attempt(app: App, claimed: list[Delivery], durable: bool = True) -> None:
    """One message: a single alert, or a digest whose members share one outcome."""
    first = claimed[0]
    context = {"notifier": first.notifier, "delivery": first.batch or first.id}
    members = [app.store.renew_lease(d, app.clock(), LEASE_MARGIN) for d in claimed]
    held = [d for d in members if d is not None]
    if len(held) < len(claimed):
        # Another process has (part of) it. A digest sent with members missing would
        # carry its webhook-id with other contents, so all of it waits for the leases.
        log.warning("lease lost before sending; another worker has it", extra=context)
        return
    notifier = app.notifiers.get(first.notifier)
    if notifier is None:
        result = SendResult("failed", f"notifier {first.notifier} is not configured or is off")
    else:
        message = Message(
            id=first.batch or first.id,
            alerts=tuple(d.document for d in held),
            digest=first.batch is not None,
        )
        try:
            result = await notifier.send(message)
        except Exception as error:  # a notifier bug must not stop the outbox
            log.exception("notifier crashed", extra=context)
            result = SendResult("retry", f"internal error ({type(error).__name__})")
    # Error texts come from receivers and libraries; they are stored and shown by `alerts`.
    result = replace(result, detail=logs.scrub(result.detail))
    app.metrics.deliveries.labels(first.notifier, result.outcome).inc(len(held))
    now = app.clock()
    step = next_step(result, first.attempts + 1, first.created_at, now, app.rng)
    app.store.record_attempt([d.id for d in held], step, now, durable)
    what = f"digest of {len(held)} alerts" if first.batch else f"alert {first.alert_id}"
    if step.state == "delivered":
        log.info("delivered %s (%s)", what, result.detail, extra=context)
    elif step.state == "pending" and step.next_attempt_at:
        log.warning(
            "delivery of %s failed, retry at %s: %s",
            what,
            iso_seconds(step.next_attempt_at),
            result.detail,
            extra=context,
        )
    else:
        log.error("delivery of %s failed for good: %s", what, step.reason, extra=context)


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
