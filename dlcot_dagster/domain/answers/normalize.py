"""String normalisation of short answers (no parsing, no sympy).

Only presentation is removed: math delimiters, ``\\left``/``\\right``,
spacing commands, ``\\dfrac`` spelling, ``\\text{}`` wrappers, degree and
percent signs.  Two answers whose :func:`canonical` forms are equal are
equivalent; different canonical forms prove nothing.
"""

from __future__ import annotations

import re

__all__ = [
    "strip_delimiters",
    "clean_latex",
    "canonical",
    "text_key",
    "unwrap_command",
    "split_top_level",
    "outer_brackets",
]

_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",
    "\u2044": "/",  # fraction slash ("1⁄2")
    "\u2215": "/",  # division slash
    "\u00f7": "\\div ",
    "\u00d7": "\\times ",
    "\u00b7": "\\cdot ",
    "\u22c5": "\\cdot ",
    "\u03c0": "\\pi ",
    "\u221e": "\\infty ",
    "\u2264": "\\leq ",
    "\u2265": "\\geq ",
    "\u2260": "\\neq ",
    "\u221a": "\\sqrt",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u2028": " ",
    "\u2029": " ",
    "\uff0c": ",",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
# runs of Unicode sub- and superscript digits: "E₁" -> "E_{1}", "x²" -> "x^{2}", "10⁻³" -> "10^{-3}"
_SUB_DIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉₋", "0123456789-")
_SUP_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_SUB_RUN_RE = re.compile("[₀-₉₋]+")
_SUP_RUN_RE = re.compile("[⁰¹²³⁴-⁹⁻]+")


def subscripts_as_latex(s: str) -> str:
    """Runs of Unicode subscript digits as LaTeX subscripts ("E₁" -> "E_{1}")."""
    return _SUB_RUN_RE.sub(lambda m: "_{" + m.group().translate(_SUB_DIGITS) + "}", s)


def superscripts_as_latex(s: str) -> str:
    """Runs of Unicode superscript digits as LaTeX powers ("10⁻¹⁹" -> "10^{-19}", "x²" -> "x^{2}")."""
    return _SUP_RUN_RE.sub(lambda m: "^{" + m.group().translate(_SUP_DIGITS) + "}", s)


def _scripts(s: str) -> str:
    if s.isascii():
        return s
    return superscripts_as_latex(subscripts_as_latex(s))

# Radicals, roots and vulgar fractions written as plain text ("3√13", "√(61)", "2 sqrt(3) + 3", "∛2", "½"): as LaTeX,
# so that both the fast path and math-verify read them ("√13" must not become "\\sqrt{1}3")
_VULGAR = {"½": "1/2", "⅓": "1/3", "⅔": "2/3", "¼": "1/4", "¾": "3/4", "⅕": "1/5", "⅖": "2/5", "⅗": "3/5",
           "⅘": "4/5", "⅙": "1/6", "⅚": "5/6", "⅛": "1/8", "⅜": "3/8", "⅝": "5/8", "⅞": "7/8"}
_VULGAR_RE = re.compile("[" + "".join(_VULGAR) + "]")
_ROOT_RE = re.compile(r"(?:(?<![\\A-Za-z])(?P<word>sqrt|cbrt)(?![A-Za-z])\s*|(?P<sign>[√∛∜])\s*)(?=[({0-9A-Za-z.\\])")
_ROOT_INDEX = {"sqrt": "", "√": "", "cbrt": "[3]", "∛": "[3]", "∜": "[4]"}
_ROOT_ARG_RE = re.compile(r"\d+(?:\.\d+)?|\.\d+|[A-Za-z](?![A-Za-z])|\\[a-zA-Z]+")
# "x**2", "2**(1/3)": a Python-style power
# (no space before the stars, and not closed by more stars: "has **9** divisors" is bold)
_STAR_POWER_RE = re.compile(r"(?<=[\w)}\]])\*\*(-?\d+(?:\.\d+)?|[A-Za-z]|\([^()]{1,40}\))(?!\*)")
# HTML scripts ("10<sup>-19</sup>", "H<sub>2</sub>O"), as some models write exponents in plain text
_HTML_SCRIPT_RE = re.compile(r"<(sup|sub)>([^<>]{1,40})</\1>", re.IGNORECASE)


def html_scripts_as_latex(s: str) -> str:
    """"10<sup>-19</sup>" -> "10^{-19}", "H<sub>2</sub>" -> "H_{2}"."""
    return _HTML_SCRIPT_RE.sub(lambda m: ("^{" if m.group(1).lower() == "sup" else "_{") + m.group(2) + "}", s)


# ln(2), sin(x): an ASCII function name before "(" as its LaTeX command
_FUNC_WORD_RE = re.compile(r"(?<![\\A-Za-z])(ln|exp|sin|cos|tan|cot|sec|csc|arcsin|arccos|arctan)(?=\s*\()")


_BRACKETS = {"(": ")", "{": "}"}
# abs(x - 1): Python's / a CAS's absolute value, as bars
_ABS_RE = re.compile(r"(?<![\\A-Za-z])abs\s*(?=\()")


def _abs_as_bars(s: str) -> str:
    """"abs(x-1)" -> "|x-1|" (nested calls too: "abs(abs(x)-1)" -> "||x|-1|"); an unclosed call is left alone."""
    for _ in range(4):
        m = _ABS_RE.search(s)
        if m is None:
            break
        j = _closing(s, m.end(), "(", ")")
        if j < 0:
            break
        s = s[:m.start()] + "|" + s[m.end() + 1:j] + "|" + s[j + 1:]
    return s


def _closing(s: str, i: int, open_ch: str, close_ch: str) -> int:
    """Index of the bracket closing the one at ``s[i]``, or -1."""
    depth = 0
    for j in range(i, len(s)):
        if s[j] == open_ch:
            depth += 1
        elif s[j] == close_ch:
            depth -= 1
            if depth == 0:
                return j
    return -1


def plain_math_as_latex(s: str, _depth: int = 0, functions: bool = True) -> str:
    """"3√13" -> "3\\sqrt{13}", "√(x+1)" -> "\\sqrt{x+1}", "sqrt(3)" -> "\\sqrt{3}", "∛2" -> "\\sqrt[3]{2}",
    "½" -> "\\frac{1}{2}", "ln(2)" -> "\\ln(2)", "abs(x)" -> "|x|", "x**10" -> "x^{10}", "10<sup>-19</sup>" -> "10^{-19}";
    other text unchanged (left-to-right passes, no backtracking). ``functions=False`` leaves "sin(" alone (math-verify's input: there the names made it parse
    prose such as "sin(3x + pi - 2 pi k) for a positive integer k" as trigonometry, for 2 s instead of 0.1 s)."""
    if s.isascii() and "sqrt" not in s and "cbrt" not in s and "(" not in s and "**" not in s and "<" not in s:
        return s
    if "</" in s:
        s = html_scripts_as_latex(s)
    if "**" in s:
        s = _STAR_POWER_RE.sub(r"^{\1}", s)
    if not s.isascii():
        # "½" alone, "2½" a mixed number (read as such, like "2\\frac{1}{2}")
        s = _VULGAR_RE.sub(lambda m: "\\frac{%s}{%s}" % tuple(_VULGAR[m.group()].split("/")), s)
    if "abs" in s:
        s = _abs_as_bars(s)
    if functions and "(" in s:
        s = _FUNC_WORD_RE.sub(r"\\\1", s)
    out: list[str] = []
    pos = 0
    for m in _ROOT_RE.finditer(s):
        if m.start() < pos:
            continue
        index = _ROOT_INDEX[m.group("word") or m.group("sign")]
        k = m.end()
        if s[k] in _BRACKETS:  # "√(x+1)", "sqrt{3}": the bracketed argument
            j = _closing(s, k, s[k], _BRACKETS[s[k]])
            if j < 0:
                continue
            arg = s[k + 1:j]
            end = j + 1
        else:
            am = _ROOT_ARG_RE.match(s, k)
            if am is None:
                continue
            arg = am.group()
            end = am.end()
        if _depth < 3 and ("sqrt" in arg or "cbrt" in arg or not arg.isascii()):
            arg = plain_math_as_latex(arg, _depth + 1, functions)  # "sqrt(1 + sqrt(2))"
        out.append(s[pos:m.start()])
        out.append("\\sqrt" + index + "{" + arg + "}")
        pos = end
    if not out:
        return s
    out.append(s[pos:])
    return "".join(out)


_DELIM_PAIRS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
_BOXED_PREFIX_RE = re.compile(r"^\\(?:boxed|fbox)\s*\{")
_SPACING_RE = re.compile(
    r"\\(?:q?quad|enspace|thinspace|medspace|thickspace|negthinspace)(?![a-zA-Z])"
    r"|\\(?:hspace|vspace|phantom|hphantom|vphantom)\*?\{[^{}]*\}"
    r"|\\[,;:> ]|~"
)
_SIZING_RE = re.compile(
    r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg|middle)(?![a-zA-Z])"
    r"|\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits)(?![a-zA-Z])"
)
_TEXT_CMD = (
    r"(?:text|textbf|textit|textrm|textsf|texttt|textnormal|textup|mathrm|mathbf|mathit|"
    r"mathsf|mathtt|mathnormal|mbox|hbox|operatorname\*?|boldsymbol|bm|emph|rm|bf)"
)
_TEXT_SIMPLE_RE = re.compile(r"\\" + _TEXT_CMD + r"\s*\{([^{}]*)\}")
_DEGREE_RE = re.compile(
    r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ(?![a-zA-Z])|\u00b0|\\degree(?![a-zA-Z])|\^\s*\{\s*o\s*\}"
)
_PERCENT_RE = re.compile(r"\\%|%")
_REPLACEMENTS = (
    (re.compile(r"\\[dtc]frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\[dt]binom(?![a-zA-Z])"), r"\\binom"),
    (re.compile(r"\\le(?![a-zA-Z])|\\leqslant(?![a-zA-Z])|<="), r"\\leq "),
    (re.compile(r"\\ge(?![a-zA-Z])|\\geqslant(?![a-zA-Z])|>="), r"\\geq "),
    (re.compile(r"\\ne(?![a-zA-Z])|!="), r"\\neq "),
    (re.compile(r"\\lt(?![a-zA-Z])"), "<"),
    (re.compile(r"\\gt(?![a-zA-Z])"), ">"),
    (re.compile(r"\\lbrace(?![a-zA-Z])"), r"\\{"),
    (re.compile(r"\\rbrace(?![a-zA-Z])"), r"\\}"),
    (re.compile(r"\\(?:ldots|cdots|dots)(?![a-zA-Z])"), "..."),
    (re.compile(r"\\dfrac"), r"\\frac"),
    (re.compile(r"\+\s*\\infty"), r"\\infty"),
    (re.compile(r"\\infin(?![a-zA-Z])"), r"\\infty"),
)
# \sqrt2 -> \sqrt{2}, \frac12 -> \frac{1}{2}, \frac1{3} -> \frac{1}{3}, \frac{1}3 -> \frac{1}{3}
# an unbraced argument is one character or one command ("\frac \pi4" is \frac{\pi}{4}, which math-verify misreads
# unbraced); \dfrac and \tfrac too
_TOKEN = r"(\\[a-zA-Z]+|[0-9a-zA-Z])"
_SQRT_TOKEN_RE = re.compile(r"\\sqrt(?![a-zA-Z])\s*" + _TOKEN)
_FRAC_TT_RE = re.compile(r"(\\[dt]?frac)(?![a-zA-Z])\s*" + _TOKEN + r"\s*" + _TOKEN)
_FRAC_T_B_RE = re.compile(r"(\\[dt]?frac)(?![a-zA-Z])\s*" + _TOKEN + r"\s*\{")
_FRAC_B_T_RE = re.compile(r"(\\[dt]?frac\s*\{[^{}]*\})\s*" + _TOKEN)


def brace_token_arguments(s: str) -> str:
    """``\\sqrt2`` -> ``\\sqrt{2}``, ``\\frac12`` / ``\\frac \\pi4`` / ``\\frac1{3}`` / ``\\frac{1}3`` -> braced
    arguments (TeX reads an unbraced argument as one token)."""
    if "\\sqrt" not in s and "frac" not in s:
        return s
    s = _SQRT_TOKEN_RE.sub(r"\\sqrt{\1}", s)
    s = _FRAC_TT_RE.sub(r"\1{\2}{\3}", s)
    s = _FRAC_T_B_RE.sub(r"\1{\2}{", s)
    return _FRAC_B_T_RE.sub(r"\1{\2}", s)


# thousands separators written as "1{,}000", "11,\!111", "1\,000"
_THOUSANDS_RE = re.compile(r"(?<=\d)(?:\{,\}|,\\!\s*|\\!|\\,)(?=\d{3}(?!\d))")
_SUB_BRACE_RE = re.compile(r"_\{\s*([a-zA-Z0-9])\s*\}")
_CMD_SPACE_RE = re.compile(r"(\\[a-zA-Z]+)\s+(?=[a-zA-Z])")
_WS_RE = re.compile(r"\s+")


def _outer_env(s: str) -> str | None:
    for opener, closer in _DELIM_PAIRS:
        if len(s) >= len(opener) + len(closer) and s.startswith(opener) and s.endswith(closer):
            inner = s[len(opener): len(s) - len(closer)]
            # "$1$ and $2$" is not one environment
            if opener in ("$", "$$") and "$" in inner.replace("\\$", ""):
                return None
            if opener in ("\\[", "\\(") and closer in inner:
                return None
            return inner
    return None


def _matching_brace(s: str, open_pos: int) -> int | None:
    depth = 0
    i = open_pos
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def unwrap_command(s: str, pattern: re.Pattern[str]) -> str | None:
    """If the whole of ``s`` is ``\\cmd{...}`` (``pattern`` matches ``\\cmd{``),
    return the argument."""
    m = pattern.match(s)
    if m is None:
        return None
    close = _matching_brace(s, m.end() - 1)
    if close is None or close != len(s) - 1:
        return None
    return s[m.end(): close]


_TRAILING_SPACE_CMD_RE = re.compile(r"(?:\\[,;:!> ]|\\q?quad(?![a-zA-Z])|~|\s)+$")


def _strip_trailing(s: str) -> str:
    """Drop trailing spacing commands and sentence punctuation (but not the
    comma of a trailing ``\\,``)."""
    for _ in range(8):
        before = s
        s = _TRAILING_SPACE_CMD_RE.sub("", s)
        if s and s[-1] in ".,;" and not s.endswith("\\" + s[-1]) and not s.endswith("..."):
            s = s[:-1]
        if s == before:
            break
    return s.strip()


def strip_delimiters(s: str, max_rounds: int = 8) -> str:
    """Remove surrounding math delimiters, ``\\boxed{}`` wrappers and
    trailing punctuation: ``"$\\boxed{5}$."`` -> ``"5"``."""
    s = s.strip()
    for _ in range(max_rounds):
        before = s
        s = _strip_trailing(s.strip())
        inner = _outer_env(s)
        if inner is not None:
            s = inner.strip()
        inner = unwrap_command(s, _BOXED_PREFIX_RE)
        if inner is not None:
            s = inner.strip()
        if s.startswith("\\displaystyle"):
            s = s[len("\\displaystyle"):].strip()
        if s == before:
            break
    return s


def unwrap_text_commands(s: str) -> str:
    """``\\text{ J}``, ``\\mathrm{cm}``, ``\\mbox{...}``: their content (spaced), nested ones too."""
    for _ in range(6):
        new = _TEXT_SIMPLE_RE.sub(lambda m: " " + m.group(1) + " ", s)
        if new == s:
            break
        s = new
    return s


def clean_latex(s: str) -> tuple[str, bool, bool]:
    """Presentation-free form of an answer, keeping single spaces.

    Returns ``(text, had_percent, had_degree)``.
    """
    s = _scripts(_UNICODE_RE.sub(lambda m: _UNICODE[m.group()], plain_math_as_latex(s)))
    s = strip_delimiters(s)
    # protect "\\" (row separator) from the single-backslash rules below
    s = s.replace("\x00", "").replace("\\\\", "\x00")
    s = _THOUSANDS_RE.sub("", s)
    s = _SIZING_RE.sub("", s)
    s = _SPACING_RE.sub(" ", s)
    s = s.replace("\\!", "")
    for rx, rep in _REPLACEMENTS:
        s = rx.sub(rep, s)
    s = unwrap_text_commands(s)
    had_degree = False
    if "circ" in s or "\u00b0" in s or "degree" in s or "^{o}" in s:
        s, k = _DEGREE_RE.subn("", s)
        had_degree = k > 0
    had_percent = False
    if "%" in s:
        s, k = _PERCENT_RE.subn("", s)
        had_percent = k > 0
    s = brace_token_arguments(s)
    s = _WS_RE.sub(" ", s).strip()
    s = s.replace("\x00", "\\\\")
    s = strip_delimiters(s)
    return s, had_percent, had_degree


def canonical(s: str) -> str:
    """Whitespace-free presentation-free form used for string equality."""
    c, pct, deg = clean_latex(s)
    c = _CMD_SPACE_RE.sub(r"\1 ", c)
    c = _SUB_BRACE_RE.sub(r"_\1", c)
    c = re.sub(r"(?<![a-zA-Z])\s+|\s+(?![a-zA-Z])", "", c)
    if pct:
        c += "%"
    return c


_TEXT_WORDS_RE = re.compile(r"[A-Za-z][A-Za-z' \-]*")


# a leading article of a textual answer ("an ellipse"), stripped by text_key
_ARTICLE_RE = re.compile(r"^(?:a|an|the) (?=[a-z]{3,})")


def text_key(s: str) -> str | None:
    """Lower-cased, space-collapsed form of a plain-text answer ("Evelyn",
    "\\text{odd}", "The midpoints form a regular hexagon"); ``None`` when
    ``s`` is not plain text."""
    c, pct, deg = clean_latex(s)
    if pct or deg:
        return None
    c = c.strip().rstrip(".").strip()
    if not _TEXT_WORDS_RE.fullmatch(c):
        return None
    key = " ".join(c.lower().replace("-", " ").split())
    # a leading article does not change a textual answer: "an ellipse" is "ellipse"
    return _ARTICLE_RE.sub("", key, count=1)


_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {")", "]", "}"}


def _tokens(s: str):
    """Yield (index, token) for bracket tokens, treating ``\\{``/``\\}`` as
    braces and skipping other escapes."""
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            nxt = s[i + 1]
            if nxt in "{}":
                yield i, "\\" + nxt
            i += 2
            continue
        if c in "([{)]}":
            yield i, c
        i += 1


def split_top_level(s: str, seps: tuple[str, ...] = (",", ";")) -> list[str]:
    """Split on separators that are not inside any bracket pair."""
    parts: list[str] = []
    depth = 0
    last = 0
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            nxt = s[i + 1]
            if nxt == "{":
                depth += 1
            elif nxt == "}":
                depth = max(0, depth - 1)
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0 and c in seps:
            parts.append(s[last:i])
            last = i + 1
        i += 1
    parts.append(s[last:])
    return [p.strip() for p in parts]


def outer_brackets(s: str) -> tuple[str, str, str] | None:
    """If ``s`` is one bracketed group ``(..)``, ``[..)``, ``\\{..\\}`` ...:
    (left, inner, right)."""
    s = s.strip()
    if len(s) < 2:
        return None
    if s.startswith("\\{"):
        left, start = "\\{", 2
    elif s[0] in "([":
        left, start = s[0], 1
    elif s.startswith("\\langle"):
        left, start = "<", len("\\langle")
    else:
        return None
    if left == "<":
        if not s.endswith("\\rangle"):
            return None
        return "<", s[start: len(s) - len("\\rangle")], ">"
    if s.endswith("\\}"):
        right, end = "\\}", len(s) - 2
    elif s[-1] in ")]":
        right, end = s[-1], len(s) - 1
    else:
        return None
    if (left == "\\{") != (right == "\\}"):
        return None
    # the first bracket must close at the very end
    depth = 0
    for idx, tok in _tokens(s):
        if tok in ("(", "[", "{", "\\{"):
            depth += 1
        else:
            depth -= 1
            if depth == 0 and idx < end:
                return None
    return left, s[start:end], right
