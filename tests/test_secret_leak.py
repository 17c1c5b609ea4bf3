"""No secret ever leaves in a log line, a command's output or an error message. One
config carries every kind of secret the product knows (notifier URLs with tokens in the
path, a signing secret, auth headers from the environment, a feed URL with a key, a
password in a feed URL, an Apprise password); the servers on the other end fail and
echo back everything they were sent, as real ones do in their error pages. Every
command is run at debug level in both log formats, and every byte it prints is searched.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_cli
from tests.feeds import rss20, story
from tests.loopback import Answer, FeedServer, Receiver, Request
from tests.running import Daemon
from tests.test_daemon import unused_port, wait_until

HOOK_PATH_TOKEN = "T0ps3cretHookPath42"
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HOOK_HEADER_TOKEN = "HdrT0kenZ9x8w7"
SLACK_TOKEN = "SlackT0kenXYZ789abc"
APPRISE_PASSWORD = "ApprisePassw0rd7"
FEED_KEY = "FeedQueryT0ken55"
FEED_HEADER_TOKEN = "FeedHdrT0ken66q"
FEED_PASSWORD = "FeedPassw0rd77"
SECRETS = (
    HOOK_PATH_TOKEN,
    SIGNING_SECRET,
    SIGNING_SECRET.removeprefix("whsec_"),
    HOOK_HEADER_TOKEN,
    SLACK_TOKEN,
    APPRISE_PASSWORD,
    FEED_KEY,
    FEED_HEADER_TOKEN,
    FEED_PASSWORD,
)
ENV = {
    "HOOK_AUTH": f"Bearer {HOOK_HEADER_TOKEN}",
    "FEED_AUTH": f"Bearer {FEED_HEADER_TOKEN}",
    "BAD_HOOK_URL": f"hooks.example/{SLACK_TOKEN}",
}


def echo(status: int) -> Callable[[Request], Answer]:
    """A server's error page that quotes the request back: path, query and headers."""

    def answer(request: Request) -> Answer:
        quoted = f"{request.method} {request.path}\n" + "\n".join(
            f"{name}: {value}" for name, value in request.headers.items()
        )
        return Answer(status, f"request refused:\n{quoted}".encode())

    return answer


def leaks(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@pytest.fixture
def setup(tmp_path: Path, feed_server: FeedServer, receiver: Receiver) -> Path:
    feed_server.publish(
        f"/wire.xml?key={FEED_KEY}", rss20([story("w1", "DPRK troops reach the front")])
    )
    feed_server.publish("/basic.xml", rss20([story("b1", "DPRK troops dig trenches")]))
    feed_server.scripted[f"/private.xml?key={FEED_KEY}"] = echo(401)
    refuse = echo(500)
    receiver.answer = refuse  # type: ignore[method-assign,assignment]
    host = feed_server.url.removeprefix("http://")
    hook = receiver.url.removeprefix("http://")
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{interval: 2s, timeout: 2s, jitter: 0s}}
feeds:
  - {{url: "http://{host}/wire.xml?key={FEED_KEY}", name: wire}}
  - url: "http://{host}/private.xml?key={FEED_KEY}"
    name: private
    headers: {{Authorization: "${{FEED_AUTH}}"}}
  - {{url: "http://reader:{FEED_PASSWORD}@{host}/basic.xml", name: basic}}
  - {{url: "http://127.0.0.1:{unused_port()}/down.xml?key={FEED_KEY}", name: down}}
rules:
  - {{name: dprk, any: ["DPRK troops"]}}
notifiers:
  hook:
    type: webhook
    url: "http://{hook}/hooks/{HOOK_PATH_TOKEN}"
    secret: "{SIGNING_SECRET}"
    headers: {{Authorization: "${{HOOK_AUTH}}"}}
    timeout: 2s
  slack: {{type: slack, url: "http://{hook}/services/T0001/B0001/{SLACK_TOKEN}", timeout: 2s}}
  chat: {{type: apprise, urls: ["json://user:{APPRISE_PASSWORD}@{hook}/apprise"], timeout: 2s}}
""")
    return config


def run(config: Path, *args: str, formats: tuple[str, ...] = ("text", "json")) -> list[str]:
    """stdout and stderr of one command at debug level, in each log format."""
    outputs = []
    for log_format in formats:
        done = run_cli(
            *args,
            "-c",
            str(config),
            "--log-format",
            log_format,
            "--log-level",
            "debug",
            cwd=config.parent,
            env=cli_env(**ENV),
        )
        outputs += [done.stdout, done.stderr]
    return outputs


def test_no_secret_in_any_log_line_output_or_error(
    setup: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = setup
    printed = run(config, "check", formats=("text",))
    printed += run(config, "poll", "--drain-timeout", "3")

    daemon = Daemon(config, "--log-level", "debug", env=cli_env(**ENV))
    polled = len(feed_server.requests)
    assert wait_until(lambda: len(feed_server.requests) >= polled + 6, 15), "no polls"
    daemon.send(signal.SIGHUP)  # a reload logs the config's changes, if any
    assert wait_until(lambda: daemon.logged("config reloaded"), 10)
    printed.append(daemon.stop(15))

    for command in (
        ("alerts",),
        ("alerts", "--json"),
        ("alerts", "--status", "pending"),
        ("feeds",),
        ("feeds", "--json"),
        ("redeliver", "--failed", "--drain-timeout", "2"),
        ("test", "--text", "DPRK troops"),
    ):
        printed += run(config, *command, formats=("json",) if "redeliver" in command else ("text",))

    # The secrets were really used, and the servers really echoed them back.
    private = feed_server.requests_to(f"/private.xml?key={FEED_KEY}")
    assert private and private[0].headers["authorization"] == f"Bearer {FEED_HEADER_TOKEN}"
    basic = feed_server.requests_to("/basic.xml")
    assert basic and "authorization" in basic[0].headers  # the URL's user and password
    paths = {post.path for post in receiver.posts()}
    assert {f"/hooks/{HOOK_PATH_TOKEN}", f"/services/T0001/B0001/{SLACK_TOKEN}"} <= paths
    assert "/apprise" in paths
    hook_posts = [p for p in receiver.posts() if p.path == f"/hooks/{HOOK_PATH_TOKEN}"]
    assert hook_posts[0].headers["authorization"] == f"Bearer {HOOK_HEADER_TOKEN}"
    # The outputs talk about these failures, so they had the chance to leak.
    everything = "\n".join(printed)
    assert "HTTP 500" in everything and "HTTP 401" in everything
    assert "cannot connect" in everything

    found = {secret for text in printed for secret in leaks(text)}
    assert not found, [line for line in everything.splitlines() if leaks(line)][:5]


def test_config_errors_never_quote_a_secret(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
feeds: [{{url: "http://127.0.0.1:9/feed.xml?key={FEED_KEY}"}}]
notifiers:
  scheme: {{type: webhook, url: "htp://127.0.0.1/hooks/{HOOK_PATH_TOKEN}"}}
  signing: {{type: webhook, url: "http://127.0.0.1/hooks/{HOOK_PATH_TOKEN}", secret: 12}}
  header: {{type: webhook, url: "http://x.example/{HOOK_PATH_TOKEN}", headers: {{Webhook-Id: x}}}}
  env: {{type: slack, url: "${{BAD_HOOK_URL}}"}}
  chat: {{type: apprise, urls: ["nosuchservice://user:{APPRISE_PASSWORD}@host/x"]}}
""")
    checked = run(config, "check")
    problems = [line for line in checked[1].splitlines() if "notifiers." in line]
    assert [line.split(": ")[1] for line in problems] == [
        "notifiers.scheme.url",
        "notifiers.signing.secret",
        "notifiers.header.headers",
        "notifiers.env.url",
        "notifiers.chat.urls[0]",
    ], checked[1]
    for printed in checked:
        assert not leaks(printed), printed
