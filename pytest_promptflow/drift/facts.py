"""What a text asserts, as opposed to how it is worded: the facts of English free text.

The ``facts()`` drift rule compares two texts by these facts and ignores their wording.
Each kind of fact answers one question a reviewer would ask of a reworded answer:

- **negation**: is something still denied? The count of negation cues (``not``, ``no``,
  ``never``, ``cannot``, ``no longer``, ``n't`` contractions, ``none``, ``unable``...).
- **number**: are the amounts the same? Numbers with their unit or currency, durations
  normalised (``24 hours`` = ``1 day``), currencies by code (``$5`` = ``5 USD``), and
  which word each number qualifies, so that two amounts trading places is a change.
- **date** and **time**: months, weekdays, ``today``/``tomorrow``..., numeric dates
  (``2024-03-05``), clock times (``3pm`` = ``15:00``).
- **name**: people, products and organisations: capitalised words inside a sentence, runs
  of capitalised words, and words with inner capitals or digits (``iPhone``).
- **identifier**, **email**, **url**: codes such as ``T-1001``, ``KB-0042``, ``#123``.
- **quote**: text between quotation marks must still be quoted, word for word.
- **text**: two texts of two words or fewer each are labels (``billing``, ``Acme Pulse``):
  compared as a whole, without case and punctuation.

A name, an identifier, a quote or a date word is *kept* when the other text still
contains it anywhere (in any case), so a rewording that moves it is fine; a number is
kept when the other text has the same value with a compatible unit.

It is a heuristic for English, written with regular expressions because the libraries
that parse such text properly (spaCy, NLTK) load models or data at run time, which
neither CI nor a test should depend on. It does not know synonyms or antonyms: a
``replacement`` that becomes a ``refund``, or ``approved`` that becomes ``denied``, keeps
every fact; that is what ``drift.judged`` is for.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

SHORT_TEXT_WORDS = 2
"""Two texts of at most this many words each are labels: when they keep every other
fact, they are still compared as a whole."""

_NEGATION_WORDS = frozenset(
    {
        "not",
        "no",
        "never",
        "none",
        "nobody",
        "nothing",
        "nowhere",
        "neither",
        "cannot",
        "unable",
        "impossible",
        "nope",
    }
)
# Phrases that contain a negation word but deny nothing.
_NOT_NEGATIONS = re.compile(
    r"\b(?:not\s+only|no\s+(?:later|more|less|sooner|fewer)\s+than|no\s+doubt|"
    r"nothing\s+but|no\s+problem|no\s+worries|neither\s+\w+\s+nor|"
    r"(?:don't|do\s+not|never)\s+hesitate|(?:don't|not\s+to|no\s+need\s+to)\s+worry)\b",
    re.IGNORECASE,
)
_NO_LONGER = re.compile(r"\bno\s+longer\b", re.IGNORECASE)
_CONTRACTION = re.compile(r"\b\w+n't\b", re.IGNORECASE)
_TYPOGRAPHIC_APOSTROPHE = "\u2019"

_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_CURRENCY_WORDS = {
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "gbp": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
    "jpy": "JPY",
    "yen": "JPY",
    "inr": "INR",
    "rupees": "INR",
    "cad": "CAD",
    "aud": "AUD",
    "chf": "CHF",
    "cents": "cent",
    "cent": "cent",
}
_SECONDS = {
    "second": 1,
    "seconds": 1,
    "sec": 1,
    "secs": 1,
    "s": 1,
    "minute": 60,
    "minutes": 60,
    "min": 60,
    "mins": 60,
    "hour": 3600,
    "hours": 3600,
    "hr": 3600,
    "hrs": 3600,
    "h": 3600,
    "day": 86400,
    "days": 86400,
    "week": 604800,
    "weeks": 604800,
    "fortnight": 1209600,
}
_CALENDAR_UNITS = {
    "month": "month",
    "months": "month",
    "year": "year",
    "years": "year",
    "quarter": "quarter",
    "quarters": "quarter",
}
_OTHER_UNITS = {
    "%": "%",
    "percent": "%",
    "per cent": "%",
    "kb": "KB",
    "mb": "MB",
    "gb": "GB",
    "tb": "TB",
    "ms": "ms",
    "x": "x",
}
# Words between a number and its time unit that do not change the unit.
_UNIT_QUALIFIERS = frozenset({"business", "working", "calendar", "full", "more", "additional"})
_NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "dozen": 12,
}
_MONTHS = {
    "january": "jan",
    "jan": "jan",
    "february": "feb",
    "feb": "feb",
    "march": "mar",
    "april": "apr",
    "apr": "apr",
    "may": "may",
    "june": "jun",
    "jun": "jun",
    "july": "jul",
    "jul": "jul",
    "august": "aug",
    "aug": "aug",
    "september": "sep",
    "sep": "sep",
    "sept": "sep",
    "october": "oct",
    "oct": "oct",
    "november": "nov",
    "nov": "nov",
    "december": "dec",
    "dec": "dec",
}
_WEEKDAYS = {
    "monday": "mon",
    "mon": "mon",
    "tuesday": "tue",
    "tue": "tue",
    "tues": "tue",
    "wednesday": "wed",
    "wed": "wed",
    "thursday": "thu",
    "thu": "thu",
    "thurs": "thu",
    "friday": "fri",
    "fri": "fri",
    "saturday": "sat",
    "sat": "sat",
    "sunday": "sun",
    "sun": "sun",
}
_RELATIVE_DAYS = frozenset(
    {"today", "tonight", "tomorrow", "yesterday", "weekend", "overnight", "asap"}
)
# Capitalised words that begin sentences or greetings without naming anyone.
_COMMON_CAPITALISED = frozenset(
    {
        "i",
        "i'm",
        "i've",
        "i'll",
        "i'd",
        "ok",
        "okay",
        "hi",
        "hello",
        "hey",
        "dear",
        "thanks",
        "thank",
        "regards",
        "best",
        "sincerely",
        "cheers",
        "please",
        "sorry",
        "yes",
        "no",
        "note",
    }
)
_STOPWORDS_TEXT = """a an the and or but if then of for to in on at by with from into onto over
    under about after before within during until than as is are was were be been being am do
    does did has have had will would shall should can could may might must this that
    these those it its it's we we'll we've you you'll your yours our ours they them their
    he she his her him i me my mine us so up out off per via also just only still yet
    again once any some each every all both more most less least few many much such
    own same other another very too here there when where which who whom whose what why
    how while because though although since whether either"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_NOT_NAMES = (
    _COMMON_CAPITALISED
    | _MONTHS.keys()
    | _WEEKDAYS.keys()
    | _CURRENCY_WORDS.keys()
    | _OTHER_UNITS.keys()
    | _SECONDS.keys()
    | {"am", "pm", "a.m", "p.m"}
)

_URL = re.compile(r"\bhttps?://[^\s<>\"'()]+|\bwww\.[^\s<>\"'()]+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_QUOTE = re.compile(r"\"([^\"]{2,}?)\"|“([^”]{2,}?)”|(?<![\w])'([^'\n]{2,}?)'(?![\w])")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_SLASH_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2,4})\b")
_CLOCK = re.compile(
    r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?m\.?(?![a-z])|\b(\d{1,2}):(\d{2})\b", re.I
)
_IDENTIFIER = re.compile(
    r"#\d+\b|\b(?=[A-Za-z0-9_-]*[A-Za-z])(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*\b"
)
_WORD = re.compile(r"[A-Za-z](?:[A-Za-z']|-(?=[A-Za-z]))*|[$€£¥₹%]|\d[\d,.]*")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?:;])\s+|\n+")
_HAS_DIGIT = re.compile(r"\d")
_NUMBER_WITH_UNIT = re.compile(
    r"\d+(?:st|nd|rd|th|am|pm|k|m|h|hr|hrs|s|ms|x|d|gb|mb|kb|tb|min|mins)"
)


def _whole_words(words: Iterable[str]) -> re.Pattern[str]:
    """Any of ``words``, in any case, as a whole run of ASCII letters: what splitting the
    text into ``[A-Za-z]+`` runs and looking each one up would find, in one search."""
    alternatives = "|".join(re.escape(word) for word in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z])(?:{alternatives})(?![A-Za-z])", re.IGNORECASE | re.ASCII)


_NEGATION_WORD = _whole_words(_NEGATION_WORDS)
_LETTERS = re.compile(r"[A-Za-z]+")
_DATE_WORDS = frozenset([*_MONTHS, *_WEEKDAYS, *_RELATIVE_DAYS])


@dataclass(frozen=True)
class NumberFact:
    value: Decimal
    """In the unit's base: seconds for a duration."""
    unit: str | None
    """``USD``, ``s`` (a duration in seconds), ``%``, ``month``..., or None."""
    text: str
    context: frozenset[str]
    """The content words around the number: what it qualifies."""
    written: Decimal
    """The number as written, before a duration became seconds."""

    def compatible(self, other: NumberFact) -> bool:
        if self.unit is None or other.unit is None:
            return self.written == other.written
        return self.unit == other.unit and self.value == other.value


@dataclass
class Facts:
    """Everything one text asserts that the ``facts`` rule compares."""

    text: str
    words: frozenset[str]
    """Every word of the text, lower-cased: where a kept fact is looked for."""
    negations: Counter[str] = field(default_factory=Counter)
    numbers: list[NumberFact] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    identifiers: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    quotes: dict[str, str] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)
    times: dict[str, str] = field(default_factory=dict)
    whole: str | None = None
    """The normalised text itself, when it is short enough to be a fact."""

    @functools.cached_property
    def lowered(self) -> str:
        return self.text.lower()


@dataclass(frozen=True)
class FactChange:
    """Facts of one kind that only one of the two texts asserts."""

    kind: str
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()

    def __str__(self) -> str:
        parts = [f"-{_quoted(text)}" for text in self.removed]
        parts += [f"+{_quoted(text)}" for text in self.added]
        return f"{self.kind} {' '.join(parts)}"


def _quoted(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def describe(changes: Iterable[FactChange]) -> str:
    """``negation +"not"; number -"24 hours" +"48 hours"``."""
    return "; ".join(str(change) for change in changes)


def _normalised(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s@./:#-]", " ", text.lower()).split()).strip(" .:-")


def extract(text: str) -> Facts:
    """The facts of ``text``."""
    text = text.replace(_TYPOGRAPHIC_APOSTROPHE, "'")
    words = [w.lower() for w in _WORD.findall(text)]
    facts = Facts(text=text, words=_word_forms(words))
    if len([w for w in words if w[0].isalpha()]) <= SHORT_TEXT_WORDS:
        facts.whole = _normalised(text)
    # Each pattern below is tried only when the text has the character it needs: most
    # texts have no URL, address or quote, and every date, time and code has a digit.
    rest = text
    if "://" in text or "www." in text.lower():
        for match in _URL.finditer(text):
            url = match.group(0).rstrip(".,;:!?")
            facts.urls[url.lower().rstrip("/")] = url
        rest = _URL.sub(" ", rest)
    if "@" in rest:
        for match in _EMAIL.finditer(rest):
            facts.emails[match.group(0).lower()] = match.group(0)
        rest = _EMAIL.sub(" ", rest)
    if '"' in rest or "\u201c" in rest or "'" in rest:
        for match in _QUOTE.finditer(rest):
            quoted = next(group for group in match.groups() if group is not None)
            if len(quoted.split()) >= 1 and _normalised(quoted):
                facts.quotes[_normalised(quoted)] = quoted
    has_digit = _HAS_DIGIT.search(rest) is not None
    _dates_and_times(rest, facts, has_digit)
    if has_digit:
        rest = _CLOCK.sub(" ", _SLASH_DATE.sub(" ", _ISO_DATE.sub(" ", rest)))
        for match in _IDENTIFIER.finditer(rest):
            token = match.group(0)
            if _is_identifier(token):
                facts.identifiers[token.lower()] = token
    _negations(text, facts)
    if has_digit or _may_hold_number_words(rest):
        _numbers(rest, facts)
    _names(rest, facts)
    return facts


_NUMBER_WORD_SET = frozenset(_NUMBER_WORDS)
_ONE_OF_A_UNIT = frozenset({"a", "an"})
_DURATION_WORDS = frozenset(_SECONDS)


def _may_hold_number_words(text: str) -> bool:
    """Whether ``text``, which has no digit, may hold a number ``_numbers`` would find: a
    number word (``three``, ``twenty-five``) or ``a``/``an`` before a duration (``within
    a day``). Most texts hold none, and are spared the walk over their words."""
    if text.isascii():  # lower-casing first is the same only for ASCII ("\u212a" -> "k")
        words = frozenset(_WORD.findall(text.lower()))
    else:
        words = frozenset(word.lower() for word in _WORD.findall(text))
    if not _NUMBER_WORD_SET.isdisjoint(words):
        return True
    if not _ONE_OF_A_UNIT.isdisjoint(words) and not _DURATION_WORDS.isdisjoint(words):
        return True
    return "-" in text and any(_number_word(word) is not None for word in words if "-" in word)


def _word_forms(words: list[str]) -> frozenset[str]:
    """The words, and each without its quotes and its possessive ``'s``."""
    forms = set(words)
    for word in words:
        if "'" in word:
            forms.add(word.strip("'"))
            if word.endswith("'s"):
                forms.add(word[:-2])
    return frozenset(forms)


def _is_identifier(token: str) -> bool:
    if token.startswith("#"):
        return True
    # 3pm, 2nd, 10am, 5k, 24h, 10x: a number with a unit, not a code.
    return not _NUMBER_WITH_UNIT.fullmatch(token.lower())


def _negations(text: str, facts: Facts) -> None:
    if _NEGATION_WORD.search(text) is None and "n't" not in facts.lowered:
        return  # no negation word and no contraction: nothing to count or set aside
    cleaned = _NOT_NEGATIONS.sub(" ", text)
    for _ in _NO_LONGER.finditer(cleaned):
        facts.negations["no longer"] += 1
    cleaned = _NO_LONGER.sub(" ", cleaned)
    for match in _CONTRACTION.finditer(cleaned):
        facts.negations[match.group(0).lower()] += 1
    cleaned = _CONTRACTION.sub(" ", cleaned)
    for word in _NEGATION_WORD.findall(cleaned):
        facts.negations[word.lower()] += 1


def _dates_and_times(text: str, facts: Facts, has_digit: bool = True) -> None:
    if has_digit:
        _numeric_dates_and_times(text, facts)
    for word in _LETTERS.findall(text):
        if word.lower() not in _DATE_WORDS:
            continue
        lower = word.lower()
        if lower == "may" and word == "may":
            continue  # the verb, not the month
        if lower in _MONTHS and (word[0].isupper() or len(lower) > 3):
            facts.dates[_MONTHS[lower]] = word
        elif lower in _WEEKDAYS and (word[0].isupper() or len(lower) > 3):
            facts.dates[_WEEKDAYS[lower]] = word
        elif lower in _RELATIVE_DAYS:
            facts.dates[lower] = word


def _numeric_dates_and_times(text: str, facts: Facts) -> None:
    for match in _ISO_DATE.finditer(text):
        year, month, day = (int(group) for group in match.groups())
        facts.dates[f"{year:04d}-{month:02d}-{day:02d}"] = match.group(0)
    for match in _SLASH_DATE.finditer(text):
        facts.dates[match.group(0)] = match.group(0)
    for match in _CLOCK.finditer(text):
        if match.group(4) is not None:
            hour, minute = int(match.group(4)), int(match.group(5))
        else:
            hour, minute = int(match.group(1)) % 12, int(match.group(2) or 0)
            hour += 12 if match.group(3).lower() == "p" else 0
        if hour < 24 and minute < 60:
            facts.times[f"{hour:02d}:{minute:02d}"] = match.group(0)


def _tokens_with_spans(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), *m.span()) for m in _WORD.finditer(text)]


def _numbers(text: str, facts: Facts) -> None:
    tokens = _tokens_with_spans(text)
    lowered = [token.lower() for token, _, _ in tokens]
    for index, (token, start, _end) in enumerate(tokens):
        value: Decimal | None = None
        unit: str | None = None
        shown = token
        lower = lowered[index]
        if token[0].isdigit():
            number_text = shown = token.rstrip(".,")
            if _is_part_of_identifier(text, start, start + len(number_text)):
                continue
            try:
                value = Decimal(number_text.replace(",", ""))
            except InvalidOperation:
                continue
            before = lowered[index - 1] if index else ""
            if before in _CURRENCY_SYMBOLS:
                unit, shown = _CURRENCY_SYMBOLS[before], before + number_text
            elif len(before) == 3 and before in _CURRENCY_WORDS:
                # "USD 49.99"
                unit, shown = _CURRENCY_WORDS[before], f"{tokens[index - 1][0]} {number_text}"
        elif lower in _NUMBER_WORDS or "-" in lower:
            value = _number_word(lower)
            if value is None:
                continue
            following = lowered[index + 1] if index + 1 < len(lowered) else ""
            known_unit = (
                _unit_at(lowered, index + 1)[0] is not None
                or _unit_at(lowered, _range_end(text, tokens, lowered, index))[0] is not None
            )
            plural_noun = following.endswith("s") and following not in _STOPWORDS
            if not known_unit and not (value != 1 and plural_noun):
                continue
        elif lower in ("a", "an") and index and lowered[index - 1] in ("within", "in", "for"):
            # "within a day", "in an hour": one of the unit.
            if _unit_at(lowered, index + 1)[0] in ("s",):
                value = Decimal(1)
            else:
                continue
        else:
            continue
        written = value
        if unit is None:
            unit, factor, unit_words = _unit_at(lowered, index + 1)
            if unit is not None:
                shown = " ".join([shown, *(tokens[index + 1 + k][0] for k in range(unit_words))])
            else:
                # The first number of a range takes the unit of the second: "2-3 days".
                unit, factor, _ = _unit_at(lowered, _range_end(text, tokens, lowered, index))
            if factor is not None:
                value *= factor
        facts.numbers.append(
            NumberFact(
                value.normalize(),
                unit,
                shown.strip(),
                _context(lowered, index),
                written.normalize(),
            )
        )


_RANGE_DASHES = "-\u2013"


def _range_end(text: str, tokens: list[tuple[str, int, int]], words: list[str], index: int) -> int:
    """Where the unit of a range that starts at ``index`` would be: after ``two to three``,
    ``2 or 3``, ``2-3``; past the end when the number starts no range."""
    following = index + 1
    if following < len(words) and words[following] in ("to", "or", "and"):
        following += 1
    elif not (
        following < len(tokens)
        and text[tokens[index][2] : tokens[following][1]].strip() in _RANGE_DASHES
    ):
        return len(words)
    if following < len(words) and (words[following][0].isdigit() or _number_word(words[following])):
        return following + 1
    return len(words)


def _is_part_of_identifier(text: str, start: int, end: int) -> bool:
    """Digits inside ``T-1001``, ``KB-0042``, ``v2.3.1`` or ``2024-03-05`` belong to a code."""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if before in _RANGE_DASHES and start >= 2 and text[start - 2].isdigit():
        return False  # the end of a range, "2-3"
    if before in "-_#/" or before.isalpha():
        return True
    return (
        after.isalpha()
        and text[end : end + 2].lower() not in ("am", "pm")
        and not (text[end:].lower().startswith(("st", "nd", "rd", "th", "k ", "x ", "h ")))
    )


def _number_word(word: str) -> Decimal | None:
    parts = word.split("-")
    if not all(part in _NUMBER_WORDS for part in parts):
        return None
    return Decimal(sum(_NUMBER_WORDS[part] for part in parts))


def _unit_at(words: list[str], index: int) -> tuple[str | None, Decimal | None, int]:
    """The unit that follows a number at ``index``: (unit, factor to seconds, words used)."""
    skipped = 0
    while index + skipped < len(words) and words[index + skipped] in _UNIT_QUALIFIERS:
        skipped += 1
    if index + skipped >= len(words):
        return None, None, 0
    word = words[index + skipped]
    if word in _SECONDS:
        return "s", Decimal(_SECONDS[word]), skipped + 1
    if word in _CALENDAR_UNITS:
        return _CALENDAR_UNITS[word], None, skipped + 1
    if skipped:
        return None, None, 0
    if word in _CURRENCY_WORDS:
        return _CURRENCY_WORDS[word], None, 1
    if word in _OTHER_UNITS:
        return _OTHER_UNITS[word], None, 1
    return None, None, 0


def _context(words: list[str], index: int, reach: int = 3) -> frozenset[str]:
    """Up to ``reach`` content words on each side of the number at ``index``."""
    found: set[str] = set()
    for direction in (-1, 1):
        position, taken = index + direction, 0
        while 0 <= position < len(words) and taken < reach:
            word = words[position]
            if word[0].isdigit() or word in _NUMBER_WORDS:
                break  # the next number's words are its own
            if word[0].isalpha() and word not in _STOPWORDS and word not in _CURRENCY_WORDS:
                if word not in _SECONDS and word not in _UNIT_QUALIFIERS:
                    found.add(word.rstrip("s") if len(word) > 3 else word)
                taken += 1
            position += direction
    return frozenset(found)


_NAME_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'&.-]*[A-Za-z0-9]|[A-Za-z]")


def _names(text: str, facts: Facts) -> None:
    for sentence in _SENTENCE_BREAK.split(text):
        words = list(_NAME_WORD.finditer(sentence))
        # Most words have no capital and name nothing: only the others are looked at.
        capitalised = [p for p, match in enumerate(words) if not match.group(0).islower()]
        for position in capitalised:
            match = words[position]
            word = match.group(0)
            lower = word.lower()
            bare = lower[:-2] if lower.endswith("'s") else lower
            if bare in _NOT_NAMES or _HAS_DIGIT.search(word):
                continue  # a word with digits is an identifier
            inner = not word.isupper() and word[1:] != word[1:].lower()
            acronym = word.isupper() and len(word) >= 2
            if not (word[0].isupper() or inner):
                continue
            next_capital = position + 1 < len(words) and words[position + 1].group(0)[0].isupper()
            previous_capital = position > 0 and words[position - 1].group(0)[0].isupper()
            if not (inner or acronym or next_capital or previous_capital) and (
                position == 0 or sentence[: match.start()].rstrip().endswith(('"', "\u201c", "("))
            ):
                continue  # a capital that only starts the sentence says nothing
            if bare in _STOPWORDS and not (inner or acronym):
                continue
            facts.names[bare] = word


def _kept_elsewhere(key: str, other: Facts) -> bool:
    """Whether ``other`` still says ``key`` somewhere, as a word or in its text."""
    if key in other.words:
        return True
    text = other.lowered
    start = text.find(key)
    while start != -1:
        end = start + len(key)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not (before.isalnum() or before in "_-") and not (after.isalnum() or after in "_-"):
            return True
        start = text.find(key, start + 1)
    return False


def compare(old: Facts, new: Facts) -> list[FactChange]:
    """The facts that only one of the two texts asserts, by kind."""
    changes: list[FactChange] = []
    if sum(old.negations.values()) != sum(new.negations.values()):
        removed = old.negations - new.negations
        added = new.negations - old.negations
        changes.append(
            FactChange(
                "negation", tuple(sorted(removed.elements())), tuple(sorted(added.elements()))
            )
        )
    changes += _number_changes(old, new)
    for kind, attribute in (
        ("date", "dates"),
        ("time", "times"),
        ("email", "emails"),
        ("url", "urls"),
        ("identifier", "identifiers"),
    ):
        old_facts, new_facts = getattr(old, attribute), getattr(new, attribute)
        removed_keys = [k for k in old_facts if k not in new_facts and not _kept_elsewhere(k, new)]
        added_keys = [k for k in new_facts if k not in old_facts and not _kept_elsewhere(k, old)]
        if removed_keys or added_keys:
            changes.append(
                FactChange(
                    kind,
                    tuple(old_facts[k] for k in removed_keys),
                    tuple(new_facts[k] for k in added_keys),
                )
            )
    removed_names = [k for k in old.names if not _kept_elsewhere(k, new)]
    added_names = [k for k in new.names if not _kept_elsewhere(k, old)]
    if removed_names or added_names:
        changes.append(
            FactChange(
                "name",
                tuple(old.names[k] for k in removed_names),
                tuple(new.names[k] for k in added_names),
            )
        )
    if old.quotes or new.quotes:
        changes += _quote_changes(old, new)
    if not changes and old.whole is not None and new.whole is not None and old.whole != new.whole:
        changes.append(FactChange("text", (old.text,), (new.text,)))
    return changes


def _quote_changes(old: Facts, new: Facts) -> list[FactChange]:
    new_text, old_text = _normalised(new.text), _normalised(old.text)
    removed_quotes = [k for k in old.quotes if k not in new_text]
    added_quotes = [k for k in new.quotes if k not in old_text]
    if removed_quotes or added_quotes:
        return [
            FactChange(
                "quote",
                tuple(old.quotes[k] for k in removed_quotes),
                tuple(new.quotes[k] for k in added_quotes),
            )
        ]
    return []


def _number_changes(old: Facts, new: Facts) -> list[FactChange]:
    removed = [n for n in old.numbers if not any(n.compatible(m) for m in new.numbers)]
    added = [n for n in new.numbers if not any(n.compatible(m) for m in old.numbers)]
    if removed or added:
        return [FactChange("number", tuple(n.text for n in removed), tuple(n.text for n in added))]
    # The same amounts; did two of them trade the words they qualify?
    swapped = []
    for number in old.numbers:
        now = [m for m in new.numbers if m.compatible(number)]
        if not now or not number.context:
            continue
        now_context = frozenset().union(*(m.context for m in now))
        if now_context & number.context:
            continue
        others = [
            o.context for o in old.numbers if o.value != number.value and o.context - number.context
        ]
        if any(now_context & context for context in others):
            swapped.append(number)
    if swapped:
        described = tuple(f"{n.text} ({', '.join(sorted(n.context))})" for n in swapped)
        moved = tuple(
            f"{m.text} ({', '.join(sorted(m.context))})"
            for n in swapped
            for m in new.numbers
            if m.compatible(n)
        )
        return [FactChange("number", described, moved)]
    return []


def fact_changes(old: str, new: str) -> list[FactChange]:
    """The facts that differ between two texts; empty when one rewords the other."""
    return compare(_facts_of(old), _facts_of(new))


@functools.lru_cache(maxsize=1024)
def _facts_of(text: str) -> Facts:
    """``extract``, each text read once while it is among the last 1,024 read: the cases
    of a suite repeat texts (a fixed subject line, a standard action), and ``compare``
    only reads the facts it is given."""
    return extract(text)
