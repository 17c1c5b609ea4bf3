"""The parser process's side of monitor.parsing: read a request, parse (and, when
asked, prepare the items: identity, story signature, rule matches), reply, under the
memory and CPU limits it sets itself. Imports nothing it does not use (no asyncio, no
HTTP), so each worker costs little memory.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import resource
import signal
import struct
import sys
from typing import TYPE_CHECKING, Any, BinaryIO

from monitor.models import ParsedFeed
from monitor.parse import ParseError, ParseMemoryError, parse_feed

if TYPE_CHECKING:
    from monitor.prepare import Prepared
    from monitor.rules import RuleSet

HEADER = struct.Struct(">Q")
READY = b"ready"
# What compiling the rules sent with a request may take on top of the parse deadline.
COMPILE_SECONDS = 120.0


class _PlainUnpickler(pickle.Unpickler):
    """Requests hold only bytes, strings, numbers, tuples and dicts; nothing needs a
    class."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed")


def serve() -> None:
    """A worker's main loop: one request in, one reply out, until stdin closes (the pool
    closed it, or the daemon died)."""
    memory_bytes, cpu_budget = int(sys.argv[2]), int(sys.argv[3])
    # Ctrl-C reaches the whole process group; shutting workers down is the pool's call.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The protocol keeps the real stdout; anything a library prints goes to stderr.
    replies = os.dup(1)
    os.dup2(2, 1)
    requests = sys.stdin.buffer
    _lower_limit(resource.RLIMIT_CORE, 0)
    _lower_limit(resource.RLIMIT_AS, memory_bytes)
    try:
        _send(replies, READY)
        while (payload := _receive(requests)) is not None:
            _allow_cpu(cpu_budget)
            kind, value = _handle(payload, cpu_budget)
            _send(replies, pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL))
            if kind == "memory":
                return
    except (BrokenPipeError, MemoryError):
        # The daemon went away, or not even a request fits: the pool, if it is still
        # there, sees the exit and starts another worker.
        return


def _receive(stream: BinaryIO) -> bytes | None:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    payload = stream.read(size)
    return payload if len(payload) == size else None


def _handle(payload: bytes, cpu_budget: int) -> tuple[str, object]:
    try:
        request = _PlainUnpickler(io.BytesIO(payload)).load()
        body, headers, url = request[:3]
        if len(request) == 3:
            return "feed", parse_feed(body, headers, url)
        feed, tags, rules_version, specs = request[3:]
        if specs is not None:
            # Compiling thousands of rules is not the feed's doing: it gets its own
            # allowance, and the parse its whole budget after it.
            _allow_cpu(int(COMPILE_SECONDS))
        rules = _rules_for(rules_version, specs)
        _allow_cpu(cpu_budget)
        return "prepared", _prepare(parse_feed(body, headers, url), feed, tags, rules)
    except ParseMemoryError as error:
        return "memory", str(error)
    except MemoryError:
        return "memory", "the feed needs more memory to parse than is allowed"
    except ParseError as error:
        return "refused", str(error)
    except Exception as error:  # a bug in our own mapping must not cost the worker
        return "refused", f"the feed parser failed ({type(error).__name__})"


def _send(fd: int, payload: bytes) -> None:
    # Unbuffered: nothing is left to flush, and fail, at exit once the daemon is gone.
    view = memoryview(HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _lower_limit(kind: int, value: int) -> None:
    """Set both limits, so code a hostile feed might run here cannot raise them again."""
    _, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, value))


def _allow_cpu(budget: int) -> None:
    """Let the next parse use `budget` more CPU seconds before the kernel ends it."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime) + budget
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


# The rule set this worker compiled, and the pool's version number for it.
_rules: tuple[int, RuleSet] | None = None


def _rules_for(version: int, specs: object) -> RuleSet:
    """Compiled before the parse, so a worker that answered at all holds the rules it
    was sent, even when the body turned out not to be a feed."""
    global _rules
    # Imported on first use: a worker that only parses stays small.
    from monitor.rules.ruleset import compile_specs

    if _rules is None or _rules[0] != version:
        if not isinstance(specs, tuple):
            raise ValueError("a prepare request named rules this worker does not have")
        _rules = None  # a compile that fails leaves no rules, not the stale ones
        _rules = (version, compile_specs(specs))
    return _rules[1]


def _prepare(parsed: ParsedFeed, feed: str, tags: tuple[str, ...], rules: RuleSet) -> Prepared:
    from monitor.prepare import prepare

    return prepare(parsed, feed, tags, rules)
