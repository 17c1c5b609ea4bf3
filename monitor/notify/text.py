"""Text messages from a user's template, shared by the text notifiers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monitor import logs
from monitor.models import Message
from monitor.render import is_notice
from monitor.templates import TemplateProblem, render_template

log = logs.get("notify")


def templated(
    template: str,
    message: Message,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] = lambda document: document,
) -> str | None:
    """Each alert through the template, a digest's alerts one after another; None when the
    template fails, so the caller falls back to the built-in text and the alert still goes
    out."""
    if any(is_notice(document) for document in message.alerts):
        return None  # templates describe alerts; feed notices keep their built-in text
    try:
        parts = [render_template(template, prepare(document)) for document in message.alerts]
    except TemplateProblem as problem:
        log.warning("%s; sending the built-in text instead", problem)
        return None
    return "\n\n".join(part.strip("\n") for part in parts)
