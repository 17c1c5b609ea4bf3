"""Connections under the fetcher, against a real keep-alive server on 127.0.0.1 that
counts the connections it accepts: answers without a feed (304, errors) give their
connection back to the pool, and a connection the server dropped while idle is noticed
before it is reused."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from monitor import http_backend
from monitor.fetch import Fetcher
from monitor.models import FeedState


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _CountingServer

    def do_GET(self) -> None:
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.drop_after_answer:
            # Quietly, as a server whose keep-alive timer ran out: no Connection: close.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _CountingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.answer: tuple[int, bytes] = (304, b"")
        self.drop_after_answer = False

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1
        return True


@pytest.fixture
def server() -> Iterator[_CountingServer]:
    served = _CountingServer()
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served
    served.shutdown()
    served.server_close()


def _fetch_times(server: _CountingServer, times: int, pause: float = 0.0) -> list[str]:
    url = f"http://127.0.0.1:{server.server_address[1]}/feed"
    state = FeedState("feed", etag='"v1"')

    async def run() -> list[str]:
        fetcher = Fetcher(timeout=5.0, concurrency=4, max_body=1 << 20)
        try:
            statuses = []
            for _ in range(times):
                result = await fetcher.fetch(url, state)
                statuses.append(result.status if result.error is None else result.error)
                await asyncio.sleep(pause)
            return statuses
        finally:
            await fetcher.close()

    return asyncio.run(run())


def test_a_run_of_304s_reuses_one_connection(server: _CountingServer) -> None:
    assert _fetch_times(server, 30) == ["not_modified"] * 30
    assert server.connections == 1


def test_a_small_error_page_gives_its_connection_back(server: _CountingServer) -> None:
    server.answer = (404, b"<html>" + b"not here " * 200 + b"</html>")
    statuses = _fetch_times(server, 5)
    assert statuses == ["HTTP 404 Not Found"] * 5
    assert server.connections == 1


def test_a_connection_the_server_dropped_while_idle_is_replaced_not_reused(
    server: _CountingServer,
) -> None:
    server.drop_after_answer = True
    # The pause lets the server's close arrive before the next request is assigned.
    assert _fetch_times(server, 4, pause=0.1) == ["not_modified"] * 4
    assert server.connections == 4


def test_the_backend_reaches_the_pool_of_a_plain_and_a_proxied_client() -> None:
    async def reached() -> tuple[int, int]:
        async with (
            httpx.AsyncClient() as plain,
            httpx.AsyncClient(proxy="http://127.0.0.1:9") as proxied,
        ):
            return http_backend.install(plain), http_backend.install(proxied)

    # If an httpx or httpcore upgrade moves these attributes, this fails: the fetcher
    # still works, but its pool is back to the slower readability check.
    plain, proxied = asyncio.run(reached())
    assert plain >= 1
    assert proxied >= 1


def test_readability_is_data_or_a_closed_peer_and_nothing_else() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert not http_backend.is_readable(ours)
        theirs.sendall(b"x")
        time.sleep(0.01)
        assert http_backend.is_readable(ours)
        ours.recv(1)
        assert not http_backend.is_readable(ours)
        theirs.close()
        assert http_backend.is_readable(ours)
    assert http_backend.is_readable(ours)  # closed here: fileno() is -1
    assert http_backend.is_readable(None)
