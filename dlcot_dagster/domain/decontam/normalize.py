"""Problem text -> a canonical token sequence, so that formatting never decides whether two problems match.

What is normalized away (both sides, training problem and benchmark problem, go through the same function):

* **instruction wrappers** that generation prompts add: any sentence asking for the answer in ``\\boxed{}``
  ("Please reason step by step, and put your final answer within \\boxed{}.", "Return your final response within
  \\boxed{}.", "Mark your solution with \\boxed", ...), leading labels ("Problem 3:", "Question:", "Solve the
  following math problem step by step."), trailing "Answer:" / "Solution:", chat-template markers
  (``<|im_start|>user``, ``<｜User｜>``, ``<think>``) and role prefixes;
* **whitespace** and line wrapping (the text becomes a token list);
* **math delimiters** ``$…$``, ``$$…$$``, ``\\(…\\)``, ``\\[…\\]``, ``\\begin{…}``/``\\end{…}``;
* **fractions**: ``\\dfrac`` / ``\\tfrac`` / ``\\cfrac`` / ``\\frac{a}{b}`` / ``\\frac12`` all become ``a / b``, the same
  tokens as ``a/b``; ``\\dbinom`` / ``\\tbinom`` become ``\\binom``;
* **formatting**: ``\\text``, ``\\textbf``, ``\\mathrm``, ``\\mathbf``, ``\\operatorname``, ``\\left``/``\\right``,
  spacing commands (``\\,``, ``\\quad``, ``~``), Asymptote figures (``[asy]…[/asy]``), markdown emphasis, case,
  punctuation, braces, ``^`` (so ``x^{2}``, ``x^2`` and ``x²`` agree);
* **symbol spellings**: ``\\le``/``\\leq``/``≤``, ``\\ne``/``≠``, ``\\cdot``/``\\times``/``×``/``*``, ``−``/``-``,
  ``π``/``\\pi``, ``°``/``^\\circ``, Greek letters, ``\\ldots``/``…``;
* **HTML entities** (``&lt;``, ``&amp;``) and Unicode forms (NFKC: ``x²``, ``x₁``, ``½``, full-width characters);
* **numbers**: thousands separators (``80,000`` -> ``80000``), leading/trailing zeros (``27.0`` -> ``27``, ``.5`` ->
  ``0.5``).

Choices come out the same however they are laid out: ``$\\textbf{(A) }6\\qquad\\textbf{(B) }8$``, ``(A) 6 (B) 8``
and ``A. 6\\nB. 8`` all give ``a 6 b 8``. Nothing here imports dagster; it is plain ``re`` on bounded input (a
problem is cut at :data:`MAX_CHARS`).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter

MAX_CHARS = 20_000  # a problem longer than this is cut: matching looks at its first 20k characters

# --------------------------------------------------------------------------------------------- wrappers

_BOXED_HINT = re.compile(r"\\boxed\s*(?:\{\s*\}|(?![\s{]*\{[^}\s]))")  # \boxed{} or a bare \boxed (not \boxed{x})
_SENTENCE_END = re.compile(r"[.!?\n]")
_CHAT_MARKERS = re.compile(
    r"(?:<\|[^|<>\n]{1,40}\|>|<｜[^｜<>\n]{1,40}｜>)(?:[ \t]*(?:system|user|human|assistant)\b)?"
    r"|</?think>|\[/?INST\]|<</?SYS>>|<s>|</s>",
)
_ROLE_LINE = re.compile(r"(?im)^\s*(?:system|user|human|assistant|gpt)\s*:\s*")
_LEAD_LABELS = re.compile(
    r"""(?ix)^\s*(?:
        (?:\#+\s*)?(?:\*\*)?(?:problem|question|exercise|task|q)\s*(?:\#?\s*\d+[a-z]?)?\s*(?:\*\*)?\s*[:.)]\s*(?:\*\*)?
      | \#+[ \t]*(?:problem|question|exercise|task)(?:[ \t]*\#?[ \t]*\d+[a-z]?)?[ \t]*\n
      | (?:please\s+)?solve\s+(?:the\s+)?following(?:\s+(?:math|mathematics|mathematical|competition))?
            (?:\s+(?:problem|question))?(?:\s+step\s+by\s+step)?(?:\s+(?:carefully|efficiently(?:\s+and\s+clearly)?))?\s*[:.]
      | (?:please\s+)?answer\s+the\s+following(?:\s+(?:math|mathematics))?\s+question\s*[:.]
      | here\s+is\s+(?:a|the)\s+(?:math\s+)?(?:problem|question)\s*[:.]
    )""",
)
_TRAIL_LABELS = re.compile(
    r"(?i)(?:(?:^|\n)\s*(?:\*\*)?(?:answer|solution|final answer|a)|\s(?:\*\*)?(?:answer|solution|final answer))"
    r"\s*(?:\*\*)?\s*:\s*(?:\*\*)?$|\n\s*\#+\s*(?:answer|solution)\s*$"
)
_STEP_BY_STEP = re.compile(r"(?i)\b(?:let'?s|let us|please)\s+think\s+step\s+by\s+step\.?")


_CHAT_HINTS = ("<|", "think>", "[INST", "[/INST", "<<SYS", "<s>", "</s>", "<｜")
_ROLE_HINTS = ("system", "user", "human", "assistant", "gpt")


def strip_wrappers(text: str) -> str:
    """The problem without instruction sentences, labels and chat markers (see the module doc)."""
    if any(h in text for h in _CHAT_HINTS):
        text = _CHAT_MARKERS.sub("\n", text)
    if ":" in text:
        low = text.lower()
        if any(h in low for h in _ROLE_HINTS):
            text = _ROLE_LINE.sub("", text)
    # every sentence that asks for the answer in \boxed{}: from the previous sentence end to the next one
    for _ in range(8):
        m = _BOXED_HINT.search(text) if "boxed" in text else None
        if m is None:
            break
        start = max((e.end() for e in _SENTENCE_END.finditer(text, 0, m.start())), default=0)
        end_m = _SENTENCE_END.search(text, m.end())
        end = end_m.end() if end_m else len(text)
        text = text[:start] + " " + text[end:]
    if "step" in text:
        text = _STEP_BY_STEP.sub(" ", text)
    for _ in range(3):
        m = _LEAD_LABELS.match(text)
        if m is None or not m.end():
            break
        text = text[m.end() :]
    for _ in range(2):
        text = text.rstrip()
        tail = text[-80:]
        m = _TRAIL_LABELS.search(tail)
        if m is None:
            break
        text = text[: len(text) - len(tail) + m.start()]
    return text


# --------------------------------------------------------------------------------------------- LaTeX

_ASY = re.compile(r"\[asy\].*?(?:\[/asy\]|$)", re.S | re.I)
_ARG_COMMANDS = re.compile(  # commands whose (short) argument is layout, not content: dropped with it
    r"\\(?:begin|end)\s*\{[^{}]{0,30}\}(?:\{[^{}]{0,30}\})?|\\(?:[hv]space\*?|phantom|label|tag)\s*\{[^{}]*\}"
)
_FRAC_NAMES = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
_TEX_THOUSANDS = re.compile(r"(\d)(?:,\\!|\{,\})(?=\d{3}(?!\d))")  # 1,\!000 and 1{,}000
_COMMAND = re.compile(r"\\([a-zA-Z]+)\*?|\\([^a-zA-Z])")
# command name -> replacement; every other command keeps its name as a word (\sqrt -> sqrt, \alpha -> alpha)
_DROP = (
    "text textbf textit textrm textsf texttt textnormal textup mathrm mathbf mathit mathsf mathtt mathcal mathbb "
    "mathfrak mathscr mathop operatorname emph boldsymbol bm mbox hbox displaystyle textstyle scriptstyle limits "
    "nolimits left right big bigl bigr bigg biggl biggr Big Bigl Bigr Bigg Biggl Biggr middle quad qquad enspace "
    "thinspace medspace thickspace negthinspace hfill vfill newline linebreak noindent ldots cdots vdots ddots dots "
    "dotsc dotsb dotsm nonumber notag overset underset stackrel lbrace rbrace"
).split()
_COMMANDS: dict[str, str] = {name: " " for name in _DROP}
_COMMANDS.update({
    "le": " <= ", "leq": " <= ", "leqslant": " <= ", "leqq": " <= ", "ge": " >= ", "geq": " >= ",
    "geqslant": " >= ", "geqq": " >= ", "ne": " != ", "neq": " != ", "lt": " < ", "gt": " > ", "cdot": " * ",
    "times": " * ", "ast": " * ", "div": " / ", "to": " -> ", "rightarrow": " -> ", "longrightarrow": " -> ",
    "implies": " -> ", "degree": " circ ", "dfrac": " frac ", "tfrac": " frac ", "dbinom": " binom ",
    "tbinom": " binom ", "varepsilon": " epsilon ", "varphi": " phi ", "vartheta": " theta ", "varpi": " pi ",
    "infin": " infty ", "lvert": " | ", "rvert": " | ", "vert": " | ", "Vert": " | ", "mid": " | ",
})
_SYMBOL_CHARS = {
    "≤": " <= ", "⩽": " <= ", "≥": " >= ", "⩾": " >= ", "≠": " != ", "×": " * ", "·": " * ", "⋅": " * ",
    "∗": " * ", "÷": " / ", "→": " -> ", "°": " circ ", "º": " circ ", "−": "-", "–": "-", "‐": "-", "‑": "-",
    "…": " ", "~": " ", "&": " ", "⁄": " / ", "∕": " / ",
    "α": " alpha ", "β": " beta ", "γ": " gamma ", "δ": " delta ", "ε": " epsilon ", "ζ": " zeta ", "η": " eta ",
    "θ": " theta ", "ι": " iota ", "κ": " kappa ", "λ": " lambda ", "μ": " mu ", "ν": " nu ", "ξ": " xi ",
    "π": " pi ", "ρ": " rho ", "σ": " sigma ", "τ": " tau ", "υ": " upsilon ", "φ": " phi ", "χ": " chi ",
    "ψ": " psi ", "ω": " omega ", "Γ": " gamma ", "Δ": " delta ", "Θ": " theta ", "Λ": " lambda ", "Ξ": " xi ",
    "Π": " pi ", "Σ": " sigma ", "Φ": " phi ", "Ψ": " psi ", "Ω": " omega ", "√": " sqrt ", "∞": " infty ",
    "∠": " angle ", "△": " triangle ", "∑": " sum ", "∫": " int ", "∈": " in ", "∪": " cup ", "∩": " cap ",
    "⊆": " subseteq ", "⌊": " lfloor ", "⌋": " rfloor ", "⌈": " lceil ", "⌉": " rceil ",
}
_SYMBOL_RE = re.compile("|".join(map(re.escape, _SYMBOL_CHARS)))
_MARKDOWN = re.compile(r"\*\*+|__+|^#+\s", re.M)


def _command(m: re.Match) -> str:
    name = m.group(1)
    if name is None:  # \, \; \! \  \\ \% \$ \{ ...: spacing or an escaped character, no content
        return " "
    return _COMMANDS.get(name) or f" {name} "


_TOKEN = re.compile(
    # "80,000" (thousands separators; not a pair or an interval: "(10,100)", "[-500,500]" keep two numbers),
    # ".5", "27.0", words, operators
    r"(?<![\d.,(\[{\-])[1-9]\d{0,2}(?:,\d{3})+(?![\d,]*\d)(?!\s*[)\]}])|(?<![\d.])\.\d+|\d+(?:\.\d+)?"
    r"|[^\W\d_]+|[+\-*/=<>!|]"
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?$")


def _group(text: str, k: int) -> tuple[str | None, int]:
    """The argument of a command at ``k``: a balanced ``{…}`` group or one character; (None, k) when absent."""
    n = len(text)
    while k < n and text[k] in " \t\r\n":
        k += 1
    if k >= n:
        return None, k
    if text[k] != "{":
        return (text[k], k + 1) if text[k].isalnum() else (None, k)
    depth = 0
    for j in range(k, min(n, k + 2000)):
        c = text[j]
        if c == "{" and (j == 0 or text[j - 1] != "\\"):
            depth += 1
        elif c == "}" and text[j - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[k + 1 : j], j + 1
    return None, k


def _fracs(text: str) -> str:
    """``\\frac{a}{b}`` (any spelling, nested) -> `` a / b ``; outermost first, at most 8 levels deep."""
    text = _FRAC_NAMES.sub(r"\\frac", text)
    if text.count("\\frac") > 256:  # hostile or degenerate input: no fraction has its two arguments read
        return text.replace("\\frac", " ")
    for _ in range(8):
        if "\\frac" not in text:
            return text
        out, i = [], 0
        while True:
            j = text.find("\\frac", i)
            if j < 0:
                out.append(text[i:])
                break
            out.append(text[i:j])
            k = j + 5
            if k < len(text) and text[k].isalpha():  # another command (\\fraction): not a fraction
                out.append(" ")
                i = k
                continue
            a, k1 = _group(text, k)
            b, k2 = _group(text, k1) if a is not None else (None, k1)
            if a is None or b is None:
                out.append(" ")
                i = j + 5
                continue
            out.append(f" {a} / {b} ")  # no parentheses: "(31)/(11,111)" would read as a pair
            i = k2
        text = "".join(out)
    return text.replace("\\frac", " ")


_NUMBER_START = frozenset("0123456789.")


def canonical_number(tok: str) -> str:
    """``027`` -> ``27``, ``27.0`` -> ``27``, ``0.50`` -> ``0.5``, ``.5`` -> ``0.5``, ``80,000`` -> ``80000``."""
    if "," in tok:
        tok = tok.replace(",", "")
    if "." in tok:
        whole, frac = tok.split(".", 1)
        frac = frac.rstrip("0")
        whole = whole.lstrip("0") or "0"
        return f"{whole}.{frac}" if frac else whole
    return tok.lstrip("0") or "0"


def normalize_text(text: str) -> str:
    """The problem as lower-case, space-separated canonical tokens (what :func:`tokens` splits)."""
    return " ".join(tokens(text))


def tokens(text: str) -> list[str]:
    """Canonical tokens of a problem: words, numbers and the operators ``+ - * / = < > ! |``."""
    if not text:
        return []
    text = text[:MAX_CHARS]
    if "&" in text and ";" in text:  # HTML entities of scraped pages: &lt; &gt; &amp; &#215;
        text = html.unescape(text)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        text = _SYMBOL_RE.sub(lambda m: _SYMBOL_CHARS[m.group(0)], text)
    else:
        text = text.replace("~", " ").replace("&", " ")
    text = strip_wrappers(text)
    if "[asy]" in text or "[ASY]" in text:
        text = _ASY.sub(" ", text)
    if "\\" in text:
        text = _ARG_COMMANDS.sub(" ", text)
        if "frac" in text:
            text = _fracs(text)
        if "," in text:
            text = _TEX_THOUSANDS.sub(r"\1", text)
        text = _COMMAND.sub(_command, text)
    if "*" in text or "_" in text or "#" in text:
        text = _MARKDOWN.sub(" ", text)
    return [canonical_number(t) if t[0] in _NUMBER_START else t for t in _TOKEN.findall(text.lower())]


def numbers(toks: list[str]) -> Counter:
    """The numbers of a token list (canonical spelling) with their counts."""
    return Counter(t for t in toks if t[0].isdigit())


def numbers_contained(needle: Counter, haystack: Counter) -> bool:
    """Every number of ``needle`` occurs in ``haystack`` at least as often."""
    return all(haystack.get(k, 0) >= v for k, v in needle.items())
