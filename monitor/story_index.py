"""The stories of the headline window, found by MinHash band or exact headline key.

Plain data and no SQL: the store fills it from the stories table and keeps it in step
with its own writes. It lives in memory because a poll asks it 13 questions per new item
and would otherwise write 12 rows per new story at random places in an on-disk index, the
largest cost of a busy pass (bench/RESULTS.md). It only proposes candidates; the store
still reads each candidate's words, and the core judges.

Most candidates a band proposes share one frequent word and little else, and judging
each one was the largest cost of choosing stories. A story whose words the index was told
carries a 128-bit print of them, and a band lookup leaves out every story whose print
shows it cannot share enough words with the item (`story.least_shared`): exactly the
candidates the core's quick reject would have turned down, for a few integer operations.

The keys live in flat arrays (a chained hash table): 20,000 stories make 260,000 keys,
which as dict entries of int objects would take about 18 MB, and here take about 6. A key
that many stories share (a band of frequent words) moves to a list of its own, so that
finding its stories is one lookup instead of a walk along a long chain.
"""

from __future__ import annotations

import functools
import sys
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

from monitor.story import least_shared, word_print

Key = int | str  # a MinHash band (a 64-bit number) or a headline key
_MASK64 = (1 << 64) - 1
_HOT = 4  # stories under one key before it gets its own list
_MOVED = -1  # in place of a story number: the entry's key moved to the hot lists
_COUNT_BITS = 8  # a print is kept as (bits << 8) | how many words
_COUNT_MASK = (1 << _COUNT_BITS) - 1


class StoryIndex:
    """Story numbers (the stories table's `seq`) by band and headline key, for stories
    first seen at or after some time. Stories are added in increasing number, mostly."""

    def __init__(self, buckets: int = 1 << 12) -> None:
        self._first_seen: dict[int, str] = {}  # live numbers → first seen (ISO), oldest first
        self._heads = array("i", [-1]) * buckets  # bucket → its newest entry, or -1
        self._keys = array("Q")  # entry → key
        self._numbers = array("q")  # entry → story number
        self._next = array("i")  # entry → the bucket's next entry, or -1
        self._hot: dict[int, list[int]] = {}  # key → its stories, for keys shared widely
        # Keys of one story each, from a bulk load (see `of`); added keys go to the chains.
        self._unique: dict[int, int] = {}
        self._prints: dict[int, int] = {}  # live number → its words' print and count
        self._forgotten = 0  # numbers still in entries, though no longer live
        self.highest = 0

    @classmethod
    def of(cls, stories: Iterable[tuple[int, str, Iterable[Key]]]) -> StoryIndex:
        """An index of many stories at once: counted and filed in a few passes instead of
        a chain walk per key, about five times faster."""
        first_seen: dict[int, str] = {}
        keys: list[int] = []
        numbers: list[int] = []
        for number, seen, story_keys in stories:
            if number in first_seen:
                continue
            first_seen[number] = seen
            own = [_as_int(key) for key in story_keys]
            keys += own
            numbers += [number] * len(own)
        return cls._filed(first_seen, keys, numbers)

    @classmethod
    def of_packed(cls, stories: Iterable[tuple[int, str, str | None, bytes]]) -> StoryIndex:
        """As `of`, from rows as the stories table holds them: number, first seen, headline
        key, and the bands packed as little-endian 64-bit words. A one-shot poll loads the
        whole window this way before its first new item; unpacking each story's bands in
        one call instead of key by key takes about half the time off."""
        first_seen: dict[int, str] = {}
        keys = array("Q")
        numbers: list[int] = []
        swap = sys.byteorder != "little"
        for number, seen, headline_key, bands in stories:
            if number in first_seen:
                continue
            first_seen[number] = seen
            own = array("Q", bands)
            if swap:
                own.byteswap()
            if headline_key is not None:
                own.append(_as_int(headline_key))
            keys += own
            numbers += [number] * len(own)
        return cls._filed(first_seen, keys, numbers)

    @classmethod
    def _filed(
        cls, first_seen: dict[int, str], keys: Sequence[int], numbers: list[int]
    ) -> StoryIndex:
        """`keys[i]` belongs to story `numbers[i]`, in number order. A key of one story goes
        to the unique table; a key several share, to a hot list of them in number order."""
        index = cls()
        index._first_seen = first_seen
        index.highest = max(first_seen, default=0)
        unique = dict(zip(keys, numbers, strict=True))
        if len(unique) < len(keys):
            shared = {key for key, count in Counter(keys).items() if count > 1}
            hot = index._hot
            for key, number in zip(keys, numbers, strict=True):
                if key in shared:
                    hot.setdefault(key, []).append(number)
            for key in shared:
                del unique[key]
        index._unique = unique
        return index

    def __len__(self) -> int:
        return len(self._first_seen)

    def add(
        self,
        number: int,
        first_seen: str,
        keys: Iterable[Key],
        words: Collection[str] | None = None,
    ) -> None:
        if number in self._first_seen:
            return
        self._first_seen[number] = first_seen
        self.highest = max(self.highest, number)
        for key in keys:
            self._insert(_as_int(key), number)
        if len(self._keys) > 2 * len(self._heads):
            self._grow()
        if words is not None:
            self.describe(number, words)

    def describe(self, number: int, words: Collection[str]) -> None:
        """The story's headline words (each once), so that `find_similar` can leave it out
        for items it cannot match. Stories loaded in bulk are told as they are decoded."""
        if number in self._first_seen and len(words) < 1 << _COUNT_BITS:
            self._prints[number] = word_print(words) << _COUNT_BITS | len(words)

    def forget(self, number: int) -> None:
        """No longer a candidate (it was deleted). Its entries stay until a rebuild."""
        if self._first_seen.pop(number, None) is not None:
            self._forgotten += 1
            self._prints.pop(number, None)

    def forget_before(self, since: str) -> None:
        """Forget stories first seen before `since`: they are outside the window."""
        while self._first_seen:
            number, first_seen = next(iter(self._first_seen.items()))
            if first_seen >= since:
                return
            self.forget(number)

    def needs_rebuild(self) -> bool:
        """More dead numbers than live ones in the entries: rebuilding frees them."""
        return self._forgotten > max(1_000, len(self._first_seen))

    def find(self, keys: Iterable[Key], since: str) -> list[int]:
        """Live stories under any of these keys first seen at or after `since`, in
        number order."""
        live = self._first_seen
        return sorted({n for n in self._gather(keys) if n in live and live[n] >= since})

    def find_similar(self, keys: Iterable[Key], words: Collection[str], since: str) -> list[int]:
        """As `find`, less the described stories that cannot share enough of `words` (each
        once) to be judged the same headline. Not for a headline key: equal keys make the
        same story whatever the words."""
        count = len(words)
        # Prints are kept shifted past their word count; so is this one, whose low bits
        # stay clear so that a count never reads as words.
        own = word_print(words) << _COUNT_BITS
        not_own = ~(own | _COUNT_MASK)
        needed = _needed(count)
        live, prints = self._first_seen, self._prints
        kept = []
        for number in set(self._gather(keys)):
            described = prints.get(number)  # only live stories have one
            if described is None:
                if number in live:
                    kept.append(number)
                continue
            # A bit one print has and the other lacks stands for at least one word the
            # other headline lacks: what is left bounds the words they share.
            other_count = described & _COUNT_MASK
            least = needed[other_count]
            if (
                count - (own & ~described).bit_count() < least
                or other_count - (described & not_own).bit_count() < least
            ):
                continue
            kept.append(number)
        kept = [number for number in kept if live[number] >= since]
        kept.sort()
        return kept

    def _gather(self, keys: Iterable[Key]) -> list[int]:
        """Every number filed under these keys, live or not, repeats included."""
        found: list[int] = []
        heads, stored, numbers, following = self._heads, self._keys, self._numbers, self._next
        mask = len(heads) - 1
        hot, unique = self._hot, self._unique
        for key in keys:
            wanted = _as_int(key)
            shared = hot.get(wanted)
            if shared is not None:
                found += shared
                continue
            alone = unique.get(wanted)
            if alone is not None:
                found.append(alone)
                continue
            entry = heads[wanted & mask]
            while entry >= 0:
                if stored[entry] == wanted:
                    found.append(numbers[entry])
                entry = following[entry]
        return found

    def _insert(self, key: int, number: int) -> None:
        shared = self._hot.get(key)
        if shared is not None:
            shared.append(number)
            return
        alone = self._unique.pop(key, None)
        if alone is not None:
            self._hot[key] = [alone, number]
            return
        bucket = key & (len(self._heads) - 1)
        same = []
        entry = self._heads[bucket]
        while entry >= 0:
            if self._keys[entry] == key and self._numbers[entry] != _MOVED:
                same.append(entry)
            entry = self._next[entry]
        if len(same) + 1 >= _HOT:
            self._hot[key] = [*(self._numbers[e] for e in reversed(same)), number]
            for moved in same:
                self._numbers[moved] = _MOVED
            return
        self._keys.append(key)
        self._numbers.append(number)
        self._next.append(self._heads[bucket])
        self._heads[bucket] = len(self._keys) - 1

    def _grow(self) -> None:
        """Four times the buckets, chains rebuilt: a chain stays about two entries long."""
        heads = array("i", [-1]) * (4 * len(self._heads))
        mask = len(heads) - 1
        following = self._next
        for entry, key in enumerate(self._keys):
            bucket = key & mask
            following[entry] = heads[bucket]
            heads[bucket] = entry
        self._heads = heads


@functools.lru_cache(maxsize=256)
def _needed(count: int) -> tuple[int, ...]:
    """least_shared(count, n) for every word count n a print can hold."""
    return tuple([least_shared(count, other) for other in range(1 << _COUNT_BITS)])


def _as_int(key: Key) -> int:
    # A headline key's hash may equal some band: that only adds a candidate, which the
    # core then judges like any other.
    return key if isinstance(key, int) else hash(key) & _MASK64
