"""monitor/templates.py and its users: user templates render the alert's fields in a sandbox,
feed text stays data, a broken template is a config error with its line, and a template
that fails at send time falls back to the built-in text."""

from __future__ import annotations

import asyncio
import copy
import logging
import textwrap
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import ConsoleNotifier, loads
from monitor.errors import ConfigError
from monitor.models import Entry, Hit, Item, Match, Message
from monitor.notify.console import Console
from monitor.notify.text import templated
from monitor.render import alert_document, console_text, defused, with_sources
from monitor.templates import MAX_OUTPUT, TemplateProblem, compile_template, render_template

ZWSP = "\u200b"
DETECTED = datetime(2026, 11, 24, 12, 0, 5, tzinfo=UTC)


def document(title: str = "DPRK troops reach Kursk", n: int = 0) -> dict[str, Any]:
    published = datetime(2026, 11, 24, 11, 58, tzinfo=UTC)
    entry = Entry(
        f"g{n}", "https://news.example/a", title, "Officials say so.", "", "", (), published
    )
    item = Item("wire", f"k{n}", entry, "en", f"h{n}")
    hits = (Hit("troops", "title", 5, 11, "troops"), Hit("kursk", "title", 18, 23, "Kursk"))
    other = {"feed": "other", "title": "t", "url": "https://o.example/"}
    return with_sources(alert_document(f"al_{n}", Match("dprk", hits), item, DETECTED), [other])


# --- rendering --------------------------------------------------------------------------


def test_a_template_sees_the_alert_fields() -> None:
    source = (
        "[{{ rule }}] {{ story.title }} ({{ story.feed }}, {{ story.published_at }})\n"
        "{{ story.url }}\n"
        "{% for term in matched %}#{{ term }}{% if not loop.last %} {% endif %}{% endfor %}\n"
        "{% for hit in hits %}{{ hit.field }}:{{ hit.text }};{% endfor %}\n"
        "{{ story.also_reported_by | map(attribute='feed') | join(', ') }} · {{ id }}"
        " · {{ detected_at }} · {{ matched | length }}"
    )
    assert render_template(source, document()).splitlines() == [
        "[dprk] DPRK troops reach Kursk (wire, 2026-11-24T11:58:00Z)",
        "https://news.example/a",
        "#kursk #troops",
        "title:troops;title:Kursk;",
        "other · al_0 · 2026-11-24T12:00:05Z · 2",
    ]


def test_a_missing_field_renders_empty_but_a_missing_object_fails() -> None:
    assert render_template("<{{ story.nothing }}>", document()) == "<>"
    with pytest.raises(TemplateProblem, match="'nope' is undefined"):
        render_template("{{ nope.title }}", document())


def test_runtime_errors_become_one_sentence_problems() -> None:
    with pytest.raises(TemplateProblem, match="ZeroDivisionError"):
        render_template("{{ 1 / 0 }}", document())
    with pytest.raises(TemplateProblem, match="Range too big"):
        render_template("{% for i in range(10**9) %}x{% endfor %}", document())


def test_output_is_bounded() -> None:
    out = render_template("{% for i in range(50000) %}x{% endfor %}", document())
    assert out == "x" * MAX_OUTPUT


@given(
    st.text(max_size=200)
    | st.sampled_from(["{{ 7*7 }}", "{% for x in range(3) %}x{% endfor %}", "{# c #}", "{{"])
)
def test_feed_text_is_data_never_a_template(title: str) -> None:
    assert render_template("{{ story.title }}", document(title)) == title


def test_a_headline_that_looks_like_a_template_is_printed_as_written() -> None:
    hostile = "{{ 7*7 }} {{ ''.__class__.__mro__ }} {% raw %}"
    out = render_template("Title: {{ story.title }}", document(hostile))
    assert out == f"Title: {hostile}"
    assert "49" not in out


# --- the sandbox ------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ story.title.__class__.__base__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__['os'] }}",
    "{{ (story.items() | list)[0].__class__.__mro__ }}",
    "{{ '{0.__class__.__mro__}'.format(story) }}",
    "{{ '{title.__class__.__mro__}'.format_map(story) }}",
    "{{ story.update({'title': 'x'}) }}",
    "{{ story.pop('title') }}",
    "{{ matched.append('x') }}",
    "{{ matched.sort() }}",
    "{{ hits[0].clear() }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_the_sandbox_refuses_escapes_and_changes(source: str) -> None:
    alert = document()
    kept = copy.deepcopy(alert)
    with pytest.raises(TemplateProblem, match="unsafe") as caught:
        render_template(source, alert)
    assert str(caught.value).startswith("template failed: ")
    assert alert == kept  # the alert is untouched


LEAKS = [
    "{{ story.__class__ }}",
    "{{ story | attr('__class__') }}",
    "{{ lipsum.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ range.__self__ }}",
    "{% set d = story.__dict__ %}{{ d }}",
    "{{ '{0.__class__}'.format(story) }}",
    "{{ config }}{{ request }}{{ os }}",
]


@pytest.mark.parametrize("source", LEAKS)
def test_internals_read_alone_render_as_nothing(source: str) -> None:
    # Jinja's sandbox answers a lone unsafe attribute with an undefined value: it prints
    # as nothing, and anything done with it fails (above). Either way nothing leaks.
    assert render_template(source, document()) == ""


@pytest.mark.parametrize(
    "source",
    [
        "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
        "{{ story.title | truncate(-5) }}",
    ],
)
def test_every_render_failure_is_a_template_problem(source: str) -> None:
    compile_template(source)  # it compiles, so the config loads
    with pytest.raises(TemplateProblem):
        render_template(source, document())


# --- config -----------------------------------------------------------------------------


def config_problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loads(textwrap.dedent(text), "monitor.yaml", {})
    return caught.value.problems


def test_a_template_syntax_error_is_a_config_error_with_notifier_and_line() -> None:
    problems = config_problems("""\
        notifiers:
          screen: {type: console}
          chat:
            type: console
            template: |
              line one
              {% for term in matched %}
              {{ term }
              {% endfor %}
        """)
    assert len(problems) == 1
    [problem] = problems
    assert problem.startswith("monitor.yaml:5: notifiers.chat.template: ")
    assert "is not a valid Jinja2 template (template line 3)" in problem


def test_an_unclosed_block_is_a_config_error() -> None:
    [problem] = config_problems("""\
        notifiers:
          chat: {type: console, template: "{% for x in matched %}{{ x }}"}
        """)
    assert problem.startswith("monitor.yaml:2: notifiers.chat.template: ")
    assert "Jinja2" in problem


def test_a_good_template_loads() -> None:
    config = loads(
        'notifiers:\n  chat: {type: console, template: "{{ rule }}: {{ story.title }}"}\n',
        "monitor.yaml",
        {},
    )
    chat = config.notifiers["chat"]
    assert isinstance(chat, ConsoleNotifier)
    assert chat.template == "{{ rule }}: {{ story.title }}"


def test_a_webhook_takes_no_template() -> None:
    [problem] = config_problems("""\
        notifiers:
          hook: {type: webhook, url: "https://hooks.example/x", template: "{{ rule }}"}
        """)
    assert "notifiers.hook.template: unknown key" in problem


# --- at send time -------------------------------------------------------------------------


def test_templated_renders_each_alert_of_a_digest() -> None:
    message = Message("dg_1", (document("One troops", 1), document("Two troops", 2)), True)
    assert templated("- {{ story.title }}\n", message) == "- One troops\n\n- Two troops"


def test_templated_with_defused_cannot_ping() -> None:
    message = Message("msg_1", (document("@everyone <!channel> troops"),))
    raw = templated("{{ story.title }}", message)
    assert raw == "@everyone <!channel> troops"
    safe = templated("{{ story.title }}", message, defused)
    assert safe == f"@{ZWSP}everyone <{ZWSP}!channel> troops"


def test_a_failing_template_falls_back_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    message = Message("msg_1", (document(),))
    with caplog.at_level(logging.WARNING, logger="monitor.notify"):
        assert templated("{{ nope.x }}", message) is None
    [record] = [r for r in caplog.records if r.name == "monitor.notify"]
    assert record.levelno == logging.WARNING
    assert "'nope' is undefined" in record.getMessage()
    assert "built-in text" in record.getMessage()


def test_a_console_with_a_failing_template_prints_the_built_in_line(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    message = Message("msg_1", (document(),))
    console = Console("screen", "{{ story.title.__class__.__mro__ }}")
    with caplog.at_level(logging.WARNING, logger="monitor.notify"):
        result = asyncio.run(console.send(message))
    assert result.outcome == "delivered"
    assert capsys.readouterr().out == console_text(message) + "\n"
    assert any("unsafe" in r.getMessage() for r in caplog.records if r.name == "monitor.notify")


def test_a_console_with_a_working_template_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    message = Message("msg_1", (document(),))
    asyncio.run(Console("screen", ">> {{ story.title | upper }}").send(message))
    assert capsys.readouterr().out == ">> DPRK TROOPS REACH KURSK\n"


def test_a_console_with_a_recursing_template_still_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = Message("msg_1", (document(),))
    console = Console("screen", "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}")
    result = asyncio.run(console.send(message))
    assert result.outcome == "delivered"
    assert capsys.readouterr().out == console_text(message) + "\n"
