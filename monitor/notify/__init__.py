"""Notifiers: one module per service. Each renders nothing itself beyond calling render,
sends bytes, and classifies the response into a SendResult. The registry is a dict.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from monitor.config import (
    AppriseNotifier,
    ConsoleNotifier,
    NotifierConfig,
    SlackNotifier,
    WebhookNotifier,
)
from monitor.models import Message, SendResult


class Notifier(Protocol):
    name: str

    async def send(self, message: Message) -> SendResult: ...


def build_notifiers(
    configs: dict[str, NotifierConfig], client: httpx.AsyncClient
) -> dict[str, Notifier]:
    from monitor.notify.console import Console
    from monitor.notify.slack import Slack
    from monitor.notify.webhook import Webhook

    built: dict[str, Notifier] = {}
    for name, config in configs.items():
        if isinstance(config, ConsoleNotifier):
            built[name] = Console(name, config.template)
        elif isinstance(config, WebhookNotifier):
            built[name] = Webhook(name, config, client)
        elif isinstance(config, SlackNotifier):
            built[name] = Slack(name, config, client)
        elif isinstance(config, AppriseNotifier):
            # Imported only when used: Apprise loads every service plugin it has.
            from monitor.notify.via_apprise import Apprise

            built[name] = Apprise(name, config)
    return built
