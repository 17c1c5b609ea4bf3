"""monitor/decide.py: which items of one poll are new, which alert, to whom."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest

from monitor.decide import (
    alert_id,
    delivery_id,
    guid_churn,
    is_backfill,
    plan_poll,
    to_evaluate,
)
from monitor.models import Entry, FeedState, FoundBy, Hit, Item, Match, PollPlan, StoredItem
from monitor.render import alert_document

NOW = datetime(2024, 10, 24, 12, 0, tzinfo=UTC)
BACKFILL = timedelta(hours=24)
VALIDATORS = ('"etag-1"', "Thu, 24 Oct 2024 11:00:00 GMT", "body-hash")
NEW_FEED = FeedState(name="kyiv")
POLLED_FEED = FeedState(name="kyiv", first_polled_at=NOW - timedelta(days=3))


def make_item(key: str, published_at: datetime | None, feed: str = "kyiv") -> Item:
    entry = Entry(
        guid=key,
        link=f"https://example.com/{key}",
        title=f"North Korean troops {key}",
        summary="Summary",
        content="",
        author="",
        tags=(),
        published_at=published_at,
    )
    return Item(feed=feed, key=f"g:{key}", entry=entry, language="en", content_hash="h")


def match(rule: str, term: str = "north korean troops") -> Match:
    return Match(rule, (Hit(term, "title"),))


def plan(
    state: FeedState,
    items: list[Item],
    known: Iterable[str] = (),
    matches: dict[str, list[Match]] | None = None,
    targets: dict[str, tuple[str, ...]] | None = None,
) -> PollPlan:
    return plan_poll(
        state=state,
        items=items,
        stored={key: StoredItem(n, "h", frozenset()) for n, key in enumerate(known)},
        matches=matches if matches is not None else {i.key: [match("r")] for i in items},
        targets=targets if targets is not None else {"r": ("slack", "ops")},
        now=NOW,
        backfill=BACKFILL,
        validators=VALIDATORS,
    )


# --- new versus known ----------------------------------------------------------------------------


def test_known_keys_are_skipped() -> None:
    items = [make_item("a", NOW), make_item("b", NOW), make_item("c", NOW)]
    result = plan(POLLED_FEED, items, known={"g:a", "g:c"})
    assert [new.item.key for new in result.new_items] == ["g:b"]
    assert [alert.item_key for alert in result.alerts] == ["g:b"]


def test_all_known_gives_an_empty_plan_that_still_records_validators() -> None:
    items = [make_item("a", NOW)]
    result = plan(POLLED_FEED, items, known={"g:a"})
    assert result.new_items == ()
    assert result.alerts == ()
    assert result.backfilled == 0
    assert (result.etag, result.last_modified, result.body_hash) == VALIDATORS
    assert result.feed == "kyiv"
    assert result.first_poll is False


def test_new_items_without_matches_are_remembered_without_alerts() -> None:
    items = [make_item("a", NOW), make_item("b", NOW)]
    result = plan(POLLED_FEED, items, matches={})
    assert [new.item.key for new in result.new_items] == ["g:a", "g:b"]
    assert result.alerts == ()


# --- first poll backfill -------------------------------------------------------------------------

BACKFILL_TABLE = [
    # (published_at, first poll, alerts)
    (NOW - timedelta(minutes=5), True, True),
    (NOW - timedelta(hours=23, minutes=59), True, True),
    (NOW - BACKFILL, True, True),  # exactly `backfill` old is still "this recent"
    (NOW - BACKFILL - timedelta(seconds=1), True, False),
    (NOW - timedelta(days=30), True, False),
    (NOW + timedelta(hours=1), True, True),  # future-dated
    (None, True, False),  # undated items are remembered on the first poll
    (NOW - timedelta(minutes=5), False, True),
    (NOW - timedelta(days=30), False, True),  # later polls: anything new alerts
    (None, False, True),
]


@pytest.mark.parametrize(("published_at", "first_poll", "alerts"), BACKFILL_TABLE)
def test_backfill_table(published_at: datetime | None, first_poll: bool, alerts: bool) -> None:
    item = make_item("a", published_at)
    state = NEW_FEED if first_poll else POLLED_FEED
    result = plan(state, [item])
    assert [new.item.key for new in result.new_items] == ["g:a"]  # always remembered
    assert result.first_poll is first_poll
    assert len(result.alerts) == (1 if alerts else 0)
    assert result.backfilled == (0 if alerts else 1)
    assert is_backfill(item, first_poll, NOW, BACKFILL) is (not alerts)


def test_first_poll_mixed_feed() -> None:
    items = [
        make_item("recent", NOW - timedelta(hours=1)),
        make_item("old", NOW - timedelta(days=3)),
        make_item("undated", None),
        make_item("recent-2", NOW - timedelta(hours=2)),
    ]
    result = plan(NEW_FEED, items)
    assert [new.item.key for new in result.new_items] == [
        "g:recent",
        "g:old",
        "g:undated",
        "g:recent-2",
    ]
    assert [a.item_key for a in result.alerts] == ["g:recent", "g:recent-2"]
    assert result.backfilled == 2
    assert result.first_poll is True


def test_backfill_window_is_the_configured_one() -> None:
    item = make_item("a", NOW - timedelta(days=3))
    result = plan_poll(
        NEW_FEED,
        [item],
        {},
        {item.key: [match("r")]},
        {"r": ("slack",)},
        NOW,
        timedelta(days=3650),
        VALIDATORS,
    )
    assert len(result.alerts) == 1


# --- alerts and deliveries -----------------------------------------------------------------------


def test_one_delivery_per_target_notifier() -> None:
    item = make_item("a", NOW)
    result = plan(POLLED_FEED, [item], targets={"r": ("slack", "ops", "console")})
    [alert] = result.alerts
    assert [name for _, name in alert.deliveries] == ["slack", "ops", "console"]
    assert [ident for ident, _ in alert.deliveries] == [
        delivery_id(alert.id, name) for name in ("slack", "ops", "console")
    ]
    assert len({ident for ident, _ in alert.deliveries}) == 3


def test_rule_without_targets_gives_an_alert_without_deliveries() -> None:
    item = make_item("a", NOW)
    result = plan(POLLED_FEED, [item], targets={"r": ()})
    [alert] = result.alerts
    assert alert.deliveries == ()
    result = plan(POLLED_FEED, [item], targets={})  # rule missing from targets entirely
    [alert] = result.alerts
    assert alert.deliveries == ()


def test_each_matching_rule_alerts_with_its_own_targets() -> None:
    item = make_item("a", NOW)
    result = plan(
        POLLED_FEED,
        [item],
        matches={item.key: [match("dprk-troops"), match("kursk", "kursk")]},
        targets={"dprk-troops": ("slack", "ops"), "kursk": ("ops",)},
    )
    assert [(a.rule, [n for _, n in a.deliveries]) for a in result.alerts] == [
        ("dprk-troops", ["slack", "ops"]),
        ("kursk", ["ops"]),
    ]
    assert result.alerts[0].id != result.alerts[1].id
    ops_ids = {
        ident for alert in result.alerts for ident, name in alert.deliveries if name == "ops"
    }
    assert len(ops_ids) == 2


def test_alert_document_is_rendered_for_the_alert() -> None:
    item = make_item("a", NOW - timedelta(minutes=5))
    result = plan(POLLED_FEED, [item])
    [alert] = result.alerts
    assert alert.rule == "r"
    assert alert.item_key == "g:a"
    assert alert.document == alert_document(alert.id, match("r"), item, NOW)
    assert alert.document["id"] == alert.id
    assert alert.document["matched"] == ["north korean troops"]
    assert alert.document["detected_at"] == "2024-10-24T12:00:00Z"


def test_ids_are_deterministic() -> None:
    items = [make_item("a", NOW), make_item("b", NOW)]
    first = plan(POLLED_FEED, items)
    second = plan(POLLED_FEED, items)
    assert first.alerts == second.alerts
    assert [a.id for a in first.alerts] == [alert_id("kyiv", i.key, "r") for i in items]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("kyiv", "g:a", "r"), ("kyiv", "g:a", "s")),  # another rule
        (("kyiv", "g:a", "r"), ("kyiv", "g:b", "r")),  # another item
        (("kyiv", "g:a", "r"), ("bbc", "g:a", "r")),  # same key in another feed
        (("ab", "c", "r"), ("a", "bc", "r")),  # parts do not run together
    ],
)
def test_alert_ids_are_distinct(a: tuple[str, str, str], b: tuple[str, str, str]) -> None:
    assert alert_id(*a) != alert_id(*b)
    assert alert_id(*a) == alert_id(*a)
    assert alert_id(*a).startswith("al_")


def test_delivery_ids_are_distinct_per_alert_and_notifier() -> None:
    ids = {delivery_id(alert, notifier) for alert in ("al_1", "al_2") for notifier in ("x", "y")}
    assert len(ids) == 4
    assert all(ident.startswith("msg_") for ident in ids)
    assert delivery_id("al_1", "x") == delivery_id("al_1", "x")


# --- recorded items: edits, churn ----------------------------------------------------------------


def _recorded(
    n: int, content_hash: str = "h", matched: tuple[str, ...] = (), how: FoundBy = "key"
) -> StoredItem:
    return StoredItem(n, content_hash, frozenset(matched), how)


def test_an_unchanged_recorded_item_is_only_marked_seen() -> None:
    item = make_item("a", NOW)
    result = plan_poll(
        POLLED_FEED,
        [item],
        {item.key: _recorded(7)},
        {},
        {"r": ("ops",)},
        NOW,
        BACKFILL,
        VALIDATORS,
    )
    assert (result.new_items, result.edits, result.alerts, result.seen) == ((), (), (), (7,))


def test_an_edit_alerts_only_for_rules_it_did_not_match_before() -> None:
    item = make_item("a", NOW)  # content hash "h"
    stored = {item.key: _recorded(7, content_hash="old", matched=("r",))}
    matches = {item.key: [match("r"), match("new-rule")]}
    targets = {"r": ("ops",), "new-rule": ("ops",)}
    result = plan_poll(POLLED_FEED, [item], stored, matches, targets, NOW, BACKFILL, VALIDATORS)
    assert [(e.stored_id, e.matched) for e in result.edits] == [(7, ("r", "new-rule"))]
    assert [a.rule for a in result.alerts] == ["new-rule"]
    assert result.new_items == ()


def test_an_edit_on_a_first_poll_is_impossible_but_an_old_edit_still_alerts() -> None:
    """Backfill is about a feed's first poll; an edit seen later is news now."""
    item = make_item("a", NOW - timedelta(days=30))
    stored = {item.key: _recorded(7, content_hash="old")}
    result = plan_poll(
        POLLED_FEED, [item], stored, {item.key: [match("r")]}, {"r": ("ops",)}, NOW, BACKFILL,
        VALIDATORS,
    )  # fmt: skip
    assert [a.rule for a in result.alerts] == ["r"]


def test_two_entries_for_one_recorded_item_count_once() -> None:
    a, b = make_item("a", NOW), make_item("b", NOW)
    stored = {
        a.key: _recorded(7, content_hash="x"),
        b.key: _recorded(7, content_hash="y", how="link"),
    }
    result = plan_poll(
        POLLED_FEED, [a, b], stored, {a.key: [match("r")], b.key: [match("r")]}, {"r": ("ops",)},
        NOW, BACKFILL, VALIDATORS,
    )  # fmt: skip
    assert [e.item.key for e in result.edits] == ["g:a"]
    assert len(result.alerts) == 1


@pytest.mark.parametrize(
    ("found_by", "churned"),
    [
        (["link"] * 5, True),
        (["link"] * 4 + ["content"], True),
        (["link"] * 4 + ["key"], True),  # 80 % moved
        (["link"] * 3 + ["key"] * 2, False),
        (["link"] * 4, False),  # too few items to call it
        (["key"] * 20, False),
    ],
)
def test_guid_churn_is_most_items_found_by_link_or_content(
    found_by: list[FoundBy], churned: bool
) -> None:
    records = [_recorded(n, how=how) for n, how in enumerate(found_by)]
    assert guid_churn(records) is churned


def test_only_new_and_edited_items_are_evaluated() -> None:
    new, same, edited = make_item("new", NOW), make_item("same", NOW), make_item("edited", NOW)
    stored = {same.key: _recorded(1), edited.key: _recorded(2, content_hash="before")}
    assert to_evaluate([new, same, edited], stored) == [new, edited]
