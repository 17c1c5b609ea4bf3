"""What a poll decides, for checking that an optimisation changes no answer.

Runs `news-monitor poll` from a source tree (a directory holding `monitor/`, such as a
`git archive` of another commit) on a steady-mode farm: a first pass, then one feed in
ten gains an item and a second pass. Polls run one at a time (`concurrency: 1`) and the
clock stands still within a pass, so neither the order polls finish in nor the stamps they
get change which story an item joins or which tie wins. Prints, as JSON, every
item's story, every alert and its sources, and every delivery id; two trees give the same
answers when their outputs are equal.

    .venv/bin/python bench/answers.py --tree /tmp/ref --out /tmp/ref.json
    .venv/bin/python bench/answers.py --tree . --out /tmp/new.json
    cmp /tmp/ref.json /tmp/new.json
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feedfarm import Farm
from peers import PYTHON, ours_config

# `news-monitor` with its clock stopped at argv[1] (seconds since the epoch).
_STILL_CLOCK = (
    "import sys; from datetime import UTC, datetime; import monitor.clock as clock;"
    " moment = datetime.fromtimestamp(float(sys.argv[1]), UTC); clock.utcnow = lambda: moment;"
    " sys.argv = ['news-monitor', *sys.argv[2:]]; from monitor.cli import main; main()"
)


def answers(db: Path) -> dict[str, list[list[object]]]:
    conn = sqlite3.connect(db)
    try:
        queries = {
            "items": "SELECT feed, key, story_id, matched FROM items ORDER BY feed, key",
            "alerts": "SELECT id, rule, story_id FROM alerts ORDER BY id",
            "sources": "SELECT alert_id, feed, title FROM alert_sources ORDER BY alert_id, feed",
            "deliveries": "SELECT id, alert_id, notifier FROM deliveries ORDER BY id",
        }
        return {name: [list(row) for row in conn.execute(sql)] for name, sql in queries.items()}
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, required=True, help="directory holding monitor/")
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    farm = Farm(feeds=args.feeds, items=20, mode="steady", no_validators=0.5)
    farm.start()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch)
            text = ours_config(work, farm.urls, concurrency=1, per_host=1)
            (work / "monitor.yaml").write_text(text.replace("parse_workers: 2", "parse_workers: 1"))
            env = {**os.environ, "PYTHONPATH": str(args.tree.resolve())}
            for pass_number in (1, 2):
                if pass_number == 2:
                    farm.advance()
                now = str(farm.started_at + 600 * pass_number)
                subprocess.run(
                    [str(PYTHON), "-c", _STILL_CLOCK, now, "poll", "-c", "monitor.yaml",
                     "--log-level", "warning"],
                    cwd=work, env=env, check=True, stdout=subprocess.DEVNULL,
                )  # fmt: skip
            args.out.write_text(json.dumps(answers(work / "monitor.db"), indent=0))
    finally:
        farm.stop()
    found = json.loads(args.out.read_text())
    print({name: len(rows) for name, rows in found.items()})


if __name__ == "__main__":
    main()
