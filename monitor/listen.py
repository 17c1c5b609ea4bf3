"""`run --listen HOST:PORT`: `/healthz` and `/metrics` over plain HTTP on the daemon's own
event loop. Small on purpose: two GET routes, one request per connection, bounded reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor import logs
from monitor.metrics import Metrics

log = logs.get("listen")
MAX_REQUEST = 8192
READ_TIMEOUT = 5.0


def parse_address(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `:PORT` (every interface) or `[::1]:PORT`; ValueError otherwise."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (for example 0.0.0.0:8080)")
    return host.strip("[]") or "0.0.0.0", int(port)


async def serve(
    host: str, port: int, health: Callable[[], str | None], metrics: Metrics
) -> asyncio.Server:
    """Start listening. `health` returns None when healthy, else the reason it is not."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
            status, content_type, body = _answer(head, health, metrics)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            status, content_type, body = 400, "text/plain", b"bad request\n"
        except Exception:  # a bug in a check must not take the listener down
            log.exception("health or metrics failed")
            status, content_type, body = 500, "text/plain", b"internal error\n"
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  500: "Internal Server Error", 503: "Service Unavailable"}[status]  # fmt: skip
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, host, port, limit=MAX_REQUEST)


def _answer(
    head: bytes, health: Callable[[], str | None], metrics: Metrics
) -> tuple[int, str, bytes]:
    method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
    path = rest.split(" ", 1)[0].split("?", 1)[0]
    if method not in ("GET", "HEAD"):
        return 405, "text/plain", b"only GET\n"
    if path == "/healthz":
        problem = health()
        if problem is None:
            return 200, "text/plain; charset=utf-8", b"ok\n"
        return 503, "text/plain; charset=utf-8", f"unhealthy: {problem}\n".encode()
    if path == "/metrics":
        return 200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry)
    return 404, "text/plain", b"not found: try /healthz or /metrics\n"
