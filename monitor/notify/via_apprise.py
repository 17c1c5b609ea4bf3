"""`apprise`: Discord, Teams, Telegram, email, ntfy, Matrix and the rest, through Apprise
URLs. Apprise is synchronous, so each send runs in a worker thread; feed text is made
mention-free first, because several Apprise plugins turn `@everyone` or `<!channel>` into
live pings.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from monitor.config import AppriseNotifier
from monitor.models import Message, SendResult
from monitor.notify.text import templated
from monitor.render import defused, plain_alert, plain_digest

# Apprise's own log lines can carry parts of service URLs, which hold tokens. They stay out
# of our logs; the warnings of a failed send become its error detail, scrubbed.
_apprise_log = logging.getLogger("apprise")
_apprise_log.propagate = False
_apprise_log.addHandler(logging.NullHandler())  # else Python prints them as a last resort
# The capturing handler sits on Apprise's one logger, so sends take turns.
_capture_lock = threading.Lock()
MAX_DETAIL = 300


def recognised(url: str) -> bool:
    """Whether Apprise has a service for this URL."""
    import apprise

    with _captured():
        return apprise.Apprise.instantiate(url) is not None


class Apprise:
    def __init__(self, name: str, config: AppriseNotifier) -> None:
        import apprise

        self.name = name
        self._urls = [url.get_secret_value() for url in config.urls if url.get_secret_value()]
        self._timeout = config.timeout.total_seconds()
        self._template = config.template
        self._apprise = apprise.Apprise()
        with _captured():
            for url in self._urls:
                self._apprise.add(url)

    async def send(self, message: Message) -> SendResult:
        title, body = self.text(message)
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.to_thread(self._notify, title, body)
        except TimeoutError:
            # The thread cannot be stopped; if it still gets through, the retry repeats it,
            # which at-least-once delivery allows.
            return SendResult("retry", f"no answer within {self._timeout:g}s")

    def text(self, message: Message) -> tuple[str, str]:
        alerts = [defused(document) for document in message.alerts]
        title, body = plain_digest(alerts) if message.digest else plain_alert(alerts[0])
        if self._template:
            body = templated(self._template, message, defused) or body
        return title, body

    def _notify(self, title: str, body: str) -> SendResult:
        import apprise

        with _captured() as problems:
            accepted = self._apprise.notify(
                body=body, title=title, body_format=apprise.NotifyFormat.TEXT
            )
        if accepted:
            return SendResult("delivered", "accepted by every Apprise service")
        # Apprise cannot tell a dead address from an outage, so every failure is retried
        # until max_age; its warnings say which it was.
        detail = "; ".join(dict.fromkeys(problems))[:MAX_DETAIL]
        return SendResult("retry", detail or "an Apprise service did not accept the message")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def _captured() -> Iterator[list[str]]:
    handler = _Collect()
    with _capture_lock:
        _apprise_log.addHandler(handler)
        try:
            yield handler.lines
        finally:
            _apprise_log.removeHandler(handler)
