"""Intermediate error states: a computation on the kept trunk that a later line contradicts and replaces.

DLCoT's third step removes erroneous intermediate states and keeps the corrected work. Retractions ("that's
wrong") and marked re-assignments ("Actually, x = 7") are handled in :mod:`.correct`; this module finds the
*unmarked* ones: the same computation stated twice with two results.

A **computation statement** is ``E = V`` (or ``E is V``) where ``E`` holds an operator and a digit (``3*17``,
``2^{10} - 24``, ``\\frac{84}{12}``, ``a + 2b``) and ``V`` is a number. ``E`` is compared without spaces, ``$``,
braces and ``\\left``/``\\right``; a bare variable (``x = 5``) is never a computation here: a variable legitimately
takes many values.

An earlier statement ``E = V1`` is an **error state** when a later kept statement says ``E = V2`` with ``V2 != V1``
and either

* ``E`` is pure arithmetic and evaluates to ``V2``, not ``V1`` (exact check by the answer package's LaTeX probe:
  no ``eval``), or
* the later statement or the sentence before it carries a correction marker ("wait", "actually", "no,", "mistake",
  "recalculate", "should be", "correct", ...).

What goes: the sentence of the wrong statement, and up to ``max_follow`` following sentences that carry the wrong
value on (they mention ``V1``) before the correction starts, at most ``max_chars`` characters, never a protected
answer statement, display math, or text that another edit touches. Each removal is an :class:`Edit` with
``inserted=""`` and ``reason="error_state_corrected_at:<offset of the correcting statement>"``, so the edit list
names every such removal; the corrected computation stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import sentence_spans
from .types import Edit

# "= 41" / "is 41" / "equals 41" not followed by more of an expression; the expression is read backwards from it
_VALUE_RE = re.compile(r"(?:=|\bequals\b|\bis\b)\s*\$?\s*(?P<val>-?\d[\d,]*(?:\.\d+)?)"
                       r"(?![\d.,]*\s*[-+*/×÷^(√π°%!])(?![\d.,]*[\\a-zA-Z])")
# atomic alternatives, possessive repetition: a failed "$" never backtracks into the run (no exponential blow-up)
_LHS_TAIL_RE = re.compile(
    r"(?:(?>\\[a-zA-Z]+)|(?>\d+(?:\.\d+)?)|(?<![A-Za-z])[A-Za-z](?![A-Za-z])|[()\[\]{}+\-*/^×÷·⋅_= \t])++$"
)
_FUNC_CALL_RE = re.compile(r"[A-Za-z]\(")  # P(X, f(2): a function of something, not arithmetic
_HAS_OP_RE = re.compile(r"[+\-*/^×÷·⋅]|\\(?:frac|times|cdot|sqrt|div)")
_LETTER_RE = re.compile(r"(?<!\\)[A-Za-z]")
_NORM_RE = re.compile(r"\s+|\$|\\left|\\right|[{}]")
_CORRECTION_RE = re.compile(
    r"\b(?:wait|actually|mistake|miscalculat\w*|recalculat\w*|recomput\w*|re-?do|correct(?:ion|ly|ed)?|should be|"
    r"should have|oops|error|wrong|not right|let me (?:re)?check|no,)\b|\bno\b(?=[,.!])",
    re.IGNORECASE,
)
# arithmetic that is not the usual one: other bases, residues, carries, clocks
_OTHER_ARITH_RE = re.compile(r"\b(?:base|binary|mod|modulo|carry\w*|octal|hexadecimal|hex|clock|digit sum)\b|≡|\\equiv|"
                             r"\\pmod|\\bmod|_\{?\d+\}?\b", re.IGNORECASE)
_DISPLAY = re.compile(r"\\\[|\\\]|\$\$|```")
_OPS_TR = str.maketrans({"×": "*", "·": "*", "⋅": "*", "÷": "/"})


@dataclass(frozen=True)
class _Stmt:
    expr: str
    value: float
    sent: int  # sentence index
    pos: int  # offset of the statement


_ASCII_DIGIT_RE = re.compile(r"[0-9]")


def _has_digit(s: str) -> bool:
    """``any(ch.isdigit() for ch in s)``, scanning in C: the only ASCII digits are 0-9, and a non-ASCII text may hold
    others ("²", "①")."""
    return _ASCII_DIGIT_RE.search(s) is not None or (not s.isascii() and any(map(str.isdigit, s)))


def _num(s: str) -> float | None:
    try:
        return float(s.replace(",", ""))
    except ValueError:
        return None


def _arith_value(expr: str) -> float | None:
    """Value of a pure-arithmetic expression (no letters) with the answer package's probe parser."""
    if _LETTER_RE.search(expr.replace("\\frac", "").replace("\\times", "").replace("\\cdot", "").replace("\\sqrt", "")):
        return None
    from dlcot_dagster.domain.answers.probe import Unsupported, _eval, _symbols, parse_expression

    try:
        tree = parse_expression(expr.translate(_OPS_TR))
        if _symbols(tree, set()):
            return None
        z = _eval(tree, {})
    except (Unsupported, RecursionError, ValueError, OverflowError, ZeroDivisionError, KeyError, IndexError):
        return None
    return z.real if abs(z.imag) < 1e-9 else None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def statements(sentence: str) -> list[tuple[str, float, int]]:
    """(normalized expression, value, offset) of the computation statements of one sentence."""
    out = []
    for m in _VALUE_RE.finditer(sentence):
        w0 = max(0, m.start() - 80)
        lm = _LHS_TAIL_RE.search(sentence, w0, m.start())
        if lm is None:
            continue
        # the expression must start at a boundary: "4! × 2 × 2 = 24" is not a statement about "2 × 2"
        start = lm.start() + len(lm.group(0)) - len(lm.group(0).lstrip())
        before = sentence[start - 1] if start > 0 else " "
        if not (before.isspace() or before in "([{:,;$="):
            continue
        raw = lm.group(0).strip()
        # the expression is the last chain member before the value: "x = 3*17 = 41" -> "3*17"
        raw = raw.split("=")[-1].strip()
        if not raw or raw[0] in "+*/^×÷·⋅" or not _HAS_OP_RE.search(raw[1:]) or not _has_digit(raw):
            continue
        if _FUNC_CALL_RE.search(raw):
            continue
        val = _num(m.group("val"))
        if val is None:
            continue
        expr = _NORM_RE.sub("", raw).translate(_OPS_TR).rstrip("+-*/^ ")
        if len(expr) < 3:
            continue
        out.append((expr, val, start))
    return out


def error_state_edits(
    text: str,
    pieces: list[tuple[int, int]],
    protected: list[tuple[int, int]],
    busy: list[tuple[int, int]],
    max_follow: int = 3,
    max_chars: int = 800,
    max_gap: int = 8,
) -> list[Edit]:
    """Edits removing contradicted computations inside the kept ``pieces`` (see the module docstring).

    ``busy``: spans other edits already touch (no overlap allowed).
    """
    sents: list[tuple[int, int]] = []
    piece_of: list[int] = []
    for k, (a, b) in enumerate(pieces):
        for sa, sb in sentence_spans(text, a, b):
            sents.append((sa, sb))
            piece_of.append(k)
    seen: dict[str, _Stmt] = {}
    errors: list[tuple[_Stmt, _Stmt]] = []
    flagged: set[int] = set()
    for i, (sa, sb) in enumerate(sents):
        sent = text[sa:sb]
        if len(sent) > 1500 or not _has_digit(sent):
            continue
        for expr, val, off in statements(sent):
            prev = seen.get(expr)
            cur = _Stmt(expr, val, i, sa + off)
            if prev is not None and not _close(prev.value, val) and prev.sent not in flagged:
                context = text[sents[prev.sent][0]:sents[prev.sent][1]] + sent
                if _OTHER_ARITH_RE.search(context):
                    wrong = False
                else:
                    truth = _arith_value(expr)
                    if truth is not None:
                        # the later value is right and the earlier one wrong, not merely rounded ("7.5^4 = 3164")
                        wrong = _close(truth, val) and abs(truth - prev.value) > max(0.5, 1e-3 * abs(truth))
                    else:
                        # an expression in variables: only an explicitly corrected one, close by
                        wrong = i - prev.sent <= max_gap and _CORRECTION_RE.search(sent) is not None
                if wrong:
                    errors.append((prev, cur))
                    flagged.add(prev.sent)
            seen[expr] = cur
    edits: list[Edit] = []
    taken = list(busy)
    for err, fix in errors:
        i = err.sent
        a = sents[i][0]
        b = sents[i][1]
        wrong_val = _fmt(err.value)
        j = i + 1
        while (
            j < fix.sent
            and j - i <= max_follow
            and piece_of[j] == piece_of[i]
            and _mentions(text[sents[j][0]:sents[j][1]], wrong_val)
            and not _CORRECTION_RE.search(text[sents[j][0]:sents[j][1]])
        ):
            b = sents[j][1]
            j += 1
        if fix.sent <= i or b - a > max_chars:
            continue
        # keep the whitespace that separates the next sentence
        seg = text[a:b]
        if _DISPLAY.search(seg) or any(pa < b and a < pb for pa, pb in protected):
            continue
        if any(ta < b and a < tb for ta, tb in taken):
            continue
        edits.append(Edit(pos=a, removed=seg, inserted="", reason=f"error_state_corrected_at:{fix.pos}"))
        taken.append((a, b))
    return edits


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(v)


def _mentions(sentence: str, value: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(value)}(?![\d])", sentence.replace(",", "")) is not None
