"""Answers wrapped in words: the mathematical core of "written as 6 - 5i", "12\\pi inches per second",
"56.0 g of CO consumed", "option B", "4210 in base 5", and answers that are only words.

Models state answers in prose inside their reasoning; the extracted text then carries a lead-in ("written as",
"approximately"), a multi-word unit or remark after the value, or names the option. math-verify reads such a text as
a product of symbols and says "not equivalent". :func:`prose_core` takes the words off (never when they negate or
qualify the value: "not", "except", "wrong", ...), and :func:`is_words_only` tells a text with no mathematics at
all ("Calculating", "Valid Combinations"), which is not a number.

Only string work here: no parsing, no ``eval``.
"""

from __future__ import annotations

import re

__all__ = ["APPROX_WORDS", "prose_core", "is_words_only", "fraction_words"]

_MAX_CHARS = 160

# words that change what the value means: the text is left alone
_NEGATION_RE = re.compile(
    r"\b(?:not|no|never|isn't|aren't|wasn't|cannot|can't|wrong|incorrect|false|except|neither|nor|unless|"
    r"without|minus|negative|less|more|than|or|between|at least|at most|if|when|where)\b",
    re.IGNORECASE,
)
#: words that say a value is approximate ("approximately 4.45 x 10^34"): a lead-in, not a hedge on the value
APPROX_WORDS = r"approximately|approx\.?|about|roughly|around"
_LEAD_RE = re.compile(
    r"^(?:(?:it|this|that|which|the answer|the result|the value|the final answer)\s+(?:is|was|equals)\s+|"
    r"(?:written|expressed|given|simplified)\s+as\s+|(?:" + APPROX_WORDS + r"|exactly|"
    r"equals|equal to|is)\s+|(?:option|choice|answer)\s*:?\s+(?=\(?[A-J]\)?(?:$|[\s.)]))|(?:answer|result)\s*:\s*)+",
    re.IGNORECASE,
)
# "in base 5" after digits: the base as a subscript
_BASE_RE = re.compile(r"^([0-9A-Za-z]+)\s+in\s+base\s+(\d{1,2})$", re.IGNORECASE)
# a run of plain words (and unit symbols such as "CO", "m/s") at the end, after the value
_TAIL_WORDS_RE = re.compile(r"(?:\s+(?:[A-Za-z][A-Za-z0-9]*(?:/[A-Za-z]+)?|of|per)\.?)+\s*\.?$")
# words that are mathematics when they follow a value ("2 pi", "3 sqrt 2", "x mod 5")
_MATH_WORDS = {"pi", "sqrt", "sin", "cos", "tan", "log", "ln", "exp", "mod", "i", "e", "infty", "infinity", "times",
               "cdot", "over", "plus", "divided", "squared", "cubed", "degrees", "percent"}
_WORD_RE = re.compile(r"[A-Za-z]+")
_MATHY_RE = re.compile(r"[\d\\^_=+*/(){}\[\]<>|]")


def _strip_tail(s: str) -> str:
    m = _TAIL_WORDS_RE.search(s)
    if m is None or m.start() == 0:
        return s
    words = [w.lower() for w in _WORD_RE.findall(m.group())]
    if len(words) < 2 or any(w in _MATH_WORDS for w in words):
        return s  # one word is a unit the fast path already reads ("12 inches"); math words stay
    head = s[: m.start()].rstrip()
    if not head or not (head[-1].isdigit() or head[-1] in "}).!πθ√°" or re.search(r"\\[A-Za-z]+$", head)):
        return s  # the words do not follow a value ("x is the" ...)
    return head


def prose_core(text: str) -> str | None:
    """The value inside a prose answer, or None when there are no words to take off (or they qualify it)."""
    s = " ".join(text.split())
    if not s or len(s) > _MAX_CHARS or _NEGATION_RE.search(s):
        return None
    core = _LEAD_RE.sub("", s).strip()
    bm = _BASE_RE.match(core)
    if bm is not None:
        core = f"{bm.group(1)}_{{{bm.group(2)}}}"
    core = _strip_tail(core).strip().rstrip(".,;:").strip()
    if not core or core == s or not (_MATHY_RE.search(core) or re.fullmatch(r"\(?[A-J]\)?", core)):
        return None
    return core


def is_words_only(text: str) -> bool:
    """A text of English words and punctuation only, with no digit, no LaTeX and no math symbol
    ("Calculating", "Thus, the general solution is"), and at least one word of three letters."""
    s = text.strip()
    if not s or len(s) > _MAX_CHARS or _MATHY_RE.search(s):
        return False
    words = _WORD_RE.findall(s)
    return any(len(w) >= 3 for w in words) and all(len(w) >= 2 or w.lower() in ("a", "i") for w in words)


_NUMERATORS = {"a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
               "nine": 9}
_DENOMINATORS = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4,
                 "fourths": 4, "fifth": 5, "fifths": 5, "sixth": 6, "sixths": 6, "seventh": 7, "sevenths": 7,
                 "eighth": 8, "eighths": 8, "ninth": 9, "ninths": 9, "tenth": 10, "tenths": 10}
_FRACTION_WORDS_RE = re.compile(r"^(?:(a|one|two|three|four|five|six|seven|eight|nine)[\s-]+)?([a-z]+)\.?$")


def fraction_words(text: str) -> str | None:
    """A fraction said in words ("one half", "two thirds", "a quarter", "three-fifths") as ``"n/d"``; None
    otherwise."""
    m = _FRACTION_WORDS_RE.match(" ".join(text.lower().split()))
    if m is None or m.group(2) not in _DENOMINATORS:
        return None
    num = _NUMERATORS[m.group(1)] if m.group(1) else 1
    if m.group(1) is None and m.group(2) not in ("half", "third", "quarter"):
        return None  # "fifth" alone is an ordinal
    return f"{num}/{_DENOMINATORS[m.group(2)]}"
