"""One-shot runs shared by `poll` and `demo`: every feed once, then drain the outbox."""

from __future__ import annotations

from monitor.app import build
from monitor.config import Config, FeedConfig
from monitor.deliver import drain
from monitor.poll import poll_all, prune


async def poll_once(config: Config, feeds: list[FeedConfig], drain_timeout: float) -> int:
    """Returns how many deliveries are still pending when it gives up draining."""
    async with build(config) as app:
        await poll_all(app, feeds)
        remaining = await drain(app, drain_timeout)
        prune(app)
        return remaining
