"""Find answer statements in model output.

Two entry points:

* :func:`find_answers` lists every answer statement in a text (used by the
  segmenter to locate intermediate answers inside a long thinking text);
* :func:`extract_final_answer` picks the final answer of a response.

Everything here is regex pre-scans plus one linear brace-matching pass, so the
cost is linear in the text length (no backtracking blow-ups, no recursion), and
malformed input (unterminated ``\\boxed{``, stray braces, deep nesting) is
skipped rather than raising.

Kinds of :class:`AnswerMatch`:

``boxed``
    ``\\boxed{...}`` / ``\\boxed {...}`` / ``\\fbox{...}``.  When a boxed
    expression is the content of a lead-in phrase ("the answer is
    \\boxed{4}", "**Final Answer** \\boxed{4}") the match spans the phrase
    too, but the kind stays ``boxed`` because the answer itself is delimited
    by the box.
``final_answer``
    a ``**Final Answer**`` (or ``Final Answer:``) block whose content is not
    boxed.
``answer_is``
    "the answer is ...", "so the answer should be ...", "the final answer
    is ...", "Answer: ...".
``hash``
    GSM8K style ``#### 42``.
``choice``
    a multiple-choice letter given as the answer: "answer is (B)",
    "Answer: C", "the correct option is \\text{(D)}".
``last_line``
    fallback used only by :func:`extract_final_answer`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

__all__ = ["AnswerMatch", "find_answers", "extract_final_answer", "KINDS"]

KINDS = ("boxed", "final_answer", "answer_is", "hash", "choice", "last_line")

#: longest ``\boxed{...}`` content accepted; a longer one is treated as
#: unterminated (it almost always is: an unclosed brace swallowing the text).
MAX_BOXED_CHARS = 4000
#: longest plain-text answer taken after "the answer is" / "####".
MAX_PHRASE_CHARS = 300
#: longest math-delimited answer taken after "the answer is" ($...$, \[...\]).
MAX_MATH_CHARS = 2000
#: longest body of a ``**Final Answer**`` block that is looked at.
MAX_BLOCK_CHARS = 2000


@dataclass(frozen=True)
class AnswerMatch:
    """One answer statement: ``text`` is the answer, ``start``/``end`` the
    character span of the whole statement in the source text."""

    text: str
    start: int
    end: int
    kind: str


# --------------------------------------------------------------------------
# regexes

_ANCHOR_RE = re.compile(
    r"(?P<boxed>\\(?:boxed|fbox)\s*\{)"
    r"|(?P<final>\*\*[ \t]*final[ \t]+answer[ \t]*:?[ \t]*\*\*[ \t]*:?"
    r"|^[ \t>#]*final[ \t]+answer[ \t]*:)"
    r"|(?P<hash>^[ \t]*\#\#\#\#(?!\#))"
    r"|(?P<answer>\banswer(?:s)?\b)",
    re.IGNORECASE | re.MULTILINE,
)
# Where an _ANCHOR_RE match can start: "\b" / "\f" (boxed), "**" (final), "answer" (any case), and line starts
# (the "\n" before one that may hold "final answer:" / "####"; plus position 0). Every branch starts with a plain
# character, so the regex engine jumps between candidates instead of trying all of _ANCHOR_RE at every position;
# letters are spelled out with every character IGNORECASE equates with them ("s" also matches "ſ", U+017F).
_ANCHOR_HINT_RE = re.compile(
    r"\\(?=[bBfF])|\*(?=\*)|a(?=[nN][sSſ][wW][eE][rR])|A(?=[nN][sSſ][wW][eE][rR])|\n(?=[ \t>#]*[fF#])"
)
_BOXED_AT_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BRACE_TOKEN_RE = re.compile(r"\\.|[{}]", re.DOTALL)

# words allowed before "answer" in a phrase ("so the final answer")
_LEAD_BACK_RE = re.compile(
    r"(?:(?:so|thus|therefore|hence|then|and)[ \t]*,?[ \t]+)?"
    r"(?:(?:the|my|our|a|an|this|that)[ \t]+)?"
    r"(?:(?:final|correct|right|required|desired|real)[ \t]+)?"
    r"(?:\*\*)?$",
    re.IGNORECASE,
)
# what must follow "answer" for it to be an answer statement
_LEAD_FWD_RE = re.compile(
    r"(?:\*\*)?[ \t]*"
    r"(?:"
    r"(?:is|was|are|were|should[ \t]+be|would[ \t]+be|must[ \t]+be|will[ \t]+be|becomes|=)"
    r"(?:[ \t]+(?:probably|likely|indeed|actually|just|simply|definitely|clearly|then|therefore|still|now))?"
    r"[ \t]*:?"
    r"|:"
    r")(?:\*\*)?[ \t]*",
    re.IGNORECASE,
)
_HEDGE_WORD_RE = re.compile(
    r"(?:probably|likely|indeed|actually|just|simply|definitely|clearly|therefore|thus|still)[ \t]*,?[ \t]*",
    re.IGNORECASE,
)
# contents that show the phrase is not stating an answer
_NOT_ANSWER_RE = re.compile(
    r"(?:not|no|that|to|because|since|in|as|yes|wrong|incorrect|correct|right|different|"
    r"same|unique|unclear|either|neither|about|between|greater|less|more|"
    r"obviously|independent|given|a|an|the|this|it|what|how|why|when|where|whether|"
    r"if|which|something|nothing|none|option|choice|\?|"
    # a description of the answer, not the answer: "The answer is expressed as a reduced fraction m/n"
    r"expressed|written|represented|presented|formatted|stated|supposed|required|requested|expected|asked|sought|"
    r"needed|wanted|desired|"
    r"known|unknown|of the form)\b",
    re.IGNORECASE,
)
# plain-text answer ends at a sentence end, a question mark, or a comma that
# starts a new clause
_PLAIN_END_RE = re.compile(
    r"[.;!?](?=\s|$)|[?!]"
    r"|,\s*(?:but|so|which|because|since|wait|however|hmm|let|i|we|where|as|and\s+(?:the|we|so|then|that))\b"
    r"|\s+(?:because|since|which|where|but|wait|hmm|as\s+(?:we|required|expected))\b"
    r"|\s*\*\*(?=\s|$|[.,;:!?])",
    re.IGNORECASE,
)
# multiple-choice letter at the start of an answer
_CHOICE_RE = re.compile(
    r"^(?:\\text(?:bf)?\{\s*)?(?:\*\*)?"
    r"(?:\((?P<p>[A-J])\)|(?P<b>[A-J])(?=$|[\s.,:;)!?*}]))"
    r"(?:\s*\})?",
)
# connectors allowed between boxed expressions that form one answer
_BOXED_JOIN_RE = re.compile(
    r"(?:\s|,|;|&|\$|\\[()\[\]]|\\q?quad|\\[,;:! ]|~|\band\b|\bor\b"
    r"|\\text\{\s*(?:,|and|or)?\s*\})*",
    re.IGNORECASE,
)
_THINK_END_RE = re.compile(r"</think>|<\|end_of_thought\|>")
_SOLUTION_RE = re.compile(r"<\|begin_of_solution\|>(.*?)(?:<\|end_of_solution\|>|$)", re.DOTALL)
_MATH_OPENERS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
_INLINE_MATH_RE = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|(?<![\\$])\$([^$\n]+?)\$", re.DOTALL)


# --------------------------------------------------------------------------
# brace matching


class _Braces:
    """Matching ``}`` for every ``{`` at or after ``start``, computed in one
    linear pass over brace and escape tokens (``\\{``, ``\\}``, ``\\\\`` are
    skipped).  Unmatched ``{`` have no entry."""

    __slots__ = ("pairs",)

    def __init__(self, text: str, start: int = 0) -> None:
        pairs: dict[int, int] = {}
        stack: list[int] = []
        for m in _BRACE_TOKEN_RE.finditer(text, start):
            tok = m.group()
            if tok == "{":
                stack.append(m.start())
            elif tok == "}":
                if stack:
                    pairs[stack.pop()] = m.start()
        self.pairs = pairs

    def close(self, open_pos: int) -> int | None:
        return self.pairs.get(open_pos)


def _boxed_at(text: str, pos: int, braces: _Braces) -> tuple[str, int] | None:
    """If a ``\\boxed{`` starts at ``pos``: (unwrapped content, end of match)."""
    m = _BOXED_AT_RE.match(text, pos)
    if m is None:
        return None
    open_pos = m.end() - 1
    close = braces.close(open_pos)
    if close is None or close - open_pos - 1 > MAX_BOXED_CHARS:
        return None
    lo, hi = open_pos + 1, close
    # unwrap \boxed{\boxed{x}} without slicing in a loop
    while True:
        while lo < hi and text[lo].isspace():
            lo += 1
        while hi > lo and text[hi - 1].isspace():
            hi -= 1
        inner = _BOXED_AT_RE.match(text, lo, hi)
        if inner is None:
            break
        inner_close = braces.close(inner.end() - 1)
        if inner_close is None or inner_close != hi - 1:
            break
        lo, hi = inner.end(), inner_close
    content = text[lo:hi].strip()
    return content, close + 1


def _boxed_group(text: str, pos: int, braces: _Braces, limit: int) -> tuple[list[str], int] | None:
    """Boxed expressions starting at ``pos`` and following each other with only
    connectors in between ("\\boxed{1}, \\boxed{2} and \\boxed{3}")."""
    first = _boxed_at(text, pos, braces)
    if first is None:
        return None
    parts = [first[0]]
    end = first[1]
    while True:
        j = _BOXED_JOIN_RE.match(text, end, limit).end()
        if j - end > 60:
            break
        nxt = _boxed_at(text, j, braces) if j < limit else None
        if nxt is None:
            break
        parts.append(nxt[0])
        end = nxt[1]
    return parts, end


# --------------------------------------------------------------------------
# helpers for phrase contents


def _math_env_at(text: str, pos: int, limit: int) -> tuple[str, int] | None:
    """If a math environment ($..$, $$..$$, \\[..\\], \\(..\\)) starts at
    ``pos``: (content, end)."""
    for opener, closer in _MATH_OPENERS:
        if text.startswith(opener, pos):
            body = pos + len(opener)
            stop = min(limit, body + MAX_MATH_CHARS)
            if opener == "$":
                nl = text.find("\n", body, stop)
                if nl != -1:
                    stop = nl
            k = body
            while True:
                k = text.find(closer, k, stop)
                if k == -1:
                    return None
                if text[k - 1] != "\\" or opener != "$":
                    break
                k += 1
            return text[body:k].strip(), k + len(closer)
    return None


def _choice_letter(content: str) -> str | None:
    m = _CHOICE_RE.match(content.strip())
    if m is None:
        return None
    letter = m.group("p") or m.group("b")
    rest = content.strip()[m.end():].strip()
    # "B" / "(B)" / "B)" / "B." / "(B) 42" / "B) text" all count; "A = 5" does not
    if rest and not (m.group("p") or rest[:1] in ").:"):
        return None
    return letter


_BOXED_WORD_HEAD_RE = re.compile(r"^boxed\s+(?=\S)", re.IGNORECASE)
_BOXED_WORD_TAIL_RE = re.compile(r"[,;\s]*\(?\s*(?:in a box|boxed)\s*\)?$", re.IGNORECASE)


def _clean_plain(s: str) -> str:
    s = s.strip().strip("*").strip()
    s = s.rstrip(".,;:").strip()
    # "the answer is 180, boxed." names the box in words: the answer is 180
    s = _BOXED_WORD_TAIL_RE.sub("", s).rstrip(".,;:").strip() or s
    s = _BOXED_WORD_HEAD_RE.sub("", s).strip() or s  # "the answer is boxed 40"
    if len(s) >= 2 and s[0] in "\"'`" and s[-1] == s[0]:
        s = s[1:-1].strip()
    return s


def _phrase_content(
    text: str, pos: int, limit: int, braces: _Braces, screen: bool = True
) -> tuple[str, int, str] | None:
    """Answer content starting at ``pos``: (text, end, kind) where kind is
    ``boxed``, ``choice`` or ``plain``."""
    n = min(limit, len(text))
    while pos < n and text[pos] in " \t*":
        pos += 1
    m = _HEDGE_WORD_RE.match(text, pos, n)
    if m and m.end() > pos:
        pos = m.end()
    if pos >= n:
        return None
    # boxed, possibly inside a math environment: "$\boxed{4}$", "\[ \boxed{4} \]"
    probe = pos
    opener_len = 0
    for opener, _ in _MATH_OPENERS:
        if text.startswith(opener, pos):
            opener_len = len(opener)
            break
    probe = pos + opener_len
    while probe < n and text[probe] in " \t\n":
        probe += 1
    if _BOXED_AT_RE.match(text, probe):
        grp = _boxed_group(text, probe, braces, n)
        if grp is not None:
            parts, end = grp
            # swallow the closing delimiter of the environment
            if opener_len:
                env = _math_env_at(text, pos, n)
                if env is not None and env[1] >= end:
                    end = env[1]
            return ", ".join(parts), end, "boxed"
    env = _math_env_at(text, pos, n)
    if env is not None:
        content, end = env
        if not content:
            return None
        letter = _choice_letter(content)
        if letter is not None:
            return letter, end, "choice"
        return content, end, "plain"
    # plain text up to the end of the sentence / line
    stop = min(n, pos + MAX_PHRASE_CHARS)
    nl = text.find("\n", pos, stop)
    if nl != -1:
        stop = nl
    seg = text[pos:stop]
    if screen and _NOT_ANSWER_RE.match(seg):
        letter = _choice_letter(seg)
        if letter is None:
            return None
    letter = _choice_letter(seg)
    if letter is not None:
        m_end = _CHOICE_RE.match(seg.strip())
        return letter, pos + (len(seg) - len(seg.lstrip())) + (m_end.end() if m_end else 1), "choice"
    e = _PLAIN_END_RE.search(seg)
    if e is not None:
        seg = seg[: e.start()]
    content = _clean_plain(seg)
    if not content:
        return None
    # a plain answer that only starts a math environment mid-way, e.g.
    # "the answer is x = $5$": keep it as plain text
    return content, pos + len(seg.rstrip()), "plain"


# --------------------------------------------------------------------------
# statement builders


# "answer" as a verb ("who chose to answer were counted", "they answer"): not an answer statement
_VERB_BEFORE_RE = re.compile(
    r"\b(?:to|who|that|which|we|i|you|they|people|students|cannot|can't|not|could|would|will|did|didn't|must|"
    r"should|may|might|to be)[ \t]+$",
    re.IGNORECASE,
)


def _answer_phrase(text: str, m: re.Match, braces: _Braces) -> AnswerMatch | None:
    a_start, a_end = m.start(), m.end()
    if _VERB_BEFORE_RE.search(text, max(0, a_start - 12), a_start):
        return None
    back_lo = max(0, a_start - 40)
    back = _LEAD_BACK_RE.search(text, back_lo, a_start)
    start = back.start() if back is not None and back.end() == a_start else a_start
    # only "Answer" at a line start may be followed by a bare colon
    fwd = _LEAD_FWD_RE.match(text, a_end)
    if fwd is None:
        return None
    got = _phrase_content(text, fwd.end(), len(text), braces)
    if got is None:
        return None
    content, end, ckind = got
    kind = {"boxed": "boxed", "choice": "choice"}.get(ckind, "answer_is")
    return AnswerMatch(content, start, end, kind)


_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")


def _final_block(text: str, m: re.Match, braces: _Braces) -> AnswerMatch | None:
    start = m.start()
    body_start = m.end()
    limit = min(len(text), body_start + MAX_BLOCK_CHARS)
    # the block ends at the first blank line after some content
    k = body_start
    while k < limit and text[k] in " \t\r\n":
        k += 1
    # "**Final Answer**\n\nThe final answer is:\n\n$$x = 5$$": a first line ending in a colon only introduces
    # the answer, which follows it
    nl = text.find("\n", k, limit)
    if nl != -1 and text[k:nl].rstrip().endswith(":"):
        j = nl
        while j < limit and text[j] in " \t\r\n":
            j += 1
        if j < limit:
            k = j
    blank = _BLANK_LINE_RE.search(text, k, limit)
    block_end = blank.start() if blank else limit
    if k >= block_end:
        return None
    b = _BOXED_AT_RE.search(text, k, block_end)
    if b is not None:
        grp = _boxed_group(text, b.start(), braces, len(text))
        if grp is not None:
            parts, end = grp
            env_end = end
            # include a closing math delimiter right after the box
            tail = re.compile(r"[ \t]*(?:\$\$|\$|\\\]|\\\))").match(text, end)
            if tail:
                env_end = tail.end()
            return AnswerMatch(", ".join(parts), start, env_end, "boxed")
    # "Final Answer: The final answer is $x$. I hope it is correct."
    inner = re.compile(r"\banswer\b", re.IGNORECASE).search(text, k, block_end)
    if inner is not None:
        ph = _answer_phrase(text, inner, braces)
        if ph is not None and ph.end <= block_end + MAX_MATH_CHARS:
            return AnswerMatch(ph.text, start, ph.end, "choice" if ph.kind == "choice" else "final_answer")
    got = _phrase_content(text, k, block_end, braces, screen=False)
    if got is None:
        return None
    content, end, ckind = got
    kind = {"boxed": "boxed", "choice": "choice"}.get(ckind, "final_answer")
    return AnswerMatch(content, start, end, kind)


def _hash_line(text: str, m: re.Match) -> AnswerMatch | None:
    nl = text.find("\n", m.end())
    end = len(text) if nl == -1 else nl
    raw = text[m.end():end]
    content = _clean_plain(raw)
    if not content or len(content) > MAX_PHRASE_CHARS:
        return None
    return AnswerMatch(content, m.start(), m.end() + len(raw.rstrip()), "hash")


def _anchors(text: str) -> Iterator[re.Match]:
    """The matches of ``_ANCHOR_RE.finditer(text)``: ``_ANCHOR_RE`` tried only where it can match (see
    ``_ANCHOR_HINT_RE``), in order, resuming after each match like ``finditer``."""
    pos = 0  # where finditer would resume
    m = _ANCHOR_RE.match(text, 0)
    if m is not None:
        yield m
        pos = m.end()
    for h in _ANCHOR_HINT_RE.finditer(text):
        at = h.end() if h.group() == "\n" else h.start()  # a line start, or the hinted character
        if at < pos:
            continue
        m = _ANCHOR_RE.match(text, at)
        if m is not None:
            yield m
            pos = m.end()


def find_answers(text: str) -> list[AnswerMatch]:
    """Every answer statement in ``text``, ordered by position and
    non-overlapping; no last-line fallback."""
    if not text:
        return []
    braces: _Braces | None = None
    found: list[AnswerMatch] = []
    last_end = 0
    for m in _anchors(text):
        if m.start() < last_end:
            continue
        if braces is None:
            braces = _Braces(text, max(0, m.start() - 1))
        kind = m.lastgroup
        got: AnswerMatch | None
        if kind == "boxed":
            bx = _boxed_at(text, m.start(), braces)
            got = AnswerMatch(bx[0], m.start(), bx[1], "boxed") if bx and bx[0] else None
        elif kind == "final":
            got = _final_block(text, m, braces)
        elif kind == "hash":
            got = _hash_line(text, m)
        else:
            got = _answer_phrase(text, m, braces)
        if got is None or not got.text:
            continue
        if got.start < last_end:
            # a look-behind extension must not overlap the previous statement
            got = AnswerMatch(got.text, last_end, got.end, got.kind)
        found.append(got)
        last_end = got.end
    return found


# --------------------------------------------------------------------------
# final answer


def _answer_region(text: str) -> tuple[int, int]:
    """The part of a response that holds its final answer: after the last
    ``</think>`` / ``<|end_of_thought|>`` or inside ``<|begin_of_solution|>``
    when that part is not empty, else the whole text."""
    sol = None
    for sol in _SOLUTION_RE.finditer(text):
        pass
    if sol is not None and sol.group(1).strip():
        return sol.start(1), sol.end(1)
    end_think = None
    for end_think in _THINK_END_RE.finditer(text):
        pass
    if end_think is not None and text[end_think.end():].strip():
        return end_think.end(), len(text)
    return 0, len(text)


def _last_line(text: str, lo: int, hi: int) -> AnswerMatch | None:
    region_end = hi
    while region_end > lo and text[region_end - 1].isspace():
        region_end -= 1
    if region_end <= lo:
        return None
    line_start = text.rfind("\n", lo, region_end) + 1
    line_start = max(line_start, lo)
    line = text[line_start:region_end]
    stripped = line.strip()
    # a display block closing on its own line: take the block
    for opener, closer in (("\\[", "\\]"), ("$$", "$$")):
        if stripped == closer or (stripped.endswith(closer) and opener not in stripped):
            o = text.rfind(opener, lo, region_end - len(closer) if stripped == closer else line_start + line.rfind(closer))
            if o != -1:
                env = _math_env_at(text, o, region_end)
                if env is not None and env[0]:
                    return AnswerMatch(_clean_plain(env[0]), o, env[1], "last_line")
    content = _clean_plain(stripped)
    content = re.sub(r"^(?:final\s+)?answer\s*[:：]\s*", "", content, flags=re.IGNORECASE)
    maths = [g for mm in _INLINE_MATH_RE.finditer(content) for g in mm.groups() if g]
    if maths and (len(content) > 40 or re.search(r"[A-Za-z]{3,}\s", _INLINE_MATH_RE.sub("", content))):
        content = maths[-1].strip()
    elif len(maths) == 1 and _INLINE_MATH_RE.fullmatch(content):
        content = maths[0].strip()
    if not content:
        content = stripped
    return AnswerMatch(content, line_start, region_end, "last_line")


_PRIORITY = ("boxed", "final_answer", "answer_is", "hash", "choice")


def extract_final_answer(text: str) -> AnswerMatch | None:
    """The final answer of a response.

    Order of preference: the last ``\\boxed{}`` (boxed expressions directly
    following each other, "\\boxed{1}, \\boxed{2}", form one answer "1, 2"),
    then the last ``**Final Answer**`` block, "the answer is ...", ``#### N``,
    a multiple-choice letter, and finally the last non-empty line (kind
    ``last_line``).  For responses with a thinking part (``</think>``,
    ``<|end_of_thought|>``, ``<|begin_of_solution|>``) only the part after the
    thinking is searched when it is not empty.  ``None`` for an empty text.
    """
    if not text or not text.strip():
        return None
    lo, hi = _answer_region(text)
    matches = find_answers(text[lo:hi]) if (lo, hi) != (0, len(text)) else find_answers(text)
    if lo:
        matches = [AnswerMatch(x.text, x.start + lo, x.end + lo, x.kind) for x in matches]
    for kind in _PRIORITY:
        cands = [x for x in matches if x.kind == kind]
        if not cands:
            continue
        best = cands[-1]
        if kind == "boxed":
            best = _merge_boxed_run(text, matches, best)
        return best
    return _last_line(text, lo, hi)


def _merge_boxed_run(text: str, matches: list[AnswerMatch], last: AnswerMatch) -> AnswerMatch:
    """Merge the last boxed match with bare boxed matches right before it that
    are separated by connectors only ("\\boxed{1} and \\boxed{2}").  A box
    introduced by a phrase or heading, or separated by a blank line, starts a
    new statement; repeated identical boxes count once."""
    idx = matches.index(last)
    first = idx
    while first > 0:
        prev = matches[first - 1]
        cur = matches[first]
        if prev.kind != "boxed" or cur.start - prev.end > 60:
            break
        if not _BOXED_AT_RE.match(text, cur.start) or not _BOXED_AT_RE.match(text, prev.start):
            break
        gap = text[prev.end:cur.start]
        if _BOXED_JOIN_RE.fullmatch(gap) is None or re.search(r"\n[ \t]*\n", gap):
            break
        first -= 1
    if first == idx:
        return last
    run = matches[first: idx + 1]
    parts: list[str] = []
    for x in run:
        if x.text not in parts:
            parts.append(x.text)
    if len(parts) == 1:
        return last
    return AnswerMatch(", ".join(parts), run[0].start, last.end, "boxed")
