"""Decisions for one poll of one feed: which items are new, which alert, to whom.
Only processes data; returns a PollPlan that the store applies in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from monitor.identity import digest
from monitor.models import AlertIntent, FeedState, Item, Match, PollPlan
from monitor.render import alert_document


def alert_id(feed: str, item_key: str, rule: str) -> str:
    return "al_" + digest(feed, item_key, rule)


def delivery_id(alert: str, notifier: str) -> str:
    # Stable across retries and restarts: receivers drop repeats by this webhook-id.
    return "msg_" + digest(alert, notifier)


def is_backfill(item: Item, first_poll: bool, now: datetime, backfill: timedelta) -> bool:
    """On a feed's first poll only recent items alert; undated ones are remembered."""
    if not first_poll:
        return False
    published = item.entry.published_at
    return published is None or published < now - backfill


def plan_poll(
    state: FeedState,
    items: Iterable[Item],
    known_keys: set[str],
    matches: Mapping[str, list[Match]],
    targets: Mapping[str, tuple[str, ...]],
    now: datetime,
    backfill: timedelta,
    validators: tuple[str | None, str | None, str | None],
) -> PollPlan:
    """`matches` maps item keys to the rules they match; `targets` maps rules to the
    notifiers they alert; `validators` are the response's etag, last-modified, body hash."""
    first_poll = state.first_polled_at is None
    new_items: list[Item] = []
    alerts: list[AlertIntent] = []
    backfilled = 0
    for item in items:
        if item.key in known_keys:
            continue
        new_items.append(item)
        if is_backfill(item, first_poll, now, backfill):
            backfilled += 1
            continue
        for match in matches.get(item.key, ()):
            alerts.append(_alert(item, match, targets.get(match.rule, ()), now))
    etag, last_modified, body_hash = validators
    return PollPlan(
        feed=state.name,
        new_items=tuple(new_items),
        alerts=tuple(alerts),
        backfilled=backfilled,
        etag=etag,
        last_modified=last_modified,
        body_hash=body_hash,
        first_poll=first_poll,
    )


def _alert(item: Item, match: Match, notifiers: tuple[str, ...], now: datetime) -> AlertIntent:
    ident = alert_id(item.feed, item.key, match.rule)
    return AlertIntent(
        id=ident,
        rule=match.rule,
        item_key=item.key,
        document=alert_document(ident, match, item, now),
        deliveries=tuple((delivery_id(ident, name), name) for name in notifiers),
    )
