"""monitor/config.py: YAML → validated Config, every problem reported at once with its line."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import (
    Config,
    ConsoleNotifier,
    SlackNotifier,
    WebhookNotifier,
    _checked,
    _parse_plain,
    _parse_yaml,
    load,
    loads,
    parse_duration,
)
from monitor.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
WHERE = "monitor.yaml"


def config_of(text: str, environ: dict[str, str] | None = None) -> Config:
    return loads(textwrap.dedent(text), WHERE, environ or {})


def problems_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_of(text, environ)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def lines_of(problems: list[str]) -> list[int]:
    numbers = []
    for problem in problems:
        found = re.match(rf"{re.escape(WHERE)}:(\d+): ", problem)
        assert found, problem
        numbers.append(int(found.group(1)))
    return numbers


# --- the repository's configs --------------------------------------------------------------------


def test_default_config_loads_without_any_environment() -> None:
    config = load(ROOT / "config" / "monitor.yaml", environ={})
    assert config.storage == "./data/monitor.db"
    assert config.retention == timedelta(days=90)
    assert config.poll.interval == timedelta(minutes=5)
    assert config.poll.jitter == timedelta(seconds=30)
    assert config.poll.timeout == timedelta(seconds=20)
    assert config.poll.concurrency == 20
    assert config.poll.backfill == timedelta(hours=24)
    assert len(config.feeds) == 8
    assert len({feed.display_name() for feed in config.feeds}) == 8
    assert {rule.name for rule in config.rules} >= {"dprk-troops", "red-line"}
    assert set(config.notifiers) == {"console", "slack", "ops"}
    # Slack and the webhook are switched off while their variables are unset.
    assert set(config.disabled_notifiers) == {"slack", "ops"}
    assert list(config.active_notifiers()) == ["console"]
    for rule in config.rules:
        assert config.rule_targets(rule) == ("console",)
    assert config.secrets() == []


def test_default_config_with_the_environment_set() -> None:
    environ = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/abcdefSECRET",
        "ALERT_WEBHOOK_URL": "https://ops.example.com/hook",
        "ALERT_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "NEWS_MONITOR_STORAGE": "/data/monitor.db",
    }
    config = load(ROOT / "config" / "monitor.yaml", environ=environ)
    assert config.storage == "/data/monitor.db"
    assert config.disabled_notifiers == ()
    assert set(config.active_notifiers()) == {"console", "slack", "ops"}
    assert isinstance(config.notifiers["slack"], SlackNotifier)
    ops = config.notifiers["ops"]
    assert isinstance(ops, WebhookNotifier)
    assert ops.url.get_secret_value() == "https://ops.example.com/hook"
    assert ops.secret is not None
    assert ops.secret.get_secret_value() == environ["ALERT_WEBHOOK_SECRET"]
    # Whole values, and the token inside a URL, which a service may echo on its own.
    assert set(config.secrets()) == {
        environ["SLACK_WEBHOOK_URL"],
        environ["ALERT_WEBHOOK_URL"],
        environ["ALERT_WEBHOOK_SECRET"],
        "abcdefSECRET",
    }
    assert environ["SLACK_WEBHOOK_URL"] not in repr(config)


def test_demo_config_loads_with_its_variables() -> None:
    environ = {
        "NEWS_MONITOR_DEMO_URL": "http://127.0.0.1:8765",
        "NEWS_MONITOR_DEMO_DB": "/tmp/demo.db",
    }
    config = load(ROOT / "config" / "demo" / "demo.yaml", environ=environ)
    assert config.storage == "/tmp/demo.db"
    assert [feed.url for feed in config.feeds] == [
        "http://127.0.0.1:8765/frontline-wire.xml",
        "http://127.0.0.1:8765/world-desk.atom",
        "http://127.0.0.1:8765/korea-watch.rdf",
    ]
    assert config.poll.backfill == timedelta(days=3650)
    assert list(config.active_notifiers()) == ["console"]


def test_demo_config_without_its_variables_names_them() -> None:
    with pytest.raises(ConfigError) as caught:
        load(ROOT / "config" / "demo" / "demo.yaml", environ={})
    text = str(caught.value)
    assert "NEWS_MONITOR_DEMO_DB" in text
    assert "NEWS_MONITOR_DEMO_URL" in text
    demo = (ROOT / "config" / "demo" / "demo.yaml").read_text().splitlines()
    named = []
    for problem in caught.value.problems:
        line = int(problem.split(":")[1])
        variable = re.search(r"variable (\w+) is not set", problem)
        if variable:
            assert variable.group(1) in demo[line - 1], problem
            named.append(variable.group(1))
    assert sorted(set(named)) == ["NEWS_MONITOR_DEMO_DB", "NEWS_MONITOR_DEMO_URL"]
    assert named.count("NEWS_MONITOR_DEMO_URL") == 3  # one per feed


def test_the_product_pages_example_config_loads() -> None:
    product = (ROOT.parent / "shared" / "PRODUCT.md").read_text()
    example = re.search(r"## Config file \(YAML\)\n```yaml\n(.*?)```", product, re.S)
    assert example is not None
    environ = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x",
        "ALERT_WEBHOOK_URL": "https://ops.example.com/hook",
    }
    config = loads(example.group(1), "PRODUCT.md", environ)
    assert [rule.name for rule in config.rules] == ["dprk-troops", "red-line"]
    assert config.feeds[0].display_name() == "euromaidan"
    assert config.feed_interval(config.feeds[0]) == timedelta(minutes=2)


def test_missing_file() -> None:
    with pytest.raises(ConfigError) as caught:
        load(ROOT / "config" / "no-such-file.yaml", environ={})
    assert "no such config file" in str(caught.value)


def test_empty_file_gives_defaults() -> None:
    config = config_of("")
    assert config.feeds == ()
    assert config.rules == ()
    assert config.poll.interval == timedelta(minutes=5)


# --- durations -----------------------------------------------------------------------------------

DURATIONS = [
    ("30s", timedelta(seconds=30)),
    ("5m", timedelta(minutes=5)),
    ("2h", timedelta(hours=2)),
    ("7d", timedelta(days=7)),
    ("1w", timedelta(weeks=1)),
    ("1.5h", timedelta(minutes=90)),
    ("500ms", timedelta(milliseconds=500)),
    ("90", timedelta(seconds=90)),
    (90, timedelta(seconds=90)),
    (2.5, timedelta(seconds=2.5)),
    ('" 5m "', timedelta(minutes=5)),
]


@pytest.mark.parametrize(("value", "expected"), DURATIONS)
def test_durations(value: object, expected: timedelta) -> None:
    config = config_of(f"poll:\n  interval: {value}\n  timeout: 1s\n")
    assert config.poll.interval == expected


BAD_DURATIONS = ["5M", "5x", "m", "5 minutes", "1d2h", "P1D", "yes", "off", "true", "[5m]", "''"]


@pytest.mark.parametrize("value", BAD_DURATIONS)
def test_bad_durations_are_rejected_with_their_line(value: str) -> None:
    problems = problems_of(f"storage: x.db\npoll:\n  jitter: 1s\n  interval: {value}\n")
    assert len(problems) == 1
    assert problems[0].startswith(f"{WHERE}:4: poll.interval: ")
    assert "duration" in problems[0]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("poll:\n  interval: 2h\n", "interval"),
        ("poll:\n  jitter: 2h\n", "jitter"),
        ("poll:\n  timeout: 2h\n  interval: 3h\n", "timeout"),
        ("poll:\n  backfill: 2h\n", "backfill"),
    ],
)
def test_every_poll_duration_is_parsed(text: str, key: str) -> None:
    assert getattr(config_of(text).poll, key) == timedelta(hours=2)


def test_retention_and_feed_interval_are_durations() -> None:
    config = config_of(
        """\
        retention: 30d
        feeds:
          - url: https://example.com/feed
            interval: 10m
          - url: https://example.org/feed
        """
    )
    assert config.retention == timedelta(days=30)
    assert config.feed_interval(config.feeds[0]) == timedelta(minutes=10)
    assert config.feed_interval(config.feeds[1]) == timedelta(minutes=5)


def test_parse_duration_rejects_booleans() -> None:
    with pytest.raises(ValueError):
        parse_duration(True)


@pytest.mark.parametrize("value", ["-3", "0s", "-1", "0", "0.0001ms"])
def test_non_positive_durations_are_rejected(value: str) -> None:
    problems = problems_of(f"poll:\n  interval: {value}\n")
    assert problems == [f"{WHERE}:2: poll.interval: must be longer than zero"]


@pytest.mark.parametrize(
    ("text", "line", "where"),
    [
        ("poll:\n  timeout: 0s\n", 2, "poll.timeout"),
        ("retention: 0d\n", 1, "retention"),
        ("feeds:\n  - url: https://example.com/\n    interval: -5\n", 3, "feeds[0].interval"),
        ("notifiers:\n  s: {type: slack, url: '', timeout: 0}\n", 2, "notifiers.s.timeout"),
        ("notifiers:\n  w: {type: webhook, url: '', timeout: -1}\n", 2, "notifiers.w.timeout"),
    ],
)
def test_every_duration_that_must_be_positive_is_checked(text: str, line: int, where: str) -> None:
    assert problems_of(text) == [f"{WHERE}:{line}: {where}: must be longer than zero"]


@pytest.mark.parametrize("key", ["jitter", "backfill"])
def test_jitter_and_backfill_may_be_zero_but_not_negative(key: str) -> None:
    assert getattr(config_of(f"poll:\n  {key}: 0s\n").poll, key) == timedelta(0)
    assert problems_of(f"poll:\n  {key}: -1\n") == [f"{WHERE}:2: poll.{key}: must not be negative"]


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        (".inf", "is too long"),
        ("1e400", "is too long"),
        ("99999999999d", "is too long"),
        ("99999999999999999999999999", "is too long"),
        (".nan", "is not a duration"),
        ("-.inf", "must not be negative"),
    ],
)
def test_huge_durations_are_config_errors(value: str, sentence: str) -> None:
    problems = problems_of(f"poll:\n  interval: {value}\n")
    assert lines_of(problems) == [2]
    assert problems[0].startswith(f"{WHERE}:2: poll.interval: ")
    assert sentence in problems[0]


def test_parse_duration_turns_overflow_into_value_error() -> None:
    # `news-monitor test --since` relies on ValueError being the only failure.
    with pytest.raises(ValueError, match="is too long"):
        parse_duration("99999999999d")


# --- ${VAR} expansion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        ("${DB}", {"DB": "/data/x.db"}, "/data/x.db"),
        ("${DB:-/default.db}", {}, "/default.db"),
        ("${DB:-/default.db}", {"DB": "/set.db"}, "/set.db"),
        ("${DB:-}", {"DB": "/set.db"}, "/set.db"),
        ("${DIR}/${NAME:-monitor}.db", {"DIR": "/data"}, "/data/monitor.db"),
        ("${DB:-}", {"DB": ""}, ""),  # set but empty counts as set
        ("${DB}", {"DB": ""}, ""),
        ("$DB", {"DB": "x"}, "$DB"),  # only the braced form
        ("${lower_case}", {"lower_case": "ok"}, "ok"),
        ("${A:-has:colon}", {}, "has:colon"),
        ("pre-${A}-post", {"A": "mid"}, "pre-mid-post"),
    ],
)
def test_variables(value: str, environ: dict[str, str], expected: str) -> None:
    assert config_of(f'storage: "{value}"\n', environ).storage == expected


def test_variables_are_expanded_inside_lists_and_mappings() -> None:
    config = config_of(
        """\
        feeds:
          - url: "${BASE}/feed"
            tags: ["${TAG}", other]
        """,
        {"BASE": "https://example.com", "TAG": "ukraine"},
    )
    assert config.feeds[0].url == "https://example.com/feed"
    assert config.feeds[0].tags == ("ukraine", "other")


def test_missing_variable_names_the_variable_and_line() -> None:
    problems = problems_of(
        """\
        storage: x.db
        feeds:
          - url: https://example.com/feed
        notifiers:
          slack:
            type: slack
            url: "${SLACK_WEBHOOK_URL}"
        """
    )
    assert problems == [
        f"{WHERE}:7: notifiers.slack.url: environment variable SLACK_WEBHOOK_URL is not set "
        "(use ${SLACK_WEBHOOK_URL:-} to make it optional)"
    ]


def test_every_missing_variable_is_reported() -> None:
    problems = problems_of('storage: "${A}/${B}"\nfeeds:\n  - url: "https://${C}/feed"\n')
    found = [
        (line, re.search(r"variable (\w+)", p))
        for line, p in zip(lines_of(problems), problems, strict=True)
    ]
    assert [(line, m.group(1)) for line, m in found if m] == [(1, "A"), (1, "B"), (3, "C")]
    # "https:///feed" has no host, but that follows from C being unset: not reported.
    assert len(problems) == 3, problems


@pytest.mark.parametrize(
    ("text", "line", "where"),
    [
        ('feeds:\n  - url: "${BASE}/feed"\n', 2, "feeds[0].url"),
        ('poll:\n  interval: "${EVERY}"\n', 2, "poll.interval"),
        ('rules:\n  - name: "${RULE}"\n    any: [x]\n', 2, "rules[0].name"),
        ("notifiers:\n  w: {type: webhook, url: '${HOST}/hook'}\n", 2, "notifiers.w.url"),
    ],
)
def test_a_missing_variable_is_the_only_problem_at_its_place(
    text: str, line: int, where: str
) -> None:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{WHERE}:{line}: {where}: environment variable ")


def test_names_built_from_missing_variables_are_not_duplicates() -> None:
    problems = problems_of(
        """\
        feeds:
          - url: "${BASE}/a"
          - url: "${BASE}/b"
          - url: https://example.com/c
            name: "${NAME}"
          - url: https://example.com/d
            name: "${NAME}"
        """
    )
    assert lines_of(problems) == [2, 3, 5, 7]
    assert all("environment variable" in problem for problem in problems), problems


# --- notifiers switched off, rule targets --------------------------------------------------------

NOTIFIERS = """\
notifiers:
  slack: { type: slack, url: "${SLACK_WEBHOOK_URL:-}" }
  ops: { type: webhook, url: "${OPS_URL:-}", secret: "${OPS_SECRET:-}" }
  console: { type: console }
rules:
  - name: everyone
    any: [troops]
  - name: slack-and-console
    any: [drones]
    notify: [slack, console]
  - name: only-slack
    any: [missiles]
    notify: [slack]
"""


def test_empty_url_switches_a_notifier_off() -> None:
    config = config_of(NOTIFIERS)
    assert config.disabled_notifiers == ("slack", "ops")
    assert list(config.active_notifiers()) == ["console"]
    targets = {rule.name: config.rule_targets(rule) for rule in config.rules}
    assert targets == {
        "everyone": ("console",),
        "slack-and-console": ("console",),
        "only-slack": (),
    }


def test_notifiers_with_urls_are_on() -> None:
    config = config_of(
        NOTIFIERS,
        {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/x", "OPS_URL": "https://o/x"},
    )
    assert config.disabled_notifiers == ()
    targets = {rule.name: config.rule_targets(rule) for rule in config.rules}
    assert targets == {
        "everyone": ("slack", "ops", "console"),  # no `notify`: every notifier
        "slack-and-console": ("slack", "console"),
        "only-slack": ("slack",),
    }


def test_rule_without_notify_goes_to_every_active_notifier() -> None:
    config = config_of(NOTIFIERS, {"OPS_URL": "https://ops.example.com/x"})
    assert config.disabled_notifiers == ("slack",)
    assert config.rule_targets(config.rules[0]) == ("ops", "console")


def test_literal_empty_url_switches_off_too() -> None:
    config = config_of('notifiers:\n  slack: { type: slack, url: "" }\n')
    assert config.disabled_notifiers == ("slack",)
    assert config.active_notifiers() == {}


NOT_HTTP = ["hooks.slack.com/services/x", "ftp://example.com/x", "not a url", "http://[abc]/x"]


@pytest.mark.parametrize("url", NOT_HTTP)
@pytest.mark.parametrize("kind", ["slack", "webhook"])
def test_notifier_url_must_be_http(url: str, kind: str) -> None:
    problems = problems_of(f'notifiers:\n  {kind}: {{ type: {kind}, url: "{url}" }}\n')
    assert problems == [
        f"{WHERE}:2: notifiers.{kind}.url: must be an http:// or https:// URL with a host"
    ]


@pytest.mark.parametrize(
    "url",
    [
        "hooks.slack.com/services/T0/B0/TOKENsecret456",
        "ftp://example.com/TOKENsecret456",
        "not a url TOKENsecret456",
        "http://[TOKENsecret456]/hook",  # urlsplit's own error quotes this host
        "https://ops.example.com\\TOKENsecret456",
    ],
)
def test_a_bad_notifier_url_from_the_environment_is_not_quoted(url: str) -> None:
    problems = problems_of(
        'notifiers:\n  ops: {type: webhook, url: "${OPS_URL}"}\n', {"OPS_URL": url}
    )
    assert lines_of(problems) == [2]
    assert problems[0].startswith(f"{WHERE}:2: notifiers.ops.url: must ")
    assert "TOKENsecret456" not in "\n".join(problems)


# --- YAML 1.2 and duplicate keys -----------------------------------------------------------------


@pytest.mark.parametrize("word", ["off", "on", "yes", "no", "y", "n", "Off", "NO"])
def test_yaml_12_keeps_words_as_strings(word: str) -> None:
    config = config_of(
        f"""\
        feeds:
          - url: https://example.com/feed
            name: {word}
            tags: [{word}]
        rules:
          - name: {word}
            any: [{word}, troops]
            feeds: [{word}]
        notifiers:
          {word}: {{ type: console }}
        """
    )
    assert config.feeds[0].name == word
    assert config.feeds[0].tags == (word,)
    assert config.rules[0].name == word
    assert config.rules[0].any == (word, "troops")
    assert list(config.notifiers) == [word]


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("storage: a.db\nstorage: b.db\n", 2, "storage"),
        ("poll:\n  interval: 5m\n  jitter: 1s\n  interval: 2m\n", 4, "interval"),
        ("feeds:\n  - url: https://a.example/\n    url: https://b.example/\n", 3, "url"),
        ("notifiers:\n  c: {type: console}\n  c: {type: console}\n", 3, "c"),
    ],
)
def test_duplicate_keys_are_rejected_with_their_line(text: str, line: int, key: str) -> None:
    problems = problems_of(text)
    assert problems == [f"{WHERE}:{line}: duplicate key {key!r}"]


def test_invalid_yaml_reports_a_line() -> None:
    problems = problems_of("storage: x.db\npoll:\n  interval: [5m\n")
    assert len(problems) == 1
    assert re.match(rf"{WHERE}:\d+: ", problems[0])
    assert "Traceback" not in problems[0]


def test_top_level_must_be_a_mapping() -> None:
    assert problems_of("- a\n- b\n") == [f"{WHERE}:1: the config must be a mapping of settings"]


# --- unknown keys, types, notifier types ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("retension: 90d\n", f"{WHERE}:1: retension: unknown key"),
        ("poll:\n  intervall: 5m\n", f"{WHERE}:2: poll.intervall: unknown key"),
        (
            "feeds:\n  - url: https://example.com/\n    colour: red\n",
            f"{WHERE}:3: feeds[0].colour: unknown key",
        ),
        (
            "rules:\n  - name: r\n    any: [x]\n    notfy: [a]\n",
            f"{WHERE}:4: rules[0].notfy: unknown key",
        ),
        (
            "notifiers:\n  c:\n    type: console\n    url: https://example.com/\n",
            f"{WHERE}:4: notifiers.c.url: unknown key",
        ),
        (
            "notifiers:\n  s:\n    type: slack\n    url: https://example.com/\n    channel: x\n",
            f"{WHERE}:5: notifiers.s.channel: unknown key",
        ),
    ],
)
def test_unknown_keys(text: str, expected: str) -> None:
    assert problems_of(text) == [expected]


@pytest.mark.parametrize("kind", ["teams", "Slack", "email", ""])
def test_unknown_notifier_type(kind: str) -> None:
    problems = problems_of(
        f'storage: x.db\nnotifiers:\n  ops:\n    type: "{kind}"\n    url: https://example.com/\n'
    )
    assert len(problems) == 1
    assert problems[0].startswith(f"{WHERE}:3: notifiers.ops: ")
    assert "console, webhook, slack, apprise" in problems[0]


def test_notifier_without_type_is_reported_at_its_line() -> None:
    problems = problems_of("notifiers:\n  ops:\n    url: https://example.com/\n")
    assert problems == [
        f"{WHERE}:2: notifiers.ops: type is required: one of console, webhook, slack, apprise"
    ]


@pytest.mark.parametrize(
    ("text", "line", "where"),
    [
        ("poll:\n  concurrency: 0\n", 2, "poll.concurrency"),
        ("poll:\n  concurrency: many\n", 2, "poll.concurrency"),
        ("feeds: https://example.com/\n", 1, "feeds"),
        ("feeds:\n  - url: ftp://example.com/\n", 2, "feeds[0].url"),
        ("feeds:\n  - name: no-url\n", 2, "feeds[0].url"),
        ("rules:\n  - any: [x]\n", 2, "rules[0].name"),
        ("rules:\n  - name: r\n    any: x\n", 3, "rules[0].any"),
        ("rules:\n  - name: r\n    any: [x]\n    match: fuzzy\n", 4, "rules[0].match"),
        ("notifiers:\n  w: {type: webhook}\n", 2, "notifiers.w.url"),
    ],
)
def test_wrong_types_and_values(text: str, line: int, where: str) -> None:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{WHERE}:{line}: {where}: ")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("rules:\n  - name: r\n    none: [x]\n", 2, "needs"),
        ("rules:\n  - name: r\n    any: ['!!!']\n", 3, "no letters or digits"),
        ("rules:\n  - name: r\n    any: [x]\n    notify: [pager]\n", 4, "unknown notifier 'pager'"),
        ("rules:\n  - name: r\n    any: [x]\n    feeds: [nowhere]\n", 4, "unknown feed 'nowhere'"),
        ("rules:\n  - name: r\n    any: [x]\n  - name: r\n    any: [y]\n", 4, "duplicate rule"),
        (
            "feeds:\n  - url: https://a.example/\n    name: f\n  - url: https://b.example/\n"
            "    name: f\n",
            5,
            "duplicate feed name 'f'",
        ),
        (
            "feeds:\n  - url: https://www.example.com/a\n  - url: https://example.com/b\n",
            3,
            "duplicate feed name 'example-com'",
        ),
    ],
)
def test_cross_checks(text: str, line: int, fragment: str) -> None:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    assert lines_of(problems) == [line]
    assert fragment in problems[0]


# --- every mistake at once -----------------------------------------------------------------------

MANY_MISTAKES = """\
storage: ./data/x.db
retension: 90d
poll:
  interval: 5 minutes
  concurrency: 0
feeds:
  - url: ftp://example.com/feed
    name: bad-scheme
  - url: https://example.org/feed
    name: ok-feed
    colour: red
rules:
  - name: needs-words
    none: [sport]
  - name: unknown-target
    any: [troops]
    notify: [pager]
  - name: no-letters
    any: ["!!!"]
    feeds: [nowhere]
notifiers:
  slack: {type: slack, url: "${SLACK_URL}"}
  ops: {type: teams, url: "https://example.com/hook"}
  hook:
    type: webhook
"""

MANY_MISTAKES_EXPECTED = [
    # (line, start of the problem after "file:line: ", text on that line of the file)
    (2, "retension: unknown key", "retension: 90d"),
    (4, "poll.interval: '5 minutes' is not a duration", "interval: 5 minutes"),
    (5, "poll.concurrency:", "concurrency: 0"),
    (7, "feeds[0].url: must be an http:// or https:// URL", "url: ftp://"),
    (11, "feeds[1].colour: unknown key", "colour: red"),
    (13, "rules[0]: rule 'needs-words' needs", "name: needs-words"),
    (17, "rules[1].notify[0]: rule 'unknown-target' notifies unknown notifier 'pager'", "pager"),
    (19, "rules[2].any[0]: '!!!' has no letters or digits to match", "!!!"),
    (20, "rules[2].feeds[0]: rule 'no-letters' names unknown feed 'nowhere'", "nowhere"),
    (22, "notifiers.slack.url: environment variable SLACK_URL is not set", "${SLACK_URL}"),
    (23, "notifiers.ops: type must be one of: console, webhook, slack", "teams"),
    (24, "notifiers.hook.url: is required", "hook:"),
]


def test_every_mistake_is_reported_with_its_line() -> None:
    problems = problems_of(MANY_MISTAKES)
    assert len(problems) == len(MANY_MISTAKES_EXPECTED), problems
    assert lines_of(problems) == [line for line, _, _ in MANY_MISTAKES_EXPECTED]
    source = MANY_MISTAKES.splitlines()
    for problem, (line, start, marker) in zip(problems, MANY_MISTAKES_EXPECTED, strict=True):
        assert problem.startswith(f"{WHERE}:{line}: {start}"), problem
        assert marker in source[line - 1]


def test_duplicate_name_is_reported_even_when_the_first_item_has_another_mistake() -> None:
    problems = problems_of(
        """\
        feeds:
          - url: https://example.org/feed
            name: same
            colour: red
          - url: https://example.net/feed
            name: same
          - url: ftp://example.com/a
          - url: https://www.example.com/b
        rules:
          - name: r
            any: [x]
            feeds: [same]
            colour: red
          - name: r
            any: [y]
            feeds: [same]
        """
    )
    assert lines_of(problems) == [4, 6, 7, 8, 13, 14]
    assert problems[1] == f"{WHERE}:6: feeds[1].name: duplicate feed name 'same'"
    assert problems[3] == f"{WHERE}:8: feeds[3].name: duplicate feed name 'example-com'"
    assert problems[5] == f"{WHERE}:14: rules[1].name: duplicate rule name 'r'"
    # The feed with the unknown key still exists by name: no "unknown feed 'same'".
    assert not any("unknown feed" in problem for problem in problems), problems


# --- secrets -------------------------------------------------------------------------------------

SECRET_ENV = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XyZsEcReT123",
    "OPS_URL": "https://ops.example.com/hook?token=TOKENsecret456",
    "OPS_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}


@pytest.mark.parametrize(
    "text",
    [
        # mistakes next to secrets in the same notifier
        """\
        notifiers:
          slack: {type: slack, url: "${SLACK_WEBHOOK_URL}", channel: alerts}
          ops: {type: webhook, url: "${OPS_URL}", secret: "${OPS_SECRET}", timeout: soon}
        """,
        # a wrong type that carries the secrets
        """\
        notifiers:
          slack: {type: slak, url: "${SLACK_WEBHOOK_URL}"}
          ops: {type: console, url: "${OPS_URL}", secret: "${OPS_SECRET}"}
        """,
        # secrets written inline, with other mistakes around them
        """\
        poll:
          interval: never
        notifiers:
          slack:
            type: slack
            url: https://hooks.slack.com/services/T000/B000/XyZsEcReT123
            retries: 3
          ops:
            type: webhook
            url: https://ops.example.com/hook?token=TOKENsecret456
            secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
            secret_key: x
        rules:
          - name: r
            any: [x]
            notify: [pager]
        """,
        # secret values in the wrong shape
        """\
        notifiers:
          slack: {type: slack, url: ["${SLACK_WEBHOOK_URL}"]}
          ops: {type: webhook, url: "${OPS_URL}", secret: ["${OPS_SECRET}"]}
        """,
    ],
)
def test_secrets_never_appear_in_errors(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_of(text, SECRET_ENV)
    message = str(caught.value)
    assert caught.value.problems
    for secret in (*SECRET_ENV.values(), "XyZsEcReT123", "TOKENsecret456", "MfKQ9r8GKYqrTwj"):
        assert secret not in message
        assert secret not in repr(caught.value)


def test_valid_notifiers_keep_secrets_out_of_reprs() -> None:
    config = config_of(
        """\
        notifiers:
          slack: {type: slack, url: "${SLACK_WEBHOOK_URL}"}
          ops: {type: webhook, url: "${OPS_URL}", secret: "${OPS_SECRET}"}
          console: {type: console}
        """,
        SECRET_ENV,
    )
    assert isinstance(config.notifiers["console"], ConsoleNotifier)
    for secret in SECRET_ENV.values():
        assert secret not in repr(config)
        assert secret not in str(config)
    assert set(config.secrets()) >= set(SECRET_ENV.values())
    # Parts of a secret URL count only when they look like tokens, never plain words.
    assert not set(config.secrets()) & {"services", "hooks.slack.com", "https"}


# --- pacing, templates, headers, Apprise ------------------------------------------------


def test_digest_and_burst_are_read_on_any_notifier() -> None:
    config = config_of("""\
        notifiers:
          daily: {type: console, digest: 1d}
          ops: {type: webhook, url: "https://ops.example.com/h", burst: {max: 10, per: 5m}}
        """)
    assert config.notifiers["daily"].digest == timedelta(days=1)
    burst = config.notifiers["ops"].burst
    assert burst is not None and (burst.max, burst.per) == (10, timedelta(minutes=5))


@pytest.mark.parametrize(
    ("spec", "where", "fragment"),
    [
        ("digest: 15m, burst: {max: 2, per: 5m}", "notifiers.h", "not both"),
        ("burst: {max: 0, per: 5m}", "notifiers.h.burst.max", "greater than or equal to 1"),
        ("burst: {max: 3}", "notifiers.h.burst.per", "is required"),
        ("burst: {max: 3, per: 0s}", "notifiers.h.burst.per", "longer than zero"),
        ("digest: soon", "notifiers.h.digest", "not a duration"),
        ("headers: {webhook-signature: x}", "notifiers.h.headers", "set by news-monitor"),
        ("headers: {Content-Type: text/plain}", "notifiers.h.headers", "set by news-monitor"),
        ('headers: {"bad header": x}', "notifiers.h.headers", "not a valid HTTP header name"),
        ("template: '{{ x }}'", "notifiers.h.template", "unknown key"),
    ],
)
def test_bad_pacing_and_headers_are_config_errors(spec: str, where: str, fragment: str) -> None:
    problems = problems_of(
        f'notifiers:\n  h: {{type: webhook, url: "https://ops.example.com/h", {spec}}}\n'
    )
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{WHERE}:2: {where}: "), problems
    assert fragment in problems[0]


def test_a_header_value_with_a_line_break_is_refused_without_quoting_it() -> None:
    problems = problems_of(
        'notifiers:\n  h:\n    type: webhook\n    url: "https://ops.example.com/h"\n'
        '    headers: {Authorization: "Bearer TOKENsecret456\\r\\nX-Evil: 1"}\n'
    )
    assert len(problems) == 1 and "line break" in problems[0]
    assert "TOKENsecret456" not in problems[0]


def test_header_values_are_secrets() -> None:
    config = config_of(
        """\
        notifiers:
          ops:
            type: webhook
            url: "https://ops.example.com/h"
            headers: {Authorization: "Bearer ${OPS_TOKEN}"}
        """,
        {"OPS_TOKEN": "TOKENsecret456"},
    )
    assert "TOKENsecret456" not in repr(config)
    assert {"Bearer TOKENsecret456", "TOKENsecret456"} <= set(config.secrets())
    assert "Bearer" not in config.secrets()


def test_a_broken_template_names_the_notifier_and_its_line() -> None:
    problems = problems_of(
        "notifiers:\n  out:\n    type: console\n    template: '{{ story.title '\n"
    )
    assert len(problems) == 1
    assert problems[0].startswith(f"{WHERE}:4: notifiers.out.template: is not a valid Jinja2")


def test_apprise_urls_are_checked_and_never_quoted() -> None:
    problems = problems_of(
        'notifiers:\n  chat:\n    type: apprise\n    urls: ["discord://123/abcTOKEN99", '
        '"nosuch://TOKENsecret456"]\n'
    )
    assert problems == [
        f"{WHERE}:4: notifiers.chat.urls[1]: is not a URL Apprise recognises"
        " (see Apprise's list of services)"
    ]
    assert problems_of("notifiers:\n  chat: {type: apprise, urls: []}\n")[0].startswith(
        f"{WHERE}:2: notifiers.chat.urls: "
    )


def test_apprise_urls_and_their_tokens_are_secrets() -> None:
    config = config_of(
        'notifiers:\n  chat: {type: apprise, urls: ["${DISCORD}", "tgram://${BOT}/12345"]}\n',
        {"DISCORD": "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV", "BOT": "123456789:AAbbCCdd"},
    )
    secrets = set(config.secrets())
    assert "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV" in secrets
    assert "JHMHI8qBe7bk2ZwO5U711o3dV" in secrets  # the token alone, as a service may echo it
    assert "AAbbCCdd" in secrets  # Telegram keeps its bot token in the host part
    assert "JHMHI8qBe7bk2ZwO5U711o3dV" not in repr(config)


def test_an_apprise_notifier_with_every_url_unset_is_switched_off() -> None:
    config = config_of(
        'notifiers:\n  chat: {type: apprise, urls: ["${DISCORD}", "${TEAMS:-}"]}\n',
        {"DISCORD": ""},
    )
    assert config.disabled_notifiers == ("chat",)
    assert config.active_notifiers() == {}


# --- the two readers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [ROOT / "config" / "monitor.yaml", ROOT / "config" / "demo" / "demo.yaml"],
    ids=["default", "demo"],
)
def test_the_fast_reader_gives_the_config_the_round_trip_reader_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    environ = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.test/T/B/x",
        "WEBHOOK_SECRET": "s",
        "NEWS_MONITOR_DEMO_DB": "/tmp/demo.db",
        "NEWS_MONITOR_DEMO_URL": "http://127.0.0.1:8000",
    }
    plain = _parse_plain(text)
    assert plain is not None
    fast = _checked(plain, WHERE, environ, locate=False)
    assert fast == _checked(_parse_yaml(text, WHERE), WHERE, environ, locate=True)
    assert loads(text, WHERE, environ) == fast


def test_the_fast_reader_leaves_what_it_cannot_say_to_the_round_trip_reader() -> None:
    # Valid YAML with a wrong value: the problem still gets its line.
    assert problems_of("poll:\n  interval: 5m\n  timeout: soon\n")[0].startswith(f"{WHERE}:3: ")
    # Invalid YAML and a duplicate key, which the fast reader refuses outright.
    assert _parse_plain("feeds: [\n") is None
    assert _parse_plain("poll: {}\npoll: {}\n") is None
    assert lines_of(problems_of("poll: {}\npoll: {}\n")) == [2]
