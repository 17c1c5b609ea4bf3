"""Logging setup: readable text or one JSON object per line, with secret values
redacted from every record as a backstop behind never logging them in the first place.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

LOGGER = "monitor"
_CONTEXT_KEYS = ("feed", "rule", "notifier", "delivery")


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER}.{name}")


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        # Longest first, so a URL is masked whole before any token inside it.
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def _message(record: logging.LogRecord) -> str:
    """The message, and for a logged exception its type and text (never the traceback,
    whose frames' reprs may hold anything), masked like the message was."""
    message = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        detail = f": {error}" if str(error) else ""
        message += scrub(f" ({type(error).__name__}{detail})")
    return message


def _log_time(record: logging.LogRecord) -> str:
    # Milliseconds: a collector orders lines by this, and a poll logs several per second.
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(
            f"{key}={getattr(record, key)}" for key in _CONTEXT_KEYS if hasattr(record, key)
        )
        message = _message(record).replace("\n", "\\n").replace("\r", "\\r")
        prefix = f"{_log_time(record)} {record.levelname:<7}"
        return f"{prefix} {context} {message}" if context else f"{prefix} {message}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _log_time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
        }
        data.update({key: getattr(record, key) for key in _CONTEXT_KEYS if hasattr(record, key)})
        return json.dumps(data, ensure_ascii=False)


_redactor = RedactSecrets()


def setup(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "apscheduler", "pymorphy3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def scrub(text: str) -> str:
    """`text` with every registered secret masked: for error details that are stored and
    shown by commands, not only logged."""
    for secret in _redactor.secrets:
        text = text.replace(secret, "***")
    return text


def redact(secrets: Iterable[str]) -> None:
    """Register the config's secret values with the log filter."""
    _redactor.update(secrets)
