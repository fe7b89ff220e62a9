"""Numeric identity probe for single LaTeX expressions, without sympy.

A small recursive-descent parser reads a conservative subset of LaTeX
(numbers, ``+ - * / ^``, ``\\cdot``, ``\\times``, implicit products,
``\\frac``, ``\\sqrt``, ``\\sqrt[n]``, trigonometric/hyperbolic functions,
``\\ln``, ``\\exp``, ``e^{..}``, ``\\pi``, ``i``, Latin and Greek symbols
with subscripts) into a tiny AST that is evaluated with Python complex
arithmetic at a few pseudo-random complex points (the same points for both
sides, chosen per symbol name).  Two expressions that agree at all points to
1e-9 are equivalent (identity theorem for analytic expressions; probability
of a false "equal" is negligible); expressions that differ by more than 1e-6
somewhere are not.  Everything else - including any construct outside the
subset, a different set of free symbols, or overflow - gives ``None`` and the
pair goes to math-verify.

Ambiguous notation is refused rather than guessed: ``f(x)`` (function call or
product?), ``a/bc``, ``\\sin 2x``, ``\\log`` (which base?), primes, dots,
absolute values, factorials, relations, lists.

No ``eval``, no ``sympify``: the parser builds tuples and the evaluator only
does arithmetic on Python complex numbers with size checks.
"""

from __future__ import annotations

import cmath
import math
import random
import re

from .normalize import clean_latex

__all__ = ["probe_compare", "Unsupported", "parse_expression"]

MAX_PROBE_CHARS = 400
MAX_PROBE_NODES = 400
_POINTS = 4
_EQUAL_TOL = 1e-9
_DIFF_TOL = 1e-6
_HUGE = 1e60


class Unsupported(Exception):
    """Outside the subset this probe understands."""


_TOKEN_RE = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?|\.\d+)|(?P<cmd>\\[a-zA-Z]+)|(?P<letter>[a-zA-Z])|(?P<sym>\\[{}]|[-+*/^_(){}\[\]!,=<>|'.:;&]))"
)

_FUNCS = {
    "\\sin": cmath.sin, "\\cos": cmath.cos, "\\tan": cmath.tan,
    "\\sec": lambda z: 1 / cmath.cos(z), "\\csc": lambda z: 1 / cmath.sin(z),
    "\\cot": lambda z: 1 / cmath.tan(z),
    "\\arcsin": cmath.asin, "\\arccos": cmath.acos, "\\arctan": cmath.atan,
    "\\sinh": cmath.sinh, "\\cosh": cmath.cosh, "\\tanh": cmath.tanh,
    "\\ln": cmath.log, "\\exp": cmath.exp,
    # math-verify's LaTeX parser reads a bare \\log as base 10; so do we
    "\\log": cmath.log10,
}
_GREEK = {
    "\\alpha", "\\beta", "\\gamma", "\\delta", "\\epsilon", "\\varepsilon", "\\zeta", "\\eta",
    "\\theta", "\\vartheta", "\\iota", "\\kappa", "\\lambda", "\\mu", "\\nu", "\\xi", "\\rho",
    "\\sigma", "\\tau", "\\upsilon", "\\phi", "\\varphi", "\\chi", "\\psi", "\\omega",
    "\\Gamma", "\\Delta", "\\Theta", "\\Lambda", "\\Xi", "\\Sigma", "\\Phi", "\\Psi", "\\Omega",
}
_MUL_CMDS = {"\\cdot", "\\times"}
_DIV_CMDS = {"\\div"}
_ACCENTS = {"\\dot", "\\ddot", "\\hat", "\\bar", "\\tilde", "\\vec", "\\overline"}
_KNOWN_CMDS = _ACCENTS | set(_FUNCS) | _GREEK | _MUL_CMDS | _DIV_CMDS | {"\\frac", "\\sqrt", "\\pi", "\\binom"}
# longest first so that "\\thetat" splits as \\theta + t, not \\eta...
_SPLITTABLE = sorted(_GREEK | {"\\pi"}, key=len, reverse=True)


def _tokenize(s: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    n = len(s)
    while pos < n:
        m = _TOKEN_RE.match(s, pos)
        if m is None or m.end() == pos:
            if s[pos:].strip() == "":
                break
            raise Unsupported(f"character {s[pos]!r}")
        kind = m.lastgroup
        assert kind is not None
        val = m.group(kind)
        if kind == "cmd" and val not in _KNOWN_CMDS:
            # "\omegat" (spaces stripped from "\omega t"): read as \omega t,
            # as math-verify's LaTeX parser does
            head = next((c for c in _SPLITTABLE if val.startswith(c)), None)
            if head is not None:
                out.append(("cmd", head))
                out.extend(("letter", ch) for ch in val[len(head):])
                pos = m.end()
                continue
        out.append((kind, val))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.toks = tokens
        self.i = 0
        self.nodes = 0

    # -- helpers
    def peek(self, k: int = 0) -> tuple[str, str] | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise Unsupported("unexpected end")
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        tok = self.take()
        if tok[1] != value:
            raise Unsupported(f"expected {value!r}")

    def node(self, *parts):
        self.nodes += 1
        if self.nodes > MAX_PROBE_NODES:
            raise Unsupported("too large")
        return parts

    # -- grammar
    def parse(self):
        e = self.expr()
        if self.peek() is not None:
            raise Unsupported(f"trailing {self.peek()[1]!r}")  # type: ignore[index]
        return e

    def expr(self):
        if self.peek() and self.peek()[1] in "+-":  # type: ignore[index]
            sign = self.take()[1]
            left = self.term()
            if sign == "-":
                left = self.node("neg", left)
        else:
            left = self.term()
        while True:
            tok = self.peek()
            if tok is None or tok[1] not in ("+", "-"):
                return left
            self.take()
            right = self.term()
            left = self.node("add" if tok[1] == "+" else "sub", left, right)

    def _starts_factor(self, tok) -> bool:
        if tok is None:
            return False
        kind, val = tok
        if kind in ("num", "letter"):
            return True
        if kind == "cmd":
            return val in _FUNCS or val in _GREEK or val in ("\\frac", "\\sqrt", "\\pi", "\\binom")
        return val in ("(", "{", "[")

    def term(self):
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None:
                return left
            kind, val = tok
            if val in ("*", "/") or val in _MUL_CMDS or val in _DIV_CMDS:
                self.take()
                right = self.unary()
                if val == "/" or val in _DIV_CMDS:
                    # "a/bc": (a/b)c or a/(bc)?  refuse
                    if self._starts_factor(self.peek()):
                        raise Unsupported("ambiguous division")
                    left = self.node("div", left, right)
                else:
                    left = self.node("mul", left, right)
            elif self._starts_factor(tok):
                right = self.power()
                left = self.node("mul", left, right)
            else:
                return left

    def unary(self):
        tok = self.peek()
        if tok is not None and tok[1] in ("+", "-"):
            self.take()
            inner = self.unary()
            return self.node("neg", inner) if tok[1] == "-" else inner
        return self.power()

    def power(self):
        base = self.primary()
        tok = self.peek()
        if tok is not None and tok[1] == "^":
            self.take()
            exp = self.exponent()
            return self.node("pow", base, exp)
        if tok is not None and tok[1] in ("!", "'", "_"):
            raise Unsupported(tok[1])
        return base

    def exponent(self):
        tok = self.peek()
        if tok is None:
            raise Unsupported("missing exponent")
        if tok[1] == "{":
            return self.group()
        if tok[0] == "num":
            self.take()
            # TeX takes one digit: x^23 is x^2 * 3 - refuse rather than guess
            if len(tok[1]) > 1:
                raise Unsupported("multi-digit bare exponent")
            return self.node("num", complex(int(tok[1])), False)
        if tok[0] == "letter":
            self.take()
            return self._symbol_or_const(tok[1])
        if tok[0] == "cmd" and (tok[1] in _GREEK or tok[1] == "\\pi"):
            self.take()
            return self._symbol_or_const(tok[1])
        if tok[1] == "-":
            raise Unsupported("bare negative exponent")
        raise Unsupported("exponent")

    def group(self):
        self.expect("{")
        e = self.expr()
        self.expect("}")
        return e

    def _subscript(self) -> str:
        if self.peek() is None or self.peek()[1] != "_":  # type: ignore[index]
            return ""
        self.take()
        tok = self.take()
        if tok[1] == "{":
            parts = []
            depth = 1
            while True:
                t = self.take()
                if t[1] == "{":
                    depth += 1
                elif t[1] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                parts.append(t[1])
            return "_" + "".join(parts)
        if tok[0] in ("num", "letter") or tok[1] in _GREEK:
            sub = tok[1]
            if tok[0] == "num" and len(sub) > 1:
                sub = sub[0]
                raise Unsupported("multi-digit bare subscript")
            return "_" + sub
        raise Unsupported("subscript")

    def _symbol_or_const(self, name: str):
        if name == "\\pi":
            return self.node("num", complex(math.pi), False)
        if name == "e":
            return self.node("num", complex(math.e), False)
        if name == "i":
            return self.node("num", 1j, False)
        return self.node("sym", name)

    def primary(self):
        tok = self.take()
        kind, val = tok
        if kind == "num":
            return self.node("num", complex(float(val)), "." in val)
        if val in ("(", "["):
            close = ")" if val == "(" else "]"
            e = self.expr()
            self.expect(close)
            return e
        if val == "{":
            e = self.expr()
            self.expect("}")
            return e
        if val == "|":
            e = self.expr()
            self.expect("|")
            return self.node("abs", e)
        if kind == "letter":
            sub = self._subscript()
            name = (val + sub).lower()
            fn = self._function_application(name)
            if fn is not None:
                return fn
            if sub:
                return self.node("sym", name)
            return self._symbol_or_const(val if val in ("e", "i") else val.lower())
        if kind == "cmd":
            if val == "\\frac":
                num = self.group()
                den = self.group()
                return self.node("div", num, den)
            if val == "\\binom":
                n_ = self.group()
                k_ = self.group()
                return self.node("binom", n_, k_)
            if val == "\\sqrt":
                index = None
                if self.peek() is not None and self.peek()[1] == "[":  # type: ignore[index]
                    self.take()
                    index = self.expr()
                    self.expect("]")
                arg = self.group()
                if index is None:
                    return self.node("sqrt", arg)
                return self.node("root", arg, index)
            if val in _FUNCS:
                return self._function(val)
            if val in _ACCENTS:
                # \dot{x}_0: an accented symbol is a symbol of its own
                inner = self.group()
                if inner[0] != "sym":
                    raise Unsupported("accent on an expression")
                sub = self._subscript()
                return self.node("sym", f"{val}{{{inner[1]}}}{sub}".lower())
            if val in _GREEK or val == "\\pi":
                sub = self._subscript() if val != "\\pi" else ""
                if val != "\\pi":
                    fn = self._function_application((val + sub).lower())
                    if fn is not None:
                        return fn
                if sub:
                    return self.node("sym", (val + sub).lower())
                return self._symbol_or_const(val)
        raise Unsupported(f"token {val!r}")

    def _function_application(self, name: str):
        """``x(t)``: a call of an unknown function when the parentheses hold a
        single symbol (math-verify's parser reads it so); ``a(b+c)`` stays a
        product."""
        t0, t1, t2 = self.peek(), self.peek(1), self.peek(2)
        if t0 is None or t0[1] != "(" or t1 is None or t2 is None or t2[1] != ")":
            return None
        if not (t1[0] == "letter" or t1[1] in _GREEK):
            return None
        self.i += 3
        arg_name = t1[1] if t1[1] in _GREEK else t1[1].lower()
        return self.node("fn", name, self.node("sym", arg_name))

    def _function(self, name: str):
        if name == "\\log" and self.peek() is not None and self.peek()[1] == "_":  # type: ignore[index]
            self.take()
            tok = self.peek()
            if tok is not None and tok[1] == "{":
                base = self.group()
            elif tok is not None and tok[0] == "num" and len(tok[1]) == 1:
                self.take()
                base = self.node("num", complex(int(tok[1])), False)
            else:
                raise Unsupported("log base")
            arg = self._function("\\ln")
            return self.node("div", arg, self.node("call", "\\ln", base))
        power = None
        if self.peek() is not None and self.peek()[1] == "^":  # type: ignore[index]
            # \sin^2 x  (but \sin^{-1} is an inverse: refuse)
            self.take()
            power = self.exponent()
            if power[0] == "neg":
                raise Unsupported("inverse function notation")
        tok = self.peek()
        if tok is None:
            raise Unsupported("function without argument")
        if tok[1] == "(":
            self.take()
            arg = self.expr()
            self.expect(")")
        elif tok[1] == "{":
            arg = self.group()
        else:
            arg = self.power()
            nxt = self.peek()
            # "\sin 2x": is it sin(2x) or sin(2)x?  refuse
            if nxt is not None and (nxt[0] in ("num", "letter") or nxt[1] in _GREEK or nxt[1] in ("(", "\\pi")):
                raise Unsupported("ambiguous function argument")
        call = self.node("call", name, arg)
        if power is not None:
            return self.node("pow", call, power)
        return call


_TRAILING_UNIT_RE = re.compile(
    r"(?:\s*(?:\\,|\\;|\\ |~)?\s*\\(?:text|mbox|mathrm|textnormal|textrm)\s*\{[^{}]*\}(?:\s*\^\s*\{?\s*-?\d\s*\}?)?)+\s*$"
)
_LETTER_RUN_RE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{4,}|(?<![\\a-zA-Z])(?:the|and|for|one|two|six|ten|yes|not|are|per)(?![a-zA-Z])", re.IGNORECASE)


def parse_expression(s: str):
    """AST of a LaTeX expression in the supported subset.  A trailing
    ``\\text{...}`` (a unit) is ignored; any other text is refused."""
    s = _TRAILING_UNIT_RE.sub("", s)
    if "\\text" in s or "\\mbox" in s:
        raise Unsupported("text inside an expression")
    text, pct, deg = clean_latex(s)
    if _LETTER_RUN_RE.search(text):
        raise Unsupported("words")
    if pct or deg:
        raise Unsupported("percent/degree")
    if len(text) > MAX_PROBE_CHARS:
        raise Unsupported("too long")
    text = text.replace("\\left", "").replace("\\right", "")
    tree = _Parser(_tokenize(text)).parse()
    return tree


def _symbols(tree, out: set[str]) -> set[str]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if node[0] == "sym":
            out.add(node[1])
        elif node[0] == "num":
            continue
        elif node[0] == "fn":
            stack.append(node[2])
        else:
            stack.extend(x for x in node[1:] if isinstance(x, tuple))
    return out


def _has_decimal(tree) -> bool:
    stack = [tree]
    while stack:
        node = stack.pop()
        if node[0] == "num":
            if node[2]:
                return True
        elif node[0] == "fn":
            stack.append(node[2])
        elif node[0] != "sym":
            stack.extend(x for x in node[1:] if isinstance(x, tuple))
    return False


#: a point is unreliable when intermediate values exceed the result by this
#: factor (cancellation) or the result exceeds _MAX_SCALE (float spacing)
_CANCEL_LIMIT = 1e5
_MAX_SCALE = 1e6


class _Tracker:
    __slots__ = ("peak",)

    def __init__(self) -> None:
        self.peak = 0.0


_TRACK = _Tracker()


def _check(z: complex) -> complex:
    if not (cmath.isfinite(z)) or abs(z) > _HUGE:
        raise OverflowError
    a = abs(z)
    if a > _TRACK.peak:
        _TRACK.peak = a
    return z


def _eval(node, env: dict[str, complex]) -> complex:
    op = node[0]
    if op == "num":
        return node[1]
    if op == "sym":
        return env[node[1]]
    if op == "neg":
        return -_eval(node[1], env)
    if op == "add":
        return _check(_eval(node[1], env) + _eval(node[2], env))
    if op == "sub":
        return _check(_eval(node[1], env) - _eval(node[2], env))
    if op == "mul":
        return _check(_eval(node[1], env) * _eval(node[2], env))
    if op == "div":
        den = _eval(node[2], env)
        if abs(den) < 1e-300:
            raise ZeroDivisionError
        return _check(_eval(node[1], env) / den)
    if op == "pow":
        base = _eval(node[1], env)
        exp = _eval(node[2], env)
        if abs(exp) > 200:
            raise OverflowError
        if base == 0:
            if exp.real <= 0:
                raise ZeroDivisionError
            return 0j
        if exp.imag == 0 and exp.real == int(exp.real):
            return _check(base ** int(exp.real))
        return _check(cmath.exp(exp * cmath.log(base)))
    if op == "sqrt":
        return _check(cmath.sqrt(_eval(node[1], env)))
    if op == "abs":
        return complex(abs(_eval(node[1], env)))
    if op == "binom":
        n_, k_ = _eval(node[1], env), _eval(node[2], env)
        if n_.imag or k_.imag or n_.real != int(n_.real) or k_.real != int(k_.real) or not 0 <= n_.real <= 1000:
            raise Unsupported("binomial of non-integers")
        return _check(complex(math.comb(int(n_.real), int(k_.real)) if k_.real >= 0 else 0))
    if op == "root":
        arg = _eval(node[1], env)
        idx = _eval(node[2], env)
        if idx == 0:
            raise ZeroDivisionError
        if arg == 0:
            return 0j
        return _check(cmath.exp(cmath.log(arg) / idx))
    if op == "fn":
        z = _eval(node[2], env)
        c = _fn_coeffs(node[1])
        if abs(z) > 50:
            raise OverflowError
        return _check(c[0] + c[1] * z + c[2] * z * z + c[3] * cmath.exp(c[4] * z))
    if op == "call":
        arg = _eval(node[2], env)
        if node[1] == "\\exp" and arg.real > 130:
            raise OverflowError
        if node[1] in ("\\sinh", "\\cosh", "\\sin", "\\cos", "\\tan") and abs(arg) > 130:
            raise OverflowError
        return _check(_FUNCS[node[1]](arg))
    raise Unsupported(op)


def _fn_coeffs(name: str) -> tuple[complex, ...]:
    rng = random.Random(f"dlcot-probe-fn:{name}")
    return tuple(complex(rng.uniform(-1, 1), rng.uniform(-1, 1)) for _ in range(5))


def _point(name: str, k: int) -> complex:
    rng = random.Random(f"dlcot-probe:{name}:{k}")
    re_part = rng.uniform(0.35, 1.65) * (1 if k % 2 == 0 else -1)
    im_part = rng.uniform(-0.45, 0.45)
    return complex(re_part, im_part)


_EQ_SPLIT_RE = re.compile(r"(?<![<>!\\])=(?!=)")


def _equation_sides(s: str):
    parts = _EQ_SPLIT_RE.split(s)
    if len(parts) != 2 or any(x in s for x in ("<", ">", "\\leq", "\\geq", "\\neq", "\\approx", ",")):
        return None
    return parse_expression(parts[0]), parse_expression(parts[1])


def probe_equations(gold: str, pred: str) -> bool | None:
    """True when two equations ``L1 = R1`` and ``L2 = R2`` are the same up to
    a nonzero constant factor (``L1-R1 = c (L2-R2)`` at all probe points);
    ``None`` otherwise (non-proportional equations may still be equivalent,
    e.g. ``e^x = e`` and ``x = 1``: math-verify decides those)."""
    try:
        g = _equation_sides(gold)
        p = _equation_sides(pred)
        if g is None or p is None:
            return None
    except (Unsupported, RecursionError, ValueError, OverflowError):
        return None
    syms: set[str] = set()
    for t in (*g, *p):
        _symbols(t, syms)
    if not syms:
        return None
    ratios = []
    for k in range(_POINTS):
        env = {name: _point(name, k) for name in syms}
        try:
            d1 = _eval(g[0], env) - _eval(g[1], env)
            d2 = _eval(p[0], env) - _eval(p[1], env)
        except (ZeroDivisionError, OverflowError, ValueError, RecursionError, Unsupported):
            continue
        if abs(d1) < 1e-9 or abs(d2) < 1e-9 or abs(d1) > _MAX_SCALE or abs(d2) > _MAX_SCALE:
            continue
        ratios.append(d1 / d2)
    if len(ratios) < 3:
        return None
    r0 = ratios[0]
    if all(abs(r - r0) <= _EQUAL_TOL * max(1.0, abs(r0)) for r in ratios[1:]):
        return True
    return None


def probe_compare(gold: str, pred: str) -> bool | None:
    """True/False when the numeric probe is conclusive, else ``None``."""
    g_text, p_text = clean_latex(gold)[0], clean_latex(pred)[0]
    if "=" in g_text and "=" in p_text:
        return probe_equations(gold, pred)
    try:
        g = parse_expression(gold)
        p = parse_expression(pred)
    except (Unsupported, RecursionError, ValueError, OverflowError):
        return None
    gsyms = _symbols(g, set()) | _symbols(p, set())
    decimals = _has_decimal(g) or _has_decimal(p)
    if not gsyms and decimals:
        # a decimal literal: same rule as for plain numbers (6 decimal places
        # and a relative 1e-6 for "equal", a relative 1e-5 and 2e-6 absolute
        # for "different"), applied to real and imaginary parts
        try:
            a, b = _eval(g, {}), _eval(p, {})
        except (ZeroDivisionError, OverflowError, ValueError, RecursionError, Unsupported):
            return None
        diff = abs(a - b)
        scale = max(abs(a), abs(b))
        same6 = round(a.real, 6) == round(b.real, 6) and round(a.imag, 6) == round(b.imag, 6)
        if diff <= 1e-6 * scale and same6:
            return True
        if diff > 1e-5 * scale or (diff > 2e-6 and not same6):
            return False
        return None
    valid = 0
    differs = False
    for k in range(_POINTS if gsyms else 1):
        env = {name: _point(name, k) for name in gsyms}
        tracker = _Tracker()
        try:
            global _TRACK
            _TRACK = tracker
            a = _eval(g, env)
            b = _eval(p, env)
        except (ZeroDivisionError, OverflowError, ValueError, RecursionError, Unsupported):
            continue
        scale = max(abs(a), abs(b), 1e-12)
        if scale > _MAX_SCALE or tracker.peak > _CANCEL_LIMIT * scale:
            continue
        valid += 1
        rel = abs(a - b) / scale
        if rel > _DIFF_TOL:
            differs = True
        elif rel > _EQUAL_TOL:
            return None
    if valid == 0 or (gsyms and valid < 2):
        return None
    if differs:
        return False
    return True
