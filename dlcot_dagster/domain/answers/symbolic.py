"""The math-verify stage: ``parse`` both sides, then ``verify``.

This module does no time-boxing itself: math-verify's own ``signal.alarm``
timeouts are switched off (``parsing_timeout=None``, ``timeout_seconds=None``)
and the caller runs :func:`mv_compare` under one overall deadline (see
:mod:`.runner`): a ``setitimer`` alarm in the main thread, or a worker
subprocess that is killed when it overruns.

Safety of math-verify's parsing (checked against math-verify 0.9 source):

* ``LatexExtractionConfig`` goes through latex2sympy2_extended's ANTLR
  grammar, which builds sympy objects from the parse tree; no ``eval``.
* ``ExprExtractionConfig`` does call ``sympy.parse_expr(expr,
  evaluate=False)`` (which uses ``eval`` internally), but only on substrings
  matched by its own regex, whose character class is digits, whitespace,
  ``.`` and the operators ``+ - * × / ^ ( ) ÷``: no names can reach ``eval``,
  so no code can run.  What remains is resource use (``9**9**9`` parses
  unevaluated but a later comparison may try to evaluate it), which the guard
  and the deadline cover.  We keep ``ExprExtractionConfig`` because free-text
  answers such as "1,000.99m²" or "the answer is 2/3" need it.

Our own code never calls ``eval``, ``sympify`` or ``parse_expr``.
"""

from __future__ import annotations

import logging

from .cache import LRUCache

__all__ = ["mv_compare", "warm_up", "is_warm", "parse_memo_info"]

_CONFIG = None
#: parsed math-verify results by input text (sympy objects are immutable, so
#: sharing them is safe); used only when the caller's cache is enabled
_PARSE_MEMO: LRUCache[list] = LRUCache(8192)


def parse_memo_info():
    return _PARSE_MEMO.info()


def _parse(text: str, memo: bool) -> list:
    from math_verify import parse

    if memo:
        hit = _PARSE_MEMO.get(text)
        if hit is not None:
            return hit
    result = parse(text, _config(), parsing_timeout=None)
    if memo:
        _PARSE_MEMO.put(text, result)
    return result


def _config():
    global _CONFIG
    if _CONFIG is None:
        import math_verify.grader as _grader
        import math_verify.parser as _parser
        from math_verify import ExprExtractionConfig, LatexExtractionConfig

        # We pass timeouts of None on purpose (the caller time-boxes); silence
        # math-verify's one-off warning about it.
        _parser.TIMEOUT_WARNING_SHOWN = True
        _grader.TIMEOUT_WARNING_SHOWN = True
        logging.getLogger("math_verify").setLevel(logging.ERROR)
        _CONFIG = [LatexExtractionConfig(), ExprExtractionConfig()]
    return _CONFIG


_WARM = False
_WARM_PAIRS = (
    ("$1$", "$1$"),
    ("$\\frac{1}{2}$", "$0.5$"),
    ("$(x+1)^2$", "$x^2+2x+1$"),
    ("$\\sin(x)^2+\\cos(x)^2$", "$1$"),
    ("$[0,1)$", "$(0,1]$"),
    ("$\\{1,2\\}$", "$1,2$"),
    ("$x \\geq 5$", "$5 \\leq x$"),
    ("$y = 2x+1$", "$2x+1$"),
    ("$\\begin{pmatrix}1\\\\2\\end{pmatrix}$", "$\\begin{pmatrix}1\\\\2\\end{pmatrix}$"),
    ("$\\binom{x}{2}$", "$x(x-1)/2$"),
    ("$10\\%$", "$0.1$"),
)


def warm_up() -> None:
    """Import math-verify/sympy and run a few representative comparisons, so
    that one-off costs (imports of sympy submodules on first use, the ANTLR
    parser building its tables) are not charged to the first real pair's time
    box.  Idempotent; takes a second or two the first time."""
    global _WARM
    if _WARM:
        return
    for gold, pred in _WARM_PAIRS:
        mv_compare(gold, pred)
    _WARM = True


def is_warm() -> bool:
    return _WARM


def _is_degenerate(x) -> bool:
    try:
        from sympy import nan, zoo

        if x is nan or x is zoo:
            return True
        atoms = getattr(x, "atoms", None)
        if atoms is not None:
            found = atoms()
            return zoo in found or nan in found
    except Exception:
        return True
    return False


def _relation_names(x) -> frozenset[str] | None:
    """The unknowns of an equation or inequality (its free symbols and the names of the undefined functions it
    applies, "v_o" of "v_o(t)"); None for anything else."""
    try:
        from sympy.core.function import AppliedUndef
        from sympy.core.relational import Relational

        if not isinstance(x, Relational):
            return None
        return frozenset({str(s) for s in x.free_symbols} | {str(f.func) for f in x.atoms(AppliedUndef)})
    except Exception:
        return None


def mv_compare(gold_text: str, pred_text: str, memo: bool = False) -> tuple[bool | None, str]:
    """(equivalent, reason) from math-verify for two texts to parse.
    ``memo`` reuses earlier parses of the same text."""
    from math_verify import verify

    gold = _parse(gold_text, memo)
    pred = _parse(pred_text, memo)
    if not gold:
        return None, "math_verify:gold_unparsed"
    if not pred:
        return None, "math_verify:pred_unparsed"
    gold_sym = [g for g in gold if not isinstance(g, str)]
    pred_sym = [p for p in pred if not isinstance(p, str)]
    if any(_is_degenerate(x) for x in gold_sym + pred_sym):
        return None, "math_verify:undefined_value"
    errors = 0
    for g in gold:
        for p in pred:
            gn, pn = _relation_names(g), _relation_names(p)
            if gn is not None and pn is not None and gn != pn:
                # two equations in different unknowns are different equations: math-verify says so too, after
                # trying to rearrange them (seconds to minutes on differential equations: "LC v_o'' + v_o = v_i")
                continue
            try:
                if verify(g, p, timeout_seconds=None, raise_on_error=True):
                    return True, "math_verify"
            except Exception:
                errors += 1
    if not gold_sym or not pred_sym:
        # only the raw strings were extracted on one side: the strings differ,
        # which proves nothing about the mathematics
        return None, "math_verify:unparsed"
    if errors:
        return None, "math_verify:error"
    return False, "math_verify"
