"""`webhook`: POST the alert document (or a digest of them) as JSON, signed per Standard
Webhooks when a secret is set. The webhook-id is the message id, the same on every retry."""

from __future__ import annotations

import time

import httpx

from monitor.config import WebhookNotifier
from monitor.models import Message, SendResult
from monitor.notify.http import classify_status, post
from monitor.notify.signing import sign
from monitor.render import message_body


class Webhook:
    def __init__(self, name: str, config: WebhookNotifier, client: httpx.AsyncClient) -> None:
        self.name = name
        self._url = config.url.get_secret_value()
        self._secret = config.secret.get_secret_value() if config.secret else ""
        self._extra = {key: value.get_secret_value() for key, value in config.headers.items()}
        self._timeout = config.timeout.total_seconds()
        self._client = client

    def headers(self, message_id: str, body: bytes, timestamp: int) -> dict[str, str]:
        headers = {
            **self._extra,
            "Content-Type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
        }
        if self._secret:
            headers["webhook-signature"] = sign(self._secret, message_id, timestamp, body)
        return headers

    async def send(self, message: Message) -> SendResult:
        body = message_body(message)
        headers = self.headers(message.id, body, int(time.time()))
        response = await post(self._client, self._url, body, headers, self._timeout)
        return response if isinstance(response, SendResult) else classify_status(response)
