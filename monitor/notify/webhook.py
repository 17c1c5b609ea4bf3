"""`webhook`: POST the alert document as JSON, signed per Standard Webhooks when a
secret is set. The webhook-id is the delivery id, the same on every retry."""

from __future__ import annotations

import time
from typing import Any

import httpx

from monitor.config import WebhookNotifier
from monitor.models import SendResult
from monitor.notify.http import classify_status, post
from monitor.notify.signing import sign
from monitor.render import webhook_body


class Webhook:
    def __init__(self, name: str, config: WebhookNotifier, client: httpx.AsyncClient) -> None:
        self.name = name
        self._url = config.url.get_secret_value()
        self._secret = config.secret.get_secret_value() if config.secret else ""
        self._timeout = config.timeout.total_seconds()
        self._client = client

    def headers(self, delivery_id: str, body: bytes, timestamp: int) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "webhook-id": delivery_id,
            "webhook-timestamp": str(timestamp),
        }
        if self._secret:
            headers["webhook-signature"] = sign(self._secret, delivery_id, timestamp, body)
        return headers

    async def send(self, delivery_id: str, document: dict[str, Any]) -> SendResult:
        body = webhook_body(document)
        headers = self.headers(delivery_id, body, int(time.time()))
        response = await post(self._client, self._url, body, headers, self._timeout)
        return response if isinstance(response, SendResult) else classify_status(response)
