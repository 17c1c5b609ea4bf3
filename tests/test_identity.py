"""monitor/identity.py: canonical links, item keys, unique keys within a feed."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.identity import canonical_url, content_hash, digest, entry_key, identify
from monitor.models import Entry, ParsedFeed

# --- canonical_url -------------------------------------------------------------------------------

SAME = [
    # (a, b): two spellings of one link
    ("HTTPS://EXAMPLE.COM/a", "https://example.com/a"),
    ("https://Example.Com/a", "https://example.com/a"),
    ("HtTp://example.com/a", "http://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com/a#comments", "https://example.com/a"),
    ("https://example.com/a#", "https://example.com/a"),
    ("https://example.com", "https://example.com/"),
    ("https://example.com?", "https://example.com/"),
    ("https://example.com./a", "https://example.com/a"),
    ("  https://example.com/a  ", "https://example.com/a"),
    ("https://example.com/a?utm_source=rss", "https://example.com/a"),
    ("https://example.com/a?utm_medium=x&utm_campaign=y&utm_content=z", "https://example.com/a"),
    ("https://example.com/a?UTM_SOURCE=rss", "https://example.com/a"),
    ("https://example.com/a?fbclid=IwAR0abc", "https://example.com/a"),
    ("https://example.com/a?gclid=Cj0KCQ", "https://example.com/a"),
    ("https://example.com/a?mc_cid=1&mc_eid=2", "https://example.com/a"),
    ("https://example.com/a?msclkid=1&dclid=2&igshid=3&yclid=4", "https://example.com/a"),
    ("https://example.com/a?id=3&utm_source=x", "https://example.com/a?id=3"),
    ("https://example.com/a?utm_source=x&id=3&fbclid=y", "https://example.com/a?id=3"),
    ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
    ("https://example.com/a?b=2&a=1&c=3", "https://example.com/a?c=3&a=1&b=2"),
    ("https://example.com/a?q=a%20b", "https://example.com/a?q=a+b"),
    ("HTTPS://Example.com:443/a?utm_source=x&b=2&a=1#top", "https://example.com/a?a=1&b=2"),
    ("https://example.com/a/", "https://example.com/a"),  # a trailing slash is cosmetic
]

DIFFERENT = [
    # (a, b): genuinely different links stay different
    ("https://example.com/a", "https://example.com/b"),
    ("https://example.com/a", "https://example.com/A"),  # paths are case-sensitive
    ("https://example.com/a", "https://example.org/a"),
    ("https://example.com/a", "https://news.example.com/a"),
    ("http://example.com/a", "https://example.com/a"),
    ("https://example.com/a", "https://example.com:8443/a"),
    ("https://example.com:80/a", "https://example.com/a"),  # 80 is not https's default
    ("https://example.com/a?id=1", "https://example.com/a?id=2"),
    ("https://example.com/a?id=1", "https://example.com/a"),
    ("https://example.com/a?id=1", "https://example.com/a?ID=1"),
    ("https://example.com/a?a=1&a=2", "https://example.com/a?a=1"),
    ("https://example.com/article?p=1", "https://example.com/article?page=1"),
    ("https://example.com/a?source=rss", "https://example.com/a"),  # not a tracker
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_canonical_url_same(a: str, b: str) -> None:
    assert canonical_url(a) == canonical_url(b)


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_canonical_url_different(a: str, b: str) -> None:
    assert canonical_url(a) != canonical_url(b)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "HTTPS://Example.COM:443/News/Item?b=2&utm_source=x&a=1#frag",
            "https://example.com/News/Item?a=1&b=2",
        ),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a?x", "https://example.com/a?x="),
        ("https://example.com/a?a=2&a=1", "https://example.com/a?a=1&a=2"),
        ("https://example.com/a;p?x=1", "https://example.com/a;p?x=1"),
    ],
)
def test_canonical_url_exact(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@pytest.mark.parametrize("url", ["", "not a url", "urn:uuid:1234", "tag:example.com,2024:1"])
def test_canonical_url_never_raises_on_odd_links(url: str) -> None:
    assert isinstance(canonical_url(url), str)


def test_canonical_url_bad_port_is_left_alone() -> None:
    assert canonical_url("https://example.com:99999/a") == "https://example.com:99999/a"


def test_canonical_url_keeps_ipv6_brackets() -> None:
    assert canonical_url("https://[::1]:8443/a") == "https://[::1]:8443/a"
    assert canonical_url("https://[::1]:8443/a") != canonical_url("https://[::1:8443]/a")


# Realistic links: scheme, host, optional port, path, query and fragment.
_LABEL = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8)
_HOST = st.lists(_LABEL, min_size=1, max_size=3).map(".".join).map(lambda h: h + ".com")
_PORT = st.sampled_from(["", ":80", ":443", ":8080", ":8443"])
_SEGMENT = st.text(alphabet=string.ascii_letters + string.digits + "-._~%é", max_size=8)
_PATH = st.lists(_SEGMENT, max_size=3).map(lambda s: "".join("/" + p for p in s))
_KEY = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=6)
_VALUE = st.text(alphabet=string.ascii_letters + string.digits + "-._~%+é", max_size=6)
_PAIRS = st.lists(st.tuples(_KEY, _VALUE), max_size=4)
_FRAGMENT = st.sampled_from(["", "#", "#top", "#comments-1"])
_TRACKERS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                *("utm_source", "utm_medium", "UTM_Campaign", "utm_term", "fbclid", "gclid"),
                *("mc_cid", "mc_eid", "msclkid", "igshid", "yclid", "_hsenc", "mtm_kwd"),
            ]
        ),
        _VALUE,
    ),
    min_size=1,
    max_size=4,
)


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{key}={value}" for key, value in pairs)


def _url(scheme: str, host: str, port: str, path: str, pairs: list[tuple[str, str]], frag: str):
    query = _query(pairs)
    return f"{scheme}://{host}{port}{path}" + (f"?{query}" if query else "") + frag


_URLS = st.builds(
    _url, st.sampled_from(["http", "https", "HTTPS"]), _HOST, _PORT, _PATH, _PAIRS, _FRAGMENT
)


@given(_URLS)
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


@given(
    st.sampled_from(["http", "https"]),
    _HOST,
    _PORT,
    _PATH,
    _PAIRS,
    _FRAGMENT,
    _TRACKERS,
    st.randoms(use_true_random=False),
)
def test_tracker_parameters_never_change_the_canonical_url(
    scheme, host, port, path, pairs, fragment, trackers, rng
) -> None:
    plain = _url(scheme, host, port, path, pairs, fragment)
    mixed = pairs + trackers
    rng.shuffle(mixed)
    tracked = _url(scheme, host, port, path, mixed, fragment)
    assert canonical_url(tracked) == canonical_url(plain)


@given(st.sampled_from(["http", "https"]), _HOST, _PATH, _PAIRS, st.randoms(use_true_random=False))
def test_parameter_order_never_changes_the_canonical_url(scheme, host, path, pairs, rng) -> None:
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    assert canonical_url(_url(scheme, host, "", path, shuffled, "")) == canonical_url(
        _url(scheme, host, "", path, pairs, "")
    )


# --- entry_key -----------------------------------------------------------------------------------


def make_entry(
    guid: str | None = None,
    link: str | None = None,
    title: str = "Title",
    summary: str = "Summary",
    content: str = "",
) -> Entry:
    return Entry(
        guid=guid,
        link=link,
        title=title,
        summary=summary,
        content=content,
        author="",
        tags=(),
        published_at=datetime(2024, 10, 24, 9, 12, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        (make_entry(guid="urn:1", link="https://example.com/a"), "g:urn:1"),
        (make_entry(guid="urn:1"), "g:urn:1"),
        (make_entry(link="https://example.com/a"), "l:https://example.com/a"),
        (
            make_entry(link="HTTPS://Example.com:443/a?utm_source=x#c"),
            "l:https://example.com/a",
        ),
        (make_entry(guid="", link="https://example.com/a"), "l:https://example.com/a"),
    ],
)
def test_entry_key_precedence(entry: Entry, key: str) -> None:
    assert entry_key(entry) == key


def test_entry_key_falls_back_to_a_hash_of_the_words() -> None:
    key = entry_key(make_entry(title="North Korean troops", summary="Seen in Kursk"))
    assert key.startswith("h:")
    assert key == "h:" + digest("north korean troops", "seen in kursk")
    # Case and accents do not make a new story; different words do.
    assert key == entry_key(make_entry(title="NORTH KOREAN TROOPS", summary="Seen in Kursk"))
    assert entry_key(make_entry(title="Genève", summary="x")) == entry_key(
        make_entry(title="geneve", summary="x")
    )
    assert key != entry_key(make_entry(title="North Korean troops", summary="Seen in Kyiv"))
    assert key != entry_key(make_entry(title="South Korean troops", summary="Seen in Kursk"))


def test_entry_key_hash_uses_content_when_there_is_no_summary() -> None:
    a = make_entry(summary="", content="first body")
    b = make_entry(summary="", content="second body")
    assert entry_key(a) != entry_key(b)
    assert entry_key(a) == entry_key(make_entry(summary="first body"))


def test_entry_key_link_ignores_text_changes() -> None:
    a = make_entry(link="https://example.com/a", title="Old headline")
    b = make_entry(link="https://example.com/a?utm_source=rss", title="Edited headline")
    assert entry_key(a) == entry_key(b)


def test_entry_key_is_bounded() -> None:
    long_guid = "x" * 1000
    key = entry_key(make_entry(guid=long_guid))
    assert len(key) <= 200
    assert key.startswith("g:")
    assert key == entry_key(make_entry(guid=long_guid))
    assert key != entry_key(make_entry(guid="x" * 999 + "y"))
    assert entry_key(make_entry(guid="y" * 198)) == "g:" + "y" * 198


# --- identify ------------------------------------------------------------------------------------


def feed_of(*entries: Entry) -> ParsedFeed:
    return ParsedFeed(title="Feed", language="en", entries=entries)


def test_identify_keys_and_fields() -> None:
    entries = (
        make_entry(guid="urn:1", title="one"),
        make_entry(link="https://example.com/2", title="two"),
        make_entry(title="three"),
    )
    items = identify("kyiv", feed_of(*entries))
    assert [item.feed for item in items] == ["kyiv"] * 3
    assert [item.entry for item in items] == list(entries)
    assert [item.language for item in items] == ["en"] * 3
    assert [item.key for item in items] == [entry_key(e) for e in entries]
    assert [item.content_hash for item in items] == [content_hash(e) for e in entries]


def test_identify_shared_guid_gives_unique_stable_keys() -> None:
    parsed = feed_of(
        make_entry(guid="same", link="https://example.com/a", title="First story"),
        make_entry(guid="same", link="https://example.com/b", title="Second story"),
    )
    first = identify("f", parsed)
    second = identify("f", parsed)
    keys = [item.key for item in first]
    assert len(set(keys)) == 2
    assert all(key.startswith("d:") for key in keys)  # neither depends on feed order
    assert keys == [item.key for item in second]


def test_identify_entries_sharing_a_guid_get_unique_stable_keys() -> None:
    same = make_entry(guid="same", link="https://example.com/a")
    other = make_entry(guid="same", link="https://example.com/b")
    keys = [item.key for item in identify("f", feed_of(same, other))]
    assert len(set(keys)) == 2
    assert keys == [item.key for item in identify("f", feed_of(same, other))]


def test_identify_an_entry_repeated_exactly_is_one_item() -> None:
    # Alerting the same entry twice would be a duplicate alert.
    same = make_entry(guid="same", link="https://example.com/a")
    items = identify("f", feed_of(same, same, same))
    assert len(items) == 1
    other = make_entry(guid="same", link="https://example.com/a", title="Edited title")
    assert len({item.key for item in identify("f", feed_of(same, other, same))}) == 2


def test_identify_shared_link_without_guid() -> None:
    parsed = feed_of(
        make_entry(link="https://example.com/a?utm_source=x", title="one"),
        make_entry(link="https://example.com/a", title="two"),
    )
    keys = [item.key for item in identify("f", parsed)]
    assert len(set(keys)) == 2


def test_identify_shared_guid_keys_do_not_depend_on_order() -> None:
    a = make_entry(guid="same", link="https://example.com/a", title="First story")
    b = make_entry(guid="same", link="https://example.com/b", title="Second story")
    forward = {item.entry.link: item.key for item in identify("f", feed_of(a, b))}
    backward = {item.entry.link: item.key for item in identify("f", feed_of(b, a))}
    assert forward == backward


def test_content_hash_sees_every_field() -> None:
    base = make_entry(title="t", summary="s", content="c")
    assert content_hash(base) == content_hash(make_entry(title="T", summary="S", content="C"))
    assert content_hash(base) != content_hash(make_entry(title="t2", summary="s", content="c"))
    assert content_hash(base) != content_hash(make_entry(title="t", summary="s2", content="c"))
    assert content_hash(base) != content_hash(make_entry(title="t", summary="s", content="c2"))


def test_digest_is_versioned_and_separates_parts() -> None:
    assert digest("ab", "c") != digest("a", "bc")
    assert len(digest("x")) == 24
    assert len(digest("x", length=40)) == 40
    assert digest("x") == digest("x")
