"""What a text asserts, as opposed to how it is worded: the facts of English free text.

The ``facts()`` drift rule compares two texts by these facts and ignores their wording.
Each kind of fact answers one question a reviewer would ask of a reworded answer:

- **negation**: is something still denied? The count of negation cues (``not``, ``no``,
  ``never``, ``cannot``, ``no longer``, ``n't`` contractions, ``none``, ``unable``...).
- **number**: are the amounts the same? Numbers with their unit or currency, durations
  normalised (``24 hours`` = ``1 day``), currencies by code (``$5`` = ``5 USD``), and
  which words each number qualifies, so that two amounts trading places is a change. An
  approximator (``about``, ``around``...) keeps the number; a bound (``at least``, ``up
  to``...) gives it a direction, and only the opposite direction changes it.
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
kept when the other text has the same value with a compatible unit, bounded the same way
or not at all (one of a unit, ``a week``, also when the other text says those words).
Two kept numbers that trade what they qualify are a change (``_swapped``).

A fact that only the new text asserts is *grounded* when the step call's own inputs
state it too (``Grounds``): it repeats what the step was given rather than adding
information, and it is reported apart, as ``grounded``. A fact the new text removed or
replaced is a change whatever the inputs say, and so is a negation.

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

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
# Words before a number that make it approximate without changing it: "about 24 hours"
# states the 24 hours of "24 hours". ("close to" is the one of two words.)
_APPROXIMATORS = frozenset(
    {"about", "around", "roughly", "approximately", "approx", "nearly", "almost", "some", "circa"}
)
# Words before a number that bound it: "at least 3 days" and "at most 3 days" differ.
# Each phrase is read backwards from the number, as a tuple of words.
_BOUNDS_BEFORE: dict[tuple[str, ...], str] = {
    **dict.fromkeys(
        [
            ("up", "to"),
            ("at", "most"),
            ("no", "more", "than"),
            ("not", "more", "than"),
            ("less", "than"),
            ("fewer", "than"),
            ("under",),
            ("below",),
            ("maximum", "of"),
        ],
        "at most",
    ),
    **dict.fromkeys(
        [
            ("at", "least"),
            ("no", "less", "than"),
            ("not", "less", "than"),
            ("no", "fewer", "than"),
            ("more", "than"),
            ("over",),
            ("above",),
            ("minimum", "of"),
        ],
        "at least",
    ),
}
_LONGEST_BOUND = max(len(phrase) for phrase in _BOUNDS_BEFORE)
# The last word of every approximator and bound: most numbers come after none of them.
_MODIFIER_ENDS = _APPROXIMATORS | {phrase[-1] for phrase in _BOUNDS_BEFORE} | {"to"}
# "3 days or more", "5 seats or fewer": the bound that follows a number and its unit.
_BOUNDS_AFTER = {
    **dict.fromkeys(["more", "longer", "above", "over", "later"], "at least"),
    **dict.fromkeys(["less", "fewer", "shorter", "below", "under", "sooner"], "at most"),
}
# Words that end a clause: a number qualifies the words of its own clause, not those of
# the clause beside it ("paid 120 USD | but was promised 100 USD").
_CLAUSE_WORDS = frozenset(
    {
        "and",
        "but",
        "or",
        "nor",
        "while",
        "whilst",
        "whereas",
        "although",
        "though",
        "because",
        "so",
        "yet",
        "however",
        "unless",
        "if",
        "when",
        "whenever",
        "then",
        "plus",
        "instead",
        "otherwise",
    }
)
_CLAUSE_PUNCTUATION = re.compile(r"[,;:.!?()\[\]\n\u2014\u2026]")
# A period after these ends an abbreviation, not a clause: "approx. 24 hours".
_ABBREVIATIONS = frozenset({"approx", "ca", "vs", "incl", "excl", "e.g", "i.e"})
# A word is put in its stem before qualifiers are compared, and these irregular forms
# first in the form the stem would come from: "paid 120 USD" and "the 120 USD we pay".
_IRREGULAR_FORMS = {
    "paid": "pay",
    "spent": "spend",
    "sent": "send",
    "gave": "give",
    "given": "give",
    "took": "take",
    "taken": "take",
    "got": "get",
    "lost": "lose",
    "sold": "sell",
    "bought": "buy",
    "won": "win",
    "made": "make",
    "kept": "keep",
    "held": "hold",
    "owed": "owe",
    "left": "leave",
    "built": "build",
    "began": "begin",
    "begun": "begin",
    "ran": "run",
}
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
# Words that say nothing of what a number qualifies: its unit, its approximator or bound,
# the small words of any sentence.
_NOT_QUALIFIERS = (
    _STOPWORDS
    | _CURRENCY_WORDS.keys()
    | _SECONDS.keys()
    | _CALENDAR_UNITS.keys()
    | _OTHER_UNITS.keys()
    | _UNIT_QUALIFIERS
    | _APPROXIMATORS
    | _NEGATION_WORDS
    | {"least", "fewer", "under", "below", "over", "above", "maximum", "minimum", "close"}
    | {"am", "pm", "a.m", "p.m"}
    | {"across", "among", "between", "through", "against", "along", "beyond", "despite"}
    | {"except", "upon", "without", "toward", "towards", "behind", "near", "past", "like"}
)


@dataclass(frozen=True)
class NumberFact:
    value: Decimal
    """In the unit's base: seconds for a duration."""
    unit: str | None
    """``USD``, ``s`` (a duration in seconds), ``%``, ``month``..., or None."""
    text: str
    context: frozenset[str]
    """The content words of its clause nearest to the number, as written: what it
    qualifies. Only worked out in a text with another number to tell it apart from."""
    written: Decimal
    """The number as written, before a duration became seconds."""
    qualifiers: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    """The stems of ``context`` on its left and on its right, nearest first."""
    bound: str | None = None
    """``at least`` or ``at most`` when a bound comes with it, None otherwise."""
    phrase: str | None = None
    """``a week``, ``an hour``: the words of one of a unit, which the other text keeps by
    saying them anywhere (``takes a week`` and ``takes almost a week``)."""

    def compatible(self, other: NumberFact) -> bool:
        if self.unit is None or other.unit is None:
            return self.written == other.written
        return self.unit == other.unit and self.value == other.value

    def keeps(self, other: NumberFact) -> bool:
        """Whether ``other`` states this number: the same amount, bounded the same way or
        either one not bounded at all."""
        if self.bound is not None and other.bound is not None and self.bound != other.bound:
            return False
        if self.unit is None or other.unit is None:  # as ``compatible``, in one call
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
    name_order: list[tuple[str, int]] = field(default_factory=list)
    """The key of every name word, in the order of the text, with its place: the number of
    its word in the text, counted so that two words apart in the text are never
    consecutive numbers. A run of consecutive names is reported as one (``Acme Pulse``)."""

    @functools.cached_property
    def lowered(self) -> str:
        return self.text.lower()

    @functools.cached_property
    def normalised(self) -> str:
        return _normalised(self.text)

    @functools.cached_property
    def distinguishing(self) -> list[dict[str, float]]:
        """The distinguishing qualifiers of each of ``numbers`` (``_distinguishing``)."""
        return _distinguishing(self.numbers)


GROUNDED = "grounded"
"""The kind of the facts a new text adds that the step call's inputs already state."""


@dataclass(frozen=True)
class FactChange:
    """Facts of one kind that only one of the two texts asserts."""

    kind: str
    removed: tuple[str, ...] = ()
    added: tuple[str, ...] = ()

    @property
    def grounded(self) -> bool:
        """Facts the new text adds that the inputs state: no change of what is asserted."""
        return self.kind == GROUNDED

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
    number word (``three``, ``twenty-five``, ``two-week``) or ``a``/``an`` before a
    duration (``within a day``). Most texts hold none, and are spared the walk over their
    words."""
    if text.isascii():  # lower-casing first is the same only for ASCII ("\u212a" -> "k")
        words = frozenset(_WORD.findall(text.lower()))
    else:
        words = frozenset(word.lower() for word in _WORD.findall(text))
    if not _NUMBER_WORD_SET.isdisjoint(words):
        return True
    if not _ONE_OF_A_UNIT.isdisjoint(words) and not _DURATION_WORDS.isdisjoint(words):
        return True
    return "-" in text and any(
        _number_word(word.rpartition("-")[0]) is not None or _number_word(word) is not None
        for word in words
        if "-" in word
    )


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
    lower = token.lower()
    number, dash, unit = lower.partition("-")
    if dash and number.isdigit() and unit in _UNIT_WORDS:
        return False  # "a 14-day trial", "a 12-month plan": a number with its unit
    # 3pm, 2nd, 10am, 5k, 24h, 10x: a number with a unit, not a code.
    return not _NUMBER_WITH_UNIT.fullmatch(lower)


_UNIT_WORDS = frozenset([*_SECONDS, *_CALENDAR_UNITS, *_OTHER_UNITS, *_CURRENCY_WORDS])


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


class _NumberAt(NamedTuple):
    """A number found at a token, before what it qualifies is worked out."""

    at: int
    """Its token: the digits, the number word, or ``a``/``an``."""
    first: int
    """Its first token: its currency, when that comes first (``$``, ``USD``)."""
    value: Decimal
    unit: str | None
    shown: str
    written: Decimal
    unit_words: int
    """How many tokens after ``at`` its unit takes."""


def _numbers(text: str, facts: Facts) -> None:
    tokens = _tokens_with_spans(text)
    lowered = [token.lower() for token, _, _ in tokens]
    found = [
        number
        for index in range(len(tokens))
        if (number := _number_at(text, tokens, lowered, index)) is not None
    ]
    if not found:
        return
    modifiers = [_modifier_before(lowered, number.first) for number in found]
    if len(found) == 1:
        # What a number qualifies tells it apart from another number: there is none.
        facts.numbers.append(
            _number_fact(tokens, lowered, found[0], modifiers[0], frozenset(), ((), ()))
        )
        return
    clauses = _clauses(text, tokens, lowered)
    own_clauses = [clauses[number.at] for number in found]
    # What a number qualifies stops at the next number: its words are that one's.
    for number in found:
        clauses[number.at] = -1
    # Where each number starts (its approximator or bound, its currency) and ends (its unit).
    spans = [
        (modifier, number.at + number.unit_words)
        for (modifier, _), number in zip(modifiers, found, strict=True)
    ]
    for place, number in enumerate(found):
        # A word between two numbers qualifies the nearer one, or both when halfway.
        start, end = spans[place]
        lowest = -(-(start + spans[place - 1][1]) // 2) if place else 0
        highest = (end + spans[place + 1][0]) // 2 if place + 1 < len(spans) else len(tokens)
        context, qualifiers = _context(
            lowered, clauses, own_clauses[place], (start - 1, lowest), (number.at + 1, highest)
        )
        facts.numbers.append(
            _number_fact(tokens, lowered, number, modifiers[place], context, qualifiers)
        )


def _number_at(
    text: str, tokens: list[tuple[str, int, int]], lowered: list[str], index: int
) -> _NumberAt | None:
    """The number whose token is at ``index``, with its unit; None when it is none."""
    token, start, _ = tokens[index]
    lower = lowered[index]
    unit: str | None = None
    factor: Decimal | None = None
    shown = token
    first = index
    if token[0].isdigit():
        number_text = shown = token.rstrip(".,")
        if _is_part_of_identifier(text, start, start + len(number_text)):
            return None
        try:
            value = Decimal(number_text.replace(",", ""))
        except InvalidOperation:
            return None
        before = lowered[index - 1] if index else ""
        if before in _CURRENCY_SYMBOLS:
            unit, shown = _CURRENCY_SYMBOLS[before], before + number_text
            first = index - 1
        elif len(before) == 3 and before in _CURRENCY_WORDS:
            # "USD 49.99"
            unit, shown = _CURRENCY_WORDS[before], f"{tokens[index - 1][0]} {number_text}"
            first = index - 1
    elif lower in _NUMBER_WORDS or "-" in lower:
        word_value = _number_word(lower)
        if word_value is None:
            # "a two-week trial": a number word joined to its unit by a hyphen.
            head, _, tail = lower.rpartition("-")
            word_value = _number_word(head) if head else None
            unit, factor, _ = _unit_at([tail], 0)
            if word_value is None or unit is None or unit in _OTHER_UNITS.values():
                return None
        value = word_value
        following = lowered[index + 1] if index + 1 < len(lowered) else ""
        known_unit = (
            _unit_at(lowered, index + 1)[0] is not None
            or _unit_at(lowered, _range_end(text, tokens, lowered, index))[0] is not None
        )
        plural_noun = following.endswith("s") and following not in _STOPWORDS
        if unit is None and not known_unit and not (value != 1 and plural_noun):
            return None
    elif lower in _ONE_OF_A_UNIT and _is_one_of_a_duration(lowered, index):
        value = Decimal(1)  # "within a day", "in about an hour": one of the unit
    else:
        return None
    written = value
    unit_words = 0
    if unit is None:
        unit, factor, unit_words = _unit_at(lowered, index + 1)
        if unit is not None:
            shown = text[start : tokens[index + unit_words][2]]  # "24 hours", "14-day"
        else:
            # The first number of a range takes the unit of the second: "2-3 days".
            unit, factor, _ = _unit_at(lowered, _range_end(text, tokens, lowered, index))
    if factor is not None:
        value *= factor
    return _NumberAt(index, first, value, unit, shown, written, unit_words)


def _number_fact(
    tokens: list[tuple[str, int, int]],
    words: list[str],
    number: _NumberAt,
    modifier: tuple[int, str | None],
    context: frozenset[str],
    qualifiers: tuple[tuple[str, ...], tuple[str, ...]],
) -> NumberFact:
    index, first, value, unit, shown, written, unit_words = number
    start, bound = modifier
    if start < first:
        shown = " ".join([*(tokens[k][0] for k in range(start, first)), shown])
    if bound is None:
        bound = _bound_after(words, index + 1 + unit_words)
        if bound is not None:  # "10 days or more"
            shown += "".join(
                f" {tokens[k][0]}" for k in range(index + 1 + unit_words, index + 3 + unit_words)
            )
    one_of_a_unit = words[index] in _ONE_OF_A_UNIT
    phrase = " ".join(words[index : index + 1 + unit_words]) if one_of_a_unit else None
    return NumberFact(
        value.normalize(),
        unit,
        shown.strip(),
        context,
        written.normalize(),
        qualifiers,
        bound,
        phrase,
    )


def _is_one_of_a_duration(words: list[str], index: int) -> bool:
    """Whether ``a``/``an`` at ``index`` is one of the duration after it: after a
    preposition of time (``within a day``, ``for an hour``), an approximator (``about an
    hour``) or a bound (``up to a week``)."""
    if _unit_at(words, index + 1)[0] != "s":
        return False
    modifier, _ = _modifier_before(words, index)
    previous = words[modifier - 1] if modifier else ""
    return modifier < index or previous in _PREPOSITIONS_OF_TIME


# Not "takes a minute" nor "lasts a second": said of anything quick, they state no amount.
_PREPOSITIONS_OF_TIME = frozenset({"within", "in", "for", "after"})


def _modifier_before(words: list[str], first: int) -> tuple[int, str | None]:
    """The approximators and bounds right before the number that starts at ``first``:
    where they start, and the bound they set (``at least``, ``at most`` or None)."""
    start, bound = first, None
    for _ in range(2):  # "up to about 3 days": a bound and an approximator, either order
        if not start or words[start - 1] not in _MODIFIER_ENDS:
            break
        if words[start - 1] in _APPROXIMATORS:
            start -= 1
            continue
        if start >= 2 and words[start - 2] == "close" and words[start - 1] == "to":
            start -= 2
            continue
        for length in range(min(_LONGEST_BOUND, start), 0, -1):
            found = _BOUNDS_BEFORE.get(tuple(words[start - length : start]))
            if found is not None:
                start, bound = start - length, bound or found
                break
        else:
            break
    return start, bound


def _bound_after(words: list[str], index: int) -> str | None:
    """The bound that follows a number and its unit: ``3 days or more``."""
    if index + 1 < len(words) and words[index] == "or":
        return _BOUNDS_AFTER.get(words[index + 1])
    return None


def _clauses(text: str, tokens: list[tuple[str, int, int]], words: list[str]) -> list[int]:
    """The clause of each token, numbered from 0: a new one begins after punctuation
    (``,``, ``;``, ``.``, a dash...) and at a word that joins clauses (``but``, ``and``,
    ``while``...)."""
    # Where the punctuation is, found in one search of the text, then met token by token.
    marks = [match.start() for match in _CLAUSE_PUNCTUATION.finditer(text)]
    marks.append(len(text))
    mark = 0
    clause = 0
    found = [0] * len(tokens)
    for index in range(1, len(tokens)):
        previous, _, previous_end = tokens[index - 1]
        while marks[mark] < previous_end:
            mark += 1
        punctuated = marks[mark] < tokens[index][1] and not (
            marks[mark] == previous_end
            and text[previous_end] == "."
            and words[index - 1] in _ABBREVIATIONS
        )
        if (
            punctuated
            or words[index] in _CLAUSE_WORDS
            or (previous[0].isdigit() and previous[-1] in ".,")
        ):
            clause += 1
        found[index] = clause
    return found


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


def _context(
    words: list[str],
    clauses: list[int],
    clause: int,
    left: tuple[int, int],
    right: tuple[int, int],
    reach: int = 3,
) -> tuple[frozenset[str], tuple[tuple[str, ...], tuple[str, ...]]]:
    """Up to ``reach`` content words of the number's ``clause`` on each side of it, from
    ``left[0]`` leftwards down to ``left[1]`` and from ``right[0]`` rightwards up to
    ``right[1]``: as written, and as stems nearest first on each side
    (``NumberFact.qualifiers``). The walk stops at the end of the clause, and at another
    number (a clause of its own, ``-1``)."""
    found: set[str] = set()
    sides: list[tuple[str, ...]] = []
    for (position, limit), direction in ((left, -1), (right, 1)):
        stems: list[str] = []
        while (
            (limit <= position if direction < 0 else position <= limit)
            and 0 <= position < len(words)
            and len(stems) < reach
            and clauses[position] == clause
        ):
            word = words[position]
            if word[0].isalpha() and word not in _NOT_QUALIFIERS:
                found.add(word)
                stems.append(_stem(word))
            position += direction
        sides.append(tuple(stems))
    return frozenset(found), (sides[0], sides[1])


@functools.lru_cache(maxsize=4096)
def _stem(word: str) -> str:
    """A crude stem, so that ``refunded``, ``refunds`` and ``refund`` qualify alike, and
    ``charge``, ``charged`` and ``charging``."""
    word = _IRREGULAR_FORMS.get(word, word)
    if word.endswith("'s"):
        word = word[:-2]
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    if len(word) >= 4 and word[-1] in "ey":
        word = word[:-1] if word[-1] == "e" else word[:-1] + "i"
    return word


_NAME_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'&.-]*[A-Za-z0-9]|[A-Za-z]")


def _names(text: str, facts: Facts) -> None:
    counted = 0  # the words of the sentences before, and one more: a gap between them
    for sentence in _SENTENCE_BREAK.split(text):
        words = list(_NAME_WORD.finditer(sentence))
        counted += len(words) + 1
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
            facts.name_order.append((bare, counted + position))


def _name_runs(keys: Iterable[str], facts: Facts) -> list[list[str]]:
    """The names of ``keys`` in runs of names next to each other in the text of ``facts``
    (``acme``, ``pulse`` of ``Acme Pulse``), each key in the first run that holds it."""
    wanted = set(keys)
    runs: list[list[str]] = []
    last_place = -2
    for key, place in facts.name_order:
        if key in wanted:
            if place == last_place + 1 and runs:
                runs[-1].append(key)
            else:
                runs.append([key])
            last_place = place
        else:
            last_place = -2
    found: list[list[str]] = []
    seen: set[str] = set()
    for run in runs:
        fresh = [key for key in run if key not in seen]
        seen.update(fresh)
        if fresh:
            found.append(fresh)
    return found + [[key] for key in wanted - seen]


def _shown_names(runs: list[list[str]], facts: Facts) -> tuple[str, ...]:
    """``Acme Pulse``: each run as the text writes it."""
    return tuple(" ".join(facts.names[key] for key in run) for run in runs)


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


class Grounds:
    """What a step call's inputs state: the facts of every string in them, at any depth.

    A fact that a compared text adds is grounded when the inputs state it. The strings are
    read once, as one text, and only when a compared text adds a fact: a call whose texts
    keep their facts never reads its inputs.
    """

    def __init__(self, inputs: Any) -> None:
        self._inputs = inputs

    @functools.cached_property
    def facts(self) -> Facts:
        return _facts_of_inputs("\n".join(_strings_in(self._inputs)))

    def state(self, key: str, kind: str) -> bool:
        """Whether the inputs state the fact ``key`` of ``kind`` (``name``, ``date``...)."""
        facts = self.facts
        if kind == "quote":
            return key in facts.normalised
        return key in getattr(facts, _ATTRIBUTES[kind]) or _kept_elsewhere(key, facts)

    def state_number(self, number: NumberFact) -> bool:
        return any(number.compatible(stated) for stated in self.facts.numbers)


_ATTRIBUTES = {
    "date": "dates",
    "time": "times",
    "email": "emails",
    "url": "urls",
    "identifier": "identifiers",
    "name": "names",
}


def _strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings_in(item)


@functools.lru_cache(maxsize=64)
def _facts_of_inputs(text: str) -> Facts:
    """The facts of a call's inputs, apart from the compared texts' cache: the calls of a
    case often share inputs (the ticket every step reads), and reading them must not push
    the compared texts out of theirs."""
    return extract(text)


def compare(old: Facts, new: Facts, grounds: Grounds | None = None) -> list[FactChange]:
    """The facts that only one of the two texts asserts, by kind; with ``grounds``, the
    facts only the new text asserts and the inputs state are put apart, last, in one
    change of kind ``grounded``."""
    changes: list[FactChange] = []
    grounded: list[str] = []
    if sum(old.negations.values()) != sum(new.negations.values()):
        removed = old.negations - new.negations
        added = new.negations - old.negations
        changes.append(
            FactChange(
                "negation", tuple(sorted(removed.elements())), tuple(sorted(added.elements()))
            )
        )
    changes += _number_changes(old, new, grounds, grounded)
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
        if grounds is not None and added_keys:
            stated = [grounds.state(k, kind) for k in added_keys]
            grounded += [new_facts[k] for k, s in zip(added_keys, stated, strict=True) if s]
            added_keys = [k for k, s in zip(added_keys, stated, strict=True) if not s]
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
        changes += _name_changes(old, new, removed_names, added_names, grounds, grounded)
    if old.quotes or new.quotes:
        changes += _quote_changes(old, new, grounds, grounded)
    if not changes and old.whole is not None and new.whole is not None and old.whole != new.whole:
        changes.append(FactChange("text", (old.text,), (new.text,)))
    if grounded:
        changes.append(FactChange(GROUNDED, (), tuple(grounded)))
    return changes


def _name_changes(
    old: Facts,
    new: Facts,
    removed_keys: list[str],
    added_keys: list[str],
    grounds: Grounds | None,
    grounded: list[str],
) -> list[FactChange]:
    removed_names = _name_runs(removed_keys, old)
    added_names = _name_runs(added_keys, new)
    if grounds is not None and added_names:
        # A run of names is grounded as a whole: "Acme Vault" is not stated by "Acme Pulse".
        stated = [grounds.state(" ".join(run), "name") for run in added_names]
        grounded += _shown_names([r for r, s in zip(added_names, stated, strict=True) if s], new)
        added_names = [r for r, s in zip(added_names, stated, strict=True) if not s]
    if removed_names or added_names:
        return [
            FactChange("name", _shown_names(removed_names, old), _shown_names(added_names, new))
        ]
    return []


def _quote_changes(
    old: Facts, new: Facts, grounds: Grounds | None, grounded: list[str]
) -> list[FactChange]:
    removed_quotes = [k for k in old.quotes if k not in new.normalised]
    added_quotes = [k for k in new.quotes if k not in old.normalised]
    if grounds is not None and added_quotes:
        stated = [grounds.state(k, "quote") for k in added_quotes]
        grounded += [new.quotes[k] for k, s in zip(added_quotes, stated, strict=True) if s]
        added_quotes = [k for k, s in zip(added_quotes, stated, strict=True) if not s]
    if removed_quotes or added_quotes:
        return [
            FactChange(
                "quote",
                tuple(old.quotes[k] for k in removed_quotes),
                tuple(new.quotes[k] for k in added_quotes),
            )
        ]
    return []


def _number_changes(
    old: Facts, new: Facts, grounds: Grounds | None, grounded: list[str]
) -> list[FactChange]:
    if not old.numbers and not new.numbers:
        return []
    removed = [n for n in old.numbers if not _number_kept(n, new)]
    added = [n for n in new.numbers if not _number_kept(n, old)]
    if grounds is not None and added:
        stated = [grounds.state_number(n) for n in added]
        grounded += [n.text for n, s in zip(added, stated, strict=True) if s]
        added = [n for n, s in zip(added, stated, strict=True) if not s]
    removed_texts = [n.text for n in removed]
    added_texts = [n.text for n in added]
    if not removed:
        # The same amounts; did two of them trade the words they qualify?
        for number in _swapped(old, new):
            removed_texts.append(_with_context(number))
            added_texts += [_with_context(m) for m in new.numbers if number.keeps(m)]
    if removed_texts or added_texts:
        return [FactChange("number", tuple(removed_texts), tuple(added_texts))]
    return []


def _number_kept(number: NumberFact, other: Facts) -> bool:
    if any(number.keeps(kept) for kept in other.numbers):
        return True
    return number.phrase is not None and _kept_elsewhere(number.phrase, other)


def _with_context(number: NumberFact) -> str:
    if not number.context:
        return number.text
    return f"{number.text} ({', '.join(sorted(number.context))})"


_LEAST_EVIDENCE = 0.5
"""How much of what a number qualified must now sit by another number for it to have
moved: the nearest word on one side (1), or the next one (1/2), not a word three away."""
_LONE_EVIDENCE = 1.0
"""As much, when the number whose place it took had nothing to tell it apart."""


def _swapped(old_facts: Facts, new_facts: Facts) -> list[NumberFact]:
    """The numbers of the old text that took the place of another in the new one.

    Each number is told apart by its distinguishing qualifiers: the words it qualifies
    that no other number of its text qualifies (a subject or a verb that governs two
    amounts tells neither apart). A number has *moved* when its distinguishing
    qualifiers are more those of another number in the new text than those of its own,
    and it *swapped* when the number whose place it took has moved too, or had nothing
    to tell it apart: a rewording shuffles words, but does not make two numbers trade
    what they qualify.
    """
    old, new = old_facts.numbers, new_facts.numbers
    if len(old) < 2 or len(new) < 2:
        return []
    old_qualifiers, new_qualifiers = old_facts.distinguishing, new_facts.distinguishing
    moves: list[tuple[int, int, float]] = []
    for position, number in enumerate(old):
        qualifiers = old_qualifiers[position]
        if not qualifiers:
            continue
        own = [place for place, other in enumerate(new) if number.keeps(other)]
        best = max((_affinity(qualifiers, new_qualifiers[place]) for place in own), default=0.0)
        taken: int | None = None
        for place, other in enumerate(new):
            if place in own or not _comparable(number, other):
                continue
            affinity = _affinity(qualifiers, new_qualifiers[place])
            if affinity > best and affinity >= _LEAST_EVIDENCE:
                taken, best = place, affinity
        if own and taken is not None:
            moves.append((position, taken, best))
    moved = {position for position, _, _ in moves}
    swapped = []
    for position, place, evidence in moves:
        displaced = [
            at for at, other in enumerate(old) if at != position and other.keeps(new[place])
        ]
        # Alone, a move must rest on a nearest word: a farther one is a rewording's noise.
        if any(
            at in moved or (not old_qualifiers[at] and evidence >= _LONE_EVIDENCE)
            for at in displaced
        ):
            swapped.append(old[position])
    return swapped


def _distinguishing(numbers: list[NumberFact]) -> list[dict[str, float]]:
    """Each number's qualifiers less those that a number of another value shares, each
    weighed by its rank among those left on its side: 1 for the nearest distinguishing
    word on either side, 1/2 for the next, 1/3 for the one after."""
    found = []
    for number in numbers:
        shared: set[str] = set()
        for other in numbers:
            if other is not number and not other.compatible(number):
                for side in other.qualifiers:
                    shared.update(side)
        weights: dict[str, float] = {}
        for side in number.qualifiers:
            kept = [stem for stem in side if stem not in shared]
            for rank, stem in enumerate(kept, start=1):
                weights[stem] = max(weights.get(stem, 0.0), 1 / rank)
        found.append(weights)
    return found


def _affinity(one: dict[str, float], other: dict[str, float]) -> float:
    return sum(min(weight, other[stem]) for stem, weight in one.items() if stem in other)


def _comparable(one: NumberFact, other: NumberFact) -> bool:
    """Numbers that could take each other's place: of one unit, or one without a unit."""
    return one.unit is None or other.unit is None or one.unit == other.unit


def fact_changes(old: str, new: str, grounds: Grounds | None = None) -> list[FactChange]:
    """The facts that differ between two texts: empty when one rewords the other, only a
    ``grounded`` change when the new text adds nothing but what ``grounds`` state."""
    return compare(_facts_of(old), _facts_of(new), grounds)


def drifted(changes: Iterable[FactChange]) -> bool:
    """Whether any of ``changes`` changes what is asserted: any but a grounded one."""
    return any(change.kind != GROUNDED for change in changes)


@functools.lru_cache(maxsize=1024)
def _facts_of(text: str) -> Facts:
    """``extract``, each text read once while it is among the last 1,024 read: the cases
    of a suite repeat texts (a fixed subject line, a standard action), and ``compare``
    only reads the facts it is given."""
    return extract(text)
