"""The one POST every HTTP notifier makes, and the status classes they share."""

from __future__ import annotations

import asyncio

import httpx

from monitor.fetch import describe_http_error, retry_after
from monitor.models import SendResult

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_ERROR_BODY = 300


async def post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> httpx.Response | SendResult:
    """The response, or a retryable SendResult for a transport failure."""
    try:
        async with asyncio.timeout(timeout):
            return await client.post(url, content=body, headers=headers, timeout=timeout)
    except TimeoutError:
        return SendResult("retry", f"no answer within {timeout:g}s")
    except httpx.HTTPError as error:
        return SendResult("retry", describe_http_error(error))


def classify_status(response: httpx.Response) -> SendResult:
    """2xx delivered; 429/5xx/408/425 retry (honouring Retry-After); other codes,
    redirects included, are permanent: a receiver that moved must be reconfigured."""
    status = response.status_code
    if 200 <= status < 300:
        return SendResult("delivered", f"HTTP {status}")
    detail = f"HTTP {status}" + _body_excerpt(response)
    if status in RETRYABLE_STATUS:
        return SendResult("retry", detail, retry_after=retry_after(response))
    return SendResult("failed", detail)


def _body_excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())[:MAX_ERROR_BODY]
    return f": {text}" if text else ""
