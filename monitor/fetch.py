"""HTTP for feeds: one shared httpx.AsyncClient, bounded concurrency overall and per host,
conditional GET, a whole-request deadline and a body cap counted after decompression.
Returns FetchResult for every outcome and never raises for network trouble; error texts
never contain the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
import sniffio

from monitor import __version__, http_backend
from monitor.clock import utcnow
from monitor.closing import AsyncClosing
from monitor.models import FeedState, FetchResult

USER_AGENT = f"news-monitor/{__version__} (+https://github.com/news-monitor; feed alerting)"
MAX_REDIRECTS = 5
PERMANENT_REDIRECTS = frozenset({301, 308})
# An answer without a feed (304, 410, an error page) is read to its end, so its connection
# can be reused, only when it is at most this big and arrives within this long.
_SMALL_BODY = 64 << 10
_SMALL_BODY_SECONDS = 1.0
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json,"
    " application/xml;q=0.9, text/xml;q=0.8, application/json;q=0.7, */*;q=0.5"
)

# httpx logs every request URL at INFO; feed and webhook URLs can carry tokens.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)


class BodyTooLarge(Exception):
    pass


class _SetCookiesOnly(httpx.Cookies):
    """The client's cookie jar, looked at only for responses that set a cookie. httpx
    builds urllib stand-ins of every request and response to find their cookies, a
    twentieth of a quiet poll's cost, and feeds almost never set any; the few that do
    (a cookie, then a redirect back to the feed) still get theirs kept and sent."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers:
            super().extract_cookies(response)


class Fetcher(AsyncClosing):
    def __init__(
        self,
        timeout: float,
        concurrency: int,
        max_body: int,
        per_host: int = 2,
        proxy: str | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_body = max_body
        self._slots = asyncio.Semaphore(concurrency)
        # Politeness: many feeds on one host must not hit it all at once.
        self._per_host = per_host
        self._hosts: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(self._per_host)
        )
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=httpx.Timeout(timeout),
            # A small pool: httpcore re-checks every pooled connection on each request.
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=10),
            # Only encodings we decompress ourselves, in bounded steps (_decoded).
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
            proxy=proxy,
        )
        http_backend.install(self._client)
        if isinstance(getattr(self._client, "_cookies", None), httpx.Cookies):
            self._client._cookies = _SetCookiesOnly()

    async def close(self) -> None:
        await self._client.aclose()

    async def fetch(
        self, url: str, state: FeedState, extra_headers: Mapping[str, str] | None = None
    ) -> FetchResult:
        headers = {"Accept": ACCEPT, **(extra_headers or {})}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        async with self._slots, self._hosts[_host(url)]:
            try:
                # httpx's timeouts are per read; a server dripping bytes runs far past them.
                async with asyncio.timeout(self.timeout):
                    return await self._get(url, headers)
            except TimeoutError:
                return FetchResult("error", error=f"timed out after {self.timeout:g}s")
            except httpx.TooManyRedirects:
                return FetchResult("error", error=f"more than {MAX_REDIRECTS} redirects")
            except BodyTooLarge:
                return FetchResult(
                    "error", error=f"response larger than {self.max_body} bytes (decompressed)"
                )
            except zlib.error:
                return FetchResult("error", error="the response body could not be decompressed")
            except httpx.HTTPError as error:
                return FetchResult("error", error=describe_http_error(error))

    async def _get(self, url: str, headers: dict[str, str]) -> FetchResult:
        async with self._client.stream("GET", url, headers=headers) as response:
            final_url = str(response.url)
            moved_to = _permanent_move(response)
            status = response.status_code
            if status in (304, 410) or not 200 <= status < 400:
                # No feed in the body (304, 410, an error page): only its connection matters.
                await _finish_small_body(response)
            if status == 304:
                return FetchResult(
                    "not_modified", http_status=304, final_url=final_url, moved_to=moved_to
                )
            if status == 410:
                return FetchResult("gone", http_status=410, error="HTTP 410 Gone")
            if status >= 400 or status < 200:
                return FetchResult(
                    "error",
                    http_status=status,
                    error=f"HTTP {status} {response.reason_phrase}".strip(),
                    retry_after=retry_after(response) if status in (429, 503) else None,
                )
            declared = response.headers.get("content-length", "")
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            plain = encoding in ("", "identity")
            if plain and declared.isdigit() and int(declared) > self.max_body:
                raise BodyTooLarge
            if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
                return FetchResult("error", error=f"unsupported Content-Encoding {encoding!r}")
            body = await self._decoded(response.aiter_raw(), encoding)
            return FetchResult(
                "ok",
                body=body,
                headers=dict(response.headers),
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                final_url=final_url,
                http_status=status,
                moved_to=moved_to,
            )

    async def _decoded(self, raw: AsyncIterator[bytes], encoding: str) -> bytes:
        """The body, decompressed in steps of at most what is still allowed: httpx would
        inflate a 200 KB gzip bomb into one 67 MB chunk before we could count it."""
        inflate = _Inflater(encoding) if encoding not in ("", "identity") else None
        chunks: list[bytes] = []
        size = 0
        async for data in raw:
            pieces = inflate.feed(data, self.max_body - size + 1) if inflate else [data]
            for piece in pieces:
                size += len(piece)
                if size > self.max_body:
                    raise BodyTooLarge
                chunks.append(piece)
        if inflate:
            chunks.append(inflate.finish(self.max_body - size + 1))
            if size + len(chunks[-1]) > self.max_body:
                raise BodyTooLarge
        return b"".join(chunks)


class _Inflater:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), never producing
    more than asked for at a time."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 32 if self._gzip else zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes, limit: int) -> list[bytes]:
        if not self._started and not self._gzip:
            self._started = True
            try:
                return self._drain(data, limit)
            except zlib.error:
                # "deflate" sent without its zlib header: start over as raw deflate.
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        self._started = True
        return self._drain(data, limit)

    def _drain(self, data: bytes, limit: int) -> list[bytes]:
        out: list[bytes] = []
        produced = 0
        while data and produced <= limit:
            if self._inflate.eof:
                break  # trailing garbage after the stream: ignored, as browsers do
            piece = self._inflate.decompress(data, max(limit - produced, 1))
            out.append(piece)
            produced += len(piece)
            data = self._inflate.unconsumed_tail
        return out

    def finish(self, limit: int) -> bytes:
        return self._inflate.flush(max(limit, 1)) if not self._inflate.eof else b""


async def _finish_small_body(response: httpx.Response) -> None:
    """Read an unused body to its end when it is small and quick, so the connection goes
    back to the pool: httpcore closes one whose response was left unread, and a pass of
    1,000 304s from one host then opened 1,000 connections. Anything else (large, slow,
    broken) is left, and closing the response closes that connection only."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _SMALL_BODY:
        return
    size = 0
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(_SMALL_BODY_SECONDS):
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > _SMALL_BODY:
                    return


def _permanent_move(response: httpx.Response) -> str | None:
    hops = response.history
    if hops and all(hop.status_code in PERMANENT_REDIRECTS for hop in hops):
        return str(response.url)
    return None


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds, from a number or an HTTP date; None if absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
        except (TypeError, ValueError):
            return None
    return None


def describe_http_error(error: httpx.HTTPError) -> str:
    """A sentence about a transport failure, built from its type and OS reason only:
    httpx puts the full URL (and any token in it) into its own messages."""
    reason = str(error.__cause__ or error.__context__ or "")
    if "://" in reason or not reason:
        reason = ""
    if isinstance(error, httpx.ConnectError):
        if "name or service not known" in reason.lower() or "name resolution" in reason.lower():
            return "cannot connect: the host name does not resolve (DNS)"
        return f"cannot connect{f' ({reason})' if reason else ''}"
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.RemoteProtocolError):
        return "the server broke the HTTP protocol or closed the connection early"
    if isinstance(error, httpx.DecodingError):
        return "the response body could not be decompressed"
    return f"request failed ({type(error).__name__})"


def declare_asyncio() -> None:
    """Tell sniffio, which httpcore and anyio ask several times per request, that this
    context runs asyncio: otherwise it finds out each time by asking for the current
    task, about a tenth of the client's cost on a pass of 304s. Tasks created from here
    on inherit the answer."""
    sniffio.current_async_library_cvar.set("asyncio")
