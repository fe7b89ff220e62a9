"""Cheap, exact comparisons that run in front of math-verify.

:func:`fast_compare` returns a :class:`Verdict` when the answer is certain
from string normalisation and exact rational arithmetic alone, and ``None``
when it is not ("ask math-verify").  It never says ``False`` unless both
answers were fully understood (numbers, choice letters, plain words, or
bracketed structures of those), so a ``None`` here only costs time.

Rule for gold answers listing several accepted forms (SAT style
``".2,  1/5"``, ``".3833,  23/60"``): an unbracketed gold whose top-level
comma-separated parts are all plain numbers that agree with each other up to
the precision of the shortest decimal among them (".3833" ~ 23/60 to 4
places) is a list of *alternatives*; the prediction is equivalent if it
matches any of them.  Anything else with commas (``1, -2``, ``(1, 2)``,
``\\{1,2\\}``, ``1, 2``) is a tuple/set/list answer, compared as a whole.
"""

from __future__ import annotations

import re
from fractions import Fraction

from .normalize import canonical, clean_latex, text_key
from .numeric import Num, numbers_equal, parse_number
from .probe import probe_compare
from .sets import compare_sets, looks_like_set
from .structure import Shape, shape_of
from .verdict import Verdict

__all__ = ["fast_compare", "gold_alternatives", "choice_letter"]

_CHOICE_RE = re.compile(
    r"^\**\s*(?:\\text(?:bf)?\{\s*)?(?:\((?P<p>[A-Ja-j])\)|(?P<b>[A-J]))(?:\s*\})?"
    r"(?P<rest>.*)$",
    re.DOTALL,
)
_OTHER_OPTION_RE = re.compile(r"\([A-Ja-j]\)")
_ASSIGN_RE = re.compile(
    r"^\s*((?:[a-zA-Z]{1,6}|\\[a-zA-Z]+)(?:_\{[^{}=]*\}|_[a-zA-Z0-9])?"
    r"(?:\s*\(\s*[^()=]{1,20}\))?)\s*=\s*(?!=)"
)
_RELATION_RE = re.compile(r"\\(?:leq|geq|neq|in|approx|equiv|sim)(?![a-zA-Z])|[<>=]")


def _choice(answer: str) -> tuple[str, str] | None:
    """(letter, the value written after it or "") of a multiple-choice answer: ``"B"``, ``"(B)"``, ``"\\text{(B)}"``,
    ``"(B) 42"``, ``"B) text"``, ``"\\textbf{(C) } 12"``; ``None`` otherwise."""
    c, pct, deg = clean_latex(answer)
    if pct or deg:
        return None
    c = c.strip().strip("*").strip()
    m = _CHOICE_RE.match(c)
    if m is None:
        return None
    letter = m.group("p") or m.group("b")
    rest = m.group("rest").strip()
    if rest and not m.group("p") and not rest.startswith((")", ".", ":")):
        return None
    if m.group("p") and _OTHER_OPTION_RE.search(rest):
        return None  # "(a) 5, (b) 6": parts of an answer, not one option
    if rest.startswith(".") and rest[1:].strip() and not m.group("p"):
        # "B. something" is a choice; "B.5" is not (rest would start with a digit)
        if rest[1:2].isdigit():
            return None
    if not m.group("p"):
        rest = rest[1:].strip()  # past the ")", "." or ":" after a bare letter
    return letter.upper(), rest.lstrip(":").strip()


def choice_letter(answer: str) -> str | None:
    """The multiple-choice letter of ``"B"``, ``"(B)"``, ``"\\text{(B)}"``,
    ``"(B) 42"``, ``"B) text"``; ``None`` otherwise."""
    parsed = _choice(answer)
    return parsed[0] if parsed is not None else None


def _single_letter(answer: str) -> str | None:
    c, _, _ = clean_latex(answer)
    c = c.strip()
    return c if len(c) == 1 and c.isalpha() else None


def _safe_number(answer: str) -> Num | None | str:
    try:
        return parse_number(answer)
    except ZeroDivisionError:
        return "zero-division"


def gold_alternatives(gold: str) -> list[str] | None:
    """Split a gold that lists several accepted forms of one number (see the
    module docstring); ``None`` when the gold is not such a list."""
    c, _, _ = clean_latex(gold)
    if "," not in c or c[:1] in "([{\\":
        return None
    parts = [p.strip() for p in c.split(",")]
    if len(parts) < 2 or any(not p for p in parts):
        return None
    nums = []
    for p in parts:
        n = _safe_number(p)
        if not isinstance(n, Num):
            return None
        nums.append(n)
    tol_places = min((n.decimals for n in nums if not n.exact), default=None)
    ref = nums[0].value
    for n in nums[1:]:
        if tol_places is None:
            if n.value != ref:
                return None
        elif abs(n.value - ref) >= Fraction(1, 10**tol_places):
            return None
    return parts


def _scalar(gold: str, pred: str) -> Verdict | None:
    if canonical(gold) == canonical(pred):
        return Verdict(True, "fast:string")
    gn, pn = _safe_number(gold), _safe_number(pred)
    if gn == "zero-division" or pn == "zero-division":
        return Verdict(None, "fast:division_by_zero")
    if isinstance(gn, Num) and isinstance(pn, Num):
        eq = numbers_equal(gn, pn)
        if eq is not None:
            return Verdict(eq, "fast:number")
        return None
    gc, pc = _choice(gold), _choice(pred)
    gl, pl = (gc[0] if gc else None), (pc[0] if pc else None)
    if gl is not None and pl is not None:
        return Verdict(gl == pl, "fast:choice")
    # "(C) 12" against "12": the option's value against the value (both ways); against a bare letter, the letter
    for option, other, other_choice in ((gc, pred, pc), (pc, gold, gc)):
        if option is not None and option[1] and other_choice is None:
            v = _compare_any(option[1], other, depth=1)
            if v is not None and v.equivalent is not None:
                return Verdict(v.equivalent, "fast:choice_value")
    if gl is not None and pn is not None and len(clean_latex(gold)[0]) <= 4:
        # gold is a letter, pred is a number: a value, not an option
        return Verdict(None, "fast:choice_vs_value")
    g1, p1 = _single_letter(gold), _single_letter(pred)
    if g1 and p1:
        # math-verify's LaTeX parser lower-cases symbols: "X" equals "x"
        return Verdict(g1.lower() == p1.lower(), "fast:symbol")
    # an equation or inequality against a plain number ("5x-7y+11z+4=0" vs "0")
    for a, b in ((gold, pred), (pred, gold)):
        if isinstance(_safe_number(b), Num) and _is_proper_relation(clean_latex(a)[0]):
            return Verdict(False, "fast:relation_vs_number")
    gt, pt = text_key(gold), text_key(pred)
    if gt is not None and pt is not None:
        if gt == pt:
            return Verdict(True, "fast:text")
        # decide "different" only for clearly textual answers (a space or a
        # word of >= 4 letters): "ab" vs "ba" may be products of variables
        if _wordy(gt) and _wordy(pt):
            return Verdict(False, "fast:text")
        return None
    probed = probe_compare(_drop_unit(gold), _drop_unit(pred))
    if probed is not None:
        return Verdict(probed, "fast:numeric_probe")
    return None


# a unit abbreviation after a constant ("12\\pi cm", "2\\sqrt{2} m", "4√3 in^2"): the probe would read it as a product
# of variables. Only after a value with no letters of its own, so "x + 1 cm" or "2 r" keep theirs.
_UNIT_AFTER_RE = re.compile(
    r"^(?P<v>.*?(?:[\d})]|\\[a-zA-Z]+))\s+(?:mm|cm|km|m|in|inch|inches|ft|feet|yd|yards|mi|miles|g|kg|mg|lb|lbs|oz|s|sec|secs|min|"
    r"mins|h|hr|hrs|hours|mL|ml|L|units|sq|rad|radians|J|N|W|V|Hz|Pa|eV|mol|m/s|km/h|mph)"
    r"(?:\s*(?:\^\s*\{?\s*[23]\s*\}?))?\s*\.?$"
)
_COMMAND_RE = re.compile(r"\\[a-zA-Z]+")


def _drop_unit(answer: str) -> str:
    c = clean_latex(answer)[0]
    m = _UNIT_AFTER_RE.match(c)
    if m is None or re.search(r"[A-Za-z]", _COMMAND_RE.sub("", m.group("v"))):
        return answer
    return m.group("v")


_INEQ_RE = re.compile(r"\\(?:leq|geq|neq)(?![a-zA-Z])|[<>]")
_SYMBOLIC_LHS_RE = re.compile(r"^[\sa-zA-Z_{}|:()',\\]*$")


def _is_proper_relation(s: str) -> bool:
    """An inequality, or one equation whose left side is a computation rather
    than a name ("5x-7y+11z+4=0", not "x = 11", "|AB| = 1", "A:B = 1"), and
    no "\\approx" (math-verify reads "x \\approx 11" as 11)."""
    if "\\approx" in s or "\\sim" in s:
        return False
    if _INEQ_RE.search(s):
        return s.count("=") == 0
    if s.count("=") != 1:
        return False
    lhs = s.split("=", 1)[0]
    return not _SYMBOLIC_LHS_RE.match(lhs) and any(ch.isalpha() for ch in lhs)


def _wordy(key: str) -> bool:
    return " " in key or any(len(w) >= 4 for w in key.split())


def _elementwise(gs: tuple[str, ...], ps: tuple[str, ...]) -> Verdict | None:
    if len(gs) != len(ps):
        return None
    undecided = False
    for g, p in zip(gs, ps):
        v = _compare_any(g, p, depth=1)
        if v is None or v.equivalent is None:
            undecided = True
        elif v.equivalent is False:
            return Verdict(False, "fast:elementwise")
    return None if undecided else Verdict(True, "fast:elementwise")


def _unordered(gs: tuple[str, ...], ps: tuple[str, ...]) -> Verdict | None:
    """Set semantics (duplicates ignored) for plain numbers and exact strings."""
    gnums = [_safe_number(g) for g in gs]
    pnums = [_safe_number(p) for p in ps]
    if all(isinstance(n, Num) and n.exact and not n.percent for n in gnums + pnums):
        gv = {n.value for n in gnums}  # type: ignore[union-attr]
        pv = {n.value for n in pnums}  # type: ignore[union-attr]
        return Verdict(gv == pv, "fast:unordered_numbers")
    gc = {canonical(g) for g in gs}
    pc = {canonical(p) for p in ps}
    if gc == pc:
        return Verdict(True, "fast:unordered_strings")
    return None


def _is_vector(m: Shape) -> bool:
    """One column or one row of at least two cells."""
    return len(m.items) >= 2 and (all(len(r) == 1 for r in m.rows) or len(m.rows) == 1)


def _compare_shapes(g: Shape, p: Shape) -> Verdict | None:
    if g.kind == "matrix" and p.kind == "matrix":
        if len(g.rows) != len(p.rows) or len(g.rows[0]) != len(p.rows[0]):
            return Verdict(False, "fast:matrix_shape")
        return _elementwise(g.items, p.items)
    # a column (or row) vector against a tuple of the same length: the same vector written two ways
    for a, b in ((g, p), (p, g)):
        if a.kind == "matrix" and b.kind == "tuple" and (b.left, b.right) == ("(", ")") and _is_vector(a):
            v = _elementwise(a.items, b.items)
            return None if v is None else Verdict(v.equivalent, "fast:vector_tuple")
    if g.kind in ("list", "set") and p.kind in ("list", "set"):
        return _unordered(g.items, p.items)
    if g.kind in ("tuple", "interval") and p.kind in ("tuple", "interval"):
        if len(g.items) != len(p.items):
            return None
        v = _elementwise(g.items, p.items)
        if (g.left, g.right) != (p.left, p.right):
            # "[0,1)" vs "(0,1)": same endpoints, different closure
            if v is not None and v.equivalent is True:
                return Verdict(False, "fast:interval_brackets")
            return None
        return v
    if g.kind == "union" and p.kind == "union":
        if len(g.items) != len(p.items):
            return None
        return _elementwise(g.items, p.items)
    # a number against a tuple / interval / matrix / union: different
    if g.kind == "scalar" or p.kind == "scalar":
        scalar = g if g.kind == "scalar" else p
        other = p if scalar is g else g
        if other.kind in ("tuple", "interval", "matrix", "union") and isinstance(
            _safe_number(scalar.items[0]), Num
        ):
            return Verdict(False, "fast:scalar_vs_structure")
    # a number against a list of numbers: set semantics ("1, 1" vs "1")
    if {g.kind, p.kind} == {"scalar", "list"} or {g.kind, p.kind} == {"scalar", "set"}:
        gs = g.items if g.kind != "scalar" else (g.items[0],)
        ps = p.items if p.kind != "scalar" else (p.items[0],)
        return _unordered(gs, ps)
    return None


_DECIMAL_COMMA_RE = re.compile(r"^([+-]?\d+),(\d{1,2}|\d{4,})$|^([+-]?0),(\d+)$")
_TIME_RE = re.compile(r"^0*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?$", re.IGNORECASE)


_BASE_RE = re.compile(r"^\s*(-?)([0-9A-Za-z.]+)_\{?\s*(\d{1,2})\s*\}?\s*$")


def _in_base(m: re.Match) -> tuple[str, int] | None:
    """(sign and digits without leading zeros, base) of "2112_6" / "4210_{5}"; ``None`` if a digit is not one of
    the base."""
    digits, base = m.group(2).upper(), int(m.group(3))
    if not 2 <= base <= 36 or any(ch != "." and int(ch, 36) >= base for ch in digits):
        return None
    core = digits.lstrip("0") or "0"
    return m.group(1) + (("0" + core) if core.startswith(".") else core), base


def _special_forms(gold: str, pred: str) -> Verdict | None:
    """Clock times ("12:00" vs "1:00"), decimal commas ("1,22" vs 1.22) and numbers in a base ("2112_6" vs
    "2112_7": math-verify drops the subscript)."""
    gc, _, _ = clean_latex(gold)
    pc, _, _ = clean_latex(pred)
    gb, pb = _BASE_RE.match(gc), _BASE_RE.match(pc)
    if gb and pb:
        g, p = _in_base(gb), _in_base(pb)
        if g is not None or p is not None:  # "8_7" is no base-7 numeral
            return Verdict(g == p, "fast:base")
    gt, pt = _TIME_RE.match(gc), _TIME_RE.match(pc)
    if gt and pt:
        norm = lambda m: (int(m.group(1)), m.group(2), m.group(3) or "00", (m.group(4) or "").replace(".", "").lower())
        return Verdict(norm(gt) == norm(pt), "fast:clock_time")
    for a, b in ((gc, pc), (pc, gc)):
        m = _DECIMAL_COMMA_RE.match(a)
        if m is None:
            continue
        other = _safe_number(b)
        if isinstance(other, Num) and not other.exact and "." in b:
            whole, frac = (m.group(1), m.group(2)) if m.group(1) is not None else (m.group(3), m.group(4))
            if Fraction(f"{whole}.{frac}") == other.value:
                return Verdict(True, "fast:decimal_comma")
    return None


def _compare_any(gold: str, pred: str, depth: int = 0) -> Verdict | None:
    if depth > 4:
        return None
    if canonical(gold) == canonical(pred):
        return Verdict(True, "fast:string")
    gn, pn = _safe_number(gold), _safe_number(pred)
    if gn == "zero-division" or pn == "zero-division":
        return Verdict(None, "fast:division_by_zero")
    if isinstance(gn, Num) and isinstance(pn, Num):
        eq = numbers_equal(gn, pn)
        return Verdict(eq, "fast:number") if eq is not None else None
    special = _special_forms(gold, pred)
    if special is not None:
        return special
    g, p = shape_of(gold), shape_of(pred)
    if g.kind == "scalar" and p.kind == "scalar":
        return _scalar(gold, pred)
    return _compare_shapes(g, p)


_CHAIN_SPLIT_RE = re.compile(r"(?<![<>!\\])=(?!=)")


def _last_of_chain(s: str) -> str:
    """``"2 + 5/3 + 1 = 3 + 5/3 = 14/3"`` -> ``"14/3"`` (math-verify reads an
    equation chain by its last member); other strings unchanged."""
    c, _, _ = clean_latex(s)
    if c.count("=") < 2 or "," in c or ";" in c or _INEQ_RE.search(c) or "\\approx" in c:
        return s
    parts = _CHAIN_SPLIT_RE.split(c)
    return parts[-1].strip() if len(parts) >= 3 and parts[-1].strip() else s


def _strip_assignment(s: str) -> tuple[str | None, str]:
    s = _last_of_chain(s) if not _ASSIGN_RE.match(clean_latex(s)[0]) else s
    c, _, _ = clean_latex(s)
    m = _ASSIGN_RE.match(c)
    if m is None:
        return None, s
    rest = c[m.end():]
    if "," in rest or ";" in rest:
        return None, s
    if _RELATION_RE.search(rest):
        # "x = 5 + 5 + 1 = 11": an assignment chain, keep its last member
        if rest.count("=") >= 1 and not _INEQ_RE.search(rest) and "\\approx" not in rest:
            return m.group(1), _CHAIN_SPLIT_RE.split(rest)[-1].strip()
        return None, s
    return m.group(1), rest


def _assignment_list(s: str) -> str | None:
    """``"x = 6 or x = -2"``, ``"x=-4 \\text{ or } x=4"``, ``"x = 1, x = 3"`` -> the values, ``"6, -2"``: the solutions
    of one unknown listed as assignments (read as a chain, "x = 6 or x = -2" would be its last member alone).
    ``None`` unless there are several items, each one assignment of the same name."""
    if s.count("=") < 2:
        return None
    shape = shape_of(s)
    if shape.kind != "list" or len(shape.items) < 2:
        return None
    names, values = set(), []
    for item in shape.items:
        c = clean_latex(item)[0]
        m = _ASSIGN_RE.match(c)
        if m is None or _RELATION_RE.search(c[m.end():]):
            return None
        names.add(m.group(1).replace(" ", ""))
        values.append(c[m.end():].strip())
    return ", ".join(values) if len(names) == 1 and all(values) else None


def fast_compare(gold: str, pred: str) -> Verdict | None:
    """Verdict from the cheap checks, or ``None`` to ask math-verify."""
    if canonical(gold) == canonical(pred):
        return Verdict(True, "fast:string")
    gold = _assignment_list(gold) or gold
    pred = _assignment_list(pred) or pred
    # sets of reals: the empty set's spellings, inequalities vs intervals (see .sets)
    if looks_like_set(gold) or looks_like_set(pred):
        same = compare_sets(gold, pred)
        if same is not None:
            return Verdict(same, "fast:real_set")
    alts = gold_alternatives(gold)
    if alts is not None:
        verdicts = [_compare_any(a, pred) for a in alts]
        if any(v is not None and v.equivalent for v in verdicts):
            return Verdict(True, "fast:alternatives")
        if all(v is not None and v.equivalent is False for v in verdicts):
            return Verdict(False, "fast:alternatives")
        return None
    # math-verify's rule: an assignment ("x = 5", "f(t) = ...") or an equation
    # chain is read as its right-hand side when the other answer is not a
    # relation itself
    g_rel = bool(_RELATION_RE.search(clean_latex(gold)[0]))
    p_rel = bool(_RELATION_RE.search(clean_latex(pred)[0]))
    gvar, grest = _strip_assignment(gold)
    pvar, prest = _strip_assignment(pred)
    if gvar is not None and pvar is not None:
        if gvar != pvar:
            return None  # "x = 1" vs "y = 1": let math-verify decide
        return _compare_any(grest, prest)
    if g_rel and p_rel:
        return _compare_any(gold, pred)
    if g_rel:
        return _compare_any(grest, pred)
    if p_rel:
        return _compare_any(gold, prest)
    return _compare_any(gold, pred)
