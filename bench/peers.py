"""Side-by-side poll benchmark: our `news-monitor poll` against rss2email, feed2exec,
newsboat and a bare httpx + feedparser loop, on the same loopback feed farm in one run.

Passes, each timed per tool:
- cold: fresh state, every feed and item new (all 200);
- warm: the same state again, nothing changed (all 304, or unchanged bodies);
- steady: a farm in `steady` mode (one feed in ten gains an item per pass, half of the rest
  send no ETag / Last-Modified), after one untimed priming pass.
Tools run one after another inside each round, in an order that rotates between rounds, so
the neighbours' noise hits them alike; figures are medians over `--runs` rounds.

Every tool is a child process: wall time, CPU time (user + sys from wait4, children
included), and peak RSS sampled from /proc every 20 ms: of the largest single process and
of the whole process tree summed (wait4's ru_maxrss is no use here: it includes the forked
copy of this driver, farm and all, from before exec()).

Peers are installed into a throwaway place by `--setup` (a venv at /tmp/peers-env from
PyPI: rss2email, feed2exec, httpx, feedparser, py-spy; newsboat and libstfl0 fetched with
`apt-get download` and unpacked with `dpkg -x` into /tmp/peers-env/newsboat-root), never
into the project's venv or the system. Ours runs with the project's venv's Python on
`monitor/` exported from a commit (`--ours HEAD`, the default) or the work tree.

    .venv/bin/python bench/peers.py --setup --feeds 1000 --items 20 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feedfarm import Farm

ROOT = Path(__file__).resolve().parents[1]
PEERS_ENV = Path(os.environ.get("PEERS_ENV", "/tmp/peers-env"))
FLOOR = Path(__file__).resolve().parent / "peers" / "floor.py"
PYTHON = ROOT / ".venv" / "bin" / "python"
OURS_POLL = (str(PYTHON), "-m", "monitor", "poll", "-c", "monitor.yaml", "--log-level", "warning")
NEWSBOAT_ROOT = PEERS_ENV / "newsboat-root"
NEWSBOAT = NEWSBOAT_ROOT / "usr" / "bin" / "newsboat"
NEWSBOAT_LIBS = f"{NEWSBOAT_ROOT}/usr/lib:{NEWSBOAT_ROOT}/usr/lib/x86_64-linux-gnu"
TOOLS = ("ours", "floor", "floor-pool", "rss2email", "feed2exec", "newsboat")
PASSES = ("cold", "warm", "steady")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- measuring a child ---------------------------------------------------------------------


@dataclass
class Sample:
    wall: float
    cpu: float
    max_rss_mb: float  # largest single process of the tree (sampled like tree_rss_mb)
    tree_rss_mb: float  # peak of the summed RSS of the whole process tree
    status: int
    full: int  # 200s the farm sent during the pass
    not_modified: int  # 304s


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo.extend(int(c) for c in children.read().split())
            except OSError:
                pass
    return found


def _tree_rss_kb(pid: int) -> tuple[int, int]:
    """(sum, largest) of the resident sets of the process tree under `pid`, in KiB."""
    total = largest = 0
    for member in _tree(pid):
        try:
            with open(f"/proc/{member}/statm") as statm:
                rss = int(statm.read().split()[1]) * _PAGE_KB
        except (OSError, IndexError, ValueError):
            continue
        total += rss
        largest = max(largest, rss)
    return total, largest


def measure(
    command: Sequence[str], cwd: Path, env: dict[str, str], log: Path, farm: Farm, timeout: float
) -> Sample:
    before_full, before_304 = farm.stats.full, farm.stats.not_modified
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(command)}\n".encode())
        out.flush()
        started = time.perf_counter()
        child = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if env.get("PEERS_STDOUT") == "null" else out,
            stderr=out,
            start_new_session=True,
        )
        peak = peak_one = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, peak_one
            while not done.wait(0.02):
                total, largest = _tree_rss_kb(child.pid)
                peak, peak_one = max(peak, total), max(peak_one, largest)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        killer = threading.Timer(timeout, lambda: os.killpg(child.pid, signal.SIGKILL))
        killer.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        killer.cancel()
        done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
    return Sample(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        # Not usage.ru_maxrss: it counts the forked copy of this driver before exec().
        max_rss_mb=peak_one / 1024,
        tree_rss_mb=peak / 1024,
        status=child.returncode,
        full=farm.stats.full - before_full,
        not_modified=farm.stats.not_modified - before_304,
    )


# -- the tools -----------------------------------------------------------------------------


@dataclass
class Tool:
    name: str
    setup: Callable[[Path, list[str]], None]
    command: Callable[[Path], list[str]]
    env: dict[str, str] = field(default_factory=dict)


# Rules watch other stories too: most of their words never occur in the farm's items, and
# those that do (places) are paired with ones that don't, so that what alerts is the farm's
# topic items (one in eight), often on two or three of the ten watch rules: at 1,000 feeds
# a cold pass queues about 4,500 alerts for 20,000 items.
_OTHER = (
    "Gaza", "Taiwan Strait", "tariffs", "inflation", "interest rates", "election fraud",
    "earthquake", "hurricane", "Sudan", "Houthi", "Red Sea", "semiconductor", "wildfire",
    "central bank", "Bakhmut", "Avdiivka", "Tehran", "uranium enrichment", "Venezuela",
    "Sahel", "coup", "hostages", "refugees", "oil embargo", "cholera", "typhoon", "Yemen",
    "Strait of Hormuz", "Baltic cable", "sabotage", "hypersonic", "Belarusian troops",
    "Wagner", "Transnistria", "Moldova", "Georgia protests", "Armenia", "Nagorno-Karabakh",
)  # fmt: skip
_FARM = (
    "Kyiv", "Kharkiv", "Odesa", "Pokrovsk", "Belgorod", "Crimea", "Moscow", "Kremlin",
    "NATO", "Pentagon", "sanctions", "ceasefire", "shelling", "evacuation", "substation",
    "artillery", "grain", "prisoner", "flooding", "governor", "Warsaw", "Vilnius",
)  # fmt: skip
_WATCH = """\
  - name: dprk-troops
    any: [North Korean troops, North Korean soldiers, North Korean forces, DPRK troops,
          DPRK soldiers, troops from North Korea, soldiers from North Korea]
  - name: red-line
    all: [red line]
    any: [North Korea, North Korean, DPRK, Pyongyang]
  - name: dprk-arms-for-russia
    all: [Russia]
    any: [North Korean shells, North Korean missiles, Pyongyang's arms, KN-23, artillery shells]
  - name: strikes-on-kyiv
    all: [Kyiv]
    any: [drone strike, drone attack, missile strike, missile attack, ballistic missile]
  - name: ukraine-energy
    any: [power grid, power plant, substation, blackout, energy infrastructure, energy facility]
  - name: dprk-troops-query
    query: '("North Korea" OR DPRK OR Pyongyang) AND (troop* OR soldier* OR "combat units")
            AND (Russia OR Kursk OR Ukraine) AND NOT "South Korea election"'
  - name: dprk-troops-near
    query: '"north korean troops"~4 OR (Kursk NEAR/8 "North Korean")'
  - name: kursk
    query: 'title:Kursk OR (Kursk AND (troop* OR soldier* OR incursion))'
  - name: drone-strikes
    query: '"drone strike" OR "drone attack" AND NOT exercise'
  - name: kharkiv-missiles
    all: [Kharkiv]
    any: [ballistic missile, missile attack, glide bomb]
"""


def _quoted(term: str) -> str:
    return f'"{term}"' if " " in term or "-" in term else term


def rules_yaml(count: int = 100, seed: int = 8) -> str:
    """Ten rules like the real watch list (config/monitor.yaml, the README's queries), then
    generated ones, a quarter each: `any` lists, `all` + `any` (+ `none`), boolean Lucene
    queries, and proximity / NEAR / prefix queries."""
    rng = random.Random(seed)
    lines = ["rules:", _WATCH.rstrip("\n")]
    for number in range(count - 10):
        kind = number % 4
        lines.append(f"  - name: rule-{number:03d}")
        if kind == 0:
            terms = rng.sample(_OTHER, rng.randrange(3, 7))
            lines.append(f"    any: {json.dumps(terms)}")
        elif kind == 1:
            lines.append(f"    all: {json.dumps(rng.sample(_FARM, 1))}")
            lines.append(f"    any: {json.dumps(rng.sample(_OTHER, rng.randrange(2, 5)))}")
            if rng.random() < 0.5:
                lines.append(f"    none: {json.dumps(rng.sample(_OTHER, 1))}")
        elif kind == 2:
            a, b = (_quoted(t) for t in rng.sample(_FARM, 2))
            c, d = (_quoted(t) for t in rng.sample(_OTHER, 2))
            query = f"({a} OR {b}) AND ({c} OR {d})"
            if rng.random() < 0.5:
                query += f" AND NOT {_quoted(rng.choice(_OTHER))}"
            lines.append(f"    query: {json.dumps(query)}")
        else:
            phrase, other = rng.choice(_OTHER), rng.choice(_OTHER)
            prefix = rng.choice(_OTHER).split()[0][:5].lower()
            query = f'"{phrase.lower()} {rng.choice(_FARM).lower()}"~3'
            query += f" OR ({rng.choice(_FARM)} NEAR/6 {_quoted(other)})"
            query += f" OR title:({prefix}* AND {_quoted(rng.choice(_FARM))})"
            lines.append(f"    query: {json.dumps(query)}")
    return "\n".join(lines) + "\n"


def ours_config(workdir: Path, urls: list[str], concurrency: int, per_host: int) -> str:
    feeds = "\n".join(f"  - {{url: {json.dumps(u)}, name: farm-{i}}}" for i, u in enumerate(urls))
    return (
        f"storage: {json.dumps(str(workdir / 'monitor.db'))}\n"
        "poll:\n"
        "  interval: 5m\n"
        "  jitter: 0s\n"
        "  timeout: 60s\n"
        f"  concurrency: {concurrency}\n"
        f"  per_host: {per_host}   # every farm feed is on 127.0.0.1\n"
        "  parse_workers: 2\n"
        f"feeds:\n{feeds}\n"
        f"{rules_yaml()}"
        "notifiers:\n"
        "  console: {type: console}   # stdout goes to /dev/null\n"
    )


def make_tools(args: argparse.Namespace) -> dict[str, Tool]:
    peer_bin = PEERS_ENV / "bin"

    def ours_setup(work: Path, urls: list[str]) -> None:
        text = ours_config(work, urls, args.concurrency, args.per_host)
        (work / "monitor.yaml").write_text(text)

    def r2e_setup(work: Path, urls: list[str]) -> None:
        feeds = "".join(f"\n[feed.farm-{i}]\nurl = {u}\n" for i, u in enumerate(urls))
        (work / "r2e.cfg").write_text(
            "[DEFAULT]\nto = bench@example.invalid\nemail-protocol = sendmail\n"
            "sendmail = /bin/true\n" + feeds
        )
        data = {
            "version": 2,
            "feeds": [
                {"name": f"farm-{i}", "etag": None, "modified": None, "seen": {}}
                for i in range(len(urls))
            ],
        }
        (work / "r2e.json").write_text(json.dumps(data))

    def f2e_setup(work: Path, urls: list[str]) -> None:
        (work / "feed2exec.ini").write_text(
            "".join(
                f"[farm-{i}]\nurl = {u}\noutput = feed2exec.plugins.null\n\n"
                for i, u in enumerate(urls)
            )
        )

    def urls_setup(work: Path, urls: list[str]) -> None:
        (work / "urls.txt").write_text("\n".join(urls) + "\n")
        (work / "newsboat.conf").write_text(
            f"reload-threads {args.newsboat_threads}\ndownload-timeout 60\n"
        )

    floor_base = [str(peer_bin / "python"), str(FLOOR), "--urls", "urls.txt"]
    return {
        "ours": Tool(
            "ours",
            ours_setup,
            lambda w: [*OURS_POLL],
            # Alerts go to the console notifier, whose output is thrown away.
            {"PYTHONPATH": str(args.ours_src), "PEERS_STDOUT": "null"},
        ),
        "floor": Tool(
            "floor",
            urls_setup,
            lambda w: [*floor_base, "--state", "state.json", "--concurrency", "10"],
        ),
        "floor-pool": Tool(
            "floor-pool",
            urls_setup,
            lambda w: [
                *floor_base,
                "--state",
                "state.json",
                "--concurrency",
                "10",
                "--workers",
                "2",
            ],
        ),
        "rss2email": Tool(
            "rss2email",
            r2e_setup,
            lambda w: [
                str(peer_bin / "r2e"),
                "-c",
                "r2e.cfg",
                "-d",
                "r2e.json",
                "run",
                "--no-send",
            ],
        ),
        "feed2exec": Tool(
            "feed2exec",
            f2e_setup,
            lambda w: [
                str(peer_bin / "feed2exec"),
                "--quiet",
                "--config",
                "feed2exec.ini",
                "--database",
                "feed2exec.db",
                "fetch",
                "--jobs",
                "2",
            ],
        ),
        "newsboat": Tool(
            "newsboat",
            urls_setup,
            lambda w: [
                str(NEWSBOAT),
                "-u",
                "urls.txt",
                "-c",
                "cache.db",
                "-C",
                "newsboat.conf",
                "-x",
                "reload",
            ],
            {"LD_LIBRARY_PATH": NEWSBOAT_LIBS},
        ),
    }


def setup_peers() -> None:
    """Install the peers into throwaway places (idempotent)."""
    if not (PEERS_ENV / "bin" / "r2e").exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_ENV)], check=True)
        pip = [str(PEERS_ENV / "bin" / "pip"), "install", "-q"]
        packages = ["rss2email", "feed2exec", "httpx", "feedparser", "py-spy", "pyinstrument"]
        subprocess.run([*pip, *packages], check=True)
    if not NEWSBOAT.exists():
        # Unpacked from Debian's packages, not installed: nothing outside PEERS_ENV changes
        # (and nobody's apt-get purge takes it away in the middle of a run).
        debs = PEERS_ENV / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "download", "newsboat", "libstfl0"], cwd=debs, check=True)
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(NEWSBOAT_ROOT)], check=True)


def ours_source(which: str, scratch: Path) -> Path:
    """Where `import monitor` comes from: a commit's tree exported with `git archive` (others
    may be editing the work tree while the benchmark runs), or the work tree itself."""
    if which == "worktree":
        return ROOT
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", which], capture_output=True, text=True, check=True
    ).stdout.strip()
    target = scratch / f"news-monitor-{commit[:12]}"
    if not (target / "monitor").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit, "monitor"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    # Byte-compiled, as `pip install` leaves every peer: with PYTHONDONTWRITEBYTECODE set
    # (it is, on these machines) each of our processes would compile monitor/ afresh.
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", str(target / "monitor")], check=True)
    print(f"ours: monitor/ from {which} ({commit[:12]}) in {target}", flush=True)
    return target


def versions() -> dict[str, str]:
    def run(command: list[str]) -> str:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"unavailable ({error})"
        return (done.stdout or done.stderr).strip().splitlines()[0] if done.returncode == 0 else "?"

    pip_show = [str(PEERS_ENV / "bin" / "python"), "-c"]
    code = (
        "import importlib.metadata as m;print(', '.join(f'{p} {m.version(p)}' for p in "
        "['rss2email','feed2exec','httpx','httpcore','feedparser','requests','dateparser']))"
    )
    ours_code = (
        "import importlib.metadata as m, sys;print(sys.version.split()[0], ', '.join("
        "f'{p} {m.version(p)}' for p in ['news-monitor','httpx','httpcore','feedparser']))"
    )
    cpu = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ours": run([str(ROOT / ".venv" / "bin" / "python"), "-c", ours_code]),
        "peers": run([*pip_show, code]),
        "peers python": run([str(PEERS_ENV / "bin" / "python"), "--version"]),
        "newsboat": run(["env", f"LD_LIBRARY_PATH={NEWSBOAT_LIBS}", str(NEWSBOAT), "--version"]),
    }


# -- the benchmark -------------------------------------------------------------------------


@dataclass
class Result:
    tool: str
    passes: dict[str, list[Sample]] = field(default_factory=dict)


def _run_pass(
    tool: Tool, work: Path, farm: Farm, kind: str, result: Result, timeout: float
) -> Sample:
    env = {**os.environ, "HOME": str(work), **tool.env}
    sample = measure(tool.command(work), work, env, work / "log.txt", farm, timeout)
    result.passes.setdefault(kind, []).append(sample)
    flag = "" if sample.status == 0 else f" EXIT {sample.status}"
    print(
        f"  {tool.name:<10} {kind:<6} wall {sample.wall:7.2f}s cpu {sample.cpu:7.2f}s "
        f"rss {sample.max_rss_mb:6.1f}/{sample.tree_rss_mb:6.1f} MB "
        f"200s {sample.full:5d} 304s {sample.not_modified:5d}{flag}",
        flush=True,
    )
    return sample


def bench(args: argparse.Namespace) -> dict[str, Result]:
    tools = make_tools(args)
    chosen = [tools[name] for name in args.tools]
    results = {tool.name: Result(tool.name) for tool in chosen}
    scratch = Path(tempfile.mkdtemp(prefix="peers-", dir=args.scratch))
    passes = set(args.passes)
    try:
        if passes & {"cold", "warm"}:
            with Farm(args.feeds, args.items, latency=args.latency) as farm:
                for round_ in range(args.runs):
                    print(f"round {round_ + 1}/{args.runs} (cold, warm)", flush=True)
                    for tool in _rotate(chosen, round_):
                        work = scratch / f"{tool.name}-{round_}"
                        work.mkdir()
                        tool.setup(work, farm.urls)
                        _run_pass(tool, work, farm, "cold", results[tool.name], args.timeout)
                        if "warm" in passes:
                            result = results[tool.name]
                            _run_pass(tool, work, farm, "warm", result, args.timeout)
                        if not args.keep:
                            shutil.rmtree(work, ignore_errors=True)
        if "steady" in passes:
            with Farm(args.feeds, args.items, mode="steady", latency=args.latency) as farm:
                print(f"steady farm: {farm.feed_kinds()}; priming pass (untimed)", flush=True)
                works = {}
                for tool in chosen:
                    work = scratch / f"{tool.name}-steady"
                    work.mkdir()
                    tool.setup(work, farm.urls)
                    _run_pass(tool, work, farm, "prime", Result(tool.name), args.timeout)
                    works[tool.name] = work
                for round_ in range(args.runs):
                    changed = farm.advance()
                    print(f"round {round_ + 1}/{args.runs} (steady, {changed} feeds changed)")
                    for tool in _rotate(chosen, round_):
                        result = results[tool.name]
                        _run_pass(tool, works[tool.name], farm, "steady", result, args.timeout)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"kept {scratch}")
    return results


def _rotate(tools: list[Tool], round_: int) -> list[Tool]:
    shift = round_ % len(tools)
    return tools[shift:] + tools[:shift]


def _median(samples: list[Sample], attribute: str) -> float:
    return statistics.median(getattr(s, attribute) for s in samples)


def table(results: dict[str, Result], passes: Sequence[str]) -> str:
    ours = results.get("ours")
    rows = [
        "| tool | pass | wall s | CPU s | max RSS MB (largest process / whole tree) "
        "| 200s / 304s | wall vs ours | CPU vs ours |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind in passes:
        for name, result in results.items():
            samples = result.passes.get(kind)
            if not samples:
                continue
            wall, cpu = _median(samples, "wall"), _median(samples, "cpu")
            rss, tree = _median(samples, "max_rss_mb"), _median(samples, "tree_rss_mb")
            full, cached = int(_median(samples, "full")), int(_median(samples, "not_modified"))
            ratio_wall = ratio_cpu = "—"
            if ours is not None and ours.passes.get(kind) and name != "ours":
                ratio_wall = f"{wall / _median(ours.passes[kind], 'wall'):.2f}×"
                ratio_cpu = f"{cpu / _median(ours.passes[kind], 'cpu'):.2f}×"
            bad = sum(s.status != 0 for s in samples)
            note = f" ({bad} failed)" if bad else ""
            rows.append(
                f"| {name}{note} | {kind} | {wall:.2f} | {cpu:.2f} | {rss:.0f} / {tree:.0f} "
                f"| {full} / {cached} | {ratio_wall} | {ratio_cpu} |"
            )
    return "\n".join(rows)


def merge(paths: Sequence[Path]) -> dict[str, Result]:
    """Samples of several runs of this script (each with --json), pooled per tool and pass;
    tools in the order of TOOLS."""
    pooled: dict[str, Result] = {}
    for path in paths:
        for name, passes in json.loads(path.read_text())["results"].items():
            result = pooled.setdefault(name, Result(name))
            for kind, samples in passes.items():
                result.passes.setdefault(kind, []).extend(Sample(**s) for s in samples)
    return {name: pooled[name] for name in TOOLS if name in pooled}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools", default=",".join(TOOLS), help=f"comma list of {TOOLS}")
    parser.add_argument("--passes", default=",".join(PASSES), help=f"comma list of {PASSES}")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per farm answer")
    parser.add_argument("--concurrency", type=int, default=10, help="ours: poll.concurrency")
    parser.add_argument("--per-host", type=int, default=10, help="ours: poll.per_host")
    parser.add_argument("--ours", default="HEAD", help="a commit to export and run, or 'worktree'")
    parser.add_argument("--newsboat-threads", type=int, default=1, help="newsboat reload-threads")
    parser.add_argument("--timeout", type=float, default=540.0, help="seconds per pass")
    parser.add_argument("--setup", action="store_true", help="install the peers first")
    parser.add_argument("--scratch", default=None, help="where the temporary state goes")
    parser.add_argument("--keep", action="store_true", help="keep the state directories")
    parser.add_argument("--json", type=Path, help="write every sample here")
    parser.add_argument(
        "--write-config",
        type=Path,
        metavar="DIR",
        help="only write our config (monitor.yaml, storage in DIR) for the farm at --farm-url",
    )
    parser.add_argument("--farm-url", default="http://127.0.0.1:8080")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="only print the table of the samples in these --json files, pooled",
    )
    args = parser.parse_args(argv)
    args.tools = [t for t in args.tools.split(",") if t]
    args.passes = [p for p in args.passes.split(",") if p]
    unknown = set(args.tools) - set(TOOLS) | set(args.passes) - set(PASSES)
    if unknown:
        parser.error(f"unknown tools or passes: {sorted(unknown)}")
    if args.merge:
        merged = merge(args.merge)
        print(table(merged, [p for p in PASSES if any(p in r.passes for r in merged.values())]))
        return
    if args.write_config:
        urls = [f"{args.farm_url}/f/{i}" for i in range(args.feeds)]
        args.write_config.mkdir(parents=True, exist_ok=True)
        text = ours_config(args.write_config, urls, args.concurrency, args.per_host)
        (args.write_config / "monitor.yaml").write_text(text)
        print(args.write_config / "monitor.yaml")
        return
    if args.setup:
        setup_peers()
    args.ours_src = ours_source(args.ours, Path(args.scratch or tempfile.gettempdir()))
    machine = versions()
    print(json.dumps(machine, indent=1), flush=True)
    if args.runs < 1:  # --setup --runs 0: install and show versions only
        return
    started = resource.getrusage(resource.RUSAGE_SELF)
    results = bench(args)
    spent = resource.getrusage(resource.RUSAGE_SELF)
    print(f"\n{args.feeds} feeds × {args.items} items, median of {args.runs} runs\n")
    print(table(results, args.passes))
    farm_cpu = spent.ru_utime + spent.ru_stime - started.ru_utime - started.ru_stime
    print(f"\nthe farm and this driver used {farm_cpu:.1f} s of CPU in all")
    if args.json:
        data = {
            "machine": machine,
            "args": {k: v for k, v in vars(args).items() if k not in ("json", "scratch")},
            "results": {
                n: {k: [asdict(s) for s in v] for k, v in r.passes.items()}
                for n, r in results.items()
            },
        }
        args.json.write_text(json.dumps(data, indent=1, default=str))


if __name__ == "__main__":
    main()
