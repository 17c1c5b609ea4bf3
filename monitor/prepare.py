"""What can be known of a feed's items before the store is asked: their identity within
the feed, their story signatures and the rules they match. Pure, and so it runs in the
parser process beside the parse (a second core), handing the poll finished items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitor.identity import identify
from monitor.models import Item, Match, ParsedFeed, StorySignature, pickled_by_fields
from monitor.rules import RuleSet
from monitor.story import signature


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Prepared:
    parsed: ParsedFeed
    items: tuple[Item, ...]
    signatures: tuple[StorySignature, ...]  # one per item
    matches: tuple[tuple[Match, ...], ...]  # one per item: every item, new or not


def prepare(parsed: ParsedFeed, feed: str, tags: Sequence[str], rules: RuleSet) -> Prepared:
    items = tuple(identify(feed, parsed))
    return Prepared(
        parsed=parsed,
        items=items,
        signatures=tuple(signature(item) for item in items),
        matches=tuple(tuple(rules.match(item, tags)) for item in items),
    )
