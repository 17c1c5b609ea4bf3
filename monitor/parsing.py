"""Feed parsing in worker processes that are killed on a deadline and capped in memory.

feedparser has inputs that take tens of seconds of CPU (its author e-mail regex is
quadratic, feedparser issue 562) and XML can ask for a lot of memory. A thread cannot be
stopped and SIGALRM only reaches the main thread, so parsing runs in separate processes:
one hostile feed then costs one feed's poll, never the daemon.

Each worker is a fresh interpreter (`python -P -c …`, as multiprocessing's "spawn" start
method would make, never a fork of this threaded process) driven through asyncio's
subprocess support, so the event loop waits on pipes and process exits and never blocks.
Messages are length-prefixed pickles on the worker's stdin and stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import os
import pickle
import resource
import signal
import struct
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

from monitor.closing import AsyncClosing
from monitor.models import Entry, ParsedFeed
from monitor.parse import ParseError, ParseMemoryError, parse_feed

_HEADER = struct.Struct(">Q")
_READY = b"ready"
# A worker's own startup (interpreter, feedparser import) is not the feed's doing.
_MIN_STARTUP_SECONDS = 30.0
# Where `import monitor` works from, for workers of a daemon run from a source tree.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])
_WORKER_CODE = (
    "import sys; sys.path.append(sys.argv[1]); from monitor.parsing import serve; serve()"
)
_STREAM_LIMIT = 1 << 20
# An idle worker (Python, feedparser) maps about 33 MiB; leave room for some feed.
_MIN_MEMORY_BYTES = 64 << 20


class ParserPoolClosed(RuntimeError):
    """The pool was closed before or during this parse; it says nothing about the feed."""


class ParserPool(AsyncClosing):
    """At most `workers` parses at once, each in a worker process that is killed (and
    replaced on next use) when it runs past `deadline` seconds, dies, or runs out of its
    `memory_bytes` of address space. Workers start on first use and stay for later
    parses; `close()` stops them all."""

    def __init__(
        self, workers: int = 2, deadline: float = 20.0, memory_bytes: int = 1 << 30
    ) -> None:
        if workers < 1:
            raise ValueError("a parser pool needs at least one worker")
        if not deadline > 0:
            raise ValueError("the parse deadline must be positive")
        if memory_bytes < _MIN_MEMORY_BYTES:
            raise ValueError("a parser worker needs at least 64 MiB of address space")
        self.workers = workers
        self.deadline = deadline
        self.memory_bytes = memory_bytes
        # Idle slots, each a running worker or None where one is yet to be started; last
        # in, first out, so a warm worker is reused before another one is started.
        # Created on first use, inside the event loop that will use it.
        self._slots: asyncio.LifoQueue[asyncio.subprocess.Process | None] | None = None
        self._live: set[asyncio.subprocess.Process] = set()
        self._closed = False

    @property
    def pids(self) -> tuple[int, ...]:
        """Process ids of the workers running now, busy or idle."""
        return tuple(sorted(process.pid for process in self._live))

    async def parse(self, body: bytes, headers: dict[str, str], url: str) -> ParsedFeed:
        """parse_feed's result, computed in a worker. Raises ParseError for a body that
        is not a feed, and for one whose parse hit the deadline or the memory cap."""
        self._check_open()
        slots = self._idle_slots()
        worker = await slots.get()
        try:
            self._check_open()
            if worker is not None and worker.returncode is not None:
                await self._stop(worker)  # died while idle (the OOM killer, an operator)
                worker = None
            if worker is None:
                worker = await self._start()
            reply = await self._exchange(worker, (body, headers, url))
            if isinstance(reply, ParseMemoryError):
                # A fresh worker, not one whose heap is full of the last feed's debris.
                await self._stop(worker)
                worker = None
        except BaseException:
            if worker is not None:
                await self._stop(worker)
                worker = None
            raise
        finally:
            slots.put_nowait(worker)
        if isinstance(reply, ParseError):
            raise reply
        return reply

    async def close(self) -> None:
        """Kill every worker and wait until each is reaped. Idempotent; parses still
        running raise ParserPoolClosed, and so does any parse called later."""
        self._closed = True
        processes = list(self._live)
        for process in processes:
            _kill(process)
        await asyncio.gather(*(self._stop(process) for process in processes))

    def _check_open(self) -> None:
        if self._closed:
            raise ParserPoolClosed("the parser pool is closed")

    def _idle_slots(self) -> asyncio.LifoQueue[asyncio.subprocess.Process | None]:
        if self._slots is None:
            self._slots = asyncio.LifoQueue()
            for _ in range(self.workers):
                self._slots.put_nowait(None)
        return self._slots

    async def _start(self) -> asyncio.subprocess.Process:
        # A parse uses no more CPU time than wall time, so with the daemon alive the
        # deadline kills first; the CPU limit ends a parse the dead daemon cannot kill.
        cpu_budget = math.ceil(self.deadline) + 1
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",  # the daemon's working directory is no place to import from
                "-c",
                _WORKER_CODE,
                _PACKAGE_ROOT,
                str(self.memory_bytes),
                str(cpu_budget),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=_STREAM_LIMIT,
            )
        except OSError as error:
            raise ParseError(f"cannot start a parser process ({error.strerror})") from None
        self._live.add(process)
        try:
            async with asyncio.timeout(max(_MIN_STARTUP_SECONDS, self.deadline)):
                ready = await _read_frame(process, len(_READY))
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            ready = None
        if ready != _READY or self._closed:  # close() may have come before _live knew it
            await self._stop(process)
            self._check_open()
            raise ParseError(
                "a parser process failed to start (exit code"
                f" {process.returncode}); this poll of the feed is skipped"
            )
        return process

    async def _exchange(
        self, process: asyncio.subprocess.Process, request: tuple[bytes, dict[str, str], str]
    ) -> ParsedFeed | ParseError:
        assert process.stdin is not None
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            async with asyncio.timeout(self.deadline):
                process.stdin.write(_HEADER.pack(len(payload)))
                process.stdin.write(payload)
                await process.stdin.drain()
                # No reply can be larger than the worker's whole address space.
                reply = await _read_frame(process, self.memory_bytes)
        except TimeoutError:
            await self._stop(process)
            raise ParseError(self._too_slow()) from None
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            await self._stop(process)
            self._check_open()
            if process.returncode == -signal.SIGXCPU:  # its own CPU limit beat our timer
                raise ParseError(self._too_slow()) from None
            raise ParseError(_death(process.returncode)) from None
        try:
            kind, value = _ReplyUnpickler(io.BytesIO(reply)).load()
        except Exception:
            kind, value = None, None
        if kind == "feed" and isinstance(value, ParsedFeed):
            return value
        if kind == "refused" and isinstance(value, str):
            return ParseError(value)
        if kind == "memory" and isinstance(value, str):
            return ParseMemoryError(f"{value}; this poll of the feed is skipped")
        await self._stop(process)
        raise ParseError(
            "a parser process sent a reply that cannot be read; this poll of the feed is skipped"
        )

    def _too_slow(self) -> str:
        return f"parsing took longer than {self.deadline:g}s; this poll of the feed is skipped"

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        _kill(process)
        try:
            await process.wait()
        finally:
            # Even if this wait is cancelled, asyncio's child watcher still reaps it.
            self._live.discard(process)
            if process.stdin is not None:
                process.stdin.close()


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        # Not process.kill(): Popen polls (waitpid) before signalling, and reaping a
        # worker that just died there steals it from asyncio's child watcher, which then
        # reports exit code 255 instead of the signal and logs an "unknown child".
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)


async def _read_frame(process: asyncio.subprocess.Process, limit: int) -> bytes:
    assert process.stdout is not None
    (size,) = _HEADER.unpack(await process.stdout.readexactly(_HEADER.size))
    if size > limit:
        raise ValueError("a parser reply is larger than its worker could have made")
    return await process.stdout.readexactly(size)


def _death(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        try:
            how = f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"was killed by signal {-returncode}"
    else:
        how = f"exited with code {returncode}"
    return (
        f"the parser process {how}: it ran out of memory or crashed; this poll of the feed"
        " is skipped"
    )


# A reply is unpickled in the daemon, so it may name only the classes a ParsedFeed is
# made of: a worker that hostile input had taken over must not get code run here.
_REPLY_CLASSES: dict[tuple[str, str], type] = {
    ("monitor.models", "ParsedFeed"): ParsedFeed,
    ("monitor.models", "Entry"): Entry,
    ("datetime", "datetime"): datetime,
    ("datetime", "timezone"): timezone,
    ("datetime", "timedelta"): timedelta,
}


class _ReplyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _REPLY_CLASSES[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed") from None


class _PlainUnpickler(pickle.Unpickler):
    """Requests hold only bytes, strings and a dict; nothing needs a class."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed")


# --- the worker side ------------------------------------------------------------------


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
        _send(replies, _READY)
        while (payload := _receive(requests)) is not None:
            _allow_cpu(cpu_budget)
            kind, value = _handle(payload)
            _send(replies, pickle.dumps((kind, value), protocol=pickle.HIGHEST_PROTOCOL))
            if kind == "memory":
                return
    except (BrokenPipeError, MemoryError):
        # The daemon went away, or not even a request fits: the pool, if it is still
        # there, sees the exit and starts another worker.
        return


def _receive(stream: BinaryIO) -> bytes | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    return payload if len(payload) == size else None


def _handle(payload: bytes) -> tuple[str, object]:
    try:
        body, headers, url = _PlainUnpickler(io.BytesIO(payload)).load()
        return "feed", parse_feed(body, headers, url)
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
    view = memoryview(_HEADER.pack(len(payload)) + payload)
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
