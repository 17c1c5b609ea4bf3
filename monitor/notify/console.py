"""`console`: one readable line per alert on stdout."""

from __future__ import annotations

import sys
from typing import Any

from monitor.models import SendResult
from monitor.render import console_line


class Console:
    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, delivery_id: str, document: dict[str, Any]) -> SendResult:
        print(console_line(document), file=sys.stdout, flush=True)
        return SendResult("delivered", "printed")
