"""The command line as users and scripts meet it: exit codes, one-sentence errors,
`check` listing every problem with its line, `demo` working offline, and every
command documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.cli import cli
from tests.conftest import REPO, cli_env, run_cli

BROKEN = """\
storage: ./x.db
poll:
  interval: soon
  concurency: 3
feeds:
  - url: ftp://example.com/feed
  - url: https://example.com/a
    name: a
  - url: https://example.com/a2
    name: a
rules:
  - name: troops
    any: ["North Korean troops"]
    notify: [slak]
  - name: empty
    none: [weather]
notifiers:
  slack: {type: slack, url: "${NEWS_MONITOR_TEST_UNSET}"}
  pager: {type: pagerduty}
"""


def test_check_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(BROKEN)
    result = run_cli("check", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "news-monitor: the config has 8 problems:"
    found = [re.match(r"\s+\S+:(\d+): (\S+): (.*)", line) for line in lines[1:]]
    assert all(found), lines
    assert [(int(m[1]), m[2]) for m in found if m] == [
        (3, "poll.interval"),
        (4, "poll.concurency"),
        (6, "feeds[0].url"),
        (10, "feeds[2].name"),
        (14, "rules[0].notify[0]"),
        (15, "rules[1]"),
        (18, "notifiers.slack.url"),
        (19, "notifiers.pager"),
    ]
    assert "NEWS_MONITOR_TEST_UNSET" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_accepts_the_default_config(tmp_path: Path) -> None:
    result = run_cli("check", "-c", str(REPO / "config" / "monitor.yaml"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "is valid: 8 feeds, 5 rules, 3 notifiers (2 switched off)" in result.stdout


def test_duplicate_yaml_keys_are_an_error(tmp_path: Path) -> None:
    config = tmp_path / "dup.yaml"
    config.write_text("storage: a.db\nstorage: b.db\n")
    result = run_cli("check", "-c", str(config), cwd=tmp_path)
    assert result.returncode == 1
    assert "dup.yaml:2: duplicate key 'storage'" in result.stderr


def test_config_path_comes_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.yaml"
    config.write_text("feeds: []\n")
    env = cli_env(NEWS_MONITOR_CONFIG=str(config))
    assert run_cli("check", cwd=tmp_path, env=env).returncode == 0
    missing = run_cli("check", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "news-monitor: ./config/monitor.yaml: no such config file"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli("frobnicate", cwd=tmp_path).returncode == 2
    assert run_cli("poll", "--no-such-flag", cwd=tmp_path).returncode == 2


def test_unknown_feed_is_one_sentence(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"storage: {tmp_path / 'db.sqlite'}\nfeeds: []\n")
    result = run_cli("poll", "-c", str(config), "--feed", "nope", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "news-monitor: there is no feed named 'nope' in the config"


def test_demo_prints_alerts_offline(tmp_path: Path) -> None:
    result = run_cli("demo", cwd=tmp_path, timeout=30)
    assert result.returncode == 0, result.stderr
    alerts = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(alerts) >= 8
    assert any(line.startswith("[dprk-troops] ") for line in alerts)
    # "north-korean soldiers" in a headline matches the phrase "North Korean soldiers".
    assert any("**north-korean soldiers**" in line for line in alerts)


COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_a_readme_entry(command: str, tmp_path: Path) -> None:
    result = run_cli(command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Usage: news-monitor" in result.stdout
    readme = (REPO / "README.md").read_text()
    assert f"`news-monitor {command}" in readme, f"README does not document {command}"


def test_dry_run_explains_text_and_replays_stored_history(tmp_path: Path) -> None:
    from tests.feeds import rss20, story
    from tests.loopback import FeedServer

    server = FeedServer()
    try:
        server.publish(
            "/f.xml",
            rss20(
                [
                    story("s1", "Pyongyang sends more soldiers to Kursk"),
                    story("s2", "Quiet day on the markets"),
                ]
            ),
        )
        config = tmp_path / "c.yaml"
        config.write_text(f"""
storage: {tmp_path / "m.db"}
feeds: [{{url: "{server.url}/f.xml", name: wire, tags: [korea]}}]
rules:
  - {{name: dprk, query: '(Pyongyang OR "North Korea") AND soldier'}}
  - {{name: scoped, any: [markets], tags: [finance]}}
notifiers: {{console: {{type: console}}}}
""")
        text = run_cli(
            "test",
            "-c",
            str(config),
            "--text",
            "North Korea sends a soldier to Kursk",
            cwd=tmp_path,
        )
        assert text.returncode == 0, text.stderr
        assert "✔ dprk: matched north korea, soldier" in text.stdout
        assert "title: **North Korea** sends a **soldier** to Kursk" in text.stdout
        assert not (tmp_path / "m.db").exists()  # a dry run stores nothing

        missing = run_cli("test", "-c", str(config), "--since", "7d", cwd=tmp_path)
        assert missing.returncode == 1
        assert "there is no database" in missing.stderr

        assert run_cli("poll", "-c", str(config), cwd=tmp_path).returncode == 0
        replay = run_cli("test", "-c", str(config), "--since", "7d", cwd=tmp_path)
        assert replay.returncode == 0, replay.stderr
        assert "✔ dprk: matched pyongyang, soldier" in replay.stdout
        assert "**soldiers**" in replay.stdout  # the inflected form, as the feed wrote it
        # "markets" matches, but the rule is scoped to tags the feed does not have.
        assert "scoped" not in replay.stdout
        assert replay.stdout.strip().endswith("1 of 2 items match 2 rules.")

        unknown = run_cli("test", "-c", str(config), "--text", "x", "--rule", "nope", cwd=tmp_path)
        assert unknown.returncode == 1
        assert unknown.stderr.strip() == "news-monitor: there is no rule named 'nope' in the config"
    finally:
        server.close()
