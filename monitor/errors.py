"""The error tree. Expected outcomes (304, timeouts, 4xx from a receiver) are return
values, not exceptions; these are for rejected input and for the CLI's one sentence.

    MonitorError                 anything the CLI turns into "one sentence + exit code"
    ├── ConfigError              the config file is unusable; carries every problem found
    └── InputError               a command-line input (file, URL, text) is unusable
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base for errors that reach the user as one clear sentence."""

    exit_code = 1


class ConfigError(MonitorError):
    """Every problem found in a config file, each already naming its place."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class InputError(MonitorError):
    """A file, URL or text given on the command line cannot be used."""
