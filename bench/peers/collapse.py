"""Summarise a py-spy profile in collapsed form (`py-spy record -f raw`): samples per
process, and the functions with the most samples inclusive (anywhere on the stack) and
self (on top), per process kind. Samples at rate R are 1/R s of CPU each (py-spy leaves
idle threads out unless --idle).

    python bench/peers/collapse.py profile.raw --rate 200 [--top 30] [--match TEXT]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_PROCESS = re.compile(r'process \d+:"[^"]*";')


def frame_name(frame: str) -> str:
    """'fn (path/file.py:12)' → 'fn (path/file.py)'; line numbers split one function."""
    return re.sub(r":\d+\)$", ")", frame)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("--rate", type=float, default=100.0, help="py-spy's -r")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="", help="only stacks containing this text")
    args = parser.parse_args()
    per_process: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = {}
    own: dict[str, Counter[str]] = {}
    for line in args.profile.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or (args.match and args.match not in stack):
            continue
        count = int(count_text)
        process = "worker" if "import serve" in stack else "main"
        per_process[process] += count
        names = [frame_name(f) for f in _PROCESS.sub("", stack).split(";")]
        seen = set(names)
        for name in seen:
            inclusive.setdefault(process, Counter())[name] += count
        if names:
            own.setdefault(process, Counter())[names[-1]] += count
    seconds = 1.0 / args.rate
    for process, samples in per_process.most_common():
        print(f"\n## {process}: {samples} samples = {samples * seconds:.2f} s of CPU")
        print("\ninclusive:")
        for name, count in inclusive[process].most_common(args.top):
            print(f"  {count * seconds:7.2f} s {100 * count / samples:5.1f} %  {name}")
        print("\nself:")
        for name, count in own[process].most_common(args.top):
            print(f"  {count * seconds:7.2f} s {100 * count / samples:5.1f} %  {name}")


if __name__ == "__main__":
    main()
