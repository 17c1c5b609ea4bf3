"""Real HTTP servers on 127.0.0.1 for tests: a feed server with conditional GET and a
webhook receiver with scripted answers. Both record every request."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The sender died mid-request (the crash test kills it at random): a real
            # receiver never sees a request cut short as one.
            self.close_connection = True
            return
        request = Request(
            self.command,
            self.path,
            {k.lower(): v for k, v in self.headers.items()},
            body,
            time.monotonic(),
        )
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(request)
        answer = owner.answer(request)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_POST = do_HEAD = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer


class LoopbackServer:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def answer(self, request: Request) -> Answer:
        raise NotImplementedError

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def requests_to(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


class FeedServer(LoopbackServer):
    """Serves feed documents by path, with ETag/If-None-Match, or a scripted Answer."""

    def __init__(self) -> None:
        self.feeds: dict[str, tuple[bytes, str]] = {}
        self.scripted: dict[str, Callable[[Request], Answer]] = {}
        super().__init__()

    def publish(self, path: str, body: str | bytes, content_type: str = "application/xml") -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self.lock:
            self.feeds[path] = (data, content_type)
        return self.url + path

    def answer(self, request: Request) -> Answer:
        with self.lock:
            script = self.scripted.get(request.path)
            feed = self.feeds.get(request.path)
        if script is not None:
            return script(request)
        if feed is None:
            return Answer(404, b"not found")
        body, content_type = feed
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("if-none-match") == etag:
            return Answer(304, headers={"ETag": etag})
        return Answer(200, body, {"Content-Type": content_type, "ETag": etag})


class Receiver(LoopbackServer):
    """A webhook receiver: answers from a script (default 200 ok), records each POST."""

    def __init__(self) -> None:
        self.script: list[Answer] = []
        self.default = Answer(200, b"ok")
        super().__init__()

    def answer(self, request: Request) -> Answer:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def posts(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST"]
