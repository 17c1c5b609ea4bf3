"""Precision and recall of near-duplicate headline detection on the labelled corpus
tests/data/headline_pairs.jsonl, for a range of similarity thresholds.
Run: .venv/bin/python bench/headlines.py

A pair counts as "same story" when the two headlines have the same numbers and either
the same words or a word-set (Jaccard) similarity at or above the threshold, exactly as
monitor/story.py decides; the chosen threshold is monitor.story.SIMILARITY_THRESHOLD.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from monitor import story
from monitor.models import Entry, Item, StoryCandidate, StorySignature

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "headline_pairs.jsonl"


def language(text: str) -> str:
    if any("\u0400" <= c <= "\u04ff" for c in text):
        return "uk" if any(c in "іїєґІЇЄҐ" for c in text) else "ru"
    return "en"


def signature_of(title: str) -> StorySignature:
    entry = Entry(None, None, title, "", "", "", (), None)
    return story.signature(Item("bench", "k", entry, language(title), "h"))


def as_candidate(sig: StorySignature) -> StoryCandidate:
    return StoryCandidate(
        "s", None, sig.headline_key, sig.words, sig.numbers, sig.entities, datetime.now(UTC)
    )


def pairs() -> list[tuple[StorySignature, StorySignature, bool]]:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    return [(signature_of(r["a"]), signature_of(r["b"]), bool(r["same"])) for r in rows]


def scores(
    labelled: list[tuple[StorySignature, StorySignature, bool]], threshold: float
) -> tuple[float, float, int, int, int]:
    true_pos = false_pos = false_neg = 0
    for a, b, same in labelled:
        predicted = story.same_headline(a, as_candidate(b), threshold)
        true_pos += predicted and same
        false_pos += predicted and not same
        false_neg += same and not predicted
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 1.0
    recall = true_pos / (true_pos + false_neg) if true_pos + false_neg else 1.0
    return precision, recall, true_pos, false_pos, false_neg


def main() -> None:
    labelled = pairs()
    same = sum(1 for *_, s in labelled if s)
    print(f"# {len(labelled)} pairs: {same} same story, {len(labelled) - same} different")
    print("| threshold | precision | recall | true + | false + | missed |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for step in range(6, 19):
        threshold = step / 20
        precision, recall, tp, fp, fn = scores(labelled, threshold)
        mark = " ←" if abs(threshold - story.SIMILARITY_THRESHOLD) < 1e-9 else ""
        print(f"| {threshold:.2f}{mark} | {precision:.2f} | {recall:.2f} | {tp} | {fp} | {fn} |")


if __name__ == "__main__":
    main()
