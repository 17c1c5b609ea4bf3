"""`news-monitor test`: load items from text, a file, a URL or stored history, match them
against the rules, and explain. Stores nothing and sends nothing.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from monitor.clock import utcnow
from monitor.config import Config
from monitor.errors import InputError
from monitor.fetch import Fetcher
from monitor.identity import identify
from monitor.models import Entry, FeedState, Item, Match
from monitor.parse import ParseError, parse_feed
from monitor.rules import RuleSet, compile_rules
from monitor.rules.ruleset import ItemText
from monitor.store import Store
from monitor.text import clean


def text_item(text: str) -> Item:
    entry = Entry(None, None, clean(text), "", "", "", (), None)
    return Item("--text", "text", entry, None, "")


def file_items(path: str) -> list[Item]:
    try:
        body = Path(path).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None
    return _feed_items(body, {}, Path(path).name, f"file://{Path(path).resolve()}")


def url_items(url: str, config: Config) -> list[Item]:
    async def fetch() -> list[Item]:
        poll = config.poll
        async with Fetcher(poll.timeout.total_seconds(), 1, poll.max_body) as fetcher:
            result = await fetcher.fetch(url, FeedState("--url"))
        if result.status != "ok":
            raise InputError(f"cannot fetch the feed: {result.error or result.status}")
        return _feed_items(result.body, result.headers, "--url", result.final_url or url)

    return asyncio.run(fetch())


def stored_items(config: Config, since: timedelta) -> list[Item]:
    if not Path(config.storage).exists():
        raise InputError(f"there is no database at {config.storage} yet; run a poll first")
    store = Store(config.storage)
    try:
        return store.items_since(utcnow() - since)
    finally:
        store.close()


def _feed_items(body: bytes, headers: dict[str, str], name: str, url: str) -> list[Item]:
    try:
        return identify(name, parse_feed(body, headers, url))
    except ParseError as error:
        raise InputError(f"{name}: {error}") from None


def select_rules(config: Config, rule: str | None) -> RuleSet:
    rules = [r for r in config.rules if rule is None or r.name == rule]
    if rule is not None and not rules:
        raise InputError(f"there is no rule named {rule!r} in the config")
    return compile_rules(rules)


def match_items(
    rules: RuleSet, items: list[Item], config: Config, scoped: bool
) -> list[tuple[Item, list[Match]]]:
    """Each item with the rules it matches; `scoped` applies rules' feeds/tags, which only
    means something for stored items that came from configured feeds."""
    tags = {feed.display_name(): feed.tags for feed in config.feeds}
    results = []
    for item in items:
        matches = rules.match_text(item, ItemText.of(item), tags.get(item.feed, ()), scoped)
        results.append((item, matches))
    return results
