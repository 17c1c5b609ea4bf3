"""Log lines: one per event in text or JSON, with the feed/rule/notifier they are about,
and secret values masked wherever they come from, exceptions included."""

from __future__ import annotations

import json
import logging
import re

import pytest

from monitor import logs

SECRET = "hunter2T0ken99"


def line(fmt: str, emit: object) -> str:
    formatter = logs.JsonFormatter() if fmt == "json" else logs.TextFormatter()
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(logs.RedactSecrets([SECRET]))
    logger = logging.getLogger("monitor.test-logs")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        emit(logger)  # type: ignore[operator]
    finally:
        logger.removeHandler(handler)
    [record] = records
    return formatter.format(record)


@pytest.fixture(autouse=True)
def registered() -> None:
    logs.redact([SECRET])


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_message_argument_holding_a_secret_is_masked(fmt: str) -> None:
    text = line(fmt, lambda log: log.info("fetching %s", f"http://x/?key={SECRET}"))
    assert SECRET not in text and "http://x/?key=***" in text


def test_text_lines_carry_context_and_stay_one_line() -> None:
    text = line("text", lambda log: log.warning("a\nb", extra={"feed": "wire", "rule": "r"}))
    assert text.endswith("WARNING feed=wire rule=r a\\nb")
    assert "\n" not in text


def test_json_lines_are_one_object_with_context() -> None:
    data = json.loads(line("json", lambda log: log.error("x", extra={"notifier": "hook"})))
    assert (data["level"], data["message"], data["notifier"]) == ("error", "x", "hook")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_an_exception_is_named_and_masked_without_its_traceback(fmt: str) -> None:
    def crash(log: logging.Logger) -> None:
        try:
            raise ValueError(f"bad URL http://x/{SECRET}")
        except ValueError:
            log.exception("poll crashed")

    text = line(fmt, crash)
    assert "poll crashed (ValueError: bad URL http://x/***)" in text
    assert SECRET not in text and "Traceback" not in text


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_times_are_utc_with_milliseconds(fmt: str) -> None:
    text = line(fmt, lambda log: log.info("x"))
    stamp = json.loads(text)["time"] if fmt == "json" else text.split()[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp), stamp
