"""Exact parsing of plain numeric answers into :class:`fractions.Fraction`.

Handles integers (zero-padded "025", thousands separators "7,425,000",
"1 000"), decimals ("27.0", ".4"), simple fractions ("3/4",
``\\frac{-3}{4}``), mixed numbers (``2\\frac{1}{2}``, "2 1/2"), repeating decimals
(``0.\\overline{3}``), scientific notation (``1.5\\times10^{3}``, "2e-3"),
currency prefixes, percent and degree signs and trailing unit words.

Nothing is evaluated: the only arithmetic is on ``Fraction`` values built from
bounded-length digit strings, so hostile input cannot make it slow.  Anything
not recognised returns ``None`` (the caller then falls back to math-verify).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from .normalize import clean_latex

__all__ = ["Num", "parse_number", "numbers_equal", "MAX_DIGITS"]

#: numeric literals longer than this are not parsed
MAX_DIGITS = 400
#: largest |exponent| accepted in scientific notation
MAX_EXPONENT = 400


@dataclass(frozen=True)
class Num:
    """A parsed number.  ``exact`` is False when a terminating decimal literal
    was involved (so approximate comparison may apply); ``decimals`` is the
    number of digits after the point of the least precise such literal."""

    value: Fraction
    exact: bool
    percent: bool = False
    decimals: int = 0


_INT = r"\d+"
_DEC = r"(?:\d+\.\d*|\.\d+)"
_SIGN = r"[+-]?"
_INT_RE = re.compile(rf"({_SIGN})([1-9]\d{{0,2}}(?:,\d{{3}})+|[1-9]\d{{0,2}}(?: \d{{3}})+|\d+)")
_DEC_RE = re.compile(rf"({_SIGN})([1-9]\d{{0,2}}(?:,\d{{3}})+\.\d*|{_DEC})")
_SCI_RE = re.compile(
    rf"({_SIGN})(\d+(?:\.\d*)?|\.\d+)\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{{?\s*([+-]?\d+)\s*\}}?"
)
_E_RE = re.compile(rf"({_SIGN})(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d+)")
_SLASH_RE = re.compile(rf"({_SIGN})\(?\s*({_SIGN}(?:{_DEC}|{_INT}))\s*\)?\s*/\s*\(?\s*({_SIGN}(?:{_DEC}|{_INT}))\s*\)?")
_FRAC_RE = re.compile(
    rf"({_SIGN})\\frac\s*\{{\s*({_SIGN}(?:{_DEC}|{_INT}))\s*\}}\s*\{{\s*({_SIGN}(?:{_DEC}|{_INT}))\s*\}}"
)
_MIXED_RE = re.compile(rf"({_SIGN})(\d+)\s*\\frac\s*\{{\s*(\d+)\s*\}}\s*\{{\s*(\d+)\s*\}}")
# "2 1/2", "-1 3/4": a whole number, a space, then a proper fraction (no leading zero: "1 000/3" is not one)
_MIXED_SLASH_RE = re.compile(rf"({_SIGN})(\d+)\s+([1-9]\d*)\s*/\s*([1-9]\d*)")
_REPEAT_RE = re.compile(
    rf"({_SIGN})(\d*)\.(\d*)(?:\\overline|\\dot|\\bar)\s*\{{\s*(\d+)\s*\}}"
    rf"|({_SIGN})(\d*)\.(\d*)\((\d+)\)"
)
_CURRENCY_RE = re.compile(
    r"^(?:\\\$|\$|\u20ac|\u00a3|\u00a5|\u20b9|USD|US\\\$|Rs\.?|INR|EUR|GBP)\s*"
    r"|\s*(?:\\\$|\$|\u20ac|\u00a3|\u00a5|USD|EUR|GBP|dollars?|cents?|euros?|yuan|rupees?)$"
)
_PERCENT_WORD_RE = re.compile(r"\s*(?:percent(?:age)?|pct)\.?$", re.IGNORECASE)
_DEGREE_WORD_RE = re.compile(r"\s*(?:degrees?|deg)\.?$", re.IGNORECASE)
# trailing unit: words (>= 2 letters) optionally with powers and per-units
_UNIT_RE = re.compile(
    r"\s*(?:[a-zA-Z]{2,}|[a-zA-Z](?=\s*(?:\^|$|/)))(?:\s*\^\s*\{?\s*[23]\s*\}?|[\u00b2\u00b3])?"
    r"(?:\s*(?:/|per|\\cdot)\s*[a-zA-Z]+(?:\s*\^\s*\{?\s*[23]\s*\}?|[\u00b2\u00b3])?)*"
    r"(?:\s+[a-zA-Z]{2,})*\.?$"
)
# words that look like units but carry meaning
_NOT_UNITS = {
    "pi", "and", "or", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "exp",
    "mod", "i", "e", "x", "y", "z", "n", "k", "m", "a", "b", "c", "d", "t", "r", "s", "p", "q",
    "infty", "inf", "times", "cdot", "frac", "over", "of", "is", "to", "not", "no", "none",
}


def _dec_places(s: str) -> int:
    if "." not in s:
        return 0
    return len(s.split(".", 1)[1])


def _to_fraction(lit: str) -> Fraction:
    return Fraction(lit.replace(",", "").replace(" ", ""))


def _strip_units(s: str) -> str:
    m = _UNIT_RE.search(s)
    if m is None or m.start() == 0:
        return s
    head = s[: m.start()].rstrip()
    if not head or not (head[-1].isdigit() or head[-1] in ".}"):
        return s
    words = re.findall(r"[a-zA-Z]+", m.group())
    if any(w.lower() in _NOT_UNITS and len(w) > 1 for w in words):
        return s
    if len(words) == 1 and len(words[0]) == 1 and words[0].lower() in _NOT_UNITS:
        return s
    return head


def _core(s: str) -> tuple[Fraction, bool, int] | None:
    """(value, exact, decimals) for a bare numeric literal."""
    if not s or len(s) > MAX_DIGITS + 40:
        return None
    if sum(ch.isdigit() for ch in s) > MAX_DIGITS:
        return None
    m = _INT_RE.fullmatch(s)
    if m:
        v = _to_fraction(m.group(2))
        return (-v if m.group(1) == "-" else v), True, 0
    m = _DEC_RE.fullmatch(s)
    if m:
        lit = m.group(2)
        v = _to_fraction(lit)
        return (-v if m.group(1) == "-" else v), False, _dec_places(lit.replace(",", ""))
    m = _REPEAT_RE.fullmatch(s)
    if m:
        if m.group(4) is not None:
            sign, whole, pre, rep = m.group(1), m.group(2), m.group(3), m.group(4)
        else:
            sign, whole, pre, rep = m.group(5), m.group(6), m.group(7), m.group(8)
        whole_v = int(whole) if whole else 0
        pre_v = Fraction(int(pre), 10 ** len(pre)) if pre else Fraction(0)
        rep_v = Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(pre))
        v = whole_v + pre_v + rep_v
        return (-v if sign == "-" else v), True, 0
    m = _FRAC_RE.fullmatch(s) or _SLASH_RE.fullmatch(s)
    if m:
        num, den = m.group(2), m.group(3)
        d = _to_fraction(den)
        if d == 0:
            raise ZeroDivisionError
        v = _to_fraction(num) / d
        exact = "." not in num and "." not in den
        places = max(_dec_places(num), _dec_places(den))
        return (-v if m.group(1) == "-" else v), exact, places
    m = _MIXED_RE.fullmatch(s)
    if m:
        d = int(m.group(4))
        if d == 0:
            raise ZeroDivisionError
        v = int(m.group(2)) + Fraction(int(m.group(3)), d)
        return (-v if m.group(1) == "-" else v), True, 0
    m = _MIXED_SLASH_RE.fullmatch(s)
    if m and len(m.group(3)) + len(m.group(4)) <= 12 and int(m.group(3)) < int(m.group(4)):
        v = int(m.group(2)) + Fraction(int(m.group(3)), int(m.group(4)))
        return (-v if m.group(1) == "-" else v), True, 0
    for rx in (_SCI_RE, _E_RE):
        m = rx.fullmatch(s)
        if m:
            e = int(m.group(3))
            if abs(e) > MAX_EXPONENT:
                return None
            v = _to_fraction(m.group(2)) * Fraction(10) ** e
            return (-v if m.group(1) == "-" else v), "." not in m.group(2), _dec_places(m.group(2))
    return None


_WORD_NUMBERS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_WORD_NUMBERS.update({"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
                      "ninety": 90, "hundred": 100, "thousand": 1000, "million": 1_000_000})


def parse_number(answer: str) -> Num | None:
    """Parse a plain numeric answer; ``None`` when it is anything else.

    Raises ``ZeroDivisionError`` for a literal division by zero such as
    ``\\frac{1}{0}`` so that callers can answer "cannot tell".
    """
    s, pct, _deg = clean_latex(answer)
    if not s or len(s) > MAX_DIGITS + 80:
        return None
    word = _WORD_NUMBERS.get(s.strip().lower())
    if word is not None:
        return Num(Fraction(word), True, pct, 0)
    s = _CURRENCY_RE.sub("", s).strip()
    m = _PERCENT_WORD_RE.search(s)
    if m and m.start() > 0:
        s, pct = s[: m.start()].strip(), True
    m = _DEGREE_WORD_RE.search(s)
    if m and m.start() > 0:
        s = s[: m.start()].strip()
    s = _strip_units(s).strip()
    s = _CURRENCY_RE.sub("", s).strip()
    if s.startswith("{") and s.endswith("}") and s.count("{") == 1:
        s = s[1:-1].strip()
    if s.startswith("(") and s.endswith(")") and s.count("(") == 1 and "," not in s:
        s = s[1:-1].strip()
    s = s.replace(" ", " ")
    if s[:1] in "+-" and s[1:2] == " ":
        s = s[0] + s[2:].lstrip()
    got = _core(s)
    if got is None:
        return None
    value, exact, places = got
    return Num(value, exact, pct, places)


def _candidates(n: Num) -> list[Fraction]:
    # "28%" may be meant as 28 or as 0.28
    return [n.value, n.value / 100] if n.percent else [n.value]


def numbers_equal(gold: Num, pred: Num) -> bool | None:
    """Exact equality first.  When a terminating decimal literal is involved
    the values are equal if they agree to 6 decimal places *and* to a
    relative 1e-6 (math-verify rounds to 6 places, which alone would make
    7.4e-12 equal 2.3e-12), and different if they differ by more than a
    relative 1e-5 or by more than 2e-6 absolute where the 6-place rounding
    differs; in between: ``None`` (ask math-verify)."""
    gs, ps = _candidates(gold), _candidates(pred)
    if any(g == p for g in gs for p in ps):
        return True
    if gold.exact and pred.exact:
        return False
    undecided = False
    for g in gs:
        for p in ps:
            diff = abs(g - p)
            scale = max(abs(g), abs(p))
            if diff <= scale / 10**6 and round(g, 6) == round(p, 6):
                return True
            if diff <= scale / 10**5 and diff <= Fraction(2, 10**6):
                undecided = True
    return None if undecided else False


def rewrite_repeating(s: str) -> str:
    """Replace repeating decimals (``0.\\overline{3}``, ``0.1\\dot{6}``) by
    ``\\frac{p}{q}`` so that math-verify (which reads ``\\overline`` as 0)
    sees their value."""
    if "overline" not in s and "dot" not in s and "bar" not in s:
        return s

    def repl(m: re.Match[str]) -> str:
        try:
            got = _core(m.group(0))
        except ZeroDivisionError:
            return m.group(0)
        if got is None:
            return m.group(0)
        v = got[0]
        sign = "-" if v < 0 else ""
        return f"{sign}\\frac{{{abs(v.numerator)}}}{{{v.denominator}}}"

    return re.sub(
        r"[+-]?\d*\.\d*(?:\\overline|\\dot|\\bar)\s*\{\s*\d+\s*\}",
        repl,
        s,
    )
