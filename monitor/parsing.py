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
import collections
import contextlib
import io
import math
import os
import pickle
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from monitor.closing import AsyncClosing
from monitor.models import Entry, Hit, Item, Match, ParsedFeed, StorySignature
from monitor.parse import ParseError, ParseMemoryError
from monitor.parse_worker import COMPILE_SECONDS, HEADER, READY
from monitor.prepare import Prepared
from monitor.rules.ruleset import RuleSpec

# A worker's own startup (interpreter, feedparser import) is not the feed's doing.
_MIN_STARTUP_SECONDS = 30.0
# Where `import monitor` works from, for workers of a daemon run from a source tree.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])
_WORKER_CODE = (
    "import sys; sys.path.append(sys.argv[1]); from monitor.parse_worker import serve; serve()"
)
_STREAM_LIMIT = 1 << 20
# How long parses wait for a worker that is starting (or compiling new rules: 10,000
# rules take about 2.5 s) before another may start.
STARTUP_GRACE = 5.0
# An idle worker (Python, feedparser) maps about 33 MiB; leave room for some feed.
_MIN_MEMORY_BYTES = 64 << 20


# Given the worker that will answer: the message, and the rules version it carries.
_Request = Callable[[asyncio.subprocess.Process], tuple[tuple[object, ...], int | None]]


class ParserPoolClosed(RuntimeError):
    """The pool was closed before or during this parse; it says nothing about the feed."""


class ParserPool(AsyncClosing):
    """At most `workers` parses at once, each in a worker process that is killed (and
    replaced on next use) when it runs past `deadline` seconds, dies, or runs out of its
    `memory_bytes` of address space. Workers start on first use and stay for later
    parses; `close()` stops them all."""

    def __init__(
        self,
        workers: int = 2,
        deadline: float = 20.0,
        memory_bytes: int = 1 << 30,
        start_after: float = 0.5,
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
        # One worker keeps up with a whole poll pass (the event loop's process does more
        # per feed); a further one is started when a parse has waited `start_after`
        # seconds for a free worker, which is what a slow or hostile feed makes happen.
        self._slots = _Slots(workers, start_after)
        self._live: set[asyncio.subprocess.Process] = set()
        self._closed = False
        self._specs: tuple[RuleSpec, ...] | None = None
        self._rules_version = 0
        self._rules_known: dict[int, int] = {}  # worker pid → the rules version it holds

    @property
    def pids(self) -> tuple[int, ...]:
        """Process ids of the workers running now, busy or idle."""
        return tuple(sorted(process.pid for process in self._live))

    def use_rules(self, specs: tuple[RuleSpec, ...]) -> None:
        """The rules `prepare` matches from now on (at start, and on every reload). Each
        worker is sent them with its next request and compiles its own copy."""
        self._specs = specs
        self._rules_version += 1

    async def parse(self, body: bytes, headers: dict[str, str], url: str) -> ParsedFeed:
        """parse_feed's result, computed in a worker. Raises ParseError for a body that
        is not a feed, and for one whose parse hit the deadline or the memory cap."""
        reply = await self._run(lambda worker: ((body, headers, url), None))
        if not isinstance(reply, ParsedFeed):
            raise ParseError("a parser process sent a reply of the wrong kind")
        return reply

    async def prepare(
        self, body: bytes, headers: dict[str, str], url: str, feed: str, tags: Sequence[str]
    ) -> Prepared:
        """The parse, and the items prepared in the same worker (monitor.prepare): their
        keys, story signatures and the rules (as last given to `use_rules`) they match."""
        if self._specs is None:
            raise ValueError("prepare needs rules: call use_rules first")
        version, specs = self._rules_version, self._specs

        def request(worker: asyncio.subprocess.Process) -> tuple[tuple[object, ...], int]:
            known = self._rules_known.get(worker.pid) == version
            sent = None if known else specs
            return (body, headers, url, feed, tuple(tags), version, sent), version

        reply = await self._run(request)
        if not isinstance(reply, Prepared):
            raise ParseError("a parser process sent a reply of the wrong kind")
        return reply

    async def _run(self, request: _Request) -> ParsedFeed | Prepared:
        """One exchange with an idle worker (started if need be). `request` makes the
        message for that worker, and names the rules version it will hold once it
        answered with prepared items."""
        self._check_open()
        slots = self._slots
        worker = await slots.take()
        # A new worker, or one compiling new rules, is warming up until it answers: parses
        # waiting meanwhile wait for it rather than start another worker.
        warming = worker is None
        try:
            self._check_open()
            if worker is not None and worker.returncode is not None:
                await self._stop(worker)  # died while idle (the OOM killer, an operator)
                worker = None
            if worker is None:
                worker = await self._start()
            message, rules_version = request(worker)
            if not warming and _compiles(message):
                warming = True
                slots.warming()
            reply = await self._exchange(worker, message)
            if warming:
                warming = False
                slots.started(True)
            if isinstance(reply, Prepared) and rules_version is not None:
                self._rules_known[worker.pid] = rules_version
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
            if warming:
                slots.started(False)
            slots.give_back(worker)
        # Let a parse waiting for this worker send its request before our caller goes
        # on with synchronous work (storing a poll takes milliseconds): the worker then
        # parses the next feed meanwhile instead of idling until the loop comes round.
        await asyncio.sleep(0)
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
                ready = await _read_frame(process, len(READY))
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            ready = None
        if ready != READY or self._closed:  # close() may have come before _live knew it
            await self._stop(process)
            self._check_open()
            raise ParseError(
                "a parser process failed to start (exit code"
                f" {process.returncode}); this poll of the feed is skipped"
            )
        return process

    async def _exchange(
        self, process: asyncio.subprocess.Process, request: tuple[object, ...]
    ) -> ParsedFeed | Prepared | ParseError:
        assert process.stdin is not None
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            extra = COMPILE_SECONDS if _compiles(request) else 0.0
            async with asyncio.timeout(self.deadline + extra):
                process.stdin.write(HEADER.pack(len(payload)))
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
        if (kind == "feed" and isinstance(value, ParsedFeed)) or (
            kind == "prepared" and isinstance(value, Prepared)
        ):
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
            self._rules_known.pop(process.pid, None)
            if process.stdin is not None:
                process.stdin.close()


class _Slots:
    """The pool's idle workers and its room for more. A parse takes an idle worker, the
    warmest first. With none idle it starts one if none is running; otherwise it waits
    for one to come back, and takes the room to start another only once it has waited
    `patience` seconds, counted from when it began waiting and from when the last new
    worker answered its first parse (imports, compiling the rules). While a worker is
    starting or compiling new rules, others wait for it, for up to STARTUP_GRACE
    seconds."""

    def __init__(self, room: int, patience: float) -> None:
        self._idle: list[asyncio.subprocess.Process] = []
        self._size = room
        self._room = room  # workers that may still be started
        self._starting = 0
        self._starting_since = -math.inf
        self._up_at = -math.inf  # loop time the last new worker answered its first parse
        self._patience = patience
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def take(self) -> asyncio.subprocess.Process | None:
        """An idle worker, or None: the caller starts one, and says `started()` once it
        answered its first parse (or could not)."""
        loop = asyncio.get_running_loop()
        running = self._room < self._size  # started, or being started by another parse
        waited_from = loop.time() if running else -math.inf
        while True:
            if self._idle:
                return self._idle.pop()
            start_at = self._start_at(waited_from)
            if self._room and loop.time() >= start_at:
                self._room -= 1
                self._starting += 1
                self._starting_since = loop.time()
                return None
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                wait = max(0.0, start_at - loop.time()) if self._room else None
                async with asyncio.timeout(wait):
                    await waiter
            except TimeoutError:
                pass
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()  # pass on the wake-up this cancelled parse received
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)

    def _start_at(self, waited_from: float) -> float:
        if not self._patience:  # no patience: start one whenever none is idle
            return waited_from
        start_at = max(waited_from, self._up_at) + self._patience
        if self._starting:
            start_at = max(start_at, self._starting_since + STARTUP_GRACE)
        return start_at

    def warming(self) -> None:
        """A running worker was sent new rules to compile: like a start, it takes a while."""
        self._starting += 1
        self._starting_since = asyncio.get_running_loop().time()

    def started(self, up: bool) -> None:
        """A new (or warming) worker answered its first parse (`up`), or died or failed
        before."""
        self._starting -= 1
        if up:
            self._up_at = asyncio.get_running_loop().time()
        for waiter in self._waiters:  # each waiter's patience now counts from here
            if not waiter.done():
                waiter.set_result(None)

    def give_back(self, worker: asyncio.subprocess.Process | None) -> None:
        """A worker that is idle again, or None for one that was stopped or never came
        up (room again)."""
        if worker is None:
            self._room += 1
        else:
            self._idle.append(worker)
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _compiles(message: tuple[object, ...]) -> bool:
    """A prepare request that carries rules for the worker to compile first."""
    return len(message) > 3 and message[-1] is not None


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        # Not process.kill(): Popen polls (waitpid) before signalling, and reaping a
        # worker that just died there steals it from asyncio's child watcher, which then
        # reports exit code 255 instead of the signal and logs an "unknown child".
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)


async def _read_frame(process: asyncio.subprocess.Process, limit: int) -> bytes:
    assert process.stdout is not None
    (size,) = HEADER.unpack(await process.stdout.readexactly(HEADER.size))
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
    ("monitor.prepare", "Prepared"): Prepared,
    ("monitor.models", "Item"): Item,
    ("monitor.models", "StorySignature"): StorySignature,
    ("monitor.models", "Match"): Match,
    ("monitor.models", "Hit"): Hit,
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
