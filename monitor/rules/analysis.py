"""Language analysis for matching: the keys a word matches by (Snowball stems, or
dictionary lemmas for Ukrainian and Russian), and each field of an item tokenised once,
with the character span of every token in the text as displayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import snowballstemmer

from monitor.text import TOKEN, fold, token_spans

_SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech",
    "da": "danish", "nl": "dutch", "en": "english", "eo": "esperanto", "et": "estonian",
    "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian",
    "lt": "lithuanian", "ne": "nepali", "no": "norwegian", "nb": "norwegian",
    "nn": "norwegian", "fa": "persian", "pl": "polish", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sr": "serbian", "es": "spanish", "sv": "swedish",
    "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}  # fmt: skip
_LEMMATISED = {"uk", "ru"}
DEFAULT_LANGUAGE = "en"
_CACHE_LIMIT = 200_000


def is_spaceless(text: str) -> bool:
    """Scripts written without spaces between words (Han, kana) and Hangul, whose words
    carry attached particles: such terms match as substrings, not whole tokens."""
    return any(
        "\u3040" <= c <= "\u30ff"  # hiragana, katakana
        or "\u3400" <= c <= "\u9fff"  # CJK ideographs
        or "\uac00" <= c <= "\ud7af"  # Hangul syllables
        or "\uf900" <= c <= "\ufaff"
        for c in text
    )


def language_code(language: str | None) -> str:
    code = (language or DEFAULT_LANGUAGE).lower().replace("_", "-").split("-")[0]
    return code if code in _SNOWBALL or code in _LEMMATISED else DEFAULT_LANGUAGE


class Analyzer:
    """Maps a folded token to the keys it matches by in one language. Cached, because
    news vocabulary is small next to the number of tokens it is used for."""

    def __init__(self, language: str) -> None:
        self.language = language
        self._cache: dict[str, tuple[str, ...]] = {}
        self._morph = _morphology(language) if language in _LEMMATISED else None
        name = _SNOWBALL.get(language, "english")
        self._stemmer = snowballstemmer.stemmer(name)

    def keys(self, token: str) -> tuple[str, ...]:
        found = self._cache.get(token)
        if found is None:
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            found = self._cache[token] = self._analyse(token)
        return found

    def _analyse(self, token: str) -> tuple[str, ...]:
        if self._morph is not None and not token.isascii():
            # Every reading's lemma: "Покровську" is both a case of Pokrovsk and an
            # adjective; matching on any shared lemma finds the town in all its cases.
            lemmas = {fold(p.normal_form) for p in self._morph.parse(token)}
            return tuple(sorted(lemmas)) or (token,)
        return (self._stemmer.stemWord(token),)


@cache
def analyzer(language: str) -> Analyzer:
    return Analyzer(language)


@cache
def _morphology(language: str) -> Any:
    try:
        import pymorphy3
    except ImportError:
        return None
    try:
        return pymorphy3.MorphAnalyzer(lang=language)
    except (ValueError, OSError, KeyError):  # dictionary package not installed
        return None


@dataclass
class FieldText:
    """One field of an item: display text and its folded tokens. Token spans in the
    display text are worked out only when a match has to be explained, and then only
    for the tokens it names."""

    display: str
    folded: str
    tokens: list[str]
    _spans: list[tuple[int, int]] | None = None
    _by_token: dict[str, list[int]] | None = None
    _sorted: list[str] | None = None
    _token_set: frozenset[str] | None = None
    _found: dict[str, list[int]] = field(default_factory=dict)
    # spans in the folded text of tokens found by `positions_of` on the way
    _located: dict[int, tuple[int, int]] | None = None

    @classmethod
    def of(cls, display: str) -> FieldText:
        folded = fold(display)
        return cls(display, folded, TOKEN.findall(folded))

    def spans(self) -> list[tuple[int, int]]:
        if self._spans is None:
            if len(self.folded) == len(self.display):  # folding kept every offset
                self._spans = [m.span() for m in TOKEN.finditer(self.folded)]
            else:
                self._spans = [(start, end) for _, start, end in token_spans(self.display)]
        return self._spans

    def token_positions(self) -> dict[str, list[int]]:
        if self._by_token is None:
            self._by_token = {}
            for position, token in enumerate(self.tokens):
                self._by_token.setdefault(token, []).append(position)
        return self._by_token

    def positions_of(self, token: str) -> list[int]:
        """Where `token` occurs. Rules ask about a few tokens of a field, so these are
        found one token at a time by C-level searches (of the folded text, then of the
        token list when the token is there more than once), not by indexing every token."""
        found = self._found.get(token)
        if found is None:
            if self._by_token is not None:
                return self._by_token.get(token, [])
            # Every whole-word occurrence is an occurrence in the folded text, which
            # str.find finds faster than a scan of the tokens: none there, none here;
            # one there, at most one here, and then its span is known too.
            folded = self.folded
            start = folded.find(token)
            if start < 0:
                found = self._found[token] = []
                return found
            if folded.find(token, start + 1) < 0:
                found = self._found[token] = []
                end = start + len(token)
                if (start == 0 or not folded[start - 1].isalnum()) and (
                    end == len(folded) or not folded[end].isalnum()
                ):
                    position = self.tokens.index(token)
                    found.append(position)
                    if self._located is None:
                        self._located = {}
                    self._located[position] = (start, end)
                return found
            found = self._found[token] = []
            tokens = self._token_set
            if tokens is None:
                tokens = self._token_set = frozenset(self.tokens)
            if token in tokens:
                index = self.tokens.index
                position = -1
                for _ in range(self.tokens.count(token)):
                    position = index(token, position + 1)
                    found.append(position)
        return found

    def token_set(self) -> frozenset[str]:
        if self._token_set is None:
            self._token_set = frozenset(self.tokens)
        return self._token_set

    def sorted_tokens(self) -> list[str]:
        if self._sorted is None:
            self._sorted = sorted(self.token_positions())
        return self._sorted

    def span(self, first: int, last: int) -> tuple[int, int]:
        if self._spans is None and len(self.folded) == len(self.display):
            if last == first:
                return self._locate(first)
            return self._locate(first)[0], self._locate(last)[1]
        spans = self.spans()
        return spans[first][0], spans[last][1]

    def _locate(self, position: int) -> tuple[int, int]:
        """The span of one token, without the spans of all the others: a match is
        explained by a few tokens, and the tokenising regex is slow over a whole field.
        The token at `position` is the k-th occurrence of itself as a whole word, k being
        the number of times it occurs before; a whole word is bounded by characters the
        tokeniser does not take, which are exactly those that are not alphanumeric."""
        if self._located is not None:
            located = self._located.get(position)
            if located is not None:
                return located
        token = self.tokens[position]
        positions = self._found.get(token) or self.positions_of(token)
        skip = positions.index(position) if len(positions) > 1 else 0
        folded = self.folded
        start = folded.find(token)
        while start >= 0:
            end = start + len(token)
            if (start == 0 or not folded[start - 1].isalnum()) and (
                end == len(folded) or not folded[end].isalnum()
            ):
                if not skip:
                    return start, end
                skip -= 1
            start = folded.find(token, start + 1)
        return self.spans()[position]  # not reached: the tokeniser found it there
