"""Turn one side of a comparison (a bare answer or a whole response) into the
answer string for the fast path and the text handed to math-verify.

* A short text without answer statements is the answer itself ("025",
  ``$[0,1)$``, ``\\text{(B)}``, ``$1$ and $2$``).
* A text with answer statements (``\\boxed{}``, "the answer is", ...) is
  reduced to its final answer with :func:`extract_final_answer`.  The
  extraction is *clean* when every statement in the text agrees with it;
  only clean sides may get a fast "not equivalent" verdict, and only clean
  sides are handed to math-verify as the extracted answer - otherwise
  math-verify gets the tail of the raw text and does its own extraction.
* Longer free text without statements: the fast path gets the last line,
  math-verify gets the tail of the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .extract import _answer_region, extract_final_answer, find_answers
from .guard import MAX_MV_CHARS
from .normalize import brace_token_arguments, plain_math_as_latex, strip_delimiters, text_key
from .numeric import rewrite_repeating

__all__ = ["Side", "prepare", "MAX_SCAN_CHARS", "MAX_ANSWER_CHARS", "MAX_BARE_CHARS"]

#: only the last this many characters of a huge text are scanned for answers
MAX_SCAN_CHARS = 200_000
#: an answer longer than this is not compared (cannot tell)
MAX_ANSWER_CHARS = 2_000
#: a text without answer statements up to this length is taken as the answer
MAX_BARE_CHARS = 600

_MATH_ENV_RE = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<![\\$])\$([^$]+?)(?<!\\)\$", re.DOTALL)
_CONNECTOR_RE = re.compile(r"^(?:\s|,|;|\.|and|or|\\quad|\\text\{[^{}]*\})*$", re.IGNORECASE)
_HAS_DELIM_RE = re.compile(r"(?<!\\)\$|\\\(|\\\[")


@dataclass(frozen=True)
class Side:
    answer: str
    mv: str
    clean: bool
    empty: bool = False
    too_long: bool = False


def _join_math_envs(s: str) -> str | None:
    """``"$1$ and $2$"`` -> ``"1, 2"``; a single environment -> its content;
    ``None`` when ``s`` is not made of math environments and connectors."""
    envs = list(_MATH_ENV_RE.finditer(s))
    if not envs:
        return None
    pos = 0
    contents = []
    for m in envs:
        if not _CONNECTOR_RE.match(s[pos:m.start()]):
            return None
        contents.append(next(g for g in m.groups() if g is not None).strip())
        pos = m.end()
    if not _CONNECTOR_RE.match(s[pos:]):
        return None
    return ", ".join(c for c in contents if c)


_WORD_RE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}")


def _sentence_like(answer: str) -> bool:
    """"Jane started growing Sphere 3 hours ago", "The largest $n$ is 34":
    prose that merely contains the answer, better left to math-verify's own
    extraction.  Pure text answers ("regular hexagon") are not prose here."""
    if text_key(answer) is not None:
        return False
    outside = _MATH_ENV_RE.sub(" ", re.sub(r"\\text\{[^{}]*\}", " ", answer))
    return len(_WORD_RE.findall(outside)) >= 2


_MATHRM_LETTER_RE = re.compile(r"\\math(?:rm|it)\s*\{\s*([a-zA-Z])\s*\}")


def _wrap(answer: str) -> str:
    """The answer as math-verify input: boxed, with repeating decimals turned
    into fractions and ``\\mathrm{e}`` into ``e`` (which math-verify cannot
    parse)."""
    answer = _MATHRM_LETTER_RE.sub(r"\1", rewrite_repeating(brace_token_arguments(plain_math_as_latex(answer, functions=False))))
    return "\\boxed{" + answer + "}"


def _newline_in_group(s: str) -> bool:
    """A line break inside braces ("90\\text{ square\nunits}")."""
    depth = 0
    for ch in s:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(0, depth - 1)
        elif ch == "\n" and depth > 0:
            return True
    return False


def _tail(s: str) -> str:
    return s if len(s) <= MAX_MV_CHARS else s[-MAX_MV_CHARS:]


def prepare(text: str) -> Side:
    t = text.strip()
    if not t:
        return Side("", "", True, empty=True)
    scan = t if len(t) <= MAX_SCAN_CHARS else t[-MAX_SCAN_CHARS:]
    matches = find_answers(scan)
    if not matches:
        joined = _join_math_envs(scan)
        if joined is not None and len(joined) <= MAX_BARE_CHARS:
            answer = strip_delimiters(joined)
            return Side(answer, _wrap(answer), True, too_long=len(answer) > MAX_ANSWER_CHARS)
        if "\n" in scan and len(scan) <= MAX_BARE_CHARS and _newline_in_group(scan):
            scan = " ".join(scan.split("\n"))  # "90\text{ square\nunits}": one answer broken inside a group
        if len(scan) <= MAX_BARE_CHARS and "\n" not in scan and not _HAS_DELIM_RE.search(scan):
            answer = strip_delimiters(scan)
            return Side(answer, _wrap(answer), True, too_long=len(answer) > MAX_ANSWER_CHARS)
        fm = extract_final_answer(scan)
        answer = fm.text if fm is not None else scan
        return Side(answer, _tail(scan), False, too_long=len(answer) > MAX_ANSWER_CHARS)
    fm = extract_final_answer(scan)
    assert fm is not None
    lo, hi = _answer_region(scan)
    in_region = [m for m in matches if m.start >= lo and m.end <= hi] or matches
    allowed = {fm.text}
    if fm.kind == "boxed" and ", " in fm.text:
        allowed.update(fm.text.split(", "))
    clean = all(m.text in allowed for m in in_region) and not _sentence_like(fm.text)
    too_long = len(fm.text) > MAX_ANSWER_CHARS
    mv = _wrap(fm.text) if clean else _tail(scan)
    return Side(fm.text, mv, clean, too_long=too_long)
