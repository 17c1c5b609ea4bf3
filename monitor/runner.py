"""One-shot runs shared by `poll` and `demo`: every feed once, then drain the outbox."""

from __future__ import annotations

from monitor.app import App, build
from monitor.config import Config, FeedConfig
from monitor.deliver import drain
from monitor.fetch import declare_asyncio
from monitor.poll import poll_all, prune


async def poll_once(config: Config, feeds: list[FeedConfig], drain_timeout: float) -> int:
    """Returns how many deliveries are still pending when it gives up draining."""
    declare_asyncio()
    async with build(config) as app:
        await poll_all(app, feeds)
        remaining = await drain(app, drain_timeout)
        prune(app)
        return remaining


async def redeliver_now(
    app: App, ids: list[str], failed: bool, drain_timeout: float
) -> tuple[int, int, list[str]]:
    """Requeue and deliver. Returns (still pending, queued, ids nobody has heard of);
    nothing is requeued when an id is unknown, so a typo changes nothing."""
    declare_asyncio()
    async with app:
        unknown = app.store.unknown_ids(ids)
        if unknown:
            return 0, 0, unknown
        queued = app.store.requeue(ids, app.clock(), failed)
        return await drain(app, drain_timeout), len(queued), []
