#!/usr/bin/env python3
"""A feed server and a webhook receiver for scripts/container-test.sh (standard library only).

    python3 servers.py HOST STATE_FILE WEBHOOK_SECRET

Binds two ThreadingHTTPServers on HOST (ports chosen by the kernel) and writes
{"feed": "http://HOST:P/feed.xml", "hook": "http://HOST:Q/hook/<token>", "stats": ...}
as one JSON line to STATE_FILE once both listen. HOST is the Docker bridge gateway address:
reachable from this machine and its containers only, never from outside.

* GET  /feed.xml   RSS 2.0 with one item the test config's rule matches (published a few
                   minutes ago) and one that matches nothing. The body (lastBuildDate and a
                   comment) changes on every request and there is no ETag/Last-Modified, so every
                   poll is a full, new body: a restarted daemon must recognise the matching
                   item as already alerted by its stored state, not by conditional GET.
* POST /hook/<token> records the body and headers and checks the Standard Webhooks
                   signature (v1, HMAC-SHA256 of "id.timestamp.body"); answers 200.
* GET  /_stats     (on the feed server) JSON: feed GETs, webhook POSTs with their
                   webhook-id, signature verdict and story title.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

MATCHING_TITLE = "DPRK troops cross the river near Kursk"
OTHER_TITLE = "Weather: a mild week ahead for the coast"
HOOK_TOKEN = "t0ken-c0ntainer-test-5ecret"  # part of the webhook URL: must never be logged

lock = threading.Lock()
feed_gets: list[float] = []
posts: list[dict[str, object]] = []
started = datetime.now(UTC)


def feed_body(request_number: int) -> bytes:
    now = datetime.now(UTC)
    items = ""
    for slug, title, age in (("kursk-dprk", MATCHING_TITLE, 6), ("weather", OTHER_TITLE, 9)):
        published = started - timedelta(minutes=age)  # inside poll.backfill (24h)
        items += (
            f"<item><title>{escape(title)}</title>"
            f"<link>https://news.example/{slug}</link>"
            f'<guid isPermaLink="false">https://news.example/{slug}</guid>'
            f"<description>{escape(title)}. More details follow.</description>"
            f"<pubDate>{format_datetime(published)}</pubDate></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        "<title>Loopback wire</title><link>https://news.example/</link>"
        "<description>container test</description><language>en</language>"
        f"<lastBuildDate>{format_datetime(now)}</lastBuildDate>"
        f"<!-- request {request_number} -->{items}</channel></rss>"
    ).encode()


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    encoded = secret.removeprefix("whsec_")
    key = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    given = [s.partition(",")[2] for s in headers.get("webhook-signature", "").split()]
    return any(hmac.compare_digest(expected, g) for g in given)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    secret = ""

    def reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/feed.xml":
            with lock:
                feed_gets.append(time.time())
                number = len(feed_gets)
            self.reply(200, feed_body(number), "application/rss+xml")
        elif self.path == "/_stats":
            with lock:
                stats = {"feed_gets": len(feed_gets), "posts": list(posts)}
            self.reply(200, json.dumps(stats).encode(), "application/json")
        else:
            self.reply(404, b"not found\n")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != f"/hook/{HOOK_TOKEN}":
            self.reply(404, b"no such hook\n")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            title = json.loads(body)["story"]["title"]
        except (ValueError, KeyError, TypeError):
            title = None
        with lock:
            posts.append(
                {
                    "webhook_id": headers.get("webhook-id"),
                    "signature_ok": signature_ok(self.secret, headers, body),
                    "title": title,
                    "at": time.time(),
                }
            )
        self.reply(200, b"ok\n")

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"[servers] {self.address_string()} {format % args}\n")


def main() -> None:
    host, state_file, secret = sys.argv[1], sys.argv[2], sys.argv[3]
    Handler.secret = secret
    feed = ThreadingHTTPServer((host, 0), Handler)
    hook = ThreadingHTTPServer((host, 0), Handler)
    for server in (feed, hook):
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    base_feed = f"http://{host}:{feed.server_address[1]}"
    base_hook = f"http://{host}:{hook.server_address[1]}"
    state = {
        "feed": f"{base_feed}/feed.xml",
        "stats": f"{base_feed}/_stats",
        "hook": f"{base_hook}/hook/{HOOK_TOKEN}",
        "title": MATCHING_TITLE,
    }
    with open(state_file + ".tmp", "w") as out:
        out.write(json.dumps(state) + "\n")
    os.replace(state_file + ".tmp", state_file)
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main()
