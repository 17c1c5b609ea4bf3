"""monitor/text.py: the one normaliser that rules and items share."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.text import clean, fold, html_to_text, phrase_spans, tokens, truncate

# --- fold ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("", ""),
        ("plain ascii", "plain ascii"),
        ("NORTH Korean", "north korean"),
        ("Genève", "geneve"),
        ("Gene\u0300ve", "geneve"),  # decomposed accent (NFD)
        ("GENÈVE", "geneve"),
        ("Zürich", "zurich"),
        ("São Paulo", "sao paulo"),
        ("Straße", "strasse"),
        ("ＢＲＥＡＣＨ", "breach"),  # full width
        ("ﬁnance", "finance"),  # ligature
        ("İstanbul", "istanbul"),
        ("Северная КОРЕЯ", "северная корея"),
        ("Ещё", "еще"),
        ("한국군", "한국군"),  # Hangul stays composed, not split into jamo
        ("ΑΘΗΝΑ", "αθηνα"),
        ("a\u200bb", "ab"),  # zero-width space
        ("a\u00adb", "ab"),  # soft hyphen
        ("a\u202eb", "ab"),  # bidi override
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_fold_keeps_hangul_syllables_composed() -> None:
    assert fold("북한군") == unicodedata.normalize("NFC", "북한군")
    assert len(fold("북한군")) == 3


# --- tokens ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   ", []),
        ("!!! ... ---", []),
        ("North Korean troops", ["north", "korean", "troops"]),
        ("north-korean troops", ["north", "korean", "troops"]),
        ("NORTH–KOREAN—TROOPS", ["north", "korean", "troops"]),  # en/em dashes
        ("“red line”", ["red", "line"]),
        ('"red line"', ["red", "line"]),
        ("Pyongyang’s arms", ["pyongyang", "s", "arms"]),
        ("Pyongyang's arms", ["pyongyang", "s", "arms"]),
        ("snake_case_words", ["snake", "case", "words"]),
        ("KN-23 missiles", ["kn", "23", "missiles"]),
        ("2024/10/24", ["2024", "10", "24"]),
        ("Genève, Zürich; Köln.", ["geneve", "zurich", "koln"]),
        ("Северная Корея!", ["северная", "корея"]),
        ("북한군 파병", ["북한군", "파병"]),
        ("war\twarning\nwarfare", ["war", "warning", "warfare"]),
        ("zero\u200bwidth", ["zerowidth"]),
        ("soft\u00adhyphen", ["softhyphen"]),
    ],
)
def test_tokens(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


# --- html_to_text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("", ""),
        ("plain text", "plain text"),
        # entities, decoded exactly once
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("&lt;b&gt;bold&lt;/b&gt;", "<b>bold</b>"),
        ("&amp;lt;b&amp;gt;", "&lt;b&gt;"),
        ("<p>caf&eacute; &#233; &#x00e9;</p>", "café é é"),
        ("<p>a&nbsp;b</p>", "a b"),
        ("<p>&lt;script&gt;</p>", "<script>"),
        ("<p>Ukraine&rsquo;s army</p>", "Ukraine’s army"),
        # tags removed, inline tags do not split words
        ("<b>bold</b> and <i>italic</i>", "bold and italic"),
        ("<b>on</b>e", "one"),
        ('<a href="javascript:alert(1)">click</a>', "click"),
        ("<img src=x onerror=alert(1)>text", "text"),
        ("<img alt='North Korean troops'>z", "z"),
        # block tags separate words
        ("<p>one</p><p>two</p>", "one two"),
        ("<div>one</div><div>two</div>", "one two"),
        ("one<br>two", "one two"),
        ("one<br/>two", "one two"),
        ("x<hr/>y", "x y"),
        ("<ul><li>one</li><li>two</li></ul>", "one two"),
        ("<li>one<li>two", "one two"),
        ("<table><tr><td>a</td><td>b</td></tr></table>", "a b"),
        ("<h1>Title</h1>Body", "Title Body"),
        ("<blockquote>q</blockquote>after", "q after"),
        # invisible content dropped
        ("<script>alert(1)</script>shown", "shown"),
        ("<SCRIPT>alert(1)</SCRIPT>shown", "shown"),
        ("<script>if (a<b && c>d) {}</script>shown", "shown"),
        ("<style>p { color: red }</style>shown", "shown"),
        ("<p>before</p><style>p{}</style><p>after</p>", "before after"),
        ("<noscript>n</noscript>shown", "shown"),
        ("<template><p>t</p></template>shown", "shown"),
        ("<head><title>T</title></head><p>body</p>", "body"),
        ("<script><script>x</script>shown", "shown"),
        ("a<!-- <p>hidden</p> -->b", "ab"),
        # hostile and unclosed markup
        ("<script>never closed", ""),
        ("<style>never closed", ""),
        ("<b>unclosed <i>tags", "unclosed tags"),
        ("</script>after", "after"),
        ("</p></div>text", "text"),
        ("<p title='a>b'>text</p>", "text"),
        ("a < b and c > d", "a < b and c > d"),
        ("<<<>>>", "<<<>>>"),
        ("text <", "text <"),
        # whitespace collapsed, invisible characters removed
        ("<p>  lots \n\n of\t space  </p>", "lots of space"),
        ("<p>x&#8203;y</p>", "xy"),
        ("<p>x&zwnj;y</p>", "xy"),
        ("<p>&#x202E;evil</p>", "evil"),
        ("<p>a&#x1b;b</p>", "ab"),  # control-character references decode to nothing
        ("a\x1bb <b>x</b>", "a b x"),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


@given(st.text(alphabet="<>/&;#!-= \"'abcpscriptstyle\x00\x1b\u200b\u202e", max_size=80))
def test_html_to_text_never_raises_and_is_clean(markup: str) -> None:
    text = html_to_text(markup)
    assert text == clean(text)
    assert not any(unicodedata.category(char) in ("Cc", "Cf") for char in text)


# --- clean ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("", ""),
        ("plain", "plain"),
        ("  padded  ", "padded"),
        ("a\x00b", "a b"),
        ("a\x07b", "a b"),
        ("a\x1b[31mred", "a [31mred"),
        ("a\x7fb", "a b"),
        ("a\x85b", "a b"),  # C1 next-line
        ("a\x9bb", "a b"),  # C1 CSI
        ("line\nforged\r\nlog", "line forged log"),
        ("tab\tseparated", "tab separated"),
        ("a\u00a0b", "a b"),
        ("a\u2003b", "a b"),
        ("zero\u200bwidth", "zerowidth"),
        ("zero\u200cwidth\u200djoiner", "zerowidthjoiner"),
        ("soft\u00adhyphen", "softhyphen"),
        ("\ufeffbom", "bom"),
        ("\u202eevil\u202c", "evil"),  # right-to-left override
        ("\u2066isolate\u2069", "isolate"),
        ("Genève", "Genève"),  # accents are kept for display
        ("Северная Корея", "Северная Корея"),
    ],
)
def test_clean(raw: str, cleaned: str) -> None:
    assert clean(raw) == cleaned


@given(st.text())
def test_clean_output_is_display_safe_and_idempotent(raw: str) -> None:
    text = clean(raw)
    assert clean(text) == text
    assert text == text.strip()
    assert "  " not in text
    assert not any(unicodedata.category(char) in ("Cc", "Cf") for char in text)


# --- phrase_spans --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase", "spans"),
    [
        ("North Korean troops", ("north", "korean", "troops"), [(0, 19)]),
        ("NORTH-KOREAN troops", ("north", "korean", "troops"), [(0, 19)]),
        ("Reports: north–korean   troops.", ("north", "korean", "troops"), [(9, 30)]),
        ("Talks in Genève today", ("geneve",), [(9, 15)]),
        ("GENÈVE", ("geneve",), [(0, 6)]),
        ("“Red line” crossed", ("red", "line"), [(1, 9)]),
        ("war, then war again", ("war",), [(0, 3), (10, 13)]),
        ("a warning", ("war",), []),
        ("warfare and war", ("war",), [(12, 15)]),
        ("Северная Корея", ("корея",), [(9, 14)]),
        ("북한군 파병", ("북한군",), [(0, 3)]),
        ("korean north", ("north", "korean"), []),
        ("anything", (), []),
        ("", ("x",), []),
    ],
)
def test_phrase_spans(text: str, phrase: tuple[str, ...], spans: list[tuple[int, int]]) -> None:
    assert phrase_spans(text, phrase) == spans


@pytest.mark.parametrize(
    ("text", "phrase", "original"),
    [
        (
            "He said NORTH-KOREAN Troops arrived",
            ("north", "korean", "troops"),
            "NORTH-KOREAN Troops",
        ),
        ("In GENÈVE and Zürich", ("geneve",), "GENÈVE"),
        ("In GENÈVE and Zürich", ("zurich",), "Zürich"),
        ("ＢＲＥＡＣＨ found", ("breach",), "ＢＲＥＡＣＨ"),
    ],
)
def test_phrase_spans_point_into_the_original_text(
    text: str, phrase: tuple[str, ...], original: str
) -> None:
    [(start, end)] = phrase_spans(text, phrase)
    assert text[start:end] == original


def test_phrase_spans_finds_decomposed_accents() -> None:
    text = "Talks in Gene\u0300ve today"
    assert tokens(text) == ["talks", "in", "geneve", "today"]
    assert phrase_spans(text, ("geneve",)) == [(9, 16)]


# --- truncate ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly10!", 10, "exactly10!"),
        ("", 5, ""),
        ("alpha beta gamma delta", 15, "alpha beta…"),
        ("alpha beta gamma delta", 21, "alpha beta gamma…"),
        ("abcdefghijklmnopqrstuvwxyz", 10, "abcdefghi…"),
        ("a bcdefghijklmnopqrstuvwxyz", 10, "a bcdefgh…"),  # space too early: cut the word
        ("alpha beta", 9, "alpha…"),
        ("au cafe\u0301 noir", 10, "au cafe\u0301…"),  # cut at a space keeps the accent
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    assert truncate(text, limit) == expected


def test_truncate_custom_ellipsis() -> None:
    assert truncate("alpha beta gamma delta", 15, "...") == "alpha beta..."


def test_truncate_respects_every_limit() -> None:
    text = "cafe\u0301\u0301\u0301 au lait, Genève et Zürich"
    for limit in range(1, len(text)):
        result = truncate(text, limit)
        assert len(result) <= limit
        assert result.endswith("…")
        assert text.startswith(result[:-1])


_COMBINING = "\u0300\u0301\u0302\u0308\u0323"


@given(
    st.text(alphabet=string.ascii_letters + " " + _COMBINING + "éß한Ж", max_size=60),
    st.integers(min_value=1, max_value=70),
)
def test_truncate_properties(text: str, limit: int) -> None:
    result = truncate(text, limit)
    assert len(result) <= limit
    if len(text) <= limit:
        assert result == text
        return
    assert result.endswith("…")
    kept = result[: -len("…")]
    assert text.startswith(kept)
    assert kept == kept.rstrip()


@pytest.mark.parametrize("limit", [6, 7])
def test_truncate_cuts_at_a_grapheme_boundary(limit: int) -> None:
    text = "abcde\u0301fghij"  # 'abcdé' with a decomposed accent
    kept = truncate(text, limit)[:-1]
    assert text.startswith(kept)
    assert not unicodedata.combining(text[len(kept)])


# --- property tests: what never changes the tokens -----------------------------------------------

_WORD = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=10)
_WORDS = st.lists(_WORD, min_size=1, max_size=8)


def _accented_forms() -> dict[str, list[str]]:
    """Every precomposed Latin letter whose base is an ASCII letter, e.g. e → é è ê ë ē ė ę ě."""
    forms: dict[str, list[str]] = {letter: [] for letter in string.ascii_letters}
    for code in list(range(0x00C0, 0x0250)) + list(range(0x1E00, 0x1F00)):
        char = chr(code)
        decomposed = unicodedata.normalize("NFD", char)
        base, marks = decomposed[0], decomposed[1:]
        if base in forms and marks and all(unicodedata.combining(m) for m in marks):
            forms[base].append(char)
    return forms


_ACCENTED = _accented_forms()
_MARKS = "\u0300\u0301\u0302\u0303\u0304\u0306\u0307\u0308\u030a\u030b\u030c\u0327\u0328"


def test_accent_table_is_rich() -> None:
    assert "é" in _ACCENTED["e"]
    assert "Ö" in _ACCENTED["O"]
    assert sum(len(v) for v in _ACCENTED.values()) > 300


@given(_WORDS, st.data())
def test_tokens_ignore_case(words: list[str], data: st.DataObject) -> None:
    text = " ".join(words)
    flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    changed = "".join(c.swapcase() if flip else c for c, flip in zip(text, flips, strict=True))
    assert tokens(changed) == tokens(text)
    assert tokens(text.upper()) == tokens(text.lower()) == tokens(text)


# Letters of any script; dotless ı is left out on purpose (Turkish ı upper-cases to I, which
# folds to i: a different letter, not a case change).
_ANY_LETTER = st.characters(categories=("Lu", "Ll", "Lt", "Lo", "Nd"), exclude_characters="ı")


@given(st.lists(st.text(alphabet=_ANY_LETTER, min_size=1, max_size=8), min_size=1, max_size=6))
def test_tokens_ignore_case_in_any_script(words: list[str]) -> None:
    text = " ".join(words)
    assert tokens(text.upper()) == tokens(text)
    assert tokens(text.lower()) == tokens(text)
    assert tokens(text.swapcase()) == tokens(text)


@given(_WORDS, st.data())
def test_tokens_ignore_accents(words: list[str], data: st.DataObject) -> None:
    text = " ".join(words)
    accented = []
    for char in text:
        choice = data.draw(st.sampled_from(["same", "precomposed", "combining"]))
        if choice == "precomposed" and _ACCENTED.get(char):
            accented.append(data.draw(st.sampled_from(_ACCENTED[char])))
        elif choice == "combining" and char.isalpha():
            marks = data.draw(st.text(alphabet=_MARKS, min_size=1, max_size=3))
            accented.append(char + marks)
        else:
            accented.append(char)
    assert tokens("".join(accented)) == tokens(text)


def test_tokens_ignore_accents_example() -> None:
    assert tokens("Gènévé ÀÉÎÕÜ") == tokens("geneve aeiou")


@given(_WORDS, st.data())
def test_tokens_ignore_whitespace(words: list[str], data: st.DataObject) -> None:
    gaps = [
        data.draw(st.text(alphabet=" \t\n\r\u00a0\u2003\u3000", min_size=1, max_size=5))
        for _ in words
    ]
    text = "".join(gap + word for gap, word in zip(gaps, words, strict=True)) + gaps[0]
    assert tokens(text) == tokens(" ".join(words))


_PUNCTUATION = " -‐–—.,;:!?\"'“”‘’«»()[]{}/\\|…_*&#@+=~^"


@given(_WORDS, st.data())
def test_tokens_ignore_punctuation_and_hyphens(words: list[str], data: st.DataObject) -> None:
    separators = [
        data.draw(st.text(alphabet=_PUNCTUATION, min_size=1, max_size=4)) for _ in words[1:]
    ]
    text = words[0] + "".join(sep + word for sep, word in zip(separators, words[1:], strict=True))
    around = data.draw(st.text(alphabet=_PUNCTUATION, max_size=3))
    assert tokens(around + text + around) == tokens(" ".join(words))


@given(_WORDS, st.data())
def test_tokens_ignore_all_changes_at_once(words: list[str], data: st.DataObject) -> None:
    pieces = []
    for word in words:
        chars = []
        for char in word:
            if data.draw(st.booleans()):
                char = char.swapcase()
            if data.draw(st.booleans()) and _ACCENTED.get(char):
                char = data.draw(st.sampled_from(_ACCENTED[char]))
            chars.append(char)
        pieces.append("".join(chars))
    separators = [
        data.draw(st.text(alphabet=_PUNCTUATION + "\t\n", min_size=1, max_size=4))
        for _ in pieces[1:]
    ]
    text = pieces[0] + "".join(s + p for s, p in zip(separators, pieces[1:], strict=True))
    assert tokens(text) == tokens(" ".join(words))
    assert tokens(text) == [w.lower() for w in words]
