"""A hostile HTTP server on 127.0.0.1, for what `http.server` cannot express: a raw TCP
server (one thread per connection) that misbehaves by path.

    /drip-body     valid headers, then one body byte per `drip_every` seconds, forever
    /drip-headers  the status line and headers themselves, one byte at a time
    /endless       a chunked body that never ends, as fast as the client reads
    /huge          50 MB of body with its Content-Length
    /huge-unsized  50 MB of body, no Content-Length: it ends when the connection closes
    /gzip-bomb     `Content-Encoding: gzip`, ~250 KB that inflate to 256 MiB of zeros
    /loop-a        302 to /loop-b, which 302s back to /loop-a (query kept), forever
    /garbage       random bytes instead of an HTTP response
    /cut-headers   half a header block, then the connection is closed

Every query string is ignored for dispatch and kept in redirects. Large bodies are
streamed from one small buffer, never held whole. `close()` stops every connection
handler and joins its thread: nothing is left running after a test.
"""

from __future__ import annotations

import functools
import random
import socket
import socketserver
import sys
import threading
import time
import zlib
from collections.abc import Callable

DRIP_BODY = "/drip-body"
DRIP_HEADERS = "/drip-headers"
ENDLESS = "/endless"
HUGE = "/huge"
HUGE_UNSIZED = "/huge-unsized"
GZIP_BOMB = "/gzip-bomb"
LOOP_A = "/loop-a"
LOOP_B = "/loop-b"
GARBAGE = "/garbage"
CUT_HEADERS = "/cut-headers"

HUGE_BYTES = 50 * 1000 * 1000
BOMB_DECODED_BYTES = 256 << 20
_BLOCK = (b"<item><title>filler</title></item>\n" * 2000)[: 64 << 10]
_POLL = 0.1  # how often a blocked handler looks at the stop flag
_MAX_HEAD = 64 << 10


@functools.cache
def gzip_bomb() -> bytes:
    """A gzip stream of BOMB_DECODED_BYTES zeros, compressed 1 MiB at a time (built once)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16, 9, zlib.Z_RLE)
    zeros = bytes(1 << 20)
    parts = [packer.compress(zeros) for _ in range(BOMB_DECODED_BYTES >> 20)]
    parts.append(packer.flush())
    return b"".join(parts)


class _Gone(Exception):
    """The client hung up, or the server is stopping: the handler ends."""


class _Connection:
    def __init__(self, sock: socket.socket, stop: threading.Event) -> None:
        self.sock = sock
        self.stop = stop
        self.sent = 0
        sock.settimeout(_POLL)

    def read_head(self) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            if self.stop.is_set() or len(data) > _MAX_HEAD:
                raise _Gone
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                raise _Gone from None
            if not chunk:
                raise _Gone
            data += chunk
        return data

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self.stop.is_set():
                raise _Gone
            try:
                count = self.sock.send(view)
            except TimeoutError:
                continue  # the client is not reading: wait, but keep an eye on `stop`
            except OSError:
                raise _Gone from None
            self.sent += count
            view = view[count:]

    def pause(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise _Gone


Behaviour = Callable[["HostileServer", _Connection, str], None]


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


_FEED_HEADERS = {"Content-Type": "application/rss+xml; charset=utf-8", "Connection": "close"}


def _drip_body(server: HostileServer, conn: _Connection, query: str) -> None:
    conn.send(_head("200 OK", {**_FEED_HEADERS, "Content-Length": "100000"}))
    conn.send(b'<?xml version="1.0"?><rss version="2.0"><channel><title>')
    while True:
        conn.pause(server.drip_every)
        conn.send(b"x")


def _drip_headers(server: HostileServer, conn: _Connection, query: str) -> None:
    head = _head("200 OK", {**_FEED_HEADERS, "X-Padding": "p" * 10_000})
    for byte in head:
        conn.send(bytes([byte]))
        conn.pause(server.drip_every)


def _endless(server: HostileServer, conn: _Connection, query: str) -> None:
    conn.send(_head("200 OK", {**_FEED_HEADERS, "Transfer-Encoding": "chunked"}))
    chunk = f"{len(_BLOCK):x}\r\n".encode() + _BLOCK + b"\r\n"
    while True:
        conn.send(chunk)


def _stream(conn: _Connection, size: int) -> None:
    while size > 0:
        piece = _BLOCK[:size]
        conn.send(piece)
        size -= len(piece)


def _huge(server: HostileServer, conn: _Connection, query: str) -> None:
    conn.send(_head("200 OK", {**_FEED_HEADERS, "Content-Length": str(HUGE_BYTES)}))
    _stream(conn, HUGE_BYTES)


def _huge_unsized(server: HostileServer, conn: _Connection, query: str) -> None:
    conn.send(_head("200 OK", _FEED_HEADERS))
    _stream(conn, HUGE_BYTES)


def _gzip_bomb(server: HostileServer, conn: _Connection, query: str) -> None:
    body = gzip_bomb()
    headers = {**_FEED_HEADERS, "Content-Encoding": "gzip", "Content-Length": str(len(body))}
    conn.send(_head("200 OK", headers) + body)


def _redirect(to: str) -> Behaviour:
    def answer(server: HostileServer, conn: _Connection, query: str) -> None:
        location = server.url + to + (f"?{query}" if query else "")
        headers = {"Location": location, "Content-Length": "0", "Connection": "close"}
        conn.send(_head("302 Found", headers))

    return answer


def _garbage(server: HostileServer, conn: _Connection, query: str) -> None:
    noise = random.Random(6).randbytes(8192)
    conn.send(b"\x16\x03\x01\x02\x00" + noise)  # a TLS record header, then noise


def _cut_headers(server: HostileServer, conn: _Connection, query: str) -> None:
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Le")


BEHAVIOURS: dict[str, Behaviour] = {
    DRIP_BODY: _drip_body,
    DRIP_HEADERS: _drip_headers,
    ENDLESS: _endless,
    HUGE: _huge,
    HUGE_UNSIZED: _huge_unsized,
    GZIP_BOMB: _gzip_bomb,
    LOOP_A: _redirect(LOOP_B),
    LOOP_B: _redirect(LOOP_A),
    GARBAGE: _garbage,
    CUT_HEADERS: _cut_headers,
}


class _Handler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        owner = self.server.owner
        conn = _Connection(self.request, owner.stopping)
        path = "?"
        try:
            request_line = conn.read_head().split(b"\r\n", 1)[0].decode("latin-1")
            target = request_line.split(" ")[1] if request_line.count(" ") >= 2 else "/"
            path, _, query = target.partition("?")
            owner.record(path)
            behaviour = BEHAVIOURS.get(path)
            if behaviour is None:
                conn.send(_head("404 Not Found", {"Content-Length": "0", "Connection": "close"}))
            else:
                behaviour(owner, conn, query)
        except _Gone:
            pass
        finally:
            owner.count_sent(path, conn.sent)


class _TCPServer(socketserver.TCPServer):
    allow_reuse_address = True
    owner: HostileServer

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        thread = threading.Thread(
            target=self._serve_one, args=(request, client_address), name="hostile-connection"
        )
        self.owner.adopt(thread)
        thread.start()

    def _serve_one(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client hanging up is this server's normal day (_Gone, handled); anything
        # else is a bug in this test server, kept for the tests to see.
        self.owner.failed(repr(sys.exc_info()[1]))


class HostileServer:
    def __init__(self, drip_every: float = 1.0) -> None:
        self.drip_every = drip_every
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.sent: dict[str, int] = {}
        self.errors: list[str] = []  # exceptions of connection handlers: bugs in this server
        self._threads: list[threading.Thread] = []
        self._server = _TCPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._serve = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL}, name="hostile"
        )
        self._serve.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def record(self, path: str) -> None:
        with self.lock:
            self.requests.append(path)

    def failed(self, error: str) -> None:
        with self.lock:
            self.errors.append(error)

    def count_sent(self, path: str, sent: int) -> None:
        with self.lock:
            self.sent[path] = self.sent.get(path, 0) + sent

    def adopt(self, thread: threading.Thread) -> None:
        with self.lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def requests_to(self, path: str) -> int:
        with self.lock:
            return self.requests.count(path)

    def threads(self) -> list[threading.Thread]:
        """Every thread this server started that is still alive."""
        with self.lock:
            started = [self._serve, *self._threads]
        return [thread for thread in started if thread.is_alive()]

    def idle(self, wait: float) -> bool:
        """Whether every connection handler has ended, waiting up to `wait` seconds."""
        deadline = time.monotonic() + wait
        while True:
            with self.lock:
                busy = [t for t in self._threads if t.is_alive()]
            if not busy or time.monotonic() >= deadline:
                return not busy
            busy[0].join(min(_POLL, max(0.0, deadline - time.monotonic())))

    def close(self, wait: float = 5.0) -> None:
        """Stop accepting, end every connection handler and join all threads."""
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        deadline = time.monotonic() + wait
        for thread in [self._serve, *self._threads]:
            thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
