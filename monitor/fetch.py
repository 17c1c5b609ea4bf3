"""HTTP for feeds: one shared httpx.AsyncClient, bounded concurrency, conditional GET,
a whole-request deadline and a body cap. Returns FetchResult for every outcome and
never raises for network trouble; error texts never contain the URL.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from monitor import __version__
from monitor.closing import AsyncClosing
from monitor.models import FeedState, FetchResult

USER_AGENT = f"news-monitor/{__version__} (+https://github.com/news-monitor; feed alerting)"
MAX_REDIRECTS = 5

# httpx logs every request URL at INFO; feed and webhook URLs can carry tokens.
logging.getLogger("httpx").setLevel(logging.WARNING)
logging.getLogger("httpcore").setLevel(logging.WARNING)


class Fetcher(AsyncClosing):
    def __init__(self, timeout: float, concurrency: int, max_body: int) -> None:
        self.timeout = timeout
        self.max_body = max_body
        self._slots = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=httpx.Timeout(timeout),
            # A small pool: httpcore re-checks every pooled connection on each request.
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=10),
            # Only encodings whose decoded size we can bound while streaming.
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str, state: FeedState) -> FetchResult:
        headers = {
            "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9,"
            " text/xml;q=0.8, */*;q=0.5"
        }
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        async with self._slots:
            try:
                # httpx's timeouts are per read; a server dripping bytes runs far past them.
                async with asyncio.timeout(self.timeout):
                    return await self._get(url, headers)
            except TimeoutError:
                return FetchResult("error", error=f"timed out after {self.timeout:g}s")
            except httpx.TooManyRedirects:
                return FetchResult("error", error=f"more than {MAX_REDIRECTS} redirects")
            except httpx.HTTPError as error:
                return FetchResult("error", error=describe_http_error(error))

    async def _get(self, url: str, headers: dict[str, str]) -> FetchResult:
        async with self._client.stream("GET", url, headers=headers) as response:
            final_url = str(response.url)
            if response.status_code == 304:
                return FetchResult("not_modified", http_status=304, final_url=final_url)
            if response.status_code >= 400:
                return FetchResult(
                    "error",
                    http_status=response.status_code,
                    error=f"HTTP {response.status_code} {response.reason_phrase}",
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_body:
                return FetchResult("error", error=f"response larger than {self.max_body} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_body:
                    return FetchResult("error", error=f"response larger than {self.max_body} bytes")
                chunks.append(chunk)
            return FetchResult(
                "ok",
                body=b"".join(chunks),
                headers=dict(response.headers),
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
                final_url=final_url,
                http_status=response.status_code,
            )


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
