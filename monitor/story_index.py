"""The stories of the headline window, found by MinHash band or exact headline key.

Plain data and no SQL: the store fills it from the stories table and keeps it in step
with its own writes. It lives in memory because a poll asks it 13 questions per new item
and would otherwise write 12 rows per new story at random places in an on-disk index, the
largest cost of a busy pass (bench/RESULTS.md). It only proposes candidates; the store
still reads each candidate's words, and the core judges.
"""

from __future__ import annotations

from collections.abc import Iterable

Key = int | str  # a MinHash band (int) or a headline key (str): never equal to each other


class StoryIndex:
    """Story numbers (the stories table's `seq`) by band and headline key, for stories
    first seen at or after some time. Stories are added in increasing number, mostly."""

    def __init__(self) -> None:
        self._first_seen: dict[int, str] = {}  # number → first seen (ISO), oldest first
        # One number per key, the usual case, costs no list; `_more` holds the rest.
        self._first: dict[Key, int] = {}
        self._more: dict[Key, list[int]] = {}
        self._forgotten = 0  # numbers still under keys, though no longer live
        self.highest = 0

    def __len__(self) -> int:
        return len(self._first_seen)

    def add(self, number: int, first_seen: str, keys: Iterable[Key]) -> None:
        if number in self._first_seen:
            return
        self._first_seen[number] = first_seen
        self.highest = max(self.highest, number)
        for key in keys:
            held = self._first.setdefault(key, number)
            if held != number:
                self._more.setdefault(key, []).append(number)

    def forget(self, number: int) -> None:
        """No longer a candidate (it was deleted). Its keys are cleaned up lazily."""
        if self._first_seen.pop(number, None) is not None:
            self._forgotten += 1

    def forget_before(self, since: str) -> None:
        """Forget stories first seen before `since`: they are outside the window."""
        while self._first_seen:
            number, first_seen = next(iter(self._first_seen.items()))
            if first_seen >= since:
                return
            self.forget(number)

    def needs_rebuild(self) -> bool:
        """More dead numbers than live ones under the keys: rebuilding frees them."""
        return self._forgotten > max(1_000, len(self._first_seen))

    def find(self, keys: Iterable[Key], since: str) -> list[int]:
        """Live stories under any of these keys first seen at or after `since`, in
        number order."""
        found: set[int] = set()
        first, more = self._first, self._more
        for key in keys:
            number = first.get(key)
            if number is not None:
                found.add(number)
                extra = more.get(key)
                if extra is not None:
                    found.update(extra)
        live = self._first_seen
        return sorted(n for n in found if n in live and live[n] >= since)
