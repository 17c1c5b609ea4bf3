"""User templates (Jinja2) for text notifiers, in a sandbox: a template comes from a config
file, and feed text comes from strangers, so neither may reach Python objects or files.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Feed text is plain text and every text notifier takes plain text: no autoescape.
_environment = ImmutableSandboxedEnvironment(
    autoescape=False, undefined=Undefined, keep_trailing_newline=False
)

# Big enough for any sensible alert, small enough that a loop in a template cannot fill
# memory or a chat channel.
MAX_OUTPUT = 20_000


class TemplateProblem(ValueError):
    """A template that does not compile, or failed while rendering; one sentence."""


@lru_cache(maxsize=64)
def compile_template(source: str) -> Any:
    try:
        return _environment.from_string(source)
    except TemplateError as error:
        line = getattr(error, "lineno", None)
        where = f" (template line {line})" if line else ""
        raise TemplateProblem(f"is not a valid Jinja2 template{where}: {error.message}") from None


def render_template(source: str, document: dict[str, Any]) -> str:
    """The alert document's fields are the template's variables: `rule`, `matched`,
    `story.title`, `story.url`, `story.feed`, `story.summary`, `story.published_at`,
    `story.also_reported_by`, `detected_at`, `id`, `hits`."""
    try:
        text = str(compile_template(source).render(**document))
    except TemplateError as error:
        raise TemplateProblem(f"template failed: {error.message}") from None
    except Exception as error:  # a template may fail any way Python can (a macro recursing)
        raise TemplateProblem(f"template failed: {type(error).__name__}: {error}") from None
    return text[:MAX_OUTPUT]
