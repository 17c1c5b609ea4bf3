"""The one normaliser for rules and items alike: HTML to text, display cleaning, and the
folded token form that matching compares. Pure functions; no knowledge of rules.
"""

from __future__ import annotations

import re
import unicodedata
from html import unescape
from html.parser import HTMLParser

# Tokens are runs of letters and digits by Unicode's rules, so Cyrillic and Hangul
# tokenise as English does; underscore is a separator, not a letter.
TOKEN = re.compile(r"[^\W_]+")
_WHITESPACE = re.compile(r"\s+")
# C0/C1 controls other than tab and newline forge log lines and break JSON consumers.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 "
    "h5 h6 header hr li main nav ol p pre section table td th tr ul".split()
)
_INVISIBLE_TAGS = frozenset({"script", "style", "template", "noscript", "head", "title"})


def _is_format_char(char: str) -> bool:
    # Zero-width spaces, soft hyphens and bidi overrides hide inside words to dodge rules
    # or reorder displayed text (Trojan Source); they carry no meaning for a reader.
    return unicodedata.category(char) == "Cf"


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE_TAGS:
            self._hidden_depth += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE_TAGS:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Plain, cleaned text of an HTML fragment: tags gone, entities decoded once."""
    if "<" not in markup:
        return _clean_collapsed(unescape(markup))
    text = _simple_html_to_text(markup)
    return text if text is not None else _parsed_html_to_text(markup)


def _parsed_html_to_text(markup: str) -> str:
    """The reference: what html_to_text returns by definition, for any markup."""
    if "<" not in markup:
        return clean(unescape(markup))
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return clean("".join(extractor.parts))


# The fast path below must return exactly what _parsed_html_to_text does, so it accepts only
# markup on which HTMLParser's behaviour is simple and certain, and refuses (None) the rest.
#
# Whitespace inside tags is HTML's five characters, not `\s`: Python's `\s` also matches \x0b,
# \xa0 and others that HTMLParser takes as part of a tag name.
_TAG_SPACE = r"[ \t\n\r\f]"
# The characters HTMLParser's end-tag pattern allows in a name; a name followed by a tag space,
# "/" or ">" is the same name to the start-tag pattern.
_TAG_NAME = r"[a-zA-Z][-.:_a-zA-Z0-9]*"
_ATTRIBUTE = (
    rf"[a-zA-Z_:][-.:_a-zA-Z0-9]*"
    rf"(?:{_TAG_SPACE}*={_TAG_SPACE}*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?"
)
# A start tag with space-separated, plainly quoted or bare attributes (">" allowed inside
# quotes), optionally self-closing; or an end tag without attributes. Group 1 or 2 is the name.
_SIMPLE_TAG = re.compile(
    rf"<(?:({_TAG_NAME})(?:{_TAG_SPACE}+{_ATTRIBUTE})*{_TAG_SPACE}*/?"
    rf"|/({_TAG_NAME}){_TAG_SPACE}*)>"
)
# A "<" that HTMLParser would not pass through as a literal character: the start of a tag,
# end tag, comment, declaration or processing instruction, or the very end of the input.
_MARKUP_OPEN = re.compile(r"<(?:[a-zA-Z/!?]|\Z)")
_SPACE_RUN = re.compile(" {2,}")
# Elements whose content is not ordinary markup: ours hide theirs, and HTMLParser parses
# script and style as raw text (later CPython releases add textarea, title, xmp, iframe,
# noembed, noframes and plaintext), so the fast path leaves documents with them to it.
_NOT_SIMPLE_TAGS = _INVISIBLE_TAGS | frozenset(
    {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "plaintext"}
)


def _simple_html_to_text(markup: str) -> str | None:
    """html_to_text of markup made only of text and simple tags, else None.

    HTMLParser (convert_charrefs) unescapes each run of text between tags on its own, so an
    entity split by a tag stays split; here too. A literal "<" inside a run changes nothing,
    as unescape never reads across a "<". A block tag's separator is one space, not the
    parser's newline per tag: cleaning makes any run of whitespace one space, and strips it
    at either end.
    """
    pieces = _SIMPLE_TAG.split(markup)
    parts: list[str] = []
    separated = True  # nothing yet, or a separator last: another one would change nothing
    # split() yields text, start-tag name, end-tag name, text, ...; the unused name is None.
    for index in range(0, len(pieces), 3):
        text = pieces[index]
        if text:
            if "<" in text and _MARKUP_OPEN.search(text):
                return None  # a tag, comment or declaration the pattern did not accept
            parts.append(unescape(text) if "&" in text else text)
            separated = False
        if index + 1 < len(pieces):
            name = (pieces[index + 1] or pieces[index + 2]).lower()
            if name in _BLOCK_TAGS:
                if not separated:
                    parts.append(" ")
                    separated = True
            elif name in _NOT_SIMPLE_TAGS:
                return None
    return _clean_collapsed("".join(parts))


def _clean_collapsed(text: str) -> str:
    """clean(text), cheaply when there is nothing but whitespace to clean.

    A printable string holds no control or format character, and no whitespace but the
    space itself, so cleaning it only collapses runs of spaces. Otherwise: str.split() and
    re's whitespace class agree on what whitespace is, so the join is clean()'s last step;
    if that result is printable, `text` held no control character other than whitespace ones
    and no format character (none is whitespace), so clean()'s first steps had nothing to do.
    Anything else goes to clean() itself.
    """
    if text.isprintable():
        if "  " in text:
            text = _SPACE_RUN.sub(" ", text)
        return text.strip()
    collapsed = " ".join(text.split())
    return collapsed if collapsed.isprintable() else clean(text)


def clean(text: str) -> str:
    """Text safe to store, log and display: no controls, no invisible format characters,
    whitespace collapsed to single spaces."""
    text = _CONTROL.sub(" ", text)
    if not text.isascii():
        text = "".join(char for char in text if not _is_format_char(char))
    return _WHITESPACE.sub(" ", text).strip()


def fold(text: str) -> str:
    """Case, width, ligatures and accents folded away; é = e, ＢＲＥＡＣＨ = breach."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKC", text)
    text = "".join(char for char in text if not _is_format_char(char)).casefold()
    # Recompose so Hangul syllables (split into jamo by NFKD) compare as written.
    return unicodedata.normalize("NFC", _strip_accents(unicodedata.normalize("NFKD", text)))


def _strip_accents(decomposed: str) -> str:
    """Drop accents, except where Cyrillic spells a different letter with one: й is not и
    and ї is not і (dictionaries would not know the word); ё still folds to е."""
    kept: list[str] = []
    base = ""
    for char in decomposed:
        if not unicodedata.combining(char):
            kept.append(char)
            base = char
        elif "\u0400" <= base <= "\u04ff" and not (char == "\u0308" and base in "еЕ"):
            kept.append(char)
    return "".join(kept)


def tokens(text: str) -> list[str]:
    """Folded word tokens: punctuation, hyphens and quotes separate words, never matter."""
    return TOKEN.findall(fold(text))


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """Folded tokens of `text` with the character span each came from in `text` itself,
    even where folding changed lengths (decomposed accents, ligatures)."""
    folded = fold(text)
    if len(folded) == len(text):
        return [(m.group(), m.start(), m.end()) for m in TOKEN.finditer(folded)]
    pieces = [fold(char) for char in text]
    if "".join(pieces) != folded:  # folding joined characters: spans only approximate
        return [(m.group(), 0, len(text)) for m in TOKEN.finditer(folded)]
    owner = [index for index, piece in enumerate(pieces) for _ in piece]
    return [
        (m.group(), owner[m.start()], _end_of(owner[m.end() - 1], text))
        for m in TOKEN.finditer(folded)
    ]


def _end_of(index: int, text: str) -> int:
    """End of the character at `index` with any combining marks that follow it."""
    end = index + 1
    while end < len(text) and unicodedata.combining(text[end]):
        end += 1
    return end


def phrase_spans(text: str, phrase: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where a folded token phrase occurs in `text`, as character spans of `text` itself,
    so a snippet can highlight the words exactly as the feed wrote them."""
    if not phrase:
        return []
    words = token_spans(text)
    spans: list[tuple[int, int]] = []
    width = len(phrase)
    for index in range(len(words) - width + 1):
        if all(words[index + offset][0] == phrase[offset] for offset in range(width)):
            spans.append((words[index][1], words[index + width - 1][2]))
    return spans


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """Cut at a word boundary near `limit` characters, never inside a character and its
    combining marks."""
    if len(text) <= limit:
        return text
    end = max(0, limit - len(ellipsis))
    while 0 < end < len(text) and unicodedata.combining(text[end]):
        end -= 1
    cut = text[:end]
    space = cut.rfind(" ")
    if space > len(cut) * 0.6:
        cut = cut[:space]
    return cut.rstrip() + ellipsis
