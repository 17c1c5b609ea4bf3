"""The outbox drain on a real store: how often delivery outcomes are synced to disk."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from monitor import deliver
from monitor.app import build
from monitor.clock import utcnow
from monitor.config import loads
from monitor.decide import plan_poll
from monitor.models import Entry, FeedState, Hit, Item, Match
from monitor.store import Store

CONFIG = """\
storage: {storage}
feeds:
  - url: https://wire.example/feed
    name: wire
notifiers:
  console: {{type: console}}
rules:
  - name: troops
    any: [troops]
"""


def _queue(store: Store, count: int) -> None:
    now = utcnow()
    items = [
        Item("wire", f"k{n}", Entry(f"k{n}", f"https://wire.example/{n}",
             f"Troops seen at crossing number {n}", "", "", "", (), now), "en", f"h{n}")
        for n in range(count)
    ]  # fmt: skip
    matches = {i.key: [Match("troops", (Hit("troops", "title"),))] for i in items}
    state = FeedState("wire", first_polled_at=now)
    targets = {"troops": ("console",)}
    plan = plan_poll(state, items, {}, matches, targets, now, timedelta(hours=24), (None, None, ""))
    assert store.apply(plan, "https://wire.example/feed", now) == count


def _synced_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int, sync_every: float
) -> tuple[int, list[str]]:
    monkeypatch.setattr(deliver, "SYNC_EVERY", sync_every)
    config = loads(CONFIG.format(storage=tmp_path / "d.db"), "test.yaml", {})
    app = build(config)
    _queue(app.store, count)
    statements: list[str] = []
    app.store._conn.set_trace_callback(statements.append)

    async def run() -> int:
        try:
            return await deliver.deliver_due(app)
        finally:
            await app.close()

    sent = asyncio.run(run())
    recorded = ("PRAGMA synchronous=FULL", "UPDATE deliveries SET state")
    records = [s for s in statements if s.startswith(recorded)]
    return sent, records


def test_a_burst_is_synced_once_at_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sent, records = _synced_sends(tmp_path, monkeypatch, 5, sync_every=3600.0)
    assert sent == 5
    assert capsys.readouterr().out.count("seen at crossing number") == 5
    # Five outcomes recorded; only the last one waited for the disk.
    assert [r.split()[0] for r in records] == ["UPDATE"] * 4 + ["PRAGMA", "UPDATE"]


def test_a_long_burst_is_synced_as_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sent, records = _synced_sends(tmp_path, monkeypatch, 4, sync_every=0.0)
    assert sent == 4
    assert [r.split()[0] for r in records] == ["PRAGMA", "UPDATE"] * 4
