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

import re
from collections import Counter
from fractions import Fraction
from typing import Any, Protocol

from .text import clause_start, hedged, sentence_spans
from .types import AnswerSpan


class CheckerLike(Protocol):
    def compare(self, gold: str, pred: str) -> Any:  # returns a Verdict
        ...


_CONCLUSIVE_RE = re.compile(
    r"(?:^|[\s,;:(—-])(?:so|thus|therefore|hence|consequently|giving|gives|gave|yields|yielding|we get|we have|"
    r"i get|we obtain|i obtain|that means|which means|this means|which is|which gives|resulting in|"
    r"the result is|the total is|the sum is|the value is|in total|altogether|finally|this gives|that gives)\b",
    re.IGNORECASE,
)
# The value follows the last "=" / "is" / "equals" / "are" / "gives" / "get" / ":" of a sentence (case-insensitive,
# whole words). These never overlap ("=", ":" or a whole word), so the last one is the first match of the reversed
# words in the reversed sentence, found without scanning the whole sentence.
_VALUE_SPLIT_REV_RE = re.compile(r"[=:]|\b(?:si|slauqe|era|sevig|teg)\b", re.IGNORECASE)
_TRAIL_PUNCT = " \t\r\n.,;:!*_`\"'"
_NUM_RE = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$")
_FRAC_RE = re.compile(r"^[-+]?\d+\s*/\s*\d+$")
_LATEX_FRAC_RE = re.compile(r"^([-+]?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
_UNIT_TAIL_RE = re.compile(r"^(.*?\d)\s*(?:\\?%|\\text\{[^{}]*\}|\\mathrm\{[^{}]*\}|[a-zA-Z°²³µ][\w°²³µ/.^]*(?:\s+[a-zA-Z][\w/]*){0,3})$")
_DIGITS_RE = re.compile(r"\d")
# a candidate value has a digit only if its sentence has one, or a "²" / "³" that unicode_math_to_latex rewrites
_DIGIT_SOURCE_RE = re.compile(r"[\d²³]")
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


def parse_number(s: str) -> Fraction | None:
    """Exact value of a plain number / fraction string, else None."""
    s = s.strip().replace("\\!", "").replace("{,}", "").replace("\\,", "")
    s = s.replace("$", "").strip()
    if s.endswith("\\%") or s.endswith("%"):
        return None
    try:
        if _NUM_RE.match(s):
            return Fraction(s.replace(",", ""))
        if _FRAC_RE.match(s):
            a, b = s.split("/")
            return Fraction(int(a), int(b)) if int(b) else None
        m = _LATEX_FRAC_RE.match(s)
        if m:
            val = Fraction(int(m.group(2)), int(m.group(3))) if int(m.group(3)) else None
            return -val if (val is not None and m.group(1) == "-") else val
    except (ValueError, ZeroDivisionError):
        return None
    return None


def candidate_value(sentence: str, max_chars: int = 80) -> tuple[str, int] | None:
    """(value, offset in sentence) stated at the end of ``sentence``, if any."""
    body = sentence.rstrip(_TRAIL_PUNCT)
    last = _VALUE_SPLIT_REV_RE.search(body[::-1])
    if last is None:
        return None
    cut = len(body) - last.start()  # end of the last "=" / "is" / ... in body
    raw = body[cut:]
    off = cut + (len(raw) - len(raw.lstrip()))
    v = _strip_wrappers(raw.replace("$", " ").replace("\\(", " ").replace("\\)", " "))
    if not v or len(v) > max_chars:
        return None
    m = _UNIT_TAIL_RE.match(v)
    if m and parse_number(m.group(1).strip("$ ")) is not None:
        v = m.group(1).strip("$ ")
    return unicode_math_to_latex(v), off


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
    """"√51" → "\\sqrt{51}", "2π" → "2\\pi": plain-text math as LaTeX, so the checker can parse it."""
    if v.isascii():
        return v
    for rx, rep in _UNICODE_SUBS:
        v = rx.sub(rep, v)
    return v.strip()


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


class ImplicitAnswerFinder:
    """Find sentences that state a value equivalent to the reference (see module docstring)."""

    def __init__(self, reference: str, problem: str, checker: CheckerLike, max_chars: int = 80, max_checks: int = 24):
        self.max_checks = max_checks
        self.reference = reference.strip()
        self.checker = checker
        self.max_chars = max_chars
        ref = _strip_wrappers(self.reference)
        self.ref_number = parse_number(ref)
        self.ref_digits = _digits(ref)
        self.enabled = True
        self._prefiltered: dict[str, bool] = {}  # value -> _prefilter(value): values repeat within a trace
        compact = re.sub(r"\s+", "", ref)
        if len(compact) <= 1:
            self.enabled = False
        elif self.ref_number is not None:
            nums = {parse_number(x) for x in re.findall(r"\d+(?:\.\d+)?", problem)}
            if self.ref_number in nums:
                self.enabled = False
        elif not self.ref_digits:
            self.enabled = False

    def _prefilter(self, value: str) -> bool:
        ok = self._prefiltered.get(value)
        if ok is None:
            if self.ref_number is not None:
                ok = parse_number(value) == self.ref_number
            else:
                ok = _digits(value) == self.ref_digits
            self._prefiltered[value] = ok
        return ok

    def find(self, text: str, start: int = 0, end: int | None = None) -> list[AnswerSpan]:
        if not self.enabled or not self.reference:
            return []
        out: list[AnswerSpan] = []
        tried: dict[str, bool] = {}
        for a, b in sentence_spans(text, start, end):
            # The tests before the checker are pure functions of the sentence, so their order does not change which
            # values reach the checker, nor in which order: cheap ones that reject most sentences come first. The
            # prefilter needs a digit in the value (see _DIGIT_SOURCE_RE).
            if b - a > 600 or text.find("?", a, b) != -1 or _DIGIT_SOURCE_RE.search(text, a, b) is None:
                continue
            sent = text[a:b]
            cv = candidate_value(sent, self.max_chars)
            if cv is None:
                continue
            value, off = cv
            if not self._prefilter(value):
                continue
            if _CONCLUSIVE_RE.search(sent) is None and not _descriptive_assignment(sent, off):
                continue
            if hedged(sent, 0, off):
                continue
            ok = tried.get(value)
            if ok is None:
                if len(tried) >= self.max_checks:
                    continue
                ok = getattr(self.checker.compare(self.reference, value), "equivalent", None) is True
                tried[value] = ok
            if ok:
                end_stmt = a + len(sent.rstrip())
                out.append(AnswerSpan(text=value, start=a + clause_start(sent, off), end=end_stmt, kind="implicit",
                                      explicit=False))
        return out


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
