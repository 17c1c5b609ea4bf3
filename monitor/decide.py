"""Decisions for one poll of one feed: which items are new, which alert, to whom.
Only processes data; returns a PollPlan that the store applies in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from monitor.identity import digest
from monitor.models import (
    AlertIntent,
    Edit,
    FeedState,
    Item,
    Match,
    NewItem,
    PollPlan,
    StoredItem,
    StorySignature,
)
from monitor.render import alert_document
from monitor.story import signature


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


def to_evaluate(items: Iterable[Item], stored: Mapping[str, StoredItem]) -> list[Item]:
    """The items rules must see: new ones and edited ones, not unchanged recorded ones."""
    return [
        item
        for item in items
        if item.key not in stored or stored[item.key].content_hash != item.content_hash
    ]


CHURN_SHARE = 0.8
CHURN_MIN_ITEMS = 5


def plan_poll(
    state: FeedState,
    items: Iterable[Item],
    stored: Mapping[str, StoredItem],
    matches: Mapping[str, list[Match]],
    targets: Mapping[str, tuple[str, ...]],
    now: datetime,
    backfill: timedelta,
    validators: tuple[str | None, str | None, str | None],
    signatures: Mapping[str, StorySignature] | None = None,
) -> PollPlan:
    """`stored` maps item keys to the recorded items they are; `matches` maps the keys of
    new and edited items to the rules they match; `targets` maps rules to the notifiers
    they alert; `validators` are the response's etag, last-modified and body hash;
    `signatures`, when given, are the items' story signatures, computed already."""
    first_poll = state.first_polled_at is None
    new_items: list[NewItem] = []
    edits: list[Edit] = []
    seen: dict[int, StoredItem] = {}
    alerts: list[AlertIntent] = []
    backfilled = 0
    for item in items:
        found = matches.get(item.key, [])
        record = stored.get(item.key)
        if record is not None:
            if record.id in seen:  # a second entry for an item already accounted for
                continue
            seen[record.id] = record
            if record.content_hash == item.content_hash:
                continue
            edits.append(Edit(record.id, item, tuple(m.rule for m in found)))
            fresh_matches = [m for m in found if m.rule not in record.matched]
        else:
            sig = signatures[item.key] if signatures is not None else signature(item)
            new_items.append(NewItem(item, sig, tuple(m.rule for m in found)))
            if is_backfill(item, first_poll, now, backfill):
                backfilled += 1
                continue
            fresh_matches = found
        for match in fresh_matches:
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
        edits=tuple(edits),
        seen=tuple(seen),
        churned=guid_churn(seen.values()),
    )


def guid_churn(records: Iterable[StoredItem]) -> bool:
    """Most recorded items came back under new guids: the publisher rewrites them."""
    found_by = [record.found_by for record in records]
    moved = sum(1 for how in found_by if how != "key")
    return len(found_by) >= CHURN_MIN_ITEMS and moved >= CHURN_SHARE * len(found_by)


def _alert(item: Item, match: Match, notifiers: tuple[str, ...], now: datetime) -> AlertIntent:
    ident = alert_id(item.feed, item.key, match.rule)
    return AlertIntent(
        id=ident,
        rule=match.rule,
        item_key=item.key,
        document=alert_document(ident, match, item, now),
        deliveries=tuple((delivery_id(ident, name), name) for name in notifiers),
    )
