"""Connections under the fetcher and its asyncio network backend, against a real
keep-alive server on 127.0.0.1 that counts the connections it accepts: answers without a
feed (304, errors) give their connection back to the pool, a connection the server
dropped while idle is noticed before it is reused, and TLS, large bodies and dead
servers come through as they did on httpcore's own backend."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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
        if self.server.cookie_wall and "pass=1" not in self.headers.get("Cookie", ""):
            # As some CDNs guard a feed: set a cookie, send the reader back to the feed.
            self.send_response(302)
            self.send_header("Set-Cookie", "pass=1; Path=/")
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
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
        self.cookie_wall = False

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


def test_a_feed_behind_a_cookie_and_a_redirect_is_still_fetched(server: _CountingServer) -> None:
    server.cookie_wall = True
    server.answer = (200, b"<rss></rss>")
    url = f"http://127.0.0.1:{server.server_address[1]}/feed"

    async def fetch() -> tuple[str, bytes]:
        fetcher = Fetcher(timeout=5.0, concurrency=2, max_body=1 << 20)
        try:
            result = await fetcher.fetch(url, FeedState("feed"))
            return result.status, result.body
        finally:
            await fetcher.close()

    assert asyncio.run(fetch()) == ("ok", b"<rss></rss>")


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


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made here: tests reach no CA."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _serve_tls(server: _CountingServer, certificate: tuple[Path, Path]) -> Path:
    """Make the server speak TLS; returns the certificate a client must trust. The
    handshake runs in each connection's thread, not in the accepting one, so a client
    that fails before it fails its test instead of hanging the server's shutdown."""
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    return cert


def test_a_feed_over_tls_is_fetched_through_the_backend(
    server: _CountingServer, certificate: tuple[Path, Path]
) -> None:
    cert = _serve_tls(server, certificate)
    server.answer = (200, b"<rss>" + b"x" * 300_000 + b"</rss>")
    trusted = ssl.create_default_context(cafile=str(cert))

    async def fetch_twice() -> tuple[int, list[bytes]]:
        async with httpx.AsyncClient(verify=trusted) as client:
            reached = http_backend.install(client)
            url = f"https://127.0.0.1:{server.server_address[1]}/feed"
            return reached, [(await client.get(url)).content for _ in range(2)]

    reached, bodies = asyncio.run(fetch_twice())
    assert reached == 1
    assert bodies == [server.answer[1]] * 2
    assert server.connections == 1


class _ConnectProxy:
    """An HTTP proxy that only tunnels (CONNECT), as corporate proxies do for https."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.tunnels: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        target = head.split()[1].decode()
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self.listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def test_tls_through_a_tunnelling_proxy_upgrades_the_proxied_connection(
    server: _CountingServer, certificate: tuple[Path, Path]
) -> None:
    cert = _serve_tls(server, certificate)
    server.answer = (200, b"<rss>through the tunnel</rss>")
    proxy = _ConnectProxy()

    async def fetch() -> tuple[int, bytes]:
        trusted = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=trusted, proxy=proxy.url) as client:
            reached = http_backend.install(client)
            url = f"https://127.0.0.1:{server.server_address[1]}/feed"
            return reached, (await client.get(url)).content

    try:
        reached, body = asyncio.run(fetch())
    finally:
        proxy.close()
    assert reached >= 1
    assert body == b"<rss>through the tunnel</rss>"
    assert proxy.tunnels == [f"127.0.0.1:{server.server_address[1]}"]


def test_a_large_body_arrives_whole_through_the_read_buffer_limit(
    server: _CountingServer,
) -> None:
    # Larger than the backend's read buffer many times over, so reading pauses and resumes.
    body = bytes(range(256)) * 40_000
    server.answer = (200, body)
    url = f"http://127.0.0.1:{server.server_address[1]}/feed"

    async def fetch() -> bytes:
        fetcher = Fetcher(timeout=10.0, concurrency=2, max_body=len(body))
        try:
            result = await fetcher.fetch(url, FeedState("feed"))
            return result.body
        finally:
            await fetcher.close()

    assert asyncio.run(fetch()) == body


def test_a_refused_connection_and_a_silent_server_are_errors_with_reasons() -> None:
    with socket.socket() as unused, socket.socket() as silent:
        unused.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts, never answers

        async def fetch(port: int) -> str | None:
            fetcher = Fetcher(timeout=0.5, concurrency=2, max_body=1 << 20)
            try:
                result = await fetcher.fetch(f"http://127.0.0.1:{port}/feed", FeedState("f"))
                return result.error
            finally:
                await fetcher.close()

        refused = asyncio.run(fetch(unused.getsockname()[1]))
        silence = asyncio.run(fetch(silent.getsockname()[1]))
    assert refused is not None and refused.startswith("cannot connect (")
    assert "refused" in refused.lower()
    assert silence == "timed out after 0.5s"
