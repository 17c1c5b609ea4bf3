"""Parsing real and hostile bodies: every corpus file survives, local files are never
read, HTML never leaks into text, and non-feeds get one clear reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.identity import identify
from monitor.parse import ParseError, parse_feed
from tests.conftest import REPO, SHARED

CORPUS = SHARED / "corpus" / "feedparser-tests"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def test_every_corpus_file_parses_or_is_refused_plainly() -> None:
    files = sorted([*CORPUS.rglob("*.xml"), *CORPUS.rglob("*.json")])
    assert len(files) > 2000, f"corpus missing at {CORPUS}"
    assert any(path.suffix == ".json" for path in files)
    outcomes = {"parsed": 0, "refused": 0}
    for path in files:
        try:
            parsed = parse_feed(path.read_bytes(), {}, "http://corpus.example/feed")
        except ParseError as error:
            assert str(error) and "\n" not in str(error)
            outcomes["refused"] += 1
            continue
        outcomes["parsed"] += 1
        for item in identify("corpus", parsed):
            entry = item.entry
            for text in (entry.title, entry.summary, entry.content, entry.author, *entry.tags):
                assert not CONTROL.search(text), (path, text)
            assert item.key
    assert outcomes["parsed"] > 2000


@pytest.mark.parametrize(
    "make_body",
    [
        lambda p: str(p).encode(),
        lambda p: f"file://{p}".encode(),
        lambda p: str(p).encode() + b"\n",
    ],
)
def test_a_body_that_names_a_local_file_is_never_read(tmp_path: Path, make_body: object) -> None:
    secret = tmp_path / "canary.xml"
    secret.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>CANARY-7f3a</title></item></channel></rss>"
    )
    body = make_body(secret)  # type: ignore[operator]
    try:
        parsed = parse_feed(body, {}, "http://x.example/")
    except ParseError:
        return
    assert all("CANARY" not in e.title for e in parsed.entries)


def test_external_entities_are_not_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN-91c2")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><title>t</title><item><title>a &x; b</title>'
        "<guid>1</guid></item></channel></rss>"
    ).encode()
    parsed = parse_feed(body, {}, "http://x.example/")
    assert all("TOKEN" not in e.title + e.summary for e in parsed.entries)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "the response body is empty"),
        (b"   \n ", "the response body is empty"),
        (b"<!doctype html><html><body><p>Sign in</p></body></html>", "not an RSS, Atom"),
        (b'{"hello": "world"}', "not an RSS, Atom"),
    ],
)
def test_non_feeds_are_refused_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_feed(body, {"content-type": "text/html"}, "http://x.example/")


def test_a_valid_feed_with_no_items_is_fine() -> None:
    body = b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    assert parse_feed(body, {}, "http://x.example/").entries == ()


def test_demo_feeds_give_plain_text_and_dates() -> None:
    demo = REPO / "config" / "demo"
    wire = parse_feed((demo / "frontline-wire.xml").read_bytes(), {}, "http://x.example/")
    # feedparser treats RSS titles as HTML: tags and `<!…>` declarations are markup.
    hostile = [e for e in wire.entries if e.title.startswith("Analysts warn")]
    assert [e.title for e in hostile] == ["Analysts warn of escalation & mobilisation"]
    assert all("<p>" not in e.summary for e in wire.entries)
    rdf = parse_feed((demo / "korea-watch.rdf").read_bytes(), {}, "http://x.example/")
    # RSS 1.0 carries dc:date, which feedparser files as `updated`.
    assert all(e.published_at is not None for e in rdf.entries)
    atom = parse_feed((demo / "world-desk.atom").read_bytes(), {}, "http://x.example/")
    assert atom.language == "en"
    assert any("Genève" in e.title for e in atom.entries)


def test_wrong_charset_header_still_decodes() -> None:
    body = '<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel>'
    body += "<title>t</title><item><title>Caf\xe9 talks</title><guid>1</guid></item>"
    body += "</channel></rss>"
    parsed = parse_feed(
        body.encode("latin-1"), {"content-type": "text/xml; charset=utf-8"}, "http://x.example/"
    )
    assert parsed.entries[0].title == "Café talks"
