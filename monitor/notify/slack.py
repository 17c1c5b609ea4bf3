"""`slack`: an incoming-webhook message in Block Kit, paced to one message a second
per webhook; Slack's plain-text error codes become clear permanent or transient failures.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from monitor.config import SlackNotifier
from monitor.fetch import retry_after
from monitor.models import Message, SendResult
from monitor.notify.http import classify_status, post
from monitor.render import slack_digest, slack_message

MIN_INTERVAL = 1.0
# Codes Slack answers with that mean the webhook itself is broken or gone.
_TARGET_BROKEN = {
    "no_service": "the Slack webhook was removed or disabled",
    "no_service_id": "the Slack webhook was removed or disabled",
    "no_active_hooks": "the Slack webhook was removed or disabled",
    "channel_not_found": "the Slack channel no longer exists",
    "channel_is_archived": "the Slack channel is archived",
    "invalid_token": "the Slack webhook token is invalid",
    "team_disabled": "the Slack workspace is disabled",
    "action_prohibited": "the Slack workspace forbids posting here",
    "posting_to_general_channel_denied": "posting to this Slack channel is not allowed",
    "invalid_payload": "Slack rejected the message as invalid (a bug in news-monitor)",
    "invalid_blocks": "Slack rejected the message blocks (a bug in news-monitor)",
}


class Slack:
    def __init__(self, name: str, config: SlackNotifier, client: httpx.AsyncClient) -> None:
        self.name = name
        self._url = config.url.get_secret_value()
        self._timeout = config.timeout.total_seconds()
        self._client = client
        self._last_sent = 0.0
        self._pace = asyncio.Lock()

    async def send(self, message: Message) -> SendResult:
        alerts = message.alerts
        payload = slack_digest(alerts) if message.digest else slack_message(alerts[0])
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        async with self._pace:
            # Slack allows about one message a second per webhook and may disable
            # webhooks that keep sending after a 429.
            wait = self._last_sent + MIN_INTERVAL - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            response = await post(
                self._client, self._url, body, {"Content-Type": "application/json"}, self._timeout
            )
            self._last_sent = time.monotonic()
        if isinstance(response, SendResult):
            return response
        return classify_slack(response)


def classify_slack(response: httpx.Response) -> SendResult:
    code = response.text.strip()
    if response.status_code == 200:
        # An intercepting proxy or login page can answer 200; only "ok" is success.
        if code == "ok":
            return SendResult("delivered", "ok")
        return SendResult("retry", f"Slack answered 200 without 'ok': {code[:100]!r}")
    if response.status_code == 429:
        return SendResult("retry", "rate limited by Slack", retry_after=retry_after(response))
    if code in _TARGET_BROKEN:
        return SendResult("failed", f"{_TARGET_BROKEN[code]} ({code})")
    return classify_status(response)
