"""`console`: one readable line per alert on stdout, or the user's template."""

from __future__ import annotations

import sys

from monitor.models import Message, SendResult
from monitor.notify.text import templated
from monitor.render import console_text


class Console:
    def __init__(self, name: str, template: str | None = None) -> None:
        self.name = name
        self._template = template

    async def send(self, message: Message) -> SendResult:
        text = templated(self._template, message) if self._template else None
        print(text or console_text(message), file=sys.stdout, flush=True)
        return SendResult("delivered", "printed")
