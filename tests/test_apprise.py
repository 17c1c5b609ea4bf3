"""The `apprise` notifier: end to end through the real CLI to Apprise's JSON service on a
loopback receiver; Discord and Slack payloads captured at the HTTP call Apprise makes (their
services are out of reach here), with and without our neutralising; and its config."""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apprise
import pytest
import requests
from pydantic import SecretStr

from monitor.config import AppriseNotifier, loads
from monitor.errors import ConfigError
from monitor.models import Entry, Hit, Item, Match, Message, SendResult
from monitor.notify.via_apprise import Apprise, recognised
from monitor.render import alert_document
from tests.conftest import run_cli
from tests.feeds import rss20, story
from tests.loopback import Answer, FeedServer, Receiver, Request

ZWSP = "\u200b"
HOSTILE = "DPRK troops @everyone <!channel> <@U123> @here near Kursk"
PASSWORD = "Sup3rSecretPassw0rd"
DISCORD = "discord://1234567890/AbCdEfTok3nValue"
SLACK = "slack://T1234ABCD/B1234ABCD/abcdefghijklmnopqrstuvwx"

# --- end to end through the CLI ---------------------------------------------------------


def write_config(
    tmp_path: Path,
    feeds: FeedServer,
    hook: str,
    titles: list[str],
    extra: str = "",
) -> Path:
    feeds.publish(
        "/feed.xml",
        rss20([story(f"s{n}", title, hours_ago=0.1) for n, title in enumerate(titles)]),
    )
    config = tmp_path / "monitor.yaml"
    config.write_text(f"""
storage: {tmp_path / "monitor.db"}
poll: {{timeout: 5s}}
feeds:
  - {{url: "{feeds.url}/feed.xml", name: wire}}
rules:
  - {{name: dprk, any: ["DPRK troops"]}}
notifiers:
  chat:
    type: apprise
    urls: ["{hook}"]
    timeout: 5s
{textwrap.indent(extra, "    ")}
""")
    return config


def json_url(receiver: Receiver, path: str = "/hook", auth: str = "") -> str:
    """Apprise's JSON service POSTs {version, title, message, attachments, type} here."""
    return f"json://{auth}{receiver.url.removeprefix('http://')}{path}"


def payload(post: Request) -> dict[str, Any]:
    data = json.loads(post.body)
    assert isinstance(data, dict)
    return data


def deliveries(config: Path, tmp_path: Path) -> list[dict[str, Any]]:
    listed = run_cli("alerts", "-c", str(config), "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    return [d for line in listed.stdout.splitlines() for d in json.loads(line)["deliveries"]]


def assert_cannot_ping(text: str) -> None:
    assert not re.search(r"@(everyone|here)\b", text, re.IGNORECASE), text
    for live in ("<!", "<@", "<#"):
        assert live not in text, text


def test_a_hostile_headline_arrives_once_neutralised(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    config = write_config(tmp_path, feed_server, json_url(receiver), [HOSTILE])

    polled = run_cli("poll", "-c", str(config), "--drain-timeout", "3", cwd=tmp_path)
    assert polled.returncode == 0, polled.stderr
    [post] = receiver.posts()
    assert post.path == "/hook"
    assert post.headers["content-type"] == "application/json"
    sent = payload(post)
    assert sent["type"] == "info"
    title, message = sent["title"], sent["message"]
    assert_cannot_ping(title)
    assert_cannot_ping(message)
    assert title.replace(ZWSP, "") == HOSTILE  # it still reads the same
    assert "wire · " in message and "rule dprk" in message
    assert "https://news.example/s0" in message
    assert "Matched: dprk troops" in message
    [delivery] = deliveries(config, tmp_path)
    assert (delivery["state"], delivery["attempts"]) == ("delivered", 1)

    again = run_cli("poll", "-c", str(config), "--drain-timeout", "1", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len(receiver.posts()) == 1  # once


def test_a_refusing_service_leaves_the_alert_pending_with_a_clear_error(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    hook = json_url(receiver, auth=f"newsbot:{PASSWORD}@")
    config = write_config(tmp_path, feed_server, hook, ["DPRK troops cross the river"])
    receiver.default = Answer(500, b"boom")

    polled = run_cli("poll", "-c", str(config), "--drain-timeout", "0", cwd=tmp_path)
    assert polled.returncode == 0, polled.stderr
    [post] = receiver.posts()
    assert post.headers["authorization"].startswith("Basic ")  # the credentials were used
    [delivery] = deliveries(config, tmp_path)
    assert (delivery["state"], delivery["attempts"]) == ("pending", 1)
    error = delivery["last_error"]
    assert "500" in error and "JSON" in error
    assert delivery["next_attempt_at"] is not None
    port = receiver.url.rsplit(":", 1)[1]
    for secret in (hook, PASSWORD, f"127.0.0.1:{port}"):
        assert secret not in error
        assert secret not in polled.stderr
    assert "retry at" in polled.stderr


def test_a_template_changes_the_body(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    extra = "template: \"ALERT {{ story.title }} via {{ rule }} ({{ matched | join('+') }})\""
    config = write_config(tmp_path, feed_server, json_url(receiver), [HOSTILE], extra)

    polled = run_cli("poll", "-c", str(config), "--drain-timeout", "3", cwd=tmp_path)
    assert polled.returncode == 0, polled.stderr
    [post] = receiver.posts()
    sent = payload(post)
    neutralised = HOSTILE.replace("@", f"@{ZWSP}").replace("<", f"<{ZWSP}")
    assert sent["message"] == f"ALERT {neutralised} via dprk (dprk troops)"
    assert_cannot_ping(sent["message"])
    assert sent["title"].replace(ZWSP, "") == HOSTILE  # the title is not templated


def test_a_digest_sends_one_message_for_several_alerts(
    tmp_path: Path, feed_server: FeedServer, receiver: Receiver
) -> None:
    titles = [
        "DPRK troops seen near Kursk",
        "DPRK troops move to Pokrovsk",
        "DPRK troops: @everyone Vuhledar",
    ]
    config = write_config(tmp_path, feed_server, json_url(receiver), titles, "digest: 1s")

    polled = run_cli("poll", "-c", str(config), "--drain-timeout", "5", cwd=tmp_path)
    assert polled.returncode == 0, polled.stderr
    [post] = receiver.posts()
    sent = payload(post)
    assert sent["title"] == "news-monitor: 3 alerts"
    lines = [line for line in sent["message"].splitlines() if line.startswith("• ")]
    assert sorted(line.split(" — ")[0].removeprefix("• ").replace(ZWSP, "") for line in lines) == (
        sorted(titles)
    )
    assert_cannot_ping(sent["message"])
    assert "delivered digest of 3 alerts" in polled.stderr
    found = deliveries(config, tmp_path)
    assert [(d["state"], d["attempts"]) for d in found] == [("delivered", 1)] * 3


# --- Discord and Slack, captured at Apprise's HTTP call ---------------------------------


@dataclass
class Captured:
    method: str
    url: str
    body: dict[str, Any]


class _Response:
    status_code = 200
    content = b"ok"  # what a Slack webhook answers
    headers: dict[str, str] = {}  # noqa: RUF012


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Captured]]:
    """What Apprise's Discord (`requests.post`) and Slack (`requests.request`) plugins would
    send. This replaces only the far service: nothing leaves the machine."""
    sent: list[Captured] = []

    def post(url: str, data: Any = None, **kwargs: Any) -> _Response:
        sent.append(Captured("POST", url, json.loads(data)))
        return _Response()

    def request(method: str, url: str, data: Any = None, **kwargs: Any) -> _Response:
        sent.append(Captured(method.upper(), url, json.loads(data)))
        return _Response()

    monkeypatch.setattr(requests, "post", post)
    monkeypatch.setattr(requests, "request", request)
    yield sent


def hostile_alert(
    title: str = HOSTILE,
    summary: str = "Officials: @everyone <!here> <@U999> <#C1|general> troops",
    url: str = "https://news.example/@everyone/a",
) -> dict[str, Any]:
    entry = Entry("g1", url, title, summary, "", "", (), datetime(2026, 11, 24, tzinfo=UTC))
    item = Item("wire", "k1", entry, "en", "h1")
    match = Match("dprk", (Hit("dprk troops", "title", 0, 11, "DPRK troops"),))
    return alert_document("al_1", match, item, datetime(2026, 11, 24, 0, 1, tzinfo=UTC))


def notifier(url: str, template: str | None = None) -> Apprise:
    return Apprise(
        "chat", AppriseNotifier(type="apprise", urls=(SecretStr(url),), template=template)
    )


def send(url: str, *alerts: dict[str, Any], template: str | None = None) -> None:
    message = Message("dg_1" if len(alerts) > 1 else "msg_1", alerts, digest=len(alerts) > 1)
    result = asyncio.run(notifier(url, template).send(message))
    assert result.outcome == "delivered", result


def discord_can_ping(body: dict[str, Any]) -> list[str]:
    """The mentions Discord would act on in this webhook body."""
    allowed = body.get("allow_mentions", body.get("allowed_mentions"))
    texts = [body.get("content", "")]
    for embed in body.get("embeds", ()):
        texts += [embed.get("title", ""), embed.get("description", "")]
    found = []
    for text in texts:
        found += re.findall(r"@(?:everyone|here)\b", text)
        found += re.findall(r"<@[!&]?\d+>", text)
    if allowed is not None:
        found += [f"@{name}" for name in allowed.get("parse", ())]
        found += [f"<@{user}>" for user in allowed.get("users", ())]
        found += [f"<@&{role}>" for role in allowed.get("roles", ())]
    return found


def slack_can_ping(body: dict[str, Any]) -> list[str]:
    """Slack's special mentions and user/channel references in every text of the body."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.extend(re.findall(r"<[!@#][^>]*>", value))
        elif isinstance(value, dict):
            for inner in value.values():
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(body)
    return found


@pytest.mark.parametrize("url", [DISCORD, DISCORD + "?format=markdown"])
def test_discord_gets_nothing_that_pings(captured: list[Captured], url: str) -> None:
    send(url, hostile_alert())
    [call] = captured
    assert call.url.startswith("https://discord.com/api/webhooks/1234567890/")
    assert discord_can_ping(call.body) == []
    text = call.body.get("content", "") + "".join(
        embed.get("title", "") + embed.get("description", "")
        for embed in call.body.get("embeds", ())
    )
    assert "DPRK troops" in text
    assert "%40everyone" in text  # the link still works, and pings nobody


@pytest.mark.parametrize("url", [DISCORD, DISCORD + "?format=markdown"])
def test_discord_digest_gets_nothing_that_pings(captured: list[Captured], url: str) -> None:
    send(url, hostile_alert(), hostile_alert(title="@here second DPRK troops"))
    [call] = captured
    assert discord_can_ping(call.body) == []


@pytest.mark.parametrize("url", [DISCORD, DISCORD + "?format=markdown"])
def test_without_neutralising_discord_would_ping(captured: list[Captured], url: str) -> None:
    # The control: the same headline handed to Apprise as it came from the feed.
    service = apprise.Apprise()
    service.add(url)
    assert service.notify(body=HOSTILE, title="DPRK", body_format=apprise.NotifyFormat.TEXT)
    [call] = captured
    assert "@everyone" in discord_can_ping(call.body)
    assert "@here" in discord_can_ping(call.body)


@pytest.mark.parametrize(
    "url",
    [
        SLACK,
        SLACK + "?format=markdown",
        SLACK + "?blocks=yes",
        SLACK + "?format=markdown&blocks=yes",
    ],
)
def test_slack_gets_nothing_that_pings(captured: list[Captured], url: str) -> None:
    send(url, hostile_alert())
    send(url, hostile_alert(), hostile_alert(title="<!here> second DPRK troops"))
    assert len(captured) == 2
    for call in captured:
        assert call.url.startswith("https://hooks.slack.com/services/T1234ABCD/")
        assert slack_can_ping(call.body) == []
        assert "DPRK troops" in json.dumps(call.body, ensure_ascii=False)


def test_our_text_stays_mention_free_even_where_slack_markup_passes(
    captured: list[Captured],
) -> None:
    # Apprise escapes `<` in a plain-text body for Slack on its own, but passes Slack's
    # markup through in a markdown body: there a raw headline pings the channel. Our text
    # sent down that same path pings nobody, so the defence does not rest on Apprise.
    title, body = notifier(SLACK).text(Message("msg_1", (hostile_alert(),)))
    for text in (HOSTILE, body):
        service = apprise.Apprise()  # one each: Apprise spaces Slack sends 1.2 s apart
        service.add(SLACK + "?format=markdown")
        assert service.notify(body=text, title=title, body_format=apprise.NotifyFormat.MARKDOWN)
    raw, ours = captured
    assert "<!channel>" in slack_can_ping(raw.body)
    assert "<@U123>" in slack_can_ping(raw.body)
    assert slack_can_ping(ours.body) == []


def test_a_template_is_neutralised_too(captured: list[Captured]) -> None:
    send(DISCORD, hostile_alert(), template="{{ story.title }} | {{ story.summary }}")
    [call] = captured
    assert discord_can_ping(call.body) == []
    assert "| Officials:" in call.body["content"]


def test_discord_markdown_gets_no_role_ping(captured: list[Captured]) -> None:
    send(DISCORD + "?format=markdown", hostile_alert(summary="Officials <@&123456> and @&654321"))
    [call] = captured
    assert discord_can_ping(call.body) == []


@pytest.mark.parametrize("url", [DISCORD, DISCORD + "?format=markdown"])
def test_discord_gets_no_mention_from_a_hostile_link(captured: list[Captured], url: str) -> None:
    send(url, hostile_alert(url="https://evil.example/<@111222333>"))
    [call] = captured
    assert discord_can_ping(call.body) == []


def test_a_failing_service_is_a_retry_with_apprises_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Refused(_Response):
        status_code = 500

    monkeypatch.setattr(requests, "post", lambda *args, **kwargs: Refused())
    result = asyncio.run(notifier(DISCORD).send(Message("msg_1", (hostile_alert(),))))
    assert result.outcome == "retry"
    assert "Discord" in result.detail and "500" in result.detail
    assert "AbCdEfTok3nValue" not in result.detail
    assert len(result.detail) <= 300


def test_a_service_that_hangs_is_a_retry_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = threading.Event()

    def hang(*args: Any, **kwargs: Any) -> _Response:
        release.wait(5)
        return _Response()

    monkeypatch.setattr(requests, "post", hang)
    config = AppriseNotifier.model_validate(
        {"type": "apprise", "urls": [DISCORD], "timeout": "0.2s"}
    )

    async def attempt() -> SendResult:
        try:
            return await Apprise("chat", config).send(Message("msg_1", (hostile_alert(),)))
        finally:
            release.set()  # let the stuck thread end, so the loop can close

    started = time.monotonic()
    result = asyncio.run(attempt())
    assert time.monotonic() - started < 3
    assert result.outcome == "retry"
    assert result.detail == "no answer within 0.2s"


# --- config -----------------------------------------------------------------------------


def config_of(text: str, environ: dict[str, str] | None = None) -> Any:
    return loads(textwrap.dedent(text), "monitor.yaml", environ or {})


def test_an_unknown_scheme_is_a_config_error_that_does_not_quote_the_url() -> None:
    secret_url = "nosuchservice://Tok3nSecretValue@host.example/abc"
    with pytest.raises(ConfigError) as caught:
        config_of(f"""\
            notifiers:
              chat:
                type: apprise
                urls: ["{DISCORD}", "{secret_url}"]
            """)
    [problem] = caught.value.problems
    assert problem.startswith("monitor.yaml:4: notifiers.chat.urls[1]: ")
    assert "Apprise" in problem
    assert "Tok3nSecretValue" not in problem and "nosuchservice" not in problem
    assert "Tok3nSecretValue" not in str(caught.value)


def test_a_known_url_that_apprise_cannot_use_is_refused_without_quoting_it() -> None:
    # Right scheme, wrong shape: Apprise will not build the service.
    assert not recognised("discord://only-one-part")
    with pytest.raises(ConfigError) as caught:
        config_of('notifiers:\n  chat: {type: apprise, urls: ["discord://only-one-part"]}\n')
    assert "only-one-part" not in str(caught.value)


def test_recognised_knows_common_services() -> None:
    assert recognised(DISCORD)
    assert recognised(SLACK)
    assert recognised("json://127.0.0.1:8080/hook")
    assert not recognised("https-but-not://x")
    assert not recognised("")


def test_empty_urls_switch_the_notifier_off() -> None:
    config = config_of(
        """\
        rules:
          - {name: dprk, any: ["DPRK troops"]}
        notifiers:
          screen: {type: console}
          chat: {type: apprise, urls: ["${DISCORD_URL:-}", "${TELEGRAM_URL:-}"]}
        """
    )
    assert config.disabled_notifiers == ("chat",)
    assert list(config.active_notifiers()) == ["screen"]
    assert config.rule_targets(config.rules[0]) == ("screen",)


def test_one_set_url_keeps_the_notifier_on_and_drops_the_empty_one(
    captured: list[Captured],
) -> None:
    config = config_of(
        """\
        notifiers:
          chat: {type: apprise, urls: ["${TELEGRAM_URL:-}", "${DISCORD_URL:-}"]}
        """,
        {"DISCORD_URL": DISCORD},
    )
    assert config.disabled_notifiers == ()
    chat = config.notifiers["chat"]
    assert isinstance(chat, AppriseNotifier)
    result = asyncio.run(Apprise("chat", chat).send(Message("msg_1", (hostile_alert(),))))
    assert result.outcome == "delivered"
    assert [call.url.split("/")[2] for call in captured] == ["discord.com"]


def test_an_unset_variable_without_a_default_is_still_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        config_of('notifiers:\n  chat: {type: apprise, urls: ["${DISCORD_URL}"]}\n')
    [problem] = caught.value.problems
    assert "environment variable DISCORD_URL is not set" in problem


def test_apprise_urls_are_secrets_with_their_tokens() -> None:
    config = config_of(
        'notifiers:\n  chat: {type: apprise, urls: ["${DISCORD_URL}"]}\n', {"DISCORD_URL": DISCORD}
    )
    secrets = config.secrets()
    assert DISCORD in secrets
    assert "AbCdEfTok3nValue" in secrets
    assert "1234567890" in secrets
    assert DISCORD not in repr(config)


def test_an_apprise_notifier_needs_at_least_one_url() -> None:
    with pytest.raises(ConfigError) as caught:
        config_of("notifiers:\n  chat: {type: apprise, urls: []}\n")
    assert "notifiers.chat.urls" in str(caught.value)
