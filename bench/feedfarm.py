"""A loopback farm of synthetic feeds for benchmarks: N feeds × K items on 127.0.0.1.

Every answer is pre-rendered bytes (a feed is re-rendered only when it gains an item), served
by a small asyncio protocol (HTTP/1.1, keep-alive) on its own thread, so the farm costs a few
tens of microseconds per request and is never what a benchmark measures.

Feeds are RSS 2.0 (every tenth one Atom 1.0); items have news-like titles and 300–800
characters of HTML summary, and about one in eight mentions a watch topic ("North Korean
troops", "Kursk", "drone strike"…). Conditional GET: ETag / If-None-Match and
Last-Modified / If-Modified-Since give 304, except on the share of feeds configured without
validators (`no_validators`), which always answer 200 with the full body.

Modes:
- `static`: feeds never change (cold pass: everything new; warm pass: everything 304).
- `grow`: each feed gains one item on every request to it (the oldest drops out).
- `steady`: one feed in ten gains one item at every `advance()` (or GET /_advance); half of
  the other feeds send no ETag / Last-Modified (full 200 bodies every time).

Library: `farm = Farm(feeds=1000, items=20); farm.start(); ... farm.urls ...; farm.stop()`.
Command: `python bench/feedfarm.py --feeds 1000 --items 20 --port 0 --opml farm.opml`
prints the farm's URL and serves until interrupted. `GET /urls.txt` and `GET /opml` list
the feeds; `GET /_stats` counts answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import random
import signal
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from html import escape
from pathlib import Path
from typing import Literal

Mode = Literal["static", "grow", "steady"]
MODES: tuple[Mode, ...] = ("static", "grow", "steady")
# Items are dated from here backwards, one item every ten minutes of a feed's life.
_ITEM_SPACING = 600.0

_PLACES = (
    "Kyiv", "Kharkiv", "Odesa", "Zaporizhzhia", "Dnipro", "Pokrovsk", "Kherson", "Sumy",
    "Belgorod", "Moscow", "Pyongyang", "Seoul", "Warsaw", "Brussels", "Berlin", "Washington",
    "Donetsk", "Luhansk", "Crimea", "Chernihiv", "Mykolaiv", "Vilnius", "Tallinn", "Minsk",
)  # fmt: skip
# Text is drawn from a Zipf-distributed vocabulary: English function words and news words
# at its head, then 20,000 made-up words, so that headlines differ from each other about as
# much as real ones do (a tiny vocabulary would make every headline look like every other
# one to story clustering, and make matching's per-word caches unrealistically hot).
_HEAD = (
    "the of to in and a on for that with is said by as at from was were has have will"
    " after over its their officials it not be are an but this more than two three new"
    " against near since during while under about into people forces government week day"
    " minister troops city region attack strike border talks army war report military"
    " police president country defence security police local support energy power"
).split()
_SYLLABLES = "ka ri to an el mo su vi ne da lo pe ru zi ta me or ul in ba ko".split()


def _word_pool() -> list[str]:
    rng = random.Random(20_000)
    words = list(dict.fromkeys(_HEAD + [p for p in _PLACES]))
    seen = set(words)
    while len(words) < 20_000:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    return rng.choices(words, weights, k=200_000)


_POOL = _word_pool()
# One item in eight carries one of these, so that watch rules have something to match.
TOPICS = (
    "North Korean troops were seen near Kursk",
    "a drone strike hit an energy facility",
    "North Korean soldiers joined Russian units in the Kursk region",
    "a missile attack on Kyiv damaged the power grid",
    "Pyongyang's arms shipments to Russia included artillery shells",
    "a drone attack caused a blackout in several districts",
    "DPRK troops crossed the red line, Seoul warned",
    "a ballistic missile struck a substation near Kharkiv",
)


@dataclass(slots=True)
class _Feed:
    index: int
    atom: bool
    validators: bool
    changes: bool  # steady mode: gains an item at every advance()
    items: deque[bytes]
    next_seq: int = 0
    version: int = 0
    modified: float = 0.0
    body: bytes = b""
    etag: str = ""
    last_modified: str = ""


@dataclass(slots=True)
class FarmStats:
    full: int = 0  # 200 with a feed body
    not_modified: int = 0  # 304
    other: int = 0  # lists, stats, 404s
    by_feed: dict[int, int] = field(default_factory=dict)


class Farm:
    """N synthetic feeds on 127.0.0.1, served from a thread. Start, read `urls`, stop."""

    def __init__(
        self,
        feeds: int = 100,
        items: int = 20,
        *,
        mode: Mode = "static",
        no_validators: float = 0.0,
        atom_share: float = 0.1,
        latency: float = 0.0,
        seed: int = 8,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode: Mode = mode
        self.items = items
        self.latency = latency
        self.host = host
        self.port = port
        self.stats = FarmStats()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._now = time.time()
        self.started_at = self._now  # items are dated from here backwards
        self._feeds = [self._new_feed(i, feeds, no_validators, atom_share) for i in range(feeds)]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # -- content --------------------------------------------------------------------------

    def _new_feed(self, index: int, count: int, no_validators: float, atom_share: float) -> _Feed:
        atom = atom_share > 0 and index % max(1, round(1 / atom_share)) == 7 % max(
            1, round(1 / atom_share)
        )
        if self.mode == "steady":
            changes = index % 10 == 0
            # Half of the feeds that do not change send no validators.
            validators = changes or (index // 10 * 9 + index % 10) % 2 == 0
        else:
            changes = False
            validators = _spread(index, count, no_validators)
        feed = _Feed(index, atom, validators, changes, deque(maxlen=self.items))
        start = self._now - (self.items + 1) * _ITEM_SPACING
        for _ in range(self.items):
            self._add_item(feed, start + feed.next_seq * _ITEM_SPACING)
        self._render(feed, self._now - 3600.0)
        return feed

    def _add_item(self, feed: _Feed, when: float) -> None:
        rng = random.Random(feed.index * 1_000_003 + feed.next_seq)
        seq = feed.next_seq
        feed.next_seq += 1
        topic = rng.choice(TOPICS) if rng.random() < 0.125 else None
        title = _title(rng, topic if rng.random() < 0.5 else None)
        summary = _summary(rng, topic, feed.index, seq)
        link = f"http://{self.host}/story/{feed.index}/{seq}"
        guid = hashlib.sha1(link.encode()).hexdigest()
        if feed.atom:
            when_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
            xml = (
                f"<entry><title>{escape(title)}</title>"
                f'<link rel="alternate" href="{link}"/>'
                f"<id>urn:sha1:{guid}</id><updated>{when_text}</updated>"
                f"<published>{when_text}</published>"
                f"<author><name>Staff reporter</name></author>"
                f'<summary type="html">{escape(summary)}</summary></entry>\n'
            )
        else:
            xml = (
                f"<item><title>{escape(title)}</title><link>{link}</link>"
                f'<guid isPermaLink="false">{guid}</guid>'
                f"<pubDate>{formatdate(when, usegmt=True)}</pubDate>"
                f"<category>World</category>"
                f"<description>{escape(summary)}</description></item>\n"
            )
        feed.items.appendleft(xml.encode())

    def _render(self, feed: _Feed, modified: float) -> None:
        feed.version += 1
        feed.modified = modified
        url = f"http://{self.host}/f/{feed.index}"
        if feed.atom:
            head = (
                '<?xml version="1.0" encoding="utf-8"?>\n'
                '<feed xmlns="http://www.w3.org/2005/Atom">'
                f"<title>Farm feed {feed.index}</title>"
                f'<link rel="alternate" href="http://{self.host}/site/{feed.index}"/>'
                f'<link rel="self" href="{url}"/>'
                f"<id>{url}</id>"
                f"<updated>{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(modified))}</updated>"
                "\n"
            )
            tail = "</feed>\n"
        else:
            head = (
                '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
                f"<title>Farm feed {feed.index}</title>"
                f"<link>http://{self.host}/site/{feed.index}</link>"
                f"<description>Synthetic news feed number {feed.index}</description>"
                "<language>en</language>"
                f"<lastBuildDate>{formatdate(modified, usegmt=True)}</lastBuildDate>\n"
            )
            tail = "</channel></rss>\n"
        feed.body = head.encode() + b"".join(feed.items) + tail.encode()
        feed.etag = f'"{feed.index}-{feed.version}"'
        feed.last_modified = formatdate(modified, usegmt=True)

    def advance(self) -> int:
        """Steady mode: every changing feed gains one item; returns how many changed.
        In other modes every feed gains one item."""
        with self._lock:
            self._now = max(time.time(), self._now + 1.0)
            changed = 0
            for feed in self._feeds:
                if self.mode != "steady" or feed.changes:
                    self._add_item(feed, self._now)
                    self._render(feed, self._now)
                    changed += 1
            return changed

    def body(self, index: int) -> bytes:
        return self._feeds[index].body

    # -- addresses ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def urls(self) -> list[str]:
        return [f"{self.url}/f/{feed.index}" for feed in self._feeds]

    def feed_kinds(self) -> dict[str, int]:
        """How many feeds are Atom, lack validators, change in steady mode."""
        return {
            "feeds": len(self._feeds),
            "atom": sum(f.atom for f in self._feeds),
            "no_validators": sum(not f.validators for f in self._feeds),
            "changing": sum(f.changes for f in self._feeds),
        }

    def urls_text(self) -> bytes:
        return ("\n".join(self.urls) + "\n").encode()

    def opml(self) -> bytes:
        outlines = "".join(
            f'<outline type="rss" text="farm-{f.index}" title="farm-{f.index}" '
            f'xmlUrl="{self.url}/f/{f.index}"/>\n'
            for f in self._feeds
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0">'
            f"<head><title>feed farm</title></head><body>\n{outlines}</body></opml>\n"
        ).encode()

    # -- serving --------------------------------------------------------------------------

    def respond(self, path: str, headers: dict[str, str]) -> bytes:
        """The whole HTTP answer (status line, headers, body) for a GET of `path`."""
        if path.startswith("/f/"):
            try:
                feed = self._feeds[int(path[3:])]
            except (ValueError, IndexError):
                return self._plain(404, b"no such feed\n")
            return self._feed_answer(feed, headers)
        self.stats.other += 1
        if path == "/urls.txt":
            return self._plain(200, self.urls_text())
        if path == "/opml":
            return self._plain(200, self.opml(), "text/x-opml")
        if path == "/_advance":
            return self._plain(200, f"{self.advance()}\n".encode())
        if path == "/_stats":
            text = f"full {self.stats.full}\nnot_modified {self.stats.not_modified}\n"
            return self._plain(200, text.encode())
        return self._plain(404, b"not found\n")

    def _feed_answer(self, feed: _Feed, headers: dict[str, str]) -> bytes:
        with self._lock:
            if self.mode == "grow":
                self._now = max(time.time(), self._now + 0.001)
                self._add_item(feed, self._now)
                self._render(feed, self._now)
            self.stats.by_feed[feed.index] = self.stats.by_feed.get(feed.index, 0) + 1
            if feed.validators and _not_modified(feed, headers):
                self.stats.not_modified += 1
                return (
                    f"HTTP/1.1 304 Not Modified\r\nETag: {feed.etag}\r\n"
                    f"Last-Modified: {feed.last_modified}\r\nContent-Length: 0\r\n\r\n"
                ).encode()
            self.stats.full += 1
            kind = "application/atom+xml" if feed.atom else "application/rss+xml"
            validators = (
                f"ETag: {feed.etag}\r\nLast-Modified: {feed.last_modified}\r\n"
                if feed.validators
                else ""
            )
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: {kind}; charset=utf-8\r\n{validators}"
                f"Content-Length: {len(feed.body)}\r\n\r\n"
            )
            return head.encode() + feed.body

    @staticmethod
    def _plain(status: int, body: bytes, kind: str = "text/plain") -> bytes:
        reason = {200: "OK", 404: "Not Found", 400: "Bad Request"}.get(status, "OK")
        return (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    def start(self) -> Farm:
        """Serve from a daemon thread; returns once the port is bound (`self.port`)."""
        self._thread = threading.Thread(target=self._serve, name="feedfarm", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the feed farm did not start")
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is not None and server is not None:

            def _close() -> None:
                server.close()
                loop.stop()

            loop.call_soon_threadsafe(_close)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> Farm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._server = loop.run_until_complete(
            loop.create_server(lambda: _Http(self, loop), sock=sock, backlog=4096)
        )
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _spread(index: int, count: int, share: float) -> bool:
    """True (has validators) for all but an evenly spread `share` of the feeds."""
    if share <= 0:
        return True
    if share >= 1:
        return False
    return int((index + 1) * share) == int(index * share)


def _not_modified(feed: _Feed, headers: dict[str, str]) -> bool:
    inm = headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return feed.etag in tags or "*" in tags
    ims = headers.get("if-modified-since")
    if ims is not None:
        try:
            return parsedate_to_datetime(ims).timestamp() >= int(feed.modified)
        except (TypeError, ValueError):
            return False
    return False


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(_POOL) for _ in range(rng.randint(low, high)))


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _title(rng: random.Random, topic: str | None) -> str:
    place = rng.choice(_PLACES)
    if topic is not None:
        return f"{place}: {topic} {_words(rng, 2, 5)}"
    shape = rng.randrange(3)
    if shape == 0:
        return f"{place}: {_upper_first(_words(rng, 5, 10))}"
    if shape == 1:
        return _upper_first(_words(rng, 6, 12))
    return _upper_first(f"{_words(rng, 4, 8)} in {place}")


def _summary(rng: random.Random, topic: str | None, feed: int, seq: int) -> str:
    target = rng.randrange(330, 760)
    lead = topic or _words(rng, 4, 8)
    parts = [
        f"In {rng.choice(_PLACES)}, {lead}, officials said, citing <em>{_words(rng, 2, 4)}</em>."
    ]
    size = len(parts[0])
    while size < target - 60:
        sentence = _upper_first(_words(rng, 8, 18)) + "."
        parts.append(sentence)
        size += len(sentence) + 1
    text = " ".join(parts)
    link = f'<a href="/story/{feed}/{seq}">{rng.choice(_PLACES)} coverage</a>'
    html = f"<p>{text}</p><p>Read more: {link}</p>"
    if len(html) > 800:
        html = f"<p>{text[: 800 - 80]}</p><p>{link}</p>"
    return html


class _Http(asyncio.Protocol):
    """Minimal HTTP/1.1 server side: GET only, keep-alive, answers in request order."""

    __slots__ = ("_buffer", "_closing", "_farm", "_loop", "_transport")

    def __init__(self, farm: Farm, loop: asyncio.AbstractEventLoop) -> None:
        self._farm = farm
        self._loop = loop
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        with contextlib.suppress(OSError):
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            block = self._buffer[:end].decode("latin-1")
            self._buffer = self._buffer[end + 4 :]
            lines = block.split("\r\n")
            parts = lines[0].split(" ")
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            self._buffer = self._buffer[length:]
            if len(parts) != 3:
                self._send(Farm._plain(400, b"bad request\n"), close=True)
                return
            close = headers.get("connection", "").lower() == "close" or parts[2] == "HTTP/1.0"
            answer = self._farm.respond(parts[1].split("?", 1)[0], headers)
            if parts[0] == "HEAD":
                answer = answer[: answer.find(b"\r\n\r\n") + 4]
            if self._farm.latency > 0:
                self._loop.call_later(self._farm.latency, self._send, answer, close)
            else:
                self._send(answer, close)

    def _send(self, answer: bytes, close: bool) -> None:
        if self._transport is None or self._closing:
            return
        self._transport.write(answer)
        if close:
            self._closing = True
            self._transport.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--mode", choices=MODES, default="static")
    parser.add_argument(
        "--no-validators", type=float, default=0.0, help="share of feeds without ETag/LM"
    )
    parser.add_argument("--atom-share", type=float, default=0.1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--opml", type=Path, help="write an OPML file of the feeds here")
    parser.add_argument("--urls", type=Path, help="write the feed URLs here, one a line")
    args = parser.parse_args(argv)
    farm = Farm(
        args.feeds,
        args.items,
        mode=args.mode,
        no_validators=args.no_validators,
        atom_share=args.atom_share,
        latency=args.latency,
        host=args.host,
        port=args.port,
    ).start()
    if args.opml:
        args.opml.write_bytes(farm.opml())
    if args.urls:
        args.urls.write_bytes(farm.urls_text())
    print(farm.url, flush=True)
    print(f"# {farm.feed_kinds()}; GET /urls.txt, /opml, /_advance, /_stats", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    farm.stop()


if __name__ == "__main__":
    main()
