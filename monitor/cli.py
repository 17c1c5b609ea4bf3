"""The command line: one thin function per command. The one place where an error
becomes one sentence and an exit code (0 ok, 1 bad config or input, 2 usage).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Callable
from typing import Any, TypeVar

import click

from monitor import __version__, logs
from monitor import config as config_module
from monitor.errors import ConfigError, MonitorError

F = TypeVar("F", bound=Callable[..., Any])


def common(command: F) -> F:
    """-c/--config, --log-format and --log-level on every command."""
    options = [
        click.option(
            "-c",
            "--config",
            "config_path",
            default=None,
            metavar="FILE",
            help="Config file (default: $NEWS_MONITOR_CONFIG, else ./config/monitor.yaml).",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            default=lambda: os.environ.get("NEWS_MONITOR_LOG_FORMAT", "text"),
            help="Log lines as readable text or one JSON object each.",
        ),
        click.option(
            "--log-level",
            type=click.Choice(["debug", "info", "warning", "error"]),
            default="info",
            help="Least severe log level shown.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


drain_timeout = click.option(
    "--drain-timeout",
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to keep delivering due alerts before exiting.",
)


def _setup(config_path: str | None, log_format: str, log_level: str) -> config_module.Config:
    logs.setup(log_format, log_level)
    return config_module.load(config_path or config_module.default_path())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="news-monitor")
def cli() -> None:
    """Watch news feeds, match watch rules, alert once per story."""


@cli.command()
@common
def check(config_path: str | None, log_format: str, log_level: str) -> None:
    """Validate the config; list every problem with its line."""
    path = config_path or config_module.default_path()
    config = _setup(path, log_format, log_level)
    off = f" ({len(config.disabled_notifiers)} switched off)" if config.disabled_notifiers else ""
    click.echo(
        f"{path} is valid: {len(config.feeds)} feeds, {len(config.rules)} rules, "
        f"{len(config.notifiers)} notifiers{off}."
    )


@cli.command()
@common
@click.option("--feed", "feed_name", default=None, metavar="NAME", help="Poll only this feed.")
@drain_timeout
def poll(
    config_path: str | None,
    log_format: str,
    log_level: str,
    feed_name: str | None,
    drain_timeout: float,
) -> None:
    """Poll every feed (or one) once, deliver what matched, exit."""
    config = _setup(config_path, log_format, log_level)
    feeds = list(config.feeds)
    if feed_name is not None:
        feeds = [f for f in feeds if f.display_name() == feed_name]
        if not feeds:
            raise MonitorError(f"there is no feed named {feed_name!r} in the config")
    from monitor.runner import poll_once

    left = asyncio.run(poll_once(config, feeds, drain_timeout))
    if left:
        logs.get("cli").warning("%d deliveries still pending; the next run retries them", left)


@cli.command()
@common
@click.option(
    "--listen",
    default=None,
    metavar="HOST:PORT",
    help="Serve /healthz and /metrics here (e.g. 0.0.0.0:8080).",
)
@click.option(
    "--watch-config",
    is_flag=True,
    help="Reload the config whenever its file changes (SIGHUP always reloads).",
)
def run(
    config_path: str | None,
    log_format: str,
    log_level: str,
    listen: str | None,
    watch_config: bool,
) -> None:
    """Run the daemon until SIGTERM or SIGINT; SIGHUP reloads the config."""
    from monitor.listen import parse_address

    try:
        address = parse_address(listen) if listen else None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--listen") from None
    path = config_path or config_module.default_path()
    config = _setup(path, log_format, log_level)
    from monitor.app import build
    from monitor.daemon import run as run_daemon

    asyncio.run(run_daemon(build(config), address, path, watch_config))


@cli.command(name="test")
@common
@click.option("--url", default=None, help="Fetch this feed and match its items.")
@click.option(
    "--file",
    "file_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Match the items of this feed file.",
)
@click.option("--text", default=None, help="Match this text as if it were a headline.")
@click.option(
    "--since", default=None, metavar="DURATION", help="Replay items stored in this period, e.g. 7d."
)
@click.option("--rule", "rule_name", default=None, metavar="NAME", help="Only this rule.")
@click.option("--all", "show_all", is_flag=True, help="Also list items that match nothing.")
def test_rules(
    config_path: str | None,
    log_format: str,
    log_level: str,
    url: str | None,
    file_path: str | None,
    text: str | None,
    since: str | None,
    rule_name: str | None,
    show_all: bool,
) -> None:
    """Dry run: which rules match which items, and why. Stores and sends nothing."""
    from monitor import dryrun
    from monitor.render import explanation

    sources = [s for s in (url, file_path, text, since) if s is not None]
    if len(sources) != 1:
        raise click.UsageError("give exactly one of --url, --file, --text or --since")
    config = _setup(config_path, log_format, log_level)
    rules = dryrun.select_rules(config, rule_name)
    if text is not None:
        items = [dryrun.text_item(text)]
    elif file_path is not None:
        items = dryrun.file_items(file_path)
    elif url is not None:
        items = dryrun.url_items(url, config)
    else:
        try:
            window = config_module.parse_duration(since)
        except ValueError as error:
            raise MonitorError(f"--since: {error}") from None
        items = dryrun.stored_items(config, window)
    results = dryrun.match_items(rules, items, config, scoped=since is not None)
    matched = 0
    for item, matches in results:
        if matches or show_all:
            click.echo(explanation(item, matches) + "\n")
        matched += bool(matches)
    click.echo(f"{matched} of {len(results)} items match {len(rules)} rules.")


@cli.command()
@common
@click.option("--json", "as_json", is_flag=True, help="One JSON object per feed, per line.")
def feeds(config_path: str | None, log_format: str, log_level: str, as_json: bool) -> None:
    """Each feed's health: status, last success, last error, next poll, items seen."""
    import json

    from monitor.clock import utcnow
    from monitor.health import view
    from monitor.models import FeedState
    from monitor.render import feed_view_json, feeds_table
    from monitor.store import Store

    config = _setup(config_path, log_format, log_level)
    store = Store(config.storage)
    try:
        states = store.feed_states()
    finally:
        store.close()
    now = utcnow()
    views = [
        view(
            feed.display_name(),
            feed.url,
            config.feed_interval(feed),
            states.get(feed.display_name()) or FeedState(feed.display_name()),
            now,
        )
        for feed in config.feeds
    ]
    if as_json:
        for row in views:
            click.echo(json.dumps(feed_view_json(row), ensure_ascii=False))
        return
    click.echo(feeds_table(views))
    failing = sum(row.status in ("failing", "gone") for row in views)
    click.echo(f"\n{len(views)} feeds, {failing} failing or gone.")


@cli.command()
@common
@click.option(
    "--status",
    type=click.Choice(["pending", "delivered", "failed"]),
    default=None,
    help="Only alerts with a delivery in this state.",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per alert, per line.")
def alerts(
    config_path: str | None,
    log_format: str,
    log_level: str,
    status: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Recent alerts, newest first, with each notifier's delivery state."""
    import json

    from monitor.render import alert_listing, alert_record_json
    from monitor.store import Store

    config = _setup(config_path, log_format, log_level)
    store = Store(config.storage)
    try:
        records = store.recent_alerts(status, limit)
    finally:
        store.close()
    for record in records:
        if as_json:
            click.echo(json.dumps(alert_record_json(record), ensure_ascii=False))
        else:
            click.echo(alert_listing(record) + "\n")
    if not as_json:
        click.echo(f"{len(records)} alerts" + (f" with a {status} delivery." if status else "."))


@cli.command()
@common
@click.argument("ids", nargs=-1, metavar="ID...")
@click.option("--failed", is_flag=True, help="Every failed delivery.")
@drain_timeout
def redeliver(
    config_path: str | None,
    log_format: str,
    log_level: str,
    ids: tuple[str, ...],
    failed: bool,
    drain_timeout: float,
) -> None:
    """Queue deliveries again (alert or delivery ids, or --failed) and send them now."""
    if not ids and not failed:
        raise click.UsageError("give alert or delivery ids, or --failed")
    config = _setup(config_path, log_format, log_level)
    from monitor.app import build
    from monitor.runner import redeliver_now

    left, queued, unknown = asyncio.run(
        redeliver_now(build(config), list(ids), failed, drain_timeout)
    )
    if unknown:
        raise MonitorError(f"no alert or delivery has the id {', '.join(unknown)}")
    click.echo(f"{queued} deliveries queued again; {left} still pending.")


@cli.command()
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    help="Least severe log level shown.",
)
def demo(log_level: str) -> None:
    """Serve the bundled sample feeds on loopback and print the alerts they raise."""
    from monitor.demo import demo_dir, serve
    from monitor.runner import poll_once

    logs.setup("text", log_level)
    root = demo_dir()
    with tempfile.TemporaryDirectory() as scratch, serve(root) as url:
        environ = {
            **os.environ,
            "NEWS_MONITOR_DEMO_URL": url,
            "NEWS_MONITOR_DEMO_DB": os.path.join(scratch, "demo.db"),
        }
        config = config_module.load(root / "demo.yaml", environ)
        click.echo(
            f"Serving {len(config.feeds)} sample feeds at {url}; "
            f"matching {len(config.rules)} rules:\n"
        )
        asyncio.run(poll_once(config, list(config.feeds), 10.0))
        click.echo(
            "\nThat was one poll. Edit config/monitor.yaml and run `make run` to watch real feeds."
        )


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="news-monitor", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(2)
    except ConfigError as error:
        count = len(error.problems)
        if count == 1:
            click.echo(f"news-monitor: {error.problems[0]}", err=True)
            sys.exit(1)
        click.echo(f"news-monitor: the config has {count} problem{'s' * (count != 1)}:", err=True)
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
    except MonitorError as error:
        click.echo(f"news-monitor: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
