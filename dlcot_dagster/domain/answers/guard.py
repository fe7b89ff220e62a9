"""Refuse inputs that are too large or would make sympy compute huge values.

Applied to the strings handed to math-verify, after the fast path.  A refusal
becomes a "cannot tell" verdict.  The time box (see :mod:`.runner`) is the
real safety net; this pre-screen only avoids burning the whole time budget on
inputs that are hopeless anyway (power towers, nested factorials, megabyte
strings, pathological nesting).
"""

from __future__ import annotations

import math
import re

__all__ = ["hostile_reason", "MAX_MV_CHARS", "MAX_NESTING"]

#: longest string handed to math-verify (longer free text is cut to its tail)
MAX_MV_CHARS = 6000
#: deepest bracket nesting handed to math-verify
MAX_NESTING = 40
#: largest number of decimal digits a numeric power may have
MAX_POWER_DIGITS = 10_000
#: largest argument of a factorial
MAX_FACTORIAL = 2_000

_NESTED_FACTORIAL_RE = re.compile(r"!\s*!|!\s*\)\s*!|!\s*\}\s*!")
_FACTORIAL_RE = re.compile(r"(\d{1,12})\s*!")
_LONG_NUMBER_RE = re.compile(r"\d{600,}")
# a numeric base raised to a numeric exponent: 9^{9}, 9^9, 9**9
_POW_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:\^|\*\*)\s*(?:\{\s*([+-]?\d+(?:\.\d+)?)\s*\}|([+-]?\d+(?:\.\d+)?))")
_TOWER_HINT_RE = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\d+\s*\^|\*\*\s*\d+\s*\*\*")


def _nesting_depth(s: str) -> int:
    depth = best = 0
    for ch in s:
        if ch in "([{":
            depth += 1
            if depth > best:
                best = depth
        elif ch in ")]}":
            depth = max(0, depth - 1)
    return best


def _digits_of_power(base: float, exponent: float) -> float:
    if base <= 1.0:
        return 0.0
    return exponent * math.log10(base)


def _collapse_powers(s: str) -> tuple[str, bool]:
    """Replace innermost numeric powers by their size estimate; report True
    when one would have more than MAX_POWER_DIGITS digits."""
    for _ in range(12):
        changed = False

        def repl(m: re.Match[str]) -> str:
            nonlocal changed
            changed = True
            base = float(m.group(1))
            exp_s = m.group(2) or m.group(3)
            exp = float(exp_s)
            if exp <= 0:
                return "1"
            digits = _digits_of_power(base, exp)
            if digits > MAX_POWER_DIGITS:
                raise OverflowError
            if digits > 15:
                return "9" * min(300, int(digits))
            return str(int(base**exp)) if base == int(base) else "1"

        try:
            s2 = _POW_RE.sub(repl, s)
        except (OverflowError, ValueError):
            return s, True
        s2 = re.sub(r"\{\s*(\d+)\s*\}", r"\1", s2)
        if not changed or s2 == s:
            break
        s = s2
    return s, False


def hostile_reason(s: str) -> str | None:
    """Why ``s`` must not reach sympy, or ``None`` when it may."""
    if len(s) > MAX_MV_CHARS:
        return "too_long"
    if _nesting_depth(s) > MAX_NESTING:
        return "too_deeply_nested"
    if _LONG_NUMBER_RE.search(s):
        return "huge_number_literal"
    if "!" in s:
        if _NESTED_FACTORIAL_RE.search(s):
            return "nested_factorial"
        for m in _FACTORIAL_RE.finditer(s):
            if int(m.group(1)) > MAX_FACTORIAL:
                return "huge_factorial"
    if "^" in s or "**" in s:
        for m in _POW_RE.finditer(s):
            exp = float(m.group(2) or m.group(3))
            if _digits_of_power(float(m.group(1)), exp) > MAX_POWER_DIGITS:
                return "huge_power"
        if _TOWER_HINT_RE.search(s):
            _, bad = _collapse_powers(s)
            if bad:
                return "power_tower"
    return None
