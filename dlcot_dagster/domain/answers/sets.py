"""Sets of real numbers written in different notations: the empty set, intervals and their unions, and
one-variable inequalities.

* **Empty set**: ``\\emptyset``, ``\\varnothing``, ``\\O``, ``∅``, ``\\{\\}``, ``{}``, "no solution(s)",
  "no real solution(s)", "none" are one answer.
* **Intervals**: ``(a, b]``, ``[a, \\infty)``, unions with ``\\cup`` / ``∪`` / "or" / ``\\lor``, ``\\mathbb{R}``,
  "all real numbers", ``x \\in (a, b)``.
* **Inequalities** in one variable: ``x > 3``, ``3 < x``, ``-2 \\le x < 5``, ``x \\ne 0``, joined by "or"
  (union) or "and" / ``\\land`` (intersection).

:func:`real_set` reads either notation into a canonical union of disjoint intervals, so "x > 3" and
"(3, \\infty)", or "x \\le 1 or x \\ge 3" and "(-\\infty, 1] \\cup [3, \\infty)", compare equal. Endpoints must be
constants: numbers or closed-form expressions the numeric probe reads (``\\frac{1}{2}``, ``\\sqrt{2}``,
``\\pi``); they are compared as floats to a relative 1e-9. Anything else (two variables, ``x^2 < 4``, a comma
between inequalities, which can mean "and" or "or") is not read: the caller falls back to other checks.

No ``eval``/``sympify``: endpoints go through :func:`.probe.parse_expression` (a small LaTeX parser).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .normalize import clean_latex, outer_brackets, split_top_level
from .probe import Unsupported, _eval, _symbols, parse_expression

__all__ = ["Interval", "is_empty_set", "real_set", "compare_sets", "looks_like_set"]

_EMPTY_FORMS = {
    "\\emptyset", "\\varnothing", "\\o", "∅", "\\{\\}", "{}", "\\{ \\}", "\\left\\{\\right\\}", "\\{\\ \\}",
    "none", "no solution", "no solutions", "no real solution", "no real solutions", "no real roots",
    "there are no solutions", "there is no solution", "no such", "empty set", "the empty set", "nosolution",
}
_EMPTY_STRIP_RE = re.compile(r"\\(?:text|mathrm|textbf|mbox)\s*\{([^{}]*)\}")

_INF_RE = re.compile(r"^\s*([+-]?)\s*(?:\\infty|∞|\\infinity|inf|infinity)\s*$")
_REAL_LINE_RE = re.compile(
    r"^\s*(?:\\mathbb\s*\{?\s*R\s*\}?|\\R|ℝ|\\mathbf\s*\{?\s*R\s*\}?|all real numbers|\(\s*-\s*\\infty\s*,\s*\+?\s*\\infty\s*\))\s*$",
    re.IGNORECASE,
)
_UNION_RE = re.compile(r"\\cup(?![a-zA-Z])|∪|\\lor(?![a-zA-Z])|\\vee(?![a-zA-Z])|\s+or\s+|\\text\s*\{\s*or\s*\}|\\quad\s*or\s*\\quad",
                       re.IGNORECASE)
_INTER_RE = re.compile(r"\\cap(?![a-zA-Z])|∩|\\land(?![a-zA-Z])|\\wedge(?![a-zA-Z])|\s+and\s+|\\text\s*\{\s*and\s*\}",
                       re.IGNORECASE)
_IN_RE = re.compile(r"^\s*([a-zA-Z](?:_\{?\w+\}?)?)\s*(?:\\in|∈)\s*(.+)$", re.DOTALL)
# relation tokens, longest first
_REL_RE = re.compile(r"\\leqslant|\\geqslant|\\leq|\\geq|\\le(?![a-zA-Z])|\\ge(?![a-zA-Z])|\\neq|\\ne(?![a-zA-Z])|"
                     r"<=|>=|!=|≤|≥|≠|<|>")
_REL_KIND = {
    "\\leqslant": "le", "\\leq": "le", "\\le": "le", "<=": "le", "≤": "le",
    "\\geqslant": "ge", "\\geq": "ge", "\\ge": "ge", ">=": "ge", "≥": "ge",
    "<": "lt", ">": "gt",
    "\\neq": "ne", "\\ne": "ne", "!=": "ne", "≠": "ne",
}
_VAR_RE = re.compile(r"^\s*([a-zA-Z])(?:_\{?\w+\}?)?\s*$")
_ABS_VAR_RE = re.compile(r"^\s*(?:\|\s*|\\lvert\s*|\\vert\s*)([a-zA-Z])\s*(?:\||\\rvert|\\vert)\s*$")
# set-builder notation: "\\{x \\mid x < 3\\}", "\\{x \\in \\mathbb{R} : x<3\\}", "\\{x | x<3\\}" (the braces already taken off)
_SET_BUILDER_RE = re.compile(
    r"^\s*([a-zA-Z])\s*(?:(?:\\in|∈)\s*(?:\\mathbb\s*\{?\s*R\s*\}?|\\R|ℝ|\\mathbf\s*\{?\s*R\s*\}?)\s*)?"
    r"(?:\\mid|\\vert|\\colon|\||:)\s*(.+)$",
    re.DOTALL,
)
_MAX_CHARS = 400
_MAX_PARTS = 16
_TOL = 1e-9


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float
    lo_closed: bool
    hi_closed: bool


def _norm_text(s: str) -> str:
    c = _EMPTY_STRIP_RE.sub(r"\1", s)
    c = c.strip().strip("$").strip().rstrip(".").strip()
    return " ".join(c.lower().split())


def is_empty_set(s: str) -> bool:
    """Whether ``s`` is one of the spellings of the empty set."""
    if len(s) > 80:
        return False
    raw = _norm_text(s)
    if raw in _EMPTY_FORMS or raw.replace(" ", "") in _EMPTY_FORMS:
        return True
    c = _norm_text(clean_latex(s)[0])
    return c in _EMPTY_FORMS or c.replace(" ", "") in _EMPTY_FORMS


def _value(s: str) -> float | None:
    """A constant endpoint as a float (``±inf`` for infinities); None when not a constant."""
    m = _INF_RE.match(s.replace("\\left", "").replace("\\right", ""))
    if m:
        return -math.inf if m.group(1) == "-" else math.inf
    try:
        tree = parse_expression(s)
        if _symbols(tree, set()):
            return None
        z = _eval(tree, {})
    except (Unsupported, RecursionError, ValueError, OverflowError, ZeroDivisionError, KeyError):
        return None
    if abs(z.imag) > 1e-12 or not math.isfinite(z.real):
        return None
    return z.real


def _interval_notation(s: str) -> list[Interval] | None:
    if _REAL_LINE_RE.match(s):
        return [Interval(-math.inf, math.inf, False, False)]
    ob = outer_brackets(s)
    if ob is None:
        return None
    left, inner, right = ob
    if left not in ("(", "[") or right not in (")", "]"):
        return None
    items = split_top_level(inner)
    if len(items) != 2:
        return None
    lo, hi = _value(items[0]), _value(items[1])
    if lo is None or hi is None or lo > hi:
        return None
    return [Interval(lo, hi, left == "[" and lo != -math.inf, right == "]" and hi != math.inf)]


def _inequality(s: str, var: list[str]) -> list[Interval] | None:
    """One relation chain in one variable (``var`` collects the variable's name)."""
    parts = []
    pos = 0
    for m in _REL_RE.finditer(s):
        parts.append(s[pos:m.start()])
        parts.append(_REL_KIND[m.group()])
        pos = m.end()
    parts.append(s[pos:])
    operands = parts[0::2]
    rels = parts[1::2]
    if not rels or len(rels) > 2:
        return None
    where = [i for i, o in enumerate(operands) if _VAR_RE.match(o)]
    if not where and len(rels) == 1:
        absolute = [i for i, o in enumerate(operands) if _ABS_VAR_RE.match(o)]
        if len(absolute) == 1:
            return _abs_inequality(operands, rels[0], absolute[0], var)
    if len(where) != 1:
        return None
    name = _VAR_RE.match(operands[where[0]]).group(0).strip()
    if var and var[0] != name:
        return None
    var[:1] = [name]
    vals = [None if i == where[0] else _value(o) for i, o in enumerate(operands)]
    if any(v is None for i, v in enumerate(vals) if i != where[0]):
        return None
    k = where[0]
    if len(rels) == 1:
        rel = rels[0]
        c = vals[1 - k]
        if k == 1:  # "3 < x": flip to "x > 3"
            rel = {"lt": "gt", "gt": "lt", "le": "ge", "ge": "le", "ne": "ne"}[rel]
        if rel == "ne":
            return [Interval(-math.inf, c, False, False), Interval(c, math.inf, False, False)]
        if rel in ("lt", "le"):
            return [Interval(-math.inf, c, False, rel == "le")]
        return [Interval(c, math.inf, rel == "ge", False)]
    if k != 1 or "ne" in rels:
        return None
    a, b = vals[0], vals[2]
    r1, r2 = rels
    if r1 in ("lt", "le") and r2 in ("lt", "le"):
        if a > b:
            return []
        return [Interval(a, b, r1 == "le", r2 == "le")]
    if r1 in ("gt", "ge") and r2 in ("gt", "ge"):
        if b > a:
            return []
        return [Interval(b, a, r2 == "ge", r1 == "ge")]
    return None


def _abs_inequality(operands: list[str], rel: str, k: int, var: list[str]) -> list[Interval] | None:
    """``|x| < c`` and the like."""
    name = _ABS_VAR_RE.match(operands[k]).group(1)
    if var and var[0] != name:
        return None
    var[:1] = [name]
    c = _value(operands[1 - k])
    if c is None or rel == "ne":
        return None
    if k == 1:
        rel = {"lt": "gt", "gt": "lt", "le": "ge", "ge": "le"}[rel]
    if rel in ("lt", "le"):
        if c < 0 or (c == 0 and rel == "lt"):
            return []
        return [Interval(-c, c, rel == "le", rel == "le")]
    if c < 0 or (c == 0 and rel == "ge"):
        return [Interval(-math.inf, math.inf, False, False)]
    return [Interval(-math.inf, -c, False, rel == "ge"), Interval(c, math.inf, rel == "ge", False)]


def _atom(s: str, var: list[str]) -> list[Interval] | None:
    s = s.strip()
    if not s:
        return None
    m = _IN_RE.match(s)
    if m:
        name = m.group(1)
        if var and var[0] != name:
            return None
        var[:1] = [name]
        return real_set(m.group(2), _var=var)
    ob = outer_brackets(s)
    if ob is not None and ob[0] == "(" and ob[2] == ")" and _REL_RE.search(ob[1]) and "," not in ob[1]:
        return _atom(ob[1], var)  # "(x > 3)"
    if _REL_RE.search(s):
        return _inequality(s, var)
    if is_empty_set(s):
        return []
    return _interval_notation(s)


def _normalize(ivs: list[Interval]) -> list[Interval]:
    """Sorted, disjoint, non-empty intervals (touching ones merged when the point between is covered)."""
    ivs = [iv for iv in ivs if iv.lo < iv.hi or (iv.lo == iv.hi and iv.lo_closed and iv.hi_closed)]
    ivs.sort(key=lambda iv: (iv.lo, not iv.lo_closed))
    out: list[Interval] = []
    for iv in ivs:
        if out:
            last = out[-1]
            if iv.lo < last.hi or (_close(iv.lo, last.hi) and (iv.lo_closed or last.hi_closed)):
                if iv.hi > last.hi or (_close(iv.hi, last.hi) and iv.hi_closed):
                    out[-1] = Interval(last.lo, iv.hi, last.lo_closed, iv.hi_closed if not _close(iv.hi, last.hi)
                                       else (iv.hi_closed or last.hi_closed))
                continue
        out.append(iv)
    return out


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out = []
    for x in a:
        for y in b:
            lo, lo_c = (x.lo, x.lo_closed) if x.lo > y.lo else (y.lo, y.lo_closed) if y.lo > x.lo else (
                x.lo, x.lo_closed and y.lo_closed)
            hi, hi_c = (x.hi, x.hi_closed) if x.hi < y.hi else (y.hi, y.hi_closed) if y.hi < x.hi else (
                x.hi, x.hi_closed and y.hi_closed)
            out.append(Interval(lo, hi, lo_c, hi_c))
    return _normalize(out)


def _close(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= _TOL * max(1.0, abs(a), abs(b))


def real_set(s: str, *, _var: list[str] | None = None) -> list[Interval] | None:
    """The set of reals ``s`` denotes, as sorted disjoint intervals (``[]`` = empty); None when ``s`` is not read."""
    if len(s) > _MAX_CHARS:
        return None
    var = _var if _var is not None else []
    text = clean_latex(s)[0] if _var is None else s
    text = text.replace("\\left", "").replace("\\right", "")
    if is_empty_set(text):
        return []
    ob = outer_brackets(text)
    if ob is not None and ob[0] in ("\\{", "{"):
        m = _SET_BUILDER_RE.match(ob[1])
        if m is None:
            return None
        if var and var[0] != m.group(1):
            return None
        var[:1] = [m.group(1)]
        return real_set(m.group(2), _var=var)
    union_parts = [p for p in _UNION_RE.split(text)]
    if len(union_parts) > _MAX_PARTS:
        return None
    acc: list[Interval] = []
    for up in union_parts:
        inter_parts = _INTER_RE.split(up)
        if len(inter_parts) > _MAX_PARTS:
            return None
        cur: list[Interval] | None = None
        for ip in inter_parts:
            got = _atom(ip, var)
            if got is None:
                return None
            cur = got if cur is None else _intersect(cur, got)
        acc.extend(cur or [])
    return _normalize(acc)


_SET_WORD_RE = re.compile(r"\\cup(?![a-zA-Z])|∪|\\mathbb\s*\{?\s*R|ℝ|all real numbers", re.IGNORECASE)


def _infinity_sign(s: str) -> str | None:
    """"+" or "-" when ``s`` is an infinity alone ("\\infty", "\\text{infinity}", "-∞"), else None."""
    if len(s) > 40:
        return None
    m = _INF_RE.match(clean_latex(s)[0])
    return None if m is None else (m.group(1) or "+")


def looks_like_set(s: str) -> bool:
    """Cheap test: an inequality, an interval with a bracket or infinity, a union, or an empty-set spelling."""
    c = s if len(s) <= _MAX_CHARS else ""
    return bool(c) and (
        bool(_REL_RE.search(c)) or "\\infty" in c or "∞" in c or "\\cup" in c or "∪" in c or "\\mathbb" in c
        or is_empty_set(c) or "all real" in c.lower() or bool(re.search(r"^\s*\$?\s*(?:\\left)?[(\[].*,.*[)\]]\s*\$?\s*$", c))
    )


def compare_sets(gold: str, pred: str) -> bool | None:
    """True/False when both sides read as sets of reals and at least one is written as an inequality or the empty
    set (interval vs interval is left to the structural comparison); None otherwise."""
    g_empty, p_empty = is_empty_set(gold), is_empty_set(pred)
    if g_empty and p_empty:
        return True
    g_inf, p_inf = _infinity_sign(gold), _infinity_sign(pred)
    if g_inf is not None and p_inf is not None:
        return g_inf == p_inf
    g_rel = bool(_REL_RE.search(gold))
    p_rel = bool(_REL_RE.search(pred))
    # an inequality, the empty set, a union ("[3,4] \\cup [1,2]" is "[1,2] \\cup [3,4]") or the whole line: read both
    # sides as sets; two plain intervals are left to the structural comparison ("(1,2)" may be a point)
    if not (g_rel or p_rel or g_empty or p_empty or _SET_WORD_RE.search(gold) or _SET_WORD_RE.search(pred)):
        return None
    gs, ps = real_set(gold), real_set(pred)
    if g_empty != p_empty and (gs is None or ps is None):
        # the empty set against a number or a non-empty listed set: different
        other = pred if g_empty else gold
        oc = clean_latex(other)[0]
        ob = outer_brackets(oc)
        if _value(oc) is not None or (ob is not None and ob[0] == "\\{" and ob[1].strip()):
            return False
    if gs is None or ps is None:
        return None
    if len(gs) != len(ps):
        return False
    for a, b in zip(gs, ps):
        if not (_close(a.lo, b.lo) and _close(a.hi, b.hi)):
            return False
        if (a.lo_closed, a.hi_closed) != (b.lo_closed, b.hi_closed):
            return False
    return True
