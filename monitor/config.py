"""The config file: YAML → frozen, validated models. Owns ${VAR} expansion, durations,
defaults and every check a config must pass; reports all problems at once with lines.
Knows nothing of how the config is used.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from monitor.errors import ConfigError
from monitor.text import tokens

DEFAULT_PATH = "./config/monitor.yaml"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NOT_A_DURATION = "is not a duration like 30s, 5m, 2h or 7d"


def parse_duration(value: object) -> timedelta:
    """`30s`, `5m`, `2h`, `7d`; a bare number is seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m, 2h or 7d")
    if isinstance(value, int | float):
        return _from_seconds(value, value)
    if isinstance(value, str) and (found := _DURATION.match(value)):
        return _from_seconds(float(found.group(1)) * _UNITS[found.group(2)], value)
    raise ValueError(f"{value!r} {_NOT_A_DURATION}")


def _from_seconds(seconds: float, written: object) -> timedelta:
    # timedelta raises OverflowError beyond ±999999999 days and for ±inf; pydantic only turns
    # ValueError into a validation error, so anything else would escape as a traceback.
    if isinstance(seconds, float) and math.isnan(seconds):
        raise ValueError(f"{written!r} {_NOT_A_DURATION}")
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        limit = f"at most {timedelta.max.days} days"
        sentence = "must not be negative" if seconds < 0 else f"is too long ({limit})"
        raise ValueError(f"{written!r} {sentence}") from None


def _longer_than_zero(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


def _not_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_longer_than_zero)]
# Jitter and backfill: zero is a real choice (no spread, no backlog alerts).
DurationOrZero = Annotated[
    timedelta, BeforeValidator(parse_duration), AfterValidator(_not_negative)
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _check_http_url(url: str) -> str:
    # None of these messages may quote the URL: for notifiers it carries a token. urlsplit's
    # own errors quote the host, so they are replaced rather than passed on.
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if "\\" in url:
        raise ValueError("must not contain a backslash")
    return url


def _check_notifier_url(url: SecretStr) -> SecretStr:
    # An empty URL is not a mistake: it switches the notifier off (_switch_off_empty_notifiers).
    if url.get_secret_value():
        _check_http_url(url.get_secret_value())
    return url


NotifierUrl = Annotated[SecretStr, AfterValidator(_check_notifier_url)]


class PollSettings(_Model):
    interval: Duration = timedelta(minutes=5)
    jitter: DurationOrZero = timedelta(seconds=30)
    timeout: Duration = timedelta(seconds=20)
    concurrency: int = Field(default=20, ge=1, le=500)
    backfill: DurationOrZero = timedelta(hours=24)
    max_body: int = Field(default=10 * 1024 * 1024, ge=1024)
    per_host: int = Field(default=2, ge=1, le=100)  # requests at once to one host
    proxy: SecretStr | None = None  # http(s):// or socks5://; may carry a password
    # Feed health: a "feed failing" notice after this many failed polls in a row; failing
    # feeds back off (doubling from the interval) up to max_backoff, and keep trying.
    failing_after: int = Field(default=3, ge=1, le=1000)
    max_backoff: Duration = timedelta(hours=6)
    # Parsing runs in worker processes, killed past this deadline or memory.
    parse_timeout: Duration = timedelta(seconds=20)
    parse_workers: int = Field(default=2, ge=1, le=32)
    parse_memory_mb: int = Field(default=1024, ge=128)


class FeedConfig(_Model):
    url: str
    name: str = ""
    interval: Duration | None = None
    tags: tuple[str, ...] = ()
    # Sent with every request for this feed, e.g. an auth token from ${VAR}; secrets.
    headers: dict[str, SecretStr] = {}

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        return _check_headers(headers, reserved=set())

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        return _check_http_url(url)

    def display_name(self) -> str:
        return self.name or slug_of_host(self.url)


def slug_of_host(url: str) -> str:
    host = (urlsplit(url).hostname or "feed").lower()
    host = host.removeprefix("www.").removeprefix("feeds.").removeprefix("rss.")
    return re.sub(r"[^a-z0-9]+", "-", host).strip("-") or "feed"


class RuleConfig(_Model):
    name: str = Field(min_length=1)
    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    query: str | None = None
    regex: tuple[str, ...] = ()
    match: Literal["stem", "exact"] = "stem"
    language: str | None = None
    feeds: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    notify: tuple[str, ...] | None = None


def _check_headers(headers: dict[str, SecretStr], reserved: set[str]) -> dict[str, SecretStr]:
    # Values are never quoted: they are tokens.
    for name, value in headers.items():
        if name.lower() in reserved:
            raise ValueError(f"header {name} is set by news-monitor and cannot be replaced")
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            raise ValueError(f"{name!r} is not a valid HTTP header name")
        if any(c in value.get_secret_value() for c in "\r\n\0"):
            raise ValueError(f"the value of header {name} contains a line break")
    return headers


class Burst(_Model):
    max: int = Field(ge=1, le=10_000)
    per: Duration


class _Notifier(_Model):
    # Pacing shared by every notifier: `digest` batches a period's alerts into one message;
    # `burst` sends the first `max` alerts of each `per` one by one and folds the rest.
    digest: Duration | None = None
    burst: Burst | None = None

    @model_validator(mode="after")
    def _one_pacing(self) -> _Notifier:
        if self.digest is not None and self.burst is not None:
            raise ValueError("set digest or burst, not both: a digest already sends one message")
        return self


def _check_template(source: str) -> str:
    # Imported here: Jinja2 costs an import only for configs that use templates.
    from monitor.templates import compile_template

    compile_template(source)
    return source


Template = Annotated[str, AfterValidator(_check_template)]


class ConsoleNotifier(_Notifier):
    type: Literal["console"]
    template: Template | None = None


_RESERVED_HEADERS = {"content-type", "webhook-id", "webhook-timestamp", "webhook-signature"}


class WebhookNotifier(_Notifier):
    type: Literal["webhook"]
    url: NotifierUrl
    secret: SecretStr | None = None
    timeout: Duration = timedelta(seconds=15)
    # Values are secrets: receivers' auth tokens travel here.
    headers: dict[str, SecretStr] = {}

    @field_validator("headers")
    @classmethod
    def _own_headers_stay(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        return _check_headers(headers, reserved=_RESERVED_HEADERS)


class SlackNotifier(_Notifier):
    type: Literal["slack"]
    url: NotifierUrl
    timeout: Duration = timedelta(seconds=15)


def _check_apprise_url(url: SecretStr) -> SecretStr:
    # Never quote the URL: Apprise URLs carry tokens and passwords.
    if url.get_secret_value():
        from monitor.notify.via_apprise import recognised

        if not recognised(url.get_secret_value()):
            raise ValueError("is not a URL Apprise recognises (see Apprise's list of services)")
    return url


class AppriseNotifier(_Notifier):
    type: Literal["apprise"]
    urls: tuple[Annotated[SecretStr, AfterValidator(_check_apprise_url)], ...] = Field(min_length=1)
    timeout: Duration = timedelta(seconds=30)
    template: Template | None = None


NotifierConfig = Annotated[
    ConsoleNotifier | WebhookNotifier | SlackNotifier | AppriseNotifier,
    Field(discriminator="type"),
]
NOTIFIER_TYPES: tuple[str, ...] = tuple(
    get_args(kind.model_fields["type"].annotation)[0]
    for kind in (ConsoleNotifier, WebhookNotifier, SlackNotifier, AppriseNotifier)
)


class Config(_Model):
    storage: str = "./data/monitor.db"
    retention: Duration = timedelta(days=90)
    poll: PollSettings = PollSettings()
    feeds: tuple[FeedConfig, ...] = ()
    rules: tuple[RuleConfig, ...] = ()
    notifiers: dict[str, NotifierConfig] = {}
    # Who hears that a feed is failing, recovered or gone; unset: every notifier.
    feed_alerts: tuple[str, ...] | None = None
    # Filled by load(): notifiers whose URL came out empty, switched off on purpose.
    disabled_notifiers: tuple[str, ...] = ()

    def feed_interval(self, feed: FeedConfig) -> timedelta:
        return feed.interval or self.poll.interval

    def active_notifiers(self) -> dict[str, NotifierConfig]:
        return {n: c for n, c in self.notifiers.items() if n not in self.disabled_notifiers}

    def rule_targets(self, rule: RuleConfig) -> tuple[str, ...]:
        """A rule's notifiers that are switched on; no `notify` means every notifier."""
        names = rule.notify if rule.notify is not None else tuple(self.notifiers)
        return tuple(n for n in names if n not in self.disabled_notifiers)

    def feed_alert_targets(self) -> tuple[str, ...]:
        names = self.feed_alerts if self.feed_alerts is not None else tuple(self.notifiers)
        return tuple(n for n in names if n not in self.disabled_notifiers)

    def secrets(self) -> list[str]:
        """Every secret value, for the logging filter that keeps them out of logs."""
        found: list[str] = []
        for notifier in self.notifiers.values():
            values = [getattr(notifier, attr, None) for attr in ("url", "secret")]
            values += list(getattr(notifier, "urls", ()))
            found += [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
            found += [
                part
                for value in getattr(notifier, "headers", {}).values()
                # `Bearer <token>`: a receiver may echo the token without its scheme word.
                for part in (value.get_secret_value(), *value.get_secret_value().split())
                if part == value.get_secret_value() or _looks_like_a_token(part)
            ]
        for feed in self.feeds:
            found += [value.get_secret_value() for value in feed.headers.values()]
            # A feed URL is shown in logs and `feeds`, unless it carries a token.
            tokens_in_url = [p for p in _url_parts(feed.url) if p not in feed.url.split("/")[2:]]
            found += [feed.url, *tokens_in_url] if tokens_in_url else []
        if self.poll.proxy is not None:
            found.append(self.poll.proxy.get_secret_value())
        return [part for value in found if value for part in (value, *_url_parts(value))]


def _url_parts(url: str) -> list[str]:
    """The pieces of a secret URL that are secrets on their own: a service may echo the
    token alone, without the URL around it."""
    try:
        parts = urlsplit(url)
        pieces = [parts.username or "", parts.password or ""]
    except ValueError:
        return []
    pieces += parts.path.split("/") + [value for _, value in parse_qsl(parts.query)]
    if parts.scheme not in ("http", "https"):
        # Apprise services keep tokens in the host part too (tgram://bot-token/chat).
        pieces += re.split(r"[@:]", parts.netloc)
    return [piece for piece in pieces if _looks_like_a_token(piece)]


def _looks_like_a_token(piece: str) -> bool:
    # Words such as `services` or `webhooks` are not secrets, and masking them in every
    # log line would hide what the line says.
    mixed = any(c.isdigit() for c in piece) or (piece.lower() != piece != piece.upper())
    address = re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", piece) is not None  # an IPv4 address
    return len(piece) >= 8 and mixed and not address


def default_path() -> str:
    return os.environ.get("NEWS_MONITOR_CONFIG") or DEFAULT_PATH


# --- loading ---------------------------------------------------------------------------


def load(path: str | Path, environ: dict[str, str] | None = None) -> Config:
    """Read, expand and validate a config file; raise ConfigError listing every problem."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{where}: no such config file"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{where}: cannot read the config file ({error})"]) from None
    return loads(text, where, os.environ if environ is None else environ)


def loads(text: str, where: str, environ: os._Environ[str] | dict[str, str]) -> Config:
    # A good config is read by the C loader (a sixth of the time at 1,000 feeds); only
    # one with problems is read again into the round-trip tree that knows their lines.
    plain = _parse_plain(text)
    if plain is not None:
        # Anything amiss, even a surprise in the plain data, is left to the round-trip
        # path: it is the reference, and it says where.
        with contextlib.suppress(Exception):
            return _checked(plain, where, environ, locate=False)
    return _checked(_parse_yaml(text, where), where, environ, locate=True)


class _HasProblems(Exception):
    """The plain tree has problems; its reader cannot say on which lines."""


def _checked(
    tree: Any, where: str, environ: os._Environ[str] | dict[str, str], locate: bool
) -> Config:
    """The config, or ConfigError with every problem located in `tree` (a round-trip
    tree; without `locate`, _HasProblems instead)."""
    missing: list[Problem] = []
    expanded = _expand(tree, (), environ, lambda path, message: missing.append((path, message)))
    if not isinstance(expanded, dict):
        if not locate:
            raise _HasProblems
        raise ConfigError([f"{where}:1: the config must be a mapping of settings"])
    unknown = {path for path, _ in missing}
    config, invalid = _validate(expanded)
    # A missing variable leaves an empty string behind, so whatever else fails at that place
    # follows from it; the missing variable is the one problem worth reading there.
    found = [*invalid, *_cross_checks(expanded, config, unknown)]
    problems = [*missing, *((path, message) for path, message in found if path not in unknown)]
    if problems or config is None:
        if not locate:
            raise _HasProblems
        raise ConfigError(sorted(_located(problems, tree, where), key=_line_number))
    return config


def _located(problems: Iterable[Problem], tree: Any, where: str) -> Iterator[str]:
    for path, message in problems:
        yield f"{where}:{_line_of(tree, path)}: {_dotted(path) or 'config'}: {message}"


def _validate(data: dict[str, Any]) -> tuple[Config | None, list[Problem]]:
    disabled = _switch_off_empty_notifiers(data)
    try:
        return Config.model_validate({**data, "disabled_notifiers": disabled}), []
    except ValidationError as error:
        return None, list(_describe(error))


def _line_number(problem: str) -> int:
    found = re.search(r":(\d+): ", problem)
    return int(found.group(1)) if found else 0


def _valid_items(data: dict[str, Any], key: str, model: type[_M]) -> list[tuple[int, _M]]:
    """The list items of one section that validate on their own, with their positions,
    so names and references are checked even when another part of the file is broken."""
    items = data.get(key)
    if not isinstance(items, list):
        return []
    valid = []
    for index, raw in enumerate(items):
        try:
            valid.append((index, model.model_validate(raw)))
        except ValidationError:
            continue
    return valid


def _parse_plain(text: str) -> Any:
    """Plain data by ruamel's safe loader (libyaml's parser through ruamel.yaml.clib, with
    the same YAML 1.2 resolver and duplicate-key check as the round-trip loader); None
    when the text is not valid YAML, which the round-trip loader then explains."""
    yaml = YAML(typ="safe", pure=False)
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except YAMLError:
        return None
    return {} if tree is None else tree


def _parse_yaml(text: str, where: str) -> Any:
    # ruamel's round-trip loader is YAML 1.2 (no `off` → False), rejects duplicate keys
    # and keeps line numbers for every key and item.
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        problem = (error.problem or error.context or "invalid YAML").strip()
        if "duplicate key" in str(error):
            problem = _duplicate_key_sentence(str(error))
        raise ConfigError([f"{where}:{line}: {problem}"]) from None
    except YAMLError as error:
        raise ConfigError([f"{where}: invalid YAML ({error})"]) from None
    return {} if tree is None else tree


def _duplicate_key_sentence(message: str) -> str:
    found = re.search(r'found duplicate key "([^"]*)"', message)
    return f"duplicate key {found.group(1)!r}" if found else "duplicate key"


Path_ = tuple[str | int, ...]
Problem = tuple[Path_, str]
_M = TypeVar("_M", bound=BaseModel)


def _expand(node: Any, path: Path_, environ: Any, report: Callable[[Path_, str], None]) -> Any:
    """Plain Python data from the YAML tree with ${VAR} and ${VAR:-default} filled in."""
    if isinstance(node, dict):
        return {str(k): _expand(v, (*path, str(k)), environ, report) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, (*path, i), environ, report) for i, v in enumerate(node)]
    if isinstance(node, str):

        def substitute(found: re.Match[str]) -> str:
            name, default = found.group(1), found.group(2)
            if name in environ:
                return str(environ[name])
            if default is not None:
                return default
            report(
                path,
                f"environment variable {name} is not set (use ${{{name}:-}} to make it optional)",
            )
            return ""

        return _VARIABLE.sub(substitute, str(node))
    return node


def _switch_off_empty_notifiers(data: dict[str, Any]) -> list[str]:
    notifiers = data.get("notifiers")
    if not isinstance(notifiers, dict):
        return []
    return [name for name, spec in notifiers.items() if isinstance(spec, dict) and _empty(spec)]


def _empty(spec: dict[str, Any]) -> bool:
    """A notifier whose only address came out empty (`${SLACK_URL}` unset on purpose), or
    an Apprise list whose every URL did."""
    if "url" in spec:
        return spec["url"] in ("", None)
    urls = spec.get("urls")
    return isinstance(urls, list) and bool(urls) and all(url in ("", None) for url in urls)


def _cross_checks(
    data: dict[str, Any], config: Config | None, unknown: set[Path_]
) -> Iterator[Problem]:
    """Checks across items. Names come from the raw data, so an item with some other
    mistake still counts; `unknown` holds the places whose ${VAR} was not set."""
    feeds = _valid_items(data, "feeds", FeedConfig)
    rules = _valid_items(data, "rules", RuleConfig)
    notifiers = data.get("notifiers") if isinstance(data.get("notifiers"), dict) else {}
    feed_names = _raw_names(data, "feeds", _raw_feed_name, unknown)
    yield from _duplicates(feed_names, "feeds", "feed")
    yield from _duplicates(_raw_names(data, "rules", _raw_name, unknown), "rules", "rule")
    raw_alerts = data.get("feed_alerts")
    for position, notifier in enumerate(raw_alerts if isinstance(raw_alerts, list) else ()):
        if isinstance(notifier, str) and notifier not in (notifiers or {}):
            yield ("feed_alerts", position), f"unknown notifier {notifier!r}"
    for index, rule in rules:
        yield from _rule_problems(
            ("rules", index), rule, set(notifiers or ()), {name for _, name in feed_names}
        )
    if config is not None:
        for index, feed in feeds:
            if config.poll.timeout > config.feed_interval(feed):
                yield ("feeds", index, "interval"), "is shorter than poll.timeout"


def _raw_names(
    data: dict[str, Any],
    key: str,
    name_of: Callable[[Path_, dict[str, Any], set[Path_]], str | None],
    unknown: set[Path_],
) -> list[tuple[int, str]]:
    items = data.get(key)
    if not isinstance(items, list):
        return []
    named = []
    for index, raw in enumerate(items):
        name = name_of((key, index), raw, unknown) if isinstance(raw, dict) else None
        if name is not None:
            named.append((index, name))
    return named


def _raw_feed_name(place: Path_, raw: dict[str, Any], unknown: set[Path_]) -> str | None:
    """FeedConfig.display_name() for an item that may not validate."""
    if raw.get("name", "") != "" or (*place, "name") in unknown:
        return _raw_name(place, raw, unknown)
    url = raw.get("url")
    if not isinstance(url, str) or (*place, "url") in unknown:
        return None
    try:
        return slug_of_host(url)
    except ValueError:  # urlsplit rejects some malformed hosts; validation reports those
        return None


def _raw_name(place: Path_, raw: dict[str, Any], unknown: set[Path_]) -> str | None:
    """An item's `name`; None when it cannot be told: not a string, or an unset ${VAR}."""
    name = raw.get("name")
    if not isinstance(name, str) or not name or (*place, "name") in unknown:
        return None
    return name


def _rule_problems(
    place: Path_, rule: RuleConfig, notifiers: set[str], feeds: set[str]
) -> Iterator[Problem]:
    # Imported here: the rules package imports this module for RuleConfig.
    from monitor.rules.query import RuleError, query_rule, regex_rule

    if not (rule.any or rule.all or rule.query or rule.regex):
        yield place, f"rule {rule.name!r} needs `any`, `all`, `query` or `regex` to match"
    for key in ("any", "all", "none"):
        for position, term in enumerate(getattr(rule, key)):
            if not tokens(term):
                yield (*place, key, position), f"{term!r} has no letters or digits to match"
    if rule.query is not None:
        try:
            query_rule(rule.query, exact=rule.match == "exact")
        except RuleError as error:
            yield (*place, "query"), f"rule {rule.name!r}: {error}"
    for position, pattern in enumerate(rule.regex):
        try:
            regex_rule((pattern,))
        except RuleError as error:
            yield (*place, "regex", position), f"rule {rule.name!r}: {error}"
    for position, notifier in enumerate(rule.notify or ()):
        if notifier not in notifiers:
            yield (
                (*place, "notify", position),
                f"rule {rule.name!r} notifies unknown notifier {notifier!r}",
            )
    for position, feed in enumerate(rule.feeds):
        if feed not in feeds:
            yield (*place, "feeds", position), f"rule {rule.name!r} names unknown feed {feed!r}"


def _duplicates(names: Iterable[tuple[int, str]], section: str, noun: str) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, name in names:
        if name in seen:
            yield (section, index, "name"), f"duplicate {noun} name {name!r}"
        seen.add(name)


def _describe(error: ValidationError) -> Iterator[Problem]:
    details = error.errors()
    for detail in details:
        path = _without_union_tag(tuple(detail["loc"]))
        if path and path[-1] == "disabled_notifiers":
            continue
        if detail["type"] == "too_short" and _has_deeper(details, tuple(detail["loc"])):
            continue  # a list emptied by its items' own errors: those say what is wrong
        yield path, _plain_message(detail)


def _has_deeper(details: list[Any], loc: tuple[Any, ...]) -> bool:
    return any(len(d["loc"]) > len(loc) and tuple(d["loc"][: len(loc)]) == loc for d in details)


def _plain_message(detail: Any) -> str:
    kind = detail["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    if kind == "union_tag_invalid":
        return "type must be one of: " + ", ".join(NOTIFIER_TYPES)
    if kind == "union_tag_not_found":
        return "type is required: one of " + ", ".join(NOTIFIER_TYPES)
    message = str(detail["msg"])
    return message.removeprefix("Value error, ")


def _line_of(tree: Any, path: Path_) -> int:
    """The 1-based line of the deepest node along `path` that exists in the YAML tree.
    Path parts that are not in the tree (pydantic's union tags) are skipped."""
    node, line = tree, 1
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            line = (
                node.lc.value(part)[0] + 1 if _is_scalar(node[part]) else node.lc.key(part)[0] + 1
            )
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
    return line


def _is_scalar(node: Any) -> bool:
    return not isinstance(node, CommentedMap | CommentedSeq)


def _without_union_tag(path: Path_) -> Path_:
    # pydantic puts the chosen notifier type into the location: notifiers.ops.webhook.url
    if len(path) > 2 and path[0] == "notifiers" and path[2] in NOTIFIER_TYPES:
        return path[:2] + path[3:]
    return path


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
