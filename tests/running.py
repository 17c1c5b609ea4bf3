"""The real daemon in a subprocess for end-to-end tests, its log read as it comes."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import cli_env


class Daemon:
    """`news-monitor run` in a subprocess, its log read as it comes."""

    def __init__(self, config: Path, *flags: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "-c", str(config), *flags],
            cwd=config.parent,
            env=env or cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def send(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def stop(self, timeout: float = 10) -> str:
        """SIGTERM; the whole log once it has exited 0 within `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"the daemon did not stop within {timeout} s")
        self._reader.join(5)
        log = "".join(self.lines)
        assert self.process.returncode == 0, log
        return log
