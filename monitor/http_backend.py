"""The network backend under our httpx client: connections as plain asyncio transports,
in place of httpcore's anyio streams.

A quiet poll (a 304) is a handful of reads and writes, and on each one the anyio stream
opened a cancel scope for its timeout; before every request httpcore also asks each idle
pooled connection whether the server closed it, which the anyio stream answered with a
`getpeername` and a `poll` system call. Here a connection's protocol object already knows
what the event loop delivered (data, end of stream, loss), so that question costs
nothing, and a timeout is an `asyncio.timeout`. A `poll` of 1,000 feeds answering 304
over 10 kept-alive connections went from 1.10 to 0.98 s, startup included
(bench/RESULTS.md, session 9).

Errors are httpcore's own exception types, as the anyio backend raises them, so httpx
maps them to the same httpx exceptions and `fetch.describe_http_error` words them alike.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Coroutine, Iterable
from typing import Any

import httpcore
import httpx

# Received bytes held for a reader before the socket stops being read: a reader takes
# at most 64 KiB at a time, and a fast server must not fill memory ahead of it.
_READ_HIGH_WATER = 256 << 10
# RFC 8305's recommended wait before trying a host's next address in parallel.
_HAPPY_EYEBALLS_DELAY = 0.25


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        connecting = loop.create_connection(
            _Protocol,
            host,
            port,
            local_addr=(local_address, 0) if local_address else None,
            happy_eyeballs_delay=_HAPPY_EYEBALLS_DELAY,
        )
        return await _connected(connecting, timeout, socket_options)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        connecting = asyncio.get_running_loop().create_unix_connection(_Protocol, path)
        return await _connected(connecting, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _connected(
    connecting: Coroutine[Any, Any, tuple[asyncio.Transport, _Protocol]],
    timeout: float | None,
    socket_options: Iterable[Any] | None,
) -> _Stream:
    try:
        async with asyncio.timeout(timeout):
            transport, protocol = await connecting
    except TimeoutError as error:
        raise httpcore.ConnectTimeout("timed out while connecting") from error
    except OSError as error:
        raise httpcore.ConnectError(_reason(error)) from error
    _set_options(transport, socket_options)
    return _Stream(transport, protocol)


def _reason(error: OSError) -> str:
    """The system's words for a failed connect, without the address asyncio adds."""
    if isinstance(error, socket.gaierror):
        return error.strerror or str(error)
    if error.errno and error.errno > 0:
        return os.strerror(error.errno)
    if str(error).startswith("Multiple exceptions"):
        return "every address of the host failed"
    return str(error)


def _set_options(transport: asyncio.BaseTransport, options: Iterable[Any] | None) -> None:
    sock: socket.socket | None = transport.get_extra_info("socket")
    for option in options or ():
        if sock is not None:
            sock.setsockopt(*option)


class _Protocol(asyncio.Protocol):
    """What the event loop delivered on one connection, waiting for its reader."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.ended = False  # end of stream, or the connection is gone
        self.error: Exception | None = None
        self._reading_paused = False
        self.writing_paused = False  # the transport's buffer is full: wait to write more
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _READ_HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self._reading_paused = True
        _wake(self._readable)

    def eof_received(self) -> bool:
        self.ended = True
        _wake(self._readable)
        return False  # nothing more to send on an HTTP/1.1 connection the server ended

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        _wake(self._readable)
        _wake(self._writable)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        _wake(self._writable)

    def take(self, max_bytes: int) -> bytes:
        data = bytes(self.buffer[:max_bytes])
        del self.buffer[:max_bytes]
        if self._reading_paused and len(self.buffer) <= _READ_HIGH_WATER // 2:
            self._reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()
        return data

    async def readable(self) -> None:
        self._readable = asyncio.get_running_loop().create_future()
        try:
            await self._readable
        finally:
            self._readable = None

    async def writable(self) -> None:
        while self.writing_paused and not self.ended:
            self._writable = asyncio.get_running_loop().create_future()
            try:
                await self._writable
            finally:
                self._writable = None


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.ended:
            try:
                async with asyncio.timeout(timeout):
                    while not protocol.buffer and not protocol.ended:
                        await protocol.readable()
            except TimeoutError as error:
                raise httpcore.ReadTimeout("timed out while reading") from error
        if protocol.buffer:
            return protocol.take(max_bytes)
        if protocol.error is not None:
            raise httpcore.ReadError(str(protocol.error)) from protocol.error
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.ended or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        if protocol.writing_paused:
            try:
                async with asyncio.timeout(timeout):
                    await protocol.writable()
            except TimeoutError as error:
                raise httpcore.WriteTimeout("timed out while writing") from error
        if protocol.error is not None:
            raise httpcore.WriteError(str(protocol.error)) from protocol.error

    async def aclose(self) -> None:
        self._transport.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as error:
            self._transport.close()
            raise httpcore.ConnectTimeout("timed out during the TLS handshake") from error
        except (OSError, ssl.SSLError) as error:
            self._transport.close()
            raise httpcore.ConnectError(str(error)) from error
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._protocol.transport = transport
        return _Stream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Idle, so anything the loop delivered is the server closing it, or garbage.
            return bool(self._protocol.buffer) or self._protocol.ended
        key = {
            "ssl_object": "ssl_object",
            "client_addr": "sockname",
            "server_addr": "peername",
            "socket": "socket",
        }.get(info)
        return self._transport.get_extra_info(key) if key else None


def install(client: httpx.AsyncClient) -> int:
    """Put the backend under the connection pools of a client's transports, proxied ones
    included (httpx offers no parameter for it). Returns how many it reached: a later httpx
    or httpcore that moved these attributes keeps its own backend, slower but as correct."""
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    reached = 0
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = AsyncioBackend()
            reached += 1
    return reached
