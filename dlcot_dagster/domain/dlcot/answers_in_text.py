"""Locate the answers a model reaches inside its thinking.

Two sources, merged and ordered by position:

**Explicit** answer statements, found by
:func:`dlcot_dagster.domain.answers.find_answers` ("the answer is 27",
``\\boxed{27}``, "**Final Answer** ..."). A statement inside a *hedged*
sentence is skipped: a sentence that ends with "?" or whose text before the
answer contains a hedge ("maybe", "if", "not", "approximately", "check"...),
e.g. "maybe the answer is 90?".

**Implicit** answers (config ``implicit_answers``, on by default): R1-style
traces mostly reach their result in a plain sentence ("Thus, p + q = 36.",
"Hence, abc is 447.") and write "the answer is" only at the very end. A
sentence counts as an implicit answer when

* it contains a conclusive marker (so / thus / therefore / hence / gives /
  we get / yields / which is / that means ...) or is an equation whose left
  side is described in words ("Total time in minutes = 3.4 × 60 = 204
  minutes", Gemini style), is not a question and is not hedged, and
* the value after its last ``=`` / "is" / "equals" (units, bold, ``$`` and
  ``\\boxed`` stripped; plain-text math such as "√51" or "2π" rewritten as
  LaTeX; at most 80 characters) is **equivalent to the reference**
  according to the answer checker.

The statement span of an implicit answer is the clause that states the value
("p + q = 36." in "Thus, p = 31, q = 5, so p + q = 36.").

Two more forms: a sentence ending in ":" completed by the display block right
after it ("Therefore, the total sum is:" + ``\\[50 \\times (-1) = -50\\]``,
read as one statement; the span is the display; an inequality there is a
bound, not a value), and, for a "Which student has the greatest average
speed?" question, a text target named as the subject of a sentence that
restates the question's predicate ("Thus Evelyn has the greatest average
speed (3.6).", :func:`which_commitments`).

A line that is only the last step of a computation ("174 + 110 = 284",
"Adding those together: 35 + 21 is 56.") states the value it reaches, unless
it is one of a list of parallel steps (the line before is a step whose result
it does not take: "2991 - 1993 = 998." then "2991 - 1994 = 997." is a term of
a formula, not the answer). Such a step counts only as the first answer
(kind ``implicit_step``); inside the checks it does not close a check.

When the question asks for m + n of a fraction m/n it names ("Let
$\\frac{m}{n}$ be the probability ... Find $m+n$."), a statement of the
fraction is a step, even "123/392 should be the answer": neither an answer
nor a target (:func:`asks_sum_of_fraction_parts`).

Implicit detection is therefore one-sided: it finds the moments the model
reaches the *right* value, never a wrong one (a wrong value in a plain
sentence is indistinguishable from an intermediate result). To keep false
positives down it is off when the reference is too ambiguous to look for: a
single character ("4", "B"), a number that occurs in the problem statement,
or a non-numeric reference without any digit. A cheap prefilter (numeric
equality, or the same multiset of digits for expressions) runs before the
checker, and at most 24 distinct candidate values are sent to the checker
per trace (a bound on the cost of slow symbolic comparisons).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from dlcot_dagster.domain.answers.normalize import (
    html_scripts_as_latex,
    subscripts_as_latex,
    superscripts_as_latex,
    unwrap_text_commands,
)
from dlcot_dagster.domain.answers.prose import APPROX_WORDS

from .text import HEDGE_RE, clause_start, hedged, lower_case_twin, sentence_spans
from .types import AnswerSpan


class CheckerLike(Protocol):
    def compare(self, gold: str, pred: str) -> Any:  # returns a Verdict
        ...


_CONCLUSIVE_RE = re.compile(
    r"(?:^|[\s,;:(—-])(?:so|thus|therefore|hence|consequently|giving|gives|gave|yields|yielding|we get|we have|"
    r"i get|we obtain|i obtain|that means|which means|this means|must mean|which is|which gives|resulting in|"
    r"the result is|the total is|the sum is|the value is|in total|altogether|finally|this gives|that gives)\b",
    re.IGNORECASE,
)
_TRAIL_PUNCT = " \t\r\n.,;:!*_`\"'"
_NUM_RE = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
_FRAC_RE = re.compile(r"^[-+]?\d+\s*/\s*\d+$")
# "(-1)/49", "(-3)/(147)": a signed part in parentheses
_PAREN_FRAC_RE = re.compile(r"^\(\s*([-+]?\d+)\s*\)\s*/\s*(?:\(\s*(\d+)\s*\)|(\d+))$")
_LATEX_FRAC_RE = re.compile(r"^([-+]?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
_UNIT_TAIL_RE = re.compile(r"^(.*?\d)\s*(?:\\?%|\\text\{[^{}]*\}|\\mathrm\{[^{}]*\}|[a-zA-Z°²³µ][\w°²³µ/.^]*(?:\s+[a-zA-Z][\w/]*){0,3})$")
_DIGITS_RE = re.compile(r"\d")
# a candidate value has a digit only if its sentence has one, or a sub- / superscript digit ("E₁", "x²")
_DIGIT_SOURCE_RE = re.compile(r"[\d⁰¹²³⁴-⁹₀-₉]")
_BOXED_RE = re.compile(r"\\boxed\{(.*)\}")


def _strip_wrappers(v: str) -> str:
    v = v.strip(_TRAIL_PUNCT)
    for _ in range(3):
        old = v
        if v.startswith("$") and v.endswith("$"):
            v = v.strip("$").strip()
        if v.startswith("\\(") and v.endswith("\\)"):
            v = v[2:-2].strip()
        if v.startswith("\\[") and v.endswith("\\]"):
            v = v[2:-2].strip()
        m = _BOXED_RE.fullmatch(v)
        if m:
            v = m.group(1).strip()
        v = v.strip(_TRAIL_PUNCT)
        if v == old:
            break
    return v


# scientific notation: "4e33", "2.88e-19", "4 \\times 10^{33}", "4 × 10^33", "4.45 x 10^34", "1.5 \\cdot 10^{-3}", with an optional unit
# ("erg/s", "\\text{ J}", "m/s"); the value, not the unit, is what a reference like "4.5e33" states
_SCI_RE = re.compile(
    r"^(?P<m>[-+]?\d+(?:\.\d+)?)\s*(?:[eE]\s*(?P<e1>[-+]?\d{1,3})|(?:\\times|\\cdot|×|·|\*|[xX])\s*10\s*\^\s*\{?\s*"
    r"(?P<e2>[-+−]?\s*\d{1,3})\s*\}?)(?:\s*\\(?:text|mathrm)\s*\{[^{}]{0,20}\}|\s+[a-zA-Z°][\w°/.^]{0,12}"
    r"(?:\s+[a-zA-Z/]{1,8}){0,2})?\s*$"
)


# a physical quantity's value is stated "approximately" as a matter of course: the word is no hedge on it
_APPROX_RE = re.compile(rf"^(?:{APPROX_WORDS}|≈|~|\\approx)\s*", re.IGNORECASE)


def sci_number(s: str) -> tuple[Fraction, str] | None:
    """(exact value, mantissa digits) of a number in scientific notation (see ``_SCI_RE``), else None."""
    s = _APPROX_RE.sub("", s.strip().replace("$", "").strip())  # "approximately 4.45 x 10^34 erg/s"
    if not s.isascii():
        s = superscripts_as_latex(s)  # "2.89 × 10⁻¹⁹ J"
    m = _SCI_RE.match(s)
    if m is None:
        return None
    exp = int((m.group("e1") or m.group("e2")).replace("−", "-").replace(" ", ""))
    return Fraction(m.group("m")) * Fraction(10) ** exp, m.group("m").lstrip("+-")


def parse_number(s: str) -> Fraction | None:
    """Exact value of a plain number / fraction string (or one in scientific notation), else None."""
    s = s.strip().replace("\\!", "").replace("{,}", "").replace("\\,", "")
    s = s.replace("$", "").strip()
    if s.endswith("\\%") or s.endswith("%"):
        return None
    try:
        if _NUM_RE.match(s):
            return Fraction(s.replace(",", ""))
        if ("e" in s or "10" in s) and (sci := sci_number(s)) is not None:
            return sci[0]
        if _FRAC_RE.match(s):
            a, b = s.split("/")
            return Fraction(int(a), int(b)) if int(b) else None
        if (pm := _PAREN_FRAC_RE.match(s)) is not None:
            b = int(pm.group(2) or pm.group(3))
            return Fraction(int(pm.group(1)), b) if b else None
        m = _LATEX_FRAC_RE.match(s)
        if m:
            val = Fraction(int(m.group(2)), int(m.group(3))) if int(m.group(3)) else None
            return -val if (val is not None and m.group(1) == "-") else val
    except (ValueError, ZeroDivisionError):
        return None
    return None


_UNICODE_SUBS = (
    (re.compile(r"√\s*\(([^()]{1,40})\)"), r"\\sqrt{\1}"),
    (re.compile(r"√\s*(\d+(?:\.\d+)?|[A-Za-z])"), r"\\sqrt{\1}"),
    (re.compile(r"π"), r"\\pi "),
    (re.compile(r"∞"), r"\\infty "),
    (re.compile(r"×"), r"\\times "),
    (re.compile(r"[·⋅]"), r"\\cdot "),
    (re.compile(r"[−–]"), "-"),
    (re.compile(r"²"), "^2"),
    (re.compile(r"³"), "^3"),
)


def unicode_math_to_latex(v: str) -> str:
    """"√51" → "\\sqrt{51}", "2π" → "2\\pi", "10<sup>-19</sup>" → "10^{-19}": plain-text math as LaTeX, so the
    checker can parse it."""
    if "</" in v:
        v = html_scripts_as_latex(v)
    if v.isascii():
        return v
    # a power of several superscript characters, or one other than a lone ² or ³, as one LaTeX power ("10³³" ->
    # "10^{33}", not "10^3^3"; "10⁻¹⁹" -> "10^{-19}"); a lone ² or ³ as before ("x²" -> "x^2")
    v = _SUP_POWER_RE.sub(lambda m: superscripts_as_latex(m.group()), v)
    for rx, rep in _UNICODE_SUBS:
        v = rx.sub(rep, v)
    # subscript digits as LaTeX ("E₁" -> "E_{1}")
    return subscripts_as_latex(v).strip()


_SUP_POWER_RE = re.compile("[⁰¹²³⁴-⁹⁻]{2,}|[⁰¹⁴-⁹⁻]")


_WORD3_RE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")
_LHS_MATH_RE = re.compile(r"\\[a-zA-Z]+|\$[^$]*\$|\\\(.*?\\\)")


def _descriptive_assignment(sent: str, off: int) -> bool:
    """``<words> = ... = value``: an equation whose left side is described in words ("Total time in minutes = ...")."""
    eq = sent.find("=")
    if eq == -1 or eq >= off:
        return False
    lhs = _LHS_MATH_RE.sub(" ", sent[:eq])
    return len(_WORD3_RE.findall(lhs)) >= 2


def _digits(s: str) -> Counter:
    return Counter(_DIGITS_RE.findall(s))


def _but_ones(digits: Counter) -> Counter:
    return Counter({d: n for d, n in digits.items() if d != "1"})


_VALUE_INTRO_RE = re.compile(
    r"=|:|\b(?:is|equals|are|gives|giving|gave|get|got|obtain|becomes|be|(?:it|that|this|which|there)['’]s|"
    r"(?:simplifies|reduces|comes|amounts|equal|evaluates|works out|adds up|sums|totals|boils down|rounds|leads)\s+to|"
    r"(?:sum|total|product|difference|value|area|perimeter|volume|length|count|probability|distance|height|width|"
    r"minimum|maximum|ratio|speed|cost|remainder)\s+of)\b",
    re.IGNORECASE,
)
_VALUE_INTRO_ASCII = lower_case_twin(_VALUE_INTRO_RE)
# "So 2220 seems the smallest." / "Therefore 42 is the answer." / "So, 592 is the remainder.": the value as the subject
# of a concluding predicate, also with its unit and after a leading clause ("Since the tangent is positive, 45 degrees
# seems to be the answer.")
_SUBJECT_VALUE_RE = re.compile(
    r"^[\W_]*(?:[^.?!:;]{0,160}?,\s+)?(?:(?:so|thus|therefore|hence|then|and|which means|this means)[\s,]+)*"
    r"(?:i (?:think|believe|guess that|am confident that)\s+)?\$?\s*"
    r"(?P<v>[-+]?(?:\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|\\[dt]?frac\{\d+\}\{\d+\}))\s*\$?"
    r"(?:\s+(?!is\b|seems\b|must\b|should\b|would\b|appears\b)[a-z°]+){0,2}\s+"
    r"(?:is|seems|must be|should be|would be|appears to be|is indeed|seems to be)\s+(?:indeed\s+)?(?:the\s+|our\s+)?"
    r"(?:smallest|largest|least|greatest|minimum|maximum|minimal|maximal|answer|solution|result|correct|right|only|"
    r"desired|required|final|remainder)\b",
    re.IGNORECASE,
)
# a contrast after a value stated as the subject takes it back ("..., but it's not back to the original position")
_CONTRAST_RE = re.compile(r"\b(?:but|however|although|though|except)\b", re.IGNORECASE)
# "that would be", "which would be", "that would suggest 46 ordered pairs": a commitment phrased politely, not a hedge
# (the word is blanked, same length)
_COMMITTED_WOULD_RE = re.compile(r"\b(that|this|which|it|answer) (would)(?= (?:be|suggest|mean|give)\b)", re.IGNORECASE)
_WOULD_BE_RE = re.compile(r"\bwould(?= be\b)")
_NUMBER = r"\d(?:[\d,]*\d)?(?:\.\d+)?"
_OPERAND_RE = re.compile(_NUMBER)
_STEP = (r"\s*(?:[A-Za-z][A-Za-z ,']{0,40}:\s*)?(?:\\\(|\$)?\s*" + _NUMBER + r"(?:\s*(?:[-+*/×·]|\\times|\\cdot)\s*"
         + _NUMBER + r")+\s*(?:=|is)\s*\$?\s*")
_BARE_STEP_RE = re.compile(_STEP + "$")
# a sentence that opens with a bare step, and the value it reaches
_STEP_RESULT_RE = re.compile(_STEP + "(" + _NUMBER + ")")


def _neutral(m: re.Match) -> str:
    return m.group(1) + "      "


_HOW_MANY_RE = re.compile(r"\bhow many\b", re.IGNORECASE)
# a line labelled as the total ("Total: 4 + 4 = 8", "So total: 8"); "Total boundary points: ..." names a part
_TOTAL_LABEL_RE = re.compile(r"[\W_]*(?:(?:so|thus|therefore|hence)[\s,]+)?total\s*:", re.IGNORECASE)
# "so the angle at A is 124 degrees, which is given": a restatement of the data, not a result
# ... or a value the sentence itself rejects ("so angle C must also be 124 degrees, which is impossible")
_GIVEN_DATA_RE = re.compile(r"\b(?:which|that|as) (?:is |was |were |are )?(?:given|stated|labell?ed)\b|"
                            r"\bgiven (?:in|by) the (?:problem|figure|diagram|question)\b|"
                            r"\b(?:which|that|this) (?:is|would be|'s) (?:impossible|not possible|a contradiction|"
                            r"not allowed|invalid)\b|\bwhich can(?:no|')t be\b", re.IGNORECASE)
# the counted noun: the first plural after up to three modifiers ("how many positive whole-number divisors does 196
# have?")
_COUNTED_NOUN = (r"(?:(?!(?:does|was|has|is|are|were|do|did|can|will)\b)[a-z-]+ ){0,3}?"
                 r"(?!(?:does|was|has|this|its|less|plus|always|yes)\b)([a-z]{2,}s)\b")
_HOW_MANY_NOUN_RE = re.compile(r"\bhow many " + _COUNTED_NOUN, re.IGNORECASE)
# "Find the number of possible ordered pairs (a, r).", "what is the minimum number of additional workers ...": a count
# question too
_NUMBER_OF_NOUN_RE = re.compile(
    r"\b(?:find|compute|determine|what is|what's|give)\s+the\s+"
    r"(?:(?:total|minimum|maximum|least|greatest|smallest|largest|fewest|most)\s+(?:possible\s+)?)?number\s+of\s+"
    + _COUNTED_NOUN,
    re.IGNORECASE,
)
# units a question may ask its answer in ("What is the height in centimeters?"), with their other spellings
_UNITS: dict[str, tuple[str, ...]] = {
    "centimeters": ("centimeter", "centimetres", "centimetre", "cm"),
    "millimeters": ("millimeter", "millimetres", "millimetre", "mm"),
    "meters": ("meter", "metres", "metre", "m"),
    "kilometers": ("kilometer", "kilometres", "kilometre", "km"),
    "inches": ("inch", "in"),
    "feet": ("foot", "ft"),
    "yards": ("yard", "yd"),
    "miles": ("mile", "mi"),
    "seconds": ("second", "sec", "s"),
    "minutes": ("minute", "min"),
    "hours": ("hour", "hr", "h"),
    "days": ("day",),
    "weeks": ("week",),
    "years": ("year",),
    "degrees": ("degree", "°", "^\\circ", "^{\\circ}", "\\circ"),
    "dollars": ("dollar",),
    "cents": ("cent",),
    "liters": ("liter", "litres", "litre", "l"),
    "grams": ("gram", "g"),
    "kilograms": ("kilogram", "kg"),
    "pounds": ("pound", "lb", "lbs"),
    "ounces": ("ounce", "oz"),
    "gallons": ("gallon",),
    "units": ("unit",),
}
_ASKED_UNIT_RE = re.compile(
    r"\bin (?:units of )?(?:(?:square|cubic) )?(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


#: every spelling of a unit -> its key in :data:`_UNITS` (the first key wins where two share a spelling)
_UNIT_OF: dict[str, str] = {}
for _key, _forms in _UNITS.items():
    for _form in (_key, *_forms):
        _UNIT_OF.setdefault(_form, _key)


@functools.lru_cache(maxsize=None)
def _unit_forms_re(unit: str) -> re.Pattern:
    """A pattern that matches right after a value written with ``unit`` (any of its spellings)."""
    forms = sorted((unit, *_UNITS[unit]), key=len, reverse=True)
    alts = "|".join(re.escape(f) + (r"(?![A-Za-z])" if f[-1].isalpha() else "") for f in forms)
    return re.compile(r"\s*(?:\$|\\\))?\s*(?:\\(?:text|mathrm|,|;|\s)\s*\{?\s*)?(?:(?:square|cubic|sq\.?) )?(?:" + alts + ")",
                      re.IGNORECASE)


# "the degree measure of the smallest angle" asks in degrees as "in degrees" does
_MEASURE_UNIT_RE = re.compile(r"\bdegree measures?\b", re.IGNORECASE)


def _asked_unit_re(phrases: list[str]) -> re.Pattern | None:
    """A pattern that matches right after a value written with the unit the question's asked ``phrases`` ask in, or
    None."""
    found = None
    for phrase in phrases:
        um = _ASKED_UNIT_RE.search(phrase)
        if um is not None:
            found = um.group(1).lower()
        elif _MEASURE_UNIT_RE.search(phrase):
            found = "degrees"
    return _unit_forms_re(found) if found is not None else None


# words that cannot stand between a count and its noun ("9 across all dates" does not count dates)
_NOT_MODIFIER = (r"(?:on|of|in|for|at|per|to|from|worth|across|all|the|a|an|and|or|with|by|into|over|under|"
                 r"between|among|about|than|these|those|each|every|its|their|his|her|our|my|your|more|less|other|"
                 r"any|some|no|not|is|are|was|were|be)")
_HOW_MANY_MONEY_RE = re.compile(r"\bhow (?:many (?:dollars|cents|euros|pounds)|much)\b", re.IGNORECASE)
_MONEY_RE = re.compile(r"(?:\\\$|\$(?=\s*\d[\d,]*(?:\.\d+)?(?![\d,.]*\s*\$)))\s*\d")


def _money_at(sent: str, off: int) -> bool:
    """The value at ``off`` is written as money: ``\\$41``, or ``$41`` with no closing ``$`` (not math)."""
    return _MONEY_RE.match(sent, off) is not None


# "So 44 hours.", "Thus, $18$ cm.": a connective, a number and at most two words (its unit), nothing else
_SO_VALUE_RE = re.compile(
    r"[\W_]*(?:so|thus|therefore|hence)[\s,]+(?:(?:a|the|in)\s+)?(?:(?:total|overall|altogether)(?:\s+of)?[\s,:]+)?"
    r"\$?\s*(?P<v>[-+]?\d[\d,]*(?:\.\d+)?)\s*\$?(?:\s+[a-zA-Z]+){0,2}",
    re.IGNORECASE,
)
# an arithmetic step right before the value: "504 - 220 = 284", "7 + 16 = 23", "3 \times 5 = 15"
_COMPUTE_RE = re.compile(r"[\w)}\]]\s*(?:[-+*/×÷·^]|\\times|\\cdot|\\div)\s*[\w(\\{\[]|\\[dt]?frac|\\sqrt")
_BARE_VAR_RE = re.compile(r"\s*\\?[A-Za-z](?:_\{?\w+\}?)?\s*")
# "If I take ..., that would give ... = 14": a conditional sentence states a hypothesis, not an answer
_CONDITIONAL_RE = re.compile(r"[\W_]*(?:(?:so|and|but|now|then|well|okay|ok)[\s,]+)*(?:if|suppose|supposing|assuming|assume|"
                             r"let'?s say|say)\b", re.IGNORECASE)
# "If I sum them all, 156 + 96 + 84 = 336.": a sentence-initial "if" introducing the operation being done now, not a
# hypothesis (and no other hypothesis before the value)
_DOING_IF_RE = re.compile(r"[\W_]*(?:(?:so|and|now|then)[\s,]+)*if (?:i|we) (?:now )?(?:sum|add|total|multiply|compute|"
                          r"calculate|tally)"
                          r"(?: up)? (?:them|these|those|all|everything|up|the (?:three|two|four|five|values|results|"
                          r"numbers|products|terms|counts|cases))\b", re.IGNORECASE)
# "So, if each pair is -1 and there are 50 pairs, then the total sum should be 50 × (-1) = -50.": an inference from
# what was just established ("so" draws it), with its "then" clause, not a hypothesis put up to be tested
_SO_IF_THEN_RE = re.compile(r"[\W_]*(?:so|thus|therefore|hence),?\s+if\b[^.;?]*?,\s*then\b", re.IGNORECASE)
# "For example, if I combine ..., I get ... = 14": a value reached under a hypothesis anywhere before it
_HYPOTHETICAL_RE = re.compile(r"\b(?:if|suppose|supposing|for example|for instance|e\.g\.|say we|let'?s say)\b",
                              re.IGNORECASE)
# "Next, n = 11:", "Try x = 3.": a value put in to test it, not one reached
_TRIAL_RE = re.compile(r"[\W_]*(?:(?:so|and|but|now|then|well|okay|ok)[\s,]+)*(?:next|try|trying|test|testing|"
                       r"let'?s try|let me try|(?:let'?s|let us|let me) (?:use|test|check|plug)|what about|how about|"
                       r"plug(?:ging)? in|substitut\w*)\b", re.IGNORECASE)
# the subject of "y should be", "g(0) is", "$m+n$ equals" right before a value
_COPULA_SUBJECT_RE = re.compile(
    r"(?:^|[\s,;:(])\$?(\\?[A-Za-z](?:_\{?\w+\}?)?(?:\([^()]{1,12}\))?|[A-Za-z]\s*[-+]\s*[A-Za-z])(?:\$|\s*\\\))?\s+"
    r"(?:is|equals|is equal to|should be|must be|has to be|would be|becomes|comes out to)\s*\$?\s*$"
)
# "For \( n = 2 \), it's 11.": one case of an enumeration over a variable, not a result
_CASE_RE = re.compile(r"[\W_]*(?:(?:so|and|but|now|then|similarly|likewise)[\s,]+)*(?:for|when|with)\s*\$?(?:\\\(\s*)?"
                      r"\\?[A-Za-z](?:_\{?\w+\}?)?\s*=\s*-?\d", re.IGNORECASE)
# "x = \frac{2023}{7}, x = \frac{2023}{289}, and x = 1" / "a_1 = 2, a_2 = -1" / "d_1 = 1, m^2 = 17": one item of an
# enumeration of assignments, not a result
_ASSIGN_ITEM_RE = re.compile(r"(?<![\w})\]^+\-*/.\\])\\?[A-Za-z](?:_\{?\w+\}?)?\s*=(?!=)")
# "... \\quad \\text{or} \\quad x = " / "..., x = " before the value: the value closes the last item of a list of roots
_LAST_ITEM_RE = re.compile(r"(?:^|[,;]|\\\[|\\quad|\\text\{\s*(?:or|and)\s*\}|\b(?:or|and)\b)\s*"
                           r"\\?[A-Za-z](?:_\{?\w+\}?)?\s*=\s*$")
# "m^2" in "d_1 = 1, m^2 = 17": a variable's power, as bare as the variable for an enumeration ...
_VAR_POWER = r"\\?[A-Za-z](?:_\{?\w+\}?)?\^\{?\d\}?"
_VAR_POWER_RE = re.compile(r"\s*" + _VAR_POWER + r"\s*")
# ... and "m^2 = 17" an item of it: a variable's power set to a plain number
_POWER_ITEM_RE = re.compile(r"(?<![\w})\]^+\-*/.\\])" + _VAR_POWER + r"\s*=\s*-?\d+(?:\.\d+)?(?![\w.^(])")
_NORM_EXPR_RE = re.compile(r"\s+|\\left|\\right|\\,|\\!|\$|\\displaystyle")
_ASKED_RE = re.compile(
    r"(?:find|compute|determine|evaluate|calculate|solve for|what is|what's|what are|give|express|how many|how much|"
    r"value of|sum of|find the value of)\b(?:\$[^$\n]{1,60}\$|[^.?!\n$]){0,200}",
    re.IGNORECASE,
)
_PLAIN_VAR_RE = re.compile(r"\b(?:of|for|find|is|compute|determine)\s+([a-zA-Z])(?![\w'])")
_MATH_SNIPPET_RE = re.compile(r"\$([^$]{1,60})\$|\\\((.{1,60}?)\\\)")


def _norm_expr(s: str) -> str:
    return _NORM_EXPR_RE.sub("", s).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").strip("{}.,").lower()


# "... is" / "... equals" closing the subject right before the value
_SUBJECT_COPULA = r"(?:is|equals|is equal to|should be|must be|comes out to|is indeed|is just)"
_SUBJECT_TAIL_RE = re.compile(r"\s*(?:\\\)\s*)?\$?\s+" + _SUBJECT_COPULA + r"\s*\$?\s*(?:\\\(\s*)?$", re.IGNORECASE)
# "the units digit of ...", "the modulo 7 remainder of the sum": a noun phrase after "the", up to " of" or the end
_SUBJECT_NP_RE = re.compile(r"\bthe\s+((?:[a-z0-9-]+\s+){0,3}[a-z-]+)(?:\s+(?:of|when|after|modulo|mod|in)\b[^.;]*)?$",
                            re.IGNORECASE)
# "Remainder is $679$.", "So remainder is 5": the same noun phrase without its article, opening the sentence
_BARE_NP_RE = re.compile(r"^\s*(?:(?:so|thus|therefore|hence|then),?\s+)?((?:[a-z0-9-]+\s+){0,3}[a-z-]+)"
                         r"(?:\s+(?:of|when|after|modulo|mod|in)\b[^.;]*)?$", re.IGNORECASE)
# "the total area should be \( 4 \times 2 = 8 \)": the subject's copula, then the computation that reaches the value
_SUBJECT_COMPUTES_RE = re.compile(r"(?<=\s)" + _SUBJECT_COPULA + r"\s*\$?\s*"
                                  r"(?:\\\(\s*)?([^=.;:?!]{1,60}?)(?:\s*=\s*[^=.;:?!]{1,60}?)*\s*=\s*\$?\s*(?:\\\(\s*)?$",
                                  re.IGNORECASE)
# "we need the remainder when 45 is divided by 10, which is 5": the noun phrase closed by a relative "which"
_WHICH_TAIL_RE = re.compile(r"\s*,\s*which$", re.IGNORECASE)
# nouns too general to name the asked quantity ("the value is 5" is read by the other rules)
_GENERIC_NOUNS = frozenset("value values answer result solution solutions number numbers final total expression "
                           "equation one".split())
_ASKED_STOP = frozenset("find compute determine evaluate calculate what what's are give express how many much the "
                        "and that for with this which there its their value".split())


def asked_phrases(problem: str) -> list[str]:
    """The question's asked phrases ("Find the units digit of $18^6.$"), from the end of the problem."""
    return [m.group(0) for m in _ASKED_RE.finditer(problem[-1500:])]


def asked_words(phrases: list[str]) -> frozenset[str]:
    """Content words of the asked ``phrases`` ("Find the units digit of $18^6.$" -> units, digit)."""
    out: set[str] = set()
    for phrase in phrases:
        out.update(w for w in _WORD3_RE.findall(phrase.lower()) if w not in _ASKED_STOP)
    return frozenset(out)


def _stem(word: str) -> str:
    """A crude stem, so that the subject's words meet the question's in another form ("the current mean" for "the
    mean ... currently", "the sum of the digits" for "the digit sum")."""
    for suffix in ("ly", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def asked_expressions(phrases: list[str]) -> set[str]:
    """Normalized math snippets of the asked ``phrases`` ("Find $m+n$." -> "m+n"), to recognise a statement of the
    asked quantity ("p + q = 7 + 16 = 23")."""
    out = set()
    for phrase in phrases:
        for sm in _MATH_SNIPPET_RE.finditer(phrase):
            e = _norm_expr(sm.group(1) or sm.group(2) or "")
            if e and not _DIGITS_RE.fullmatch(e) and len(e) <= 40:
                out.add(e)
        # "What is the value of x?", "solve for y" without math delimiters
        for vm in _PLAIN_VAR_RE.finditer(phrase):
            out.add(vm.group(1).lower())
    return out


# "Let m/n be the probability ... Find m + n": the asked sum of the parts of a fraction the problem names
_PARTS_SUM_RE = re.compile(r"([a-z])\+([a-z])(?:\+[a-z])?")
_FRACTION_VALUE_RE = re.compile(r"\\[dt]?frac\{?\s*-?\d|\d\s*/\s*\(?\s*-?\d")


@functools.lru_cache(maxsize=1024)
def asks_sum_of_fraction_parts(problem: str) -> bool:
    """Whether the question asks for m + n of a fraction m/n it names ("... can be written as $\\frac{m}{n}$, where m
    and n are relatively prime positive integers. Find $m+n$."): a statement of the fraction is then a step, not
    the answer (the annotators' rule)."""
    flat = _norm_expr(problem)
    for e in asked_expressions(asked_phrases(problem)):
        m = _PARTS_SUM_RE.fullmatch(e)
        if m is None:
            continue
        a, b = m.group(1), m.group(2)
        if any(f in flat for f in (f"\\frac{{{a}}}{{{b}}}", f"\\frac{a}{b}", f"{a}/{b}")):
            return True
    return False


def is_fraction_value(value: str) -> bool:
    """A value that is not an integer: "123/392", "\\frac{5}{8}", "0.375" (not "515", nor an equation)."""
    n = parse_number(_strip_wrappers(value))
    if n is not None:
        return n.denominator != 1
    return _FRACTION_VALUE_RE.search(value) is not None and "=" not in value


# thousands separators and spacing inside a number ("1,000", "1{,}000", "1\\,000", "1 000")
_SEPARATORS_RE = re.compile(r"(?<=\d)(?:\{,\}|\\[,;!: ]|,|\s)(?=\d)")
# an English word outside LaTeX commands ("\\sin" is not one)
_PROSE_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}(?![A-Za-z{])")
_TRAILING_WORDS_RE = re.compile(r"(?:\s+[A-Za-z]+)+\s*$")
_CLAUSE_SEP_RE = re.compile(r"[,;]\s|(?:^|\s)(?:so|thus|hence|then|and|therefore),?\s", re.IGNORECASE)

_LEAD_CONNECTIVE_RE = re.compile(r"^\s*(?:(?:so|thus|hence|then|and|therefore)\b,?\s*)+", re.IGNORECASE)


def _lhs_of(sent: str, off: int) -> str:
    """The first member of the equation chain that ends at ``off`` ("p+q" in "So $p+q = 7 + 16 = 23$")."""
    head = sent[:off]
    # the statement the value closes: "m = 17, n = 32, so m + n = 49" -> "m + n"
    last = _CLAUSE_SEP_RE.split(head)[-1]
    if "=" in last:
        head = _LEAD_CONNECTIVE_RE.sub("", last)
    elif "=" not in head[-12:]:
        # "For \( n = 2 \), it's 11.": the value closes a clause without an equation; n = 2 is not its left side
        return ""
    eq = head.find("=")
    if eq == -1:
        return ""
    lhs = head[:eq]
    cut = max(lhs.rfind(","), lhs.rfind(";"), lhs.rfind(":"), lhs.rfind("$"), lhs.rfind("("), lhs.rfind(" so "),
              lhs.rfind(" is "))
    return lhs[cut + 1:] if cut >= 0 else lhs


_VALUE_ADVERB_RE = re.compile(r"\s*(?:indeed|exactly|precisely|actually|still|also|just|then|now|simply)\s+(?=[-+$\\\d(])",
                              re.IGNORECASE)


# a remark after the value: a comma, then prose ("52_8 , as I found earlier", "0, but again"); a value list
# ("1, 2"), a second equation ("x = 1, y = 2") or a condition in symbols does not start with a word of 2+ letters
_PROSE_TAIL_RE = re.compile(r"\s*,\s+(?=[a-z]{2,}\b(?![{(_^]))")
_WORD2_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}\b")


def candidate_value(sentence: str, max_chars: int = 80) -> tuple[str, int] | None:
    """(value, offset in sentence) stated at the end of ``sentence``, if any."""
    body = sentence.rstrip(_TRAIL_PUNCT)
    sm = _SUBJECT_VALUE_RE.match(body)
    if sm is not None:
        return sm.group("v").replace(",", "") if "," in sm.group("v") and "." not in sm.group("v") else sm.group("v"), sm.start("v")
    last = None
    # the last intro; an ASCII body is read lower-cased with the case-sensitive twin (same spans, faster)
    for last in _VALUE_INTRO_ASCII.finditer(body.lower()) if body.isascii() else _VALUE_INTRO_RE.finditer(body):
        pass
    if last is None:
        so = _SO_VALUE_RE.fullmatch(body)
        if so is not None:  # "So 44 hours."
            return so.group("v").replace(",", ""), so.start("v")
        return None
    cut = last.end()
    adv = _VALUE_ADVERB_RE.match(body, cut)  # "the minimum value is indeed 16"
    if adv is not None:
        cut = adv.end()
    raw = body[cut:]
    off = cut + (len(raw) - len(raw.lstrip()))
    v = _strip_wrappers(raw.replace("$", " ").replace("\\(", " ").replace("\\)", " ").replace("\\[", " ")
                        .replace("\\]", " "))
    pm = _PROSE_TAIL_RE.search(v)
    if pm is not None and pm.start() > 0 and len(_WORD2_RE.findall(v[pm.start():])) >= 2:
        v = v[: pm.start()].rstrip()  # "\\(52_8\\), as I found earlier": the value, not the remark after it
    if not v or len(v) > max_chars:
        return None
    m = _UNIT_TAIL_RE.match(v)
    if m and parse_number(m.group(1).strip("$ ")) is not None and not _LETTER_TERM_RE.fullmatch(v[len(m.group(1)):]):
        v = m.group(1).strip("$ ")
    return unicode_math_to_latex(v), off


# "27 m^3", "27m³", "3 k": a number times a variable, not a number with a unit
_LETTER_TERM_RE = re.compile(r"\s*[a-zA-Z](?:\^\{?\d+\}?|[⁰¹²³⁴-⁹]+)?\s*")


@dataclass(frozen=True)
class Target:
    """A value whose statement counts as reaching an answer.

    ``weak``: the value also occurs in the problem (outside its options) or is a single character, so a sentence
    stating it needs more context (a computation leading to it, or the asked expression on its left).
    ``answer``: the answer text to record (the option letter for an option's value), else the stated value.
    """

    value: str
    weak: bool = False
    answer: str | None = None
    #: the reference (or an option of it): compared with the answer checker. The trace's own final answer is matched
    #: by its written form or its number only: the model restates its answer the way it wrote it.
    checked: bool = True
    #: an equation target (``c = 23t + 35``, the reference or an option): its variable and its value. A sentence that
    #: sets that same variable to a value equal to ``rhs`` states it ("c = 35 + 23t"); others are compared with the
    #: whole equation, as any target
    lhs: str | None = None
    rhs: str | None = None


def _problem_numbers(problem: str) -> set[Fraction]:
    out = set()
    for x in re.findall(r"\d+(?:\.\d+)?", problem.translate(_SUBDIGITS)):
        n = parse_number(x)
        if n is not None:
            out.add(n)
    return out


# the variable an equation sets: "c" of "that would be c = ..." (a lone letter or a subscripted one, as a word)
_TRAILING_VAR_RE = re.compile(r"(?<![\w\\])(\\?[A-Za-z](?:_\{?\w+\}?)?)\s*\$?\s*$")
# "c = 23t + 35", "y=2x+1": an equation target, a variable set to a value
_EQUATION_TARGET_RE = re.compile(r"\s*(\\?[A-Za-z](?:_\{?\w+\}?)?)\s*=\s*([^=<>≤≥]+)")


def make_targets(values: list[tuple], problem_stem: str) -> list[Target]:
    """Targets for (value, answer text[, checked]) tuples; weak when the value occurs in ``problem_stem`` or is one
    character."""
    nums = _problem_numbers(problem_stem)
    out: list[Target] = []
    seen = set()
    for item in values:
        value, answer = item[0], item[1]
        checked = item[2] if len(item) > 2 else True
        v = _strip_wrappers(value.strip())
        key = (re.sub(r"\s+", "", v), answer)
        if not v or key in seen or len(v) > 200:
            continue
        seen.add(key)
        lhs = rhs = None
        eq = _EQUATION_TARGET_RE.fullmatch(v) if checked else None
        if eq is not None:
            lhs, rhs = _norm_expr(eq.group(1)), eq.group(2).strip()
        n = parse_number(v)
        compact = re.sub(r"\s+", "", v)
        weak = len(compact) <= 1 or (n is not None and n in nums)
        if n is None and not _DIGITS_RE.search(v) and len(compact) <= 1:
            continue  # a lone letter ("B", "x"): nothing to look for
        out.append(Target(value=v, weak=weak, answer=answer, checked=checked, lhs=lhs, rhs=rhs))
    return out


def _written_equal(target: str, value: str) -> bool:
    r"""The same number, or the same text up to spaces, ``$`` and ``\dfrac``/``\left``: no symbolic work."""
    a, b = parse_number(target), parse_number(value)
    if a is not None and b is not None:
        return a == b
    # "\text{ J}" and "J" are one unit written two ways
    norm = lambda x: _norm_expr(unicode_math_to_latex(unwrap_text_commands(x)))  # noqa: E731
    return norm(target) == norm(value)


# "to the nearest tenth", "round your answer to 3 significant figures", "two decimal places"
_PRECISION_ASKED_RE = re.compile(r"\bnearest\b|\bdecimal places?\b|\bsignificant (?:figures?|digits?)\b|\bround(?:ed)?\b"
                                 r"|\bto \w+ (?:places|digits)\b", re.IGNORECASE)
_SUBDIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉⁰¹²³⁴⁵⁶⁷⁸⁹", "01234567890123456789")


# a decimal literal, alone or as the mantissa of scientific notation: its places after the point
_DECIMAL_PLACES_RE = re.compile(r"^\s*[-+]?\d*\.(\d+)")


def rounding_unit(value: str) -> Fraction | None:
    """The unit of the last decimal place a number is written to ("2.89" -> 1/100, "2.89 \\times 10^{-19}" ->
    10^-21), or None for an integer (no rounding is read into "3") or a non-number."""
    sci = sci_number(value)
    mantissa = sci[1] if sci is not None else value.strip().replace("$", "")
    m = _DECIMAL_PLACES_RE.match(mantissa)
    if m is None or (sci is None and parse_number(value) is None):
        return None
    exp = 0
    if sci is not None:
        if not Fraction(mantissa):
            return None
        power = sci[0] / Fraction(mantissa)  # 10^e exactly
        exp = len(str(power.numerator)) - 1 if power >= 1 else 1 - len(str(power.denominator))
    return Fraction(1, 10 ** len(m.group(1))) * Fraction(10) ** exp


class _Prepared:
    __slots__ = ("target", "number", "digits", "digits_but_ones", "needles", "unit")

    def __init__(self, t: Target, rounding: bool = False):
        self.target = t
        self.number = parse_number(t.value)
        # a value written to a few decimals (the reference "0.022", the trace's own final answer "2.89 \\times
        # 10^{-19} J"): the unrounded value the thinking computes ("= 0.022475", "= 2.8902 \\times 10^{-19} J") states
        # it too, unless the question asks for a precision (see ImplicitAnswerFinder); never an option's value ("1.82"
        # is not option C's "1.8" until the model picks the closest option)
        self.unit = rounding_unit(t.value) if rounding and self.number and t.answer is None else None
        self.digits = _digits(t.value)
        # an expression's digits but its 1s, when it has other digits (see ImplicitAnswerFinder._prefilter)
        self.digits_but_ones = _but_ones(self.digits) if self.number is None and set(self.digits) - {"1"} else None
        # a target without digits ("\pi", "\sqrt{x}"): sentences must hold one of these strings
        self.needles: tuple[str, ...] = ()
        if not self.digits and self.number is None:
            base = re.sub(r"\s+", "", t.value)
            uni = base.replace("\\pi", "π").replace("\\infty", "∞").replace("\\sqrt", "√")
            self.needles = tuple({base, uni, base.replace("\\", "")} - {""})


class ImplicitAnswerFinder:
    """Find sentences that state one of the target values (see module docstring)."""

    def __init__(
        self,
        reference: str | list[Target],
        problem: str,
        checker: CheckerLike,
        max_chars: int = 80,
        max_checks: int = 24,
        problem_stem: str | None = None,
    ):
        self.max_checks = max_checks
        self.checker = checker
        self._computed_only = False
        self.max_chars = max_chars
        stem = problem if problem_stem is None else problem_stem
        if isinstance(reference, str):
            targets = make_targets([(a, None) for a in _alternatives(reference)], stem) if reference.strip() else []
        else:
            targets = list(reference)
        # unless the question asks for a precision (then the rounded value is the answer, the unrounded one a step)
        rounding = _PRECISION_ASKED_RE.search(problem) is None
        self.targets = [_Prepared(t, rounding) for t in targets]
        self.enabled = bool(self.targets)
        phrases = asked_phrases(problem)
        self.asked = asked_expressions(phrases)
        self._asked_words = frozenset(_stem(w) for w in asked_words(phrases))
        # "how many cupcakes did she buy?": a sum of money ("71 - 30 = $41") is not the asked count
        number_of = _NUMBER_OF_NOUN_RE.search(stem)
        self._asks_count = ((_HOW_MANY_RE.search(stem) is not None or number_of is not None)
                            and _HOW_MANY_MONEY_RE.search(stem) is None)
        # "she bought 41 cupcakes" states the count "how many cupcakes" (or "find the number of cupcakes") asks for
        noun = (_HOW_MANY_NOUN_RE.search(stem) or number_of) if self._asks_count else None
        unit_noun = _UNIT_OF.get(noun.group(1).lower()) if noun is not None else None
        # "the number of <noun> ... is" right before the value, for the counted noun
        self._number_of_re = (re.compile(rf"\bnumber of (?:[\w-]+ ){{0,3}}?{re.escape(noun.group(1).lower())}\b[^.;?]*?"
                                         r"\b(?:is|are|equals|=)\s*\$?\s*(?:\\\(\s*)?$", re.IGNORECASE)
                              if noun is not None and unit_noun is None else None)
        if unit_noun is not None:
            # "how many degrees", "the number of degrees": a measurement, read by its unit (with a concluding
            # connective, see _match), not as a count ("the angle labeled 124 degrees" counts nothing)
            noun = None
        self._count_re = (re.compile(rf"(?<![\w.,$])(\d[\d,]*)\s+(?:(?!{_NOT_MODIFIER}\b)[a-z-]+\s+){{0,2}}{re.escape(noun.group(1).lower())}\b",
                                     re.IGNORECASE) if noun is not None else None)
        # "What is the height in centimeters?": a value written with the asked unit ("So, h = 5 centimeters.")
        self._unit_re = _asked_unit_re(phrases if stem is problem else asked_phrases(stem)) or (_unit_forms_re(unit_noun) if unit_noun is not None else None)
        self._stem_words = None
        self._problem = stem
        self._need_digits = all(p.digits or p.number is not None for p in self.targets)
        # a necessary condition per sentence, one per target (any may hold): an integer target's digits as written
        # (thousands separators removed), else every digit of the target, else one of its needles
        self._gates: list[tuple[str, object]] | None = []
        for p in self.targets:
            sci = sci_number(p.target.value) if p.number is not None else None
            if sci is not None:
                # "4.5e33" is written "4.5 \times 10^{33}": its mantissa's digits, not the 34-digit integer
                self._gates.append(("digits", tuple(d for d in sci[1] if d.isdigit())))
            elif p.number is not None and p.number.denominator == 1 and abs(p.number) >= 10:
                self._gates.append(("int", str(abs(p.number.numerator))))
            elif p.number is not None and p.number.denominator != 1:
                self._gates = None  # 0.5 may be written 1/2: no digit condition holds
                break
            elif p.digits:
                self._gates.append(("digits", tuple(p.digits)))
            elif p.needles:
                self._gates.append(("needles", p.needles))
            else:
                self._gates = None  # no cheap condition for this target: read every sentence
                break

    def _prefilter(self, value: str) -> list[_Prepared]:
        out = []
        vn = None
        vd = vb = None
        for p in self.targets:
            if p.number is not None:
                if vn is None:
                    got = parse_number(value)
                    vn = False if got is None else got  # (not "or False": zero is a number too)
                if vn is not False and (vn == p.number or (
                        p.unit is not None and vn != 0 and (vn > 0) == (p.number > 0)
                        and abs(vn - p.number) * 2 <= p.unit)):
                    out.append(p)
            elif p.digits:
                if vd is None:
                    vd = _digits(value)
                if vd == p.digits:
                    out.append(p)
                elif p.digits_but_ones is not None:
                    # a unit factor written out or left out: "\frac{1}{15}\cos(2t)" is "\frac{\cos(2t)}{15}"
                    if vb is None:
                        vb = _but_ones(vd)
                    if vb == p.digits_but_ones:
                        out.append(p)
            elif any(n in value.replace(" ", "") for n in p.needles):
                out.append(p)
        return out

    def _asked_subject(self, head: str) -> bool:
        """Whether ``head`` (the sentence before the value) ends in "<the asked quantity> is": the asked expression
        ("the value of \\( f^{-1}(1/5) \\) is") or the question's own noun phrase ("the units digit of 4$ is", "the
        modulo 7 remainder of the sum is" for "Find the units digit ...", "Find the modulo 7 remainder ..."; "Remainder
        is" without the article when it opens the sentence)."""
        tail = _SUBJECT_TAIL_RE.search(head)
        if tail is None:
            comp = _SUBJECT_COMPUTES_RE.search(head)
            if comp is None or _COMPUTE_RE.search(comp.group(1)) is None:
                return False
            # the subject, its copula, then the computation: read the subject as if the value followed the copula
            return self._asked_subject(head[:comp.start(1)])
        subject = head[max(0, tail.start() - 120):tail.start()]
        subject = _WHICH_TAIL_RE.sub("", subject)
        if self.asked:
            flat = _norm_expr(subject)
            if any(len(e) >= 2 and flat.endswith(e) for e in self.asked):
                return True
        if self._asked_words:
            np = _SUBJECT_NP_RE.search(subject)
            if np is None and tail.start() <= 120:
                np = _BARE_NP_RE.match(subject)  # the subject is the whole sentence head
            if np is not None:
                words = [w for w in _WORD3_RE.findall(np.group(1).lower()) if w not in _GENERIC_NOUNS]
                if words and all(_stem(w) in self._asked_words for w in words):
                    return True
        return False

    def _asked_would(self, sent: str) -> str:
        """``sent`` with "would" neutralized where the asked expression is its subject ("and m + n would be
        123 + 392 = 515" commits like "that would be"; a condition is caught apart)."""
        for m in _WOULD_BE_RE.finditer(sent):
            flat = _norm_expr(sent[max(0, m.start() - 40):m.start()])
            if any(len(e) >= 2 and flat.endswith(e) for e in self.asked):
                sent = sent[:m.start()] + " " * 5 + sent[m.end():]  # same length: offsets hold
        return sent

    def _restates_problem(self, sent: str) -> bool:
        if self._stem_words is None:
            self._stem_words = set(_WORD3_RE.findall(self._problem.lower()))
        words = _WORD3_RE.findall(sent.lower())
        return len(words) >= 4 and sum(w in self._stem_words for w in words) / len(words) >= 0.7

    def _gate(self, sentence: str) -> bool:
        """Can ``sentence`` state any target at all? (cheap substring tests before the clause-by-clause reading)"""
        flat = None  # the sentence's digits as written, thousands separators removed (computed once, if needed)
        for kind, arg in self._gates:
            if kind == "needles":
                compact = sentence.replace(" ", "")
                if any(n in compact for n in arg):
                    return True
                continue
            if flat is None:
                # (sub/superscript digits are never ASCII: most sentences need no translation)
                flat = sentence if sentence.isascii() else sentence.translate(_SUBDIGITS)
                if "," in flat or "\\" in flat or " " in flat:
                    flat = _SEPARATORS_RE.sub("", flat)
            if (arg in flat) if kind == "int" else all(d in flat for d in arg):
                return True
        return False

    @staticmethod
    def _enumerates(sentence: str) -> bool:
        """Two or more ``var = value`` items in one sentence, separated by commas or "and"/"or"."""
        return len(_ASSIGN_ITEM_RE.findall(sentence)) + len(_POWER_ITEM_RE.findall(sentence)) >= 2

    def _match(self, sent: str, tried: dict, whole: str | None = None,
               prev: str = "") -> tuple[str, str | None, int, bool] | None:
        """(value, answer text or None, value offset, whether only a bare computation step states it) when ``sent``
        (a clause prefix of ``whole``, the sentence after ``prev``) states a target value in context."""
        whole = sent if whole is None else whole
        cv = candidate_value(sent, self.max_chars)
        counted = False  # the value counts the noun "how many" asks for: it names the asked quantity
        if self._count_re is not None and (cv is None or parse_number(cv[0]) is None):
            # no value at the end, or words there ("So, there are 4 possible numbers that both could be thinking
            # of."): the count of the asked noun
            last = None
            for last in self._count_re.finditer(sent):
                pass
            if last is not None:
                cv = last.group(1).replace(",", ""), last.start(1)
                counted = True
        if cv is None:
            return None
        value, off = cv
        if not counted and self._count_re is not None and self._count_re.match(sent, off) is not None:
            counted = True  # "So that's 9 distinct values." for "how many distinct values"
        if not counted and self._number_of_re is not None and self._number_of_re.search(sent, 0, off) is not None:
            counted = True  # "So, the number of students participating in both ... is 5."
        if not counted and self._asks_count and _TOTAL_LABEL_RE.match(sent) is not None:
            counted = True  # "Total: 4 + 4 = 8" for "how many ...": the labelled sum of the counts
        # the value carries the unit the question asks in ("So, h = 5 centimeters."): with a concluding connective,
        # it is the asked quantity ("The radius is 5 cm" may be another length)
        in_unit = not counted and self._unit_re is not None and self._unit_re.match(sent, off + len(value)) is not None
        cands = self._prefilter(value)
        if not cands:
            return None
        if self._asks_count and _money_at(sent, off):
            return None
        conclusive = _CONCLUSIVE_RE.search(sent) is not None
        counted = counted or (in_unit and conclusive)
        subject = _SUBJECT_VALUE_RE.match(sent.rstrip(_TRAIL_PUNCT)) is not None
        if subject and (HEDGE_RE.search(sent, 0, off) or _CONTRAST_RE.search(whole, off)):
            # "So, perhaps, 66 degrees is the answer.", "So, 72 degrees is the smallest increment ..., but it's not
            # back to the original position.": a hedge anywhere before the value, or a contrast after it
            return None
        head = sent[:off]
        # the equations of an earlier display closed in the same sentence ("\\[a b - a - b + 1 = 1\\]\\[(a - 1)(b - 1) =
        # 1\\]") are another statement: they do not make this one a computation
        eq_head = head[head.rfind("\\]") + 2:] if "\\]" in head else head
        computed = eq_head.count("=") >= 1 and _COMPUTE_RE.search(eq_head[eq_head.find("="):] if "=" in eq_head else eq_head) is not None
        chain = eq_head.count("=") >= 2 and computed
        lhs = _lhs_of(sent, off)
        # the left side without a display's opening "\\[" ("\\[ y = ..." states y when y is asked; "\\[ x = 1 \\quad
        # \\text{or} \\quad x = 5 \\]" enumerates); the named-intermediate rule below reads displays as before
        inner = lhs.replace("\\[", "")
        asked = bool(self.asked) and _norm_expr(inner) in self.asked
        if not asked and self.asked and not lhs:
            # "So y should be 1.", "g(0) is 336": the asked expression as the subject of a copula
            vm = _COPULA_SUBJECT_RE.search(head)
            asked = vm is not None and _norm_expr(vm.group(1)) in self.asked
        if not asked and (not lhs or _COMPUTE_RE.search(lhs) is not None):
            # ("the total area should be \( 4 \times 2 = 8 \)": the left side is the computation, the subject is
            # named before its copula)
            asked = self._asked_subject(head)
        if chain and _BARE_VAR_RE.fullmatch(lhs) and not asked and not conclusive and not in_unit:
            # "R = \sqrt{...} = 540": a named intermediate quantity, not (yet) the asked one; in the unit the question
            # asks in ("a = 160 - 17*1 = 143 degrees" for "the degree measure of the smallest angle") it is the asked one
            chain = computed = False
        # an equation target whose variable the sentence sets: "In numbers, that would be c = 35 + 23t."
        tv = _TRAILING_VAR_RE.search(lhs)
        set_var = _norm_expr(tv.group(1)) if tv is not None else None
        sets_target = set_var is not None and any(p.target.lhs == set_var for p in cands)
        # a line that is only the last step of a computation ("174 + 110 = 284", "Adding those together: 35 + 21 is
        # 56."): the running computation reaches its value
        bare = running = False
        if _BARE_STEP_RE.match(head) is not None:
            bare = True
            pm = _STEP_RESULT_RE.match(prev) if prev else None
            if pm is not None:
                # after another bare step: a running computation when this one takes its result ("119 + 55 = 174",
                # "174 + 110 = 284"), else a list of parallel steps or trials ("2991 - 1993 = 998", "2991 - 1994 =
                # 997"; "450 × 2 = 900, which ...", "450 × 3 = 1350, which ..."), where a value equal to the answer
                # is a coincidence
                running = pm.group(1) in _OPERAND_RE.findall(head)
                bare = running
        named = conclusive or subject or asked or counted or sets_target or _descriptive_assignment(sent, off)
        stated = named or chain
        if not (stated or bare):
            return None
        step = not stated  # reached by a bare step only (see locate_answers)
        # reached by a computation alone (nothing names it the answer): see find, which reads the next sentence
        self._computed_only = not named
        # "So, that would be 423.5 yards.", "that would be c = 35 + 23t" commit (the conditional and hypothetical
        # tests below catch "if ..., that would be"); elsewhere "would" hedges
        supposed = ((_CONDITIONAL_RE.match(sent) or _HYPOTHETICAL_RE.search(sent, 0, off))
                    and not (_DOING_IF_RE.match(sent) and len(_HYPOTHETICAL_RE.findall(sent, 0, off)) == 1)
                    and not (_SO_IF_THEN_RE.match(sent, 0, off) and len(_HYPOTHETICAL_RE.findall(sent, 0, off)) == 1))
        unhedged = sent
        if sets_target or "would" in sent:
            unhedged = _COMMITTED_WOULD_RE.sub(_neutral, sent)
            if self.asked and not sets_target:
                unhedged = self._asked_would(unhedged)
        if supposed or hedged(unhedged, 0, off):
            return None
        if (_TRIAL_RE.match(sent) or (not asked and _CASE_RE.match(sent)) or _GIVEN_DATA_RE.search(whole)
                or ((_BARE_VAR_RE.fullmatch(inner) or _VAR_POWER_RE.fullmatch(inner) or _LAST_ITEM_RE.search(head))
                    and self._enumerates(whole))):
            return None
        for p in cands:
            tvalue = p.target.value
            if p.target.lhs is not None and set_var == p.target.lhs:
                # an equation target whose variable the sentence sets: compare the values ("c = 35 + 23t")
                tvalue = p.target.rhs
                asked = True
            # zero ends every equation put in standard form ("a + b + c + d = i - i + 1 - 1 = 0. Good."): as a target
            # it needs the asked quantity, a count or the subject, never a computation alone
            zero = p.number == 0
            if p.target.weak and not (asked or counted or (computed and (conclusive or chain) and not zero)
                                      or subject or running):
                continue
            if p.target.weak and not asked and not computed and not counted and self._restates_problem(sent):
                continue
            if not p.target.checked:
                if _written_equal(p.target.value, value) or p.unit is not None:
                    # (a target with a rounding unit passed _prefilter by its number: equal, or rounding to it)
                    return value, p.target.answer, off, step
                continue
            if p.unit is not None and parse_number(value) not in (None, p.number):
                # it rounds to the target (see _prefilter): the checker, which compares exactly, is not asked
                return value, p.target.answer, off, step
            key = (tvalue, value)
            ok = tried.get(key)
            if ok is None:
                if len(tried) >= self.max_checks:
                    continue
                core = _TRAILING_WORDS_RE.sub("", value)  # "20000/\pi square meters": units may follow
                if len(set(_PROSE_WORD_RE.findall(core)) - set(_PROSE_WORD_RE.findall(tvalue))) >= 2:
                    # "the real part of \frac{e^{i2t} t}{4i}", "3 times the square root of 13 units": words the
                    # target does not have, so not a restatement of it (and a slow parse for the checker)
                    tried[key] = False
                    continue
                ok = getattr(self.checker.compare(tvalue, value), "equivalent", None) is True
                tried[key] = ok
            if ok:
                return value, p.target.answer, off, step
        return None

    def _display_after(self, text: str, a: int, b: int, tried: dict, end: int | None) -> AnswerSpan | None:
        """The statement of ``text[a:b]`` (a sentence ending in ":") completed by the display block right after it
        ("So the answer is:" + "\\[ 5 \\]"), when together they state a target; the span is the display block."""
        m = _DISPLAY_OPEN_RE.match(text, b)
        if m is None:
            return None
        close = {"\\[": "\\]", "$$": "$$", "\\(": "\\)", "$": "$"}[m.group(1)]
        c = text.find(close, m.end(), min(len(text) if end is None else end, m.end() + 300))
        if c == -1:
            return None
        if m.group(1) in ("\\(", "$"):
            # an inline formula is a display only on a line of its own: "is:" + newline + "\\(x = 5\\)" + newline
            after = text[c + len(close):c + len(close) + 3].lstrip(" \t.")
            if ("\n" not in text[a + len(text[a:b].rstrip()):m.start(1)] or text.find("\n", m.end(), c) != -1
                    or after[:1] not in ("", "\n")):
                return None
        inner = " ".join(text[m.end():c].split())
        if not inner or "?" in inner or _INEQUALITY_RE.search(inner):
            return None  # a question, or a bound ("\\geq (1 + 1 + 1 + 1)^2 = 16"), not a value
        intro = text[a:b].rstrip()[:-1].rstrip()
        whole = intro + " " + inner
        if self._need_digits and _DIGIT_SOURCE_RE.search(whole) is None:
            return None
        if self._gates is not None and not self._gate(whole):
            return None
        if not _DISPLAY_INTRO_RE.search(intro):
            return None  # "Next, n = 11:" introduces work; "the answer is:" introduces a value
        span = self._match(whole, tried, whole)
        if span is None:
            return None
        value, answer, _off, step = span
        return AnswerSpan(text=answer or value, start=m.start(1), end=c + len(close),
                          kind="implicit_step" if step else "choice_value" if answer else "implicit", explicit=False)

    def find(self, text: str, start: int = 0, end: int | None = None) -> list[AnswerSpan]:
        if not self.enabled:
            return []
        out: list[AnswerSpan] = []
        tried: dict[tuple[str, str], bool] = {}
        spans = sentence_spans(text, start, end)
        for i, (a, b) in enumerate(spans):
            if b - a > 600 or text.find("?", a, b) != -1:
                continue
            if b - a <= 200 and text[a:b].rstrip().endswith(":"):
                # "Therefore, the remainder is:" + a display block "\[ 5 \]": read as one statement
                span = self._display_after(text, a, b, tried, end)
                if span is not None:
                    out.append(span)
                continue
            if self._need_digits and _DIGIT_SOURCE_RE.search(text, a, b) is None:
                continue
            whole = text[a:b]
            if self._gates is not None and not self._gate(whole):
                continue
            if whole.rstrip().endswith(":"):
                continue  # "Next, n = 11:" introduces the work that follows
            # the value may close a clause in the middle ("Therefore, theta is 160°, which is the argument in that
            # range."): try the sentence, then its prefixes cut before a trailing clause, the longest first
            for sent in _clause_prefixes(whole) if _INTRO_HINT_RE.search(whole) else ():
                span = self._match(sent, tried, whole, text[spans[i - 1][0]:spans[i - 1][1]] if i else "")
                if span is not None and self._computed_only and i + 1 < len(spans) and _CONTINUES_RE.match(
                        text, spans[i + 1][0], spans[i + 1][1]):
                    # "63 ÷ 42 = 1 with a remainder of 63 - 42 = 21." + "Now, work with 42 and 21.": a computation
                    # whose result the next sentence carries on from is a step, although its value is the answer's
                    break
                if span is not None:
                    value, answer, off, step = span
                    stop = len(sent.rstrip())
                    if len(sent) < len(whole) and _RANKED_RE.match(whole, len(sent)):
                        stop = len(whole.rstrip())  # "n=8 is the smallest n ...": the ranking is part of it
                    got = AnswerSpan(text=answer or value, start=a + clause_start(sent, off), end=a + stop,
                                     kind="implicit_step" if step else "choice_value" if answer else "implicit",
                                     explicit=False)
                    if not out or (out[-1].start, out[-1].end) != (got.start, got.end):  # a display read twice
                        out.append(got)
                    break
        return out


# the work goes on: "Now, work with 42 and 21.", "Next, angle at S:", "Moving on to the second part" (but not "Now,
# let's check ...", which starts a check of what was just reached)
_CONTINUES_RE = re.compile(
    r"[\W_]*(?:(?:now|next)\b[,\s]+(?![,\s])"
    r"(?!(?:let(?:'s|’s| me| us)\s+|(?:i|we)\s+(?:need|want|should|have|will|can|could|might)\s+(?:to\s+)?|i['’]ll\s+)?"
    r"(?:(?:just|quickly|also)\s+)?(?:check|verify|confirm|double|make sure|see|plug|substitut|test|recheck|compare|"
    r"look back|think about|consider whether|is|that|this|so)\b)"
    r"|moving on\b|the next step\b)",
    re.IGNORECASE,
)
_INEQUALITY_RE = re.compile(r"[<>≤≥]|\\[gl]eq?\b|\\[gl]eqslant|\\[gl]t\b")
# a display block: "\\[ ... \\]", "$$ ... $$", or an inline "\\( ... \\)" / "$ ... $" set on a line of its own (checked
# in _display_after)
_DISPLAY_OPEN_RE = re.compile(r"\s*(\\\[|\$\$|\\\(|\$)")
# the statement a display block completes ends in a copula, "we get" or "="
_DISPLAY_INTRO_RE = re.compile(r"(?:\b(?:is|are|be|equals|becomes|get|got|obtain)|=)$")
# every candidate value follows "=", ":", or one of these words (see _VALUE_INTRO_RE / _SUBJECT_VALUE_RE): a cheap
# necessary condition tested once per sentence before the clause prefixes are read
_INTRO_HINT_RE = re.compile(
    r"[=:]|\b(?:is|equals|are|gives|giving|gave|get|got|obtain|becomes|be|to|of|seems|must|should|would|appears)\b|"
    r"['’]s\b|"
    r"^[\W_]*(?:so|thus|therefore|hence)\b",
    re.IGNORECASE,
)
_TRAILING_CLAUSE_RE = re.compile(
    r"\s*(?:,|;|\s[-—–])\s*(?:which|so|that|and|but|because|since|as|where|while|i\.e\.|the (?:only|one)|"
    r"achieved|attained|obtained|reached|occurring|when|for)\b",
    re.IGNORECASE,
)


# "So, n=8 is the smallest n where this is possible.": an assignment that the rest of the sentence ranks
_RANKED_RE = re.compile(
    r"\s+(?:is|was|would be|must be|should be)\s+(?:indeed\s+)?(?:the|our)\s+(?:(?:smallest|largest|least|greatest|"
    r"minimum|maximum|minimal|maximal|lowest|highest|only|unique|required|desired|final)\b|answer\b)",
    re.IGNORECASE,
)


def _clause_prefixes(sentence: str, limit: int = 3) -> list[str]:
    """The sentence, then the sentence cut before each trailing clause, from the last cut backwards; and cut before
    a ranking of an assignment ("n=8 is the smallest n ...")."""
    out = [sentence]
    rk = _RANKED_RE.search(sentence)
    if rk is not None and "=" in sentence[: rk.start()]:
        out.append(sentence[: rk.start()])
    cuts = [m.start() for m in _TRAILING_CLAUSE_RE.finditer(sentence)]
    for c in reversed(cuts[-(limit - 1):] if limit > 1 else []):
        if c > 0:
            out.append(sentence[:c])
    return out


# "Which student has the greatest average speed?": the question's "which" and the predicate it asks about
_WHICH_QUESTION_RE = re.compile(r"\bwhich\s+(?:[a-z]+\s+){0,2}?(?:has|had|have|is|was|are|were|will|would|can|could|did|"
                                r"does|gets|got|ran|runs|makes|made|wins|won|scored?s?)\b([^?]{3,150})\?", re.IGNORECASE)
_ASY_RE = re.compile(r"\[asy\].*?\[/asy\]", re.DOTALL)
_TEXT_TARGET_RE = re.compile(r"[A-Za-z][A-Za-z'’-]*(?: [A-Za-z][A-Za-z'’-]*){0,2}")
_TEXT_WRAPPER_RE = re.compile(r"\\(?:text|textbf|mathrm)\{([^{}]*)\}")
_LEAD_RE = re.compile(r"[\W_]*(?:(?:so|thus|therefore|hence|then|clearly|finally|overall|and)[\s,]+)*", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def _which_predicate(problem: str) -> frozenset[str]:
    """Content words of the predicate of the problem's last "Which ... has ...?" question (empty when none); one
    problem comes with many traces."""
    qs = list(_WHICH_QUESTION_RE.finditer(_ASY_RE.sub(" ", problem)[-600:]))
    if not qs:
        return frozenset()
    return frozenset(w for w in _WORD3_RE.findall(qs[-1].group(1).lower()) if w not in _ASKED_STOP)


def which_commitments(text: str, problem: str, values: list[tuple], start: int = 0) -> list[AnswerSpan]:
    """"Thus Evelyn has the greatest average speed." for "Which student has the greatest average speed?": a text
    target (a name of at most three words) as the subject of a sentence that restates the question's predicate (all
    of its content words, 80 % of a long one), not a question, not hedged."""
    pred = _which_predicate(problem)
    if not pred:
        return []
    names = []
    for v in values:
        t = _TEXT_WRAPPER_RE.sub(r"\1", _strip_wrappers(str(v[0]))).strip()
        if v[1] is None and _TEXT_TARGET_RE.fullmatch(t) and len(t) >= 2 and t.lower() not in _ASKED_STOP:
            names.append(t)
    if not names:
        return []
    need = len(pred) if len(pred) <= 3 else -(-len(pred) * 8 // 10)
    # the name as the subject ("Evelyn has ...", not "Evelyn's average speed is 3.6")
    pats = [(re.compile(r"(?:the answer is\s+)?" + re.escape(n) + r"\b(?!['’]s\b)", re.IGNORECASE), n) for n in names]
    out = []
    for a, b in sentence_spans(text, start):
        sent = text[a:b]
        if "?" in sent or len(sent) > 400:
            continue
        lead = _LEAD_RE.match(sent).end()
        for rx, name in pats:
            m = rx.match(sent, lead)
            if m is None:
                continue
            words = set(_WORD3_RE.findall(sent.lower()))
            if len(pred & words) >= need and not hedged(sent, 0, len(sent.rstrip(_TRAIL_PUNCT))):
                out.append(AnswerSpan(text=name, start=a + m.start(), end=a + len(sent.rstrip()), kind="implicit",
                                      explicit=False))
                break
    return out


def _alternatives(reference: str) -> list[str]:
    from dlcot_dagster.domain.answers.fastpath import gold_alternatives

    alts = gold_alternatives(reference)
    return alts if alts else [reference]


def explicit_answers(text: str, skip_hedged: bool = True) -> list[AnswerSpan]:
    """Explicit answer statements via ``find_answers``, hedged ones skipped."""
    from dlcot_dagster.domain.answers import find_answers

    out = []
    matches = find_answers(text)
    if not matches:
        return out
    sents = sentence_spans(text) if skip_hedged else []
    j = 0
    for m in matches:
        if skip_hedged:
            while j < len(sents) and sents[j][1] <= m.start:
                j += 1
            if j < len(sents):
                sa, sb = sents[j]
                sentence = text[sa:sb]
                content_at = text.find(m.text, m.start, m.end) if m.text else -1
                prefix_end = content_at if content_at >= 0 else m.start
                if "?" in text[m.end : sb] or "?" in text[m.start : m.end] or hedged(text, sa, prefix_end):
                    # "\boxed" on a line of its own or a Final Answer block is never a hedge
                    if m.kind not in ("boxed", "final_answer") or "?" in sentence:
                        continue
        out.append(AnswerSpan(text=m.text, start=m.start, end=m.end, kind=m.kind, explicit=True))
    return out


def merge_answers(explicit: list[AnswerSpan], implicit: list[AnswerSpan]) -> list[AnswerSpan]:
    """Explicit and implicit answers by position; an implicit one overlapping an explicit one is dropped."""
    out = list(explicit)
    ex = sorted((a.start, a.end) for a in explicit)
    import bisect

    starts = [s for s, _ in ex]
    for imp in implicit:
        i = bisect.bisect_right(starts, imp.end)
        overlap = any(ex[k][0] < imp.end and imp.start < ex[k][1] for k in range(max(0, i - 2), min(len(ex), i + 1)))
        if not overlap:
            out.append(imp)
    out.sort(key=lambda a: (a.start, a.end))
    return out


@functools.lru_cache(maxsize=4096)
def _choice_letter(answer: str) -> str | None:
    """``fastpath.choice_letter`` (a pure function of the string, and a slow one: it cleans the LaTeX first),
    memoized: the same reference and final answers come back with every trace of a problem."""
    from dlcot_dagster.domain.answers.fastpath import choice_letter

    return choice_letter(answer)


_SUBPROBLEM_RE = re.compile(r"\bsub-?problem\s*(\d+)\b", re.IGNORECASE)


def last_subproblem_start(text: str, problem: str) -> int:
    """Where the thinking turns to the last subproblem of a problem written in subproblems ("Subproblem 0: ...
    Solution: ... Subproblem 1: What is ...?", as Minerva's are): the first mention of its number in the thinking,
    else 0 (no subproblems, or the thinking never names it)."""
    if "ubproblem" not in problem and "ub-problem" not in problem:
        return 0
    numbers = {int(m.group(1)) for m in _SUBPROBLEM_RE.finditer(problem)}
    if len(numbers) < 2:
        return 0
    last = max(numbers)
    for m in _SUBPROBLEM_RE.finditer(text):
        if int(m.group(1)) == last:
            return m.start()
    return 0


def locate_answers(
    text: str,
    problem: str,
    reference: str,
    checker: CheckerLike | None,
    cfg: Any,
    start: int = 0,
    final_response: str | None = None,
) -> tuple[list[AnswerSpan], list[AnswerSpan]]:
    """Every answer the thinking reaches after ``start``, by position, and the explicit ones among them.

    Sources (see the module docstring): explicit statements; option commitments of a multiple-choice problem (by
    letter, see :mod:`.choices`, and by the text of an option); implicit statements of a *target* value. Targets
    are the reference (each of its accepted forms), the option contents of the reference letter, and the
    trace's own final answer (its last explicit answer, and the answer of its final response), so that a wrong
    first answer is found too when the trace states it again explicitly later.
    """
    from dlcot_dagster.domain.answers import extract_final_answer
    from .choices import (
        choice_commitments,
        choice_content_commitments,
        choice_formula_commitments,
        parse_choices,
        problem_without_choices,
    )

    # a problem in subproblems asks the last one: answers to the earlier ones (often boxed) are steps
    start = max(start, last_subproblem_start(text, problem))
    explicit = [a for a in explicit_answers(text, cfg.skip_hedged_answers) if a.start >= start]
    choices = parse_choices(problem) if getattr(cfg, "choice_answers", True) else None
    stem = problem_without_choices(problem, choices)
    # "Find m + n" of a fraction m/n: "123/392 should be the answer" states a step (kept for the conclusion, which
    # reads the last explicit answer, but neither a first answer nor a target)
    parts = asks_sum_of_fraction_parts(stem)
    committed = [a for a in explicit if not (parts and is_fraction_value(a.text))]
    ref_letter = _choice_letter(reference) if reference.strip() and len(reference.strip()) <= 12 else None
    finals: list[str] = []
    if committed:
        finals.append(committed[-1].text)
    if final_response and final_response.strip():
        fa = extract_final_answer(final_response)
        if fa is not None and fa.text and fa.kind != "last_line" and not (parts and is_fraction_value(fa.text)):
            finals.append(fa.text)
    values: list[tuple[str, str | None]] = []
    letters_wanted: list[str] = []
    for v in ([reference] if reference.strip() else []) + finals:
        letter = _choice_letter(v) if len(v.strip()) <= 12 else None
        if letter is not None and (choices is not None or ref_letter is not None):
            if letter not in letters_wanted:
                letters_wanted.append(letter)
            if choices is not None and choices.content_value(letter):
                values.append((choices.content_value(letter), letter, v is reference))
        elif v is reference:
            values.extend((a, None) for a in _alternatives(v))
        else:
            values.append((v, None, False))
    mc: list[AnswerSpan] = []
    letters = choices.letters if choices is not None else (("A", "B", "C", "D", "E") if ref_letter else ())
    if letters:
        mc = choice_commitments(text, letters, start)
        if choices is not None and letters_wanted:
            mc += choice_content_commitments(text, choices, tuple(letters_wanted), start)
            mc += choice_formula_commitments(text, choices, tuple(letters_wanted), stem, start)
    implicit: list[AnswerSpan] = []
    if cfg.implicit_answers and checker is not None and values:
        targets = make_targets(values, stem)
        finder = ImplicitAnswerFinder(targets, problem, checker, cfg.implicit_max_chars, cfg.implicit_max_checks,
                                      problem_stem=stem)
        implicit = finder.find(text, start)
    if cfg.implicit_answers and values and choices is None:
        implicit = sorted(implicit + which_commitments(text, problem, values, start), key=lambda x: (x.start, x.end))
    merged = merge_answers(committed, mc + implicit)
    # a bare computation step ("174 + 110 = 284") reaches the answer only as the first one: later, inside the checks,
    # it is one line of a re-computation, not a statement that closes the check
    return [a for i, a in enumerate(merged) if i == 0 or a.kind != "implicit_step"], explicit
