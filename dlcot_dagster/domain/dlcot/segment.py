"""Rule-based macro segmentation of a long CoT into the five DLCoT parts.

The text is first cut into *units* (lines, plus sentence cuts in front of
mid-line cue words; see :func:`.text.split_units`). Segments are runs of
whole units, so they are character spans of the original text that cover it
exactly (no gaps, no overlaps).

Parts, in order:

``question_restatement``
    Leading units (at most 3) whose content words mostly (≥ 50 %) occur in
    the problem statement ("Okay, so I have this problem where ...") and that
    bring no number of their own (a new number means work has started). On
    the shared traces the first unit's containment has a median of 0.6–0.75
    per teacher, the next units 0.2–0.5.
``problem_understanding``
    The following units until the model starts working: a unit with a
    formula (``=``, ``<``, ``\\frac`` ...), a plan/compute phrase ("Let me
    compute", "First, ...", "Step 1"), or a verify / switch / conclude cue;
    capped at 35 % of the text before the first answer (at least 300
    characters).
``solution``
    Everything up to (and including the unit of) the **first answer
    reached**, split into separate approaches at clear switch cues
    ("Alternatively, maybe ...", "Another approach", "Let me try a different
    method", "Let me start over") that open a line, follow at least 200
    characters of the current approach, and are not a local tactic ("a better
    approach is to rearrange terms"). Only the last one holds the first
    answer; the earlier ones are abandoned approaches.
``verification``
    Everything after the first answer up to the conclusion: re-checks and
    alternative approaches, split into separate checks at each cue unit
    ("Wait", "But wait", "Let me verify", "Alternatively", "Hmm", a question
    that doubts the result: "Is there a higher possible GCD?") and
    at the first unit of new work (a formula) after an answer (after an
    affirmation alone, "That checks out.", a pass of substitutions goes on
    until a cue); a check
    shorter than 80 characters without an answer, or a one-sentence
    announcement without a number, is merged into the next one ("Wait, is
    that right?" + the re-computation). Short wrap-up lines after
    an answer ("So, she bikes 27 miles.", at most 300 characters, no
    formula) stay with the segment that reached the answer, and so does a
    look at the answer choices that names the option of that answer ("Let
    me check the answer choices. D is 44, so that should be the answer.").
``conclusion``
    The trailing units that state the final result ("So the answer is ...",
    "**Final Answer** \\boxed{..}"), plus short trailing units without
    formulas or cues after them. Absent in truncated traces.

Answers (explicit and implicit, see :mod:`.answers_in_text`) attach to the
segment that contains the end of their statement; a segment's answer is its
last one. (When no solution/check is correct but the conclusion is, the
labeler lets the body inherit the conclusion's answer; see :mod:`.label`.)
"""

from __future__ import annotations

import bisect
import re

from .answers_in_text import CheckerLike, locate_answers
from .choices import parse_choices, problem_without_choices
from .policy import SegmenterConfig
from .similarity import tokens
from .text import Unit, is_blank, split_units
from .types import AnswerSpan, Segment, SegmentedTrace, SegmentKind, TraceInput

_MATH_RE = re.compile(r"[=<>≤≥≠≈]|\\(?:frac|cdot|times|sqrt|sum|prod|int|le|ge|neq|binom)\b|\d\s*[-+*/×÷^]\s*\d")
_WORK_RE = re.compile(
    r"^\W*(?:(?:okay|ok|alright|so|now|hmm+|well|then|first|next)[\s,.!]+)*(?:"
    r"let(?: me|'s| us)\s+(?:(?:first|now|just)\s+)?(?:compute|calculate|denote|define|set|write|start|try|consider|"
    r"solve|find|assume|suppose|call|label|express|formalize|expand|factor|simplify|plug|substitute|list|count|"
    r"draw|sketch|place|model|parametrize|parameterize|introduce|use|apply|recall|note)|"
    r"first,|first of all|step\s*\d|to (?:solve|find|compute|calculate)|(?:we|i) (?:can|could|will|'ll) (?:start|use|"
    r"compute|calculate|set|write|denote|solve)|starting with|suppose|assume|given that|consider)",
    re.IGNORECASE,
)
_OPENER_WORDS = frozenset(
    """okay ok so alright i we need to find have got here this problem question asks asked asking given let me see
    what figure out solve determine compute calculate how many much are is the a an of in it's its about trying try
    understand read carefully statement says tells us our goal want""".split()
)
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
# an operation on numbers ("432 / 24", "6 x 7", "2^10"): work has started
_ARITH_RE = re.compile(r"\d\s*(?:[-+*/×÷^x]|\\times|\\cdot|\\div)\s*\(?\d")
_SUBDIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉⁰¹²³⁴⁵⁶⁷⁸⁹", "01234567890123456789")
_MIN_CHECK_CHARS = 80
_MIN_UNDERSTANDING_BUDGET = 300
_MIN_APPROACH_CHARS = 200
_WRAPUP_CHARS = 300
# a short restatement of the answer just reached closes the wrap-up ("So, the total sum is 469."); a longer one, or
# one that speaks of checking ("I double-checked ... So I'm confident it is 469."), is a check of its own
_RESTATE_CHARS = 160
# "Let me check the answer choices.", "Let me see if that matches any of the options." (not "the other options":
# testing them is a check)
_CHOICES_LOOKUP_RE = re.compile(
    r"\W*(?:(?:now|so|okay|ok)[,\s]+)?let(?: me|'s| us) (?:just )?(?:check|look at|see|compare)\b"
    r"(?:(?!other|remaining|rest\b|each|all\b|again)[^.?!\n]){0,40}?\b(?:answer )?(?:choices|options)\b",
    re.IGNORECASE,
)
_CHECK_WORD_RE = re.compile(r"\b(?:check|verif|confirm|double|mistake|sure|again)", re.IGNORECASE)
# "a better approach is to rearrange terms": a local tactic inside the same approach, not a new one
_LOCAL_TACTIC_RE = re.compile(
    r"(?:approach|way|method|idea|thing)\s+(?:here\s+)?(?:is|would be|might be|could be)\s+to\s+(?:just\s+)?"
    r"(?:rearrange|simplify|compute|calculate|expand|factor|write|rewrite|multiply|divide|add|subtract|substitute|"
    r"plug|combine|move|bring|isolate|solve for|square|cancel|collect|group|reduce|evaluate|count|list|check|verify|"
    r"note|notice|observe)\b",
    re.IGNORECASE,
)


def _extend_wrapup(ctx: "_Ctx", k: int, limit: int) -> int:
    """Extend an answer-ending segment over following short wrap-up units (no cue, no formula, no answer)."""
    total = 0
    first = k - 1
    while k < limit:
        u = ctx.units[k]
        t = ctx.utext(k)
        if not is_blank(t):
            if u.cue == "conclude" and _same_answers(ctx, k, first, k):
                # "So the answer is 42." right after reaching 42
                k += 1
                continue
            if (u.cue is None and len(t.strip()) <= _RESTATE_CHARS and _same_answers(ctx, k, first, k)
                    and not _MATH_RE.search(t) and not _CHECK_WORD_RE.search(t)):
                # "Looking at the answer choices, D is 80,200. So that should be the correct answer." after
                # reaching 80,200: the same answer named again (an option's letter after its value) closes the wrap-up
                total += len(t.strip())
                if total <= _WRAPUP_CHARS:
                    k += 1
                break
            if u.cue == "verify" and len(t.strip()) <= _RESTATE_CHARS and _CHOICES_LOOKUP_RE.match(t):
                # "Let me check the answer choices. D is 44, so that should be the answer." right after reaching 44:
                # naming the option of the answer just reached is its wrap-up (a value of a listed choice is the
                # first answer, its letter the wrap-up), not a check; only when this unit or the next names it
                nxt = k + 1
                while nxt < limit and is_blank(ctx.utext(nxt)):
                    nxt += 1
                if _same_answers(ctx, k, first, k):
                    k += 1
                elif (nxt < limit and ctx.units[nxt].cue is None and _same_answers(ctx, nxt, first, k)
                      and len(ctx.utext(nxt).strip()) <= _WRAPUP_CHARS):
                    k = nxt + 1
                break
            if u.cue is not None or k in ctx.by_unit or _MATH_RE.search(t):
                break
            total += len(t.strip())
            if total > _WRAPUP_CHARS:
                break
        k += 1
    # never end on blank units that precede a non-wrap-up unit: they stay with this segment anyway
    return k


def _same_answers(ctx: "_Ctx", k: int, lo: int, hi: int) -> bool:
    """Unit ``k`` states answers, all equal to the last answer stated in units ``lo..hi-1``."""
    mine = ctx.by_unit.get(k)
    if not mine:
        return False
    prev = None
    for q in range(hi - 1, lo - 1, -1):
        if ctx.by_unit.get(q):
            prev = ctx.by_unit[q][-1]
            break
    return prev is not None and all(_norm(a.text) == _norm(prev.text) for a in mine)


_ANNOUNCEMENT_CHARS = 200
_SENTENCE_END_RE = re.compile(r"[.?!](?=\s|$)")


def _announcement(text: str) -> bool:
    """One short sentence without a number: it announces a check ("maybe I should check the other options too")."""
    t = text.strip()
    return len(t) <= _ANNOUNCEMENT_CHARS and not any(ch.isdigit() for ch in t) and len(_SENTENCE_END_RE.findall(t)) <= 1


def _approach_switch(text: str, unit: Unit) -> bool:
    """A switch cue that starts a new approach: at a line start, and not a local tactic."""
    if unit.start > 0 and text[unit.start - 1] != "\n":
        return False
    return _LOCAL_TACTIC_RE.search(text, unit.start, min(unit.end, unit.start + 200)) is None
_TAIL_MAX_CHARS = 300
# a unit that takes up one option: "Option C is ...", "C) ...", "- Option B: ...", "For choice D, ..."
_OPTION_START_RE = re.compile(r"[\s*_#>\-–—•]*(?:(?:for|now|next|then|and|checking|check)\s+)?(?:(?:option|choice)\s*\(?[A-J]\b\)?|"
                              r"\(?[A-J]\)\s)", re.IGNORECASE)
# a check that settles: "Yes, that's correct.", "That checks out.", "This confirms the previous calculation."
_AFFIRM_RE = re.compile(
    r"\b(?:that|this|it|which|everything|so that)(?:'s| is| all)? (?:checks? out|confirms?|is (?:correct|right|consistent)|"
    r"matches|agrees|holds|works|seems (?:correct|right|solid|consistent|fine|good)|looks (?:correct|right|good)|"
    r"makes sense|is the same|adds up)\b|^\W*(?:yes|yep|yeah|correct|right|good|great|perfect)\b[,.!]|"
    r"\bsame (?:answer|result)\b|\bconsistent\b|\bconfirm(?:s|ed)\b",
    re.IGNORECASE,
)


def _containment(unit_text: str, problem_words: set[str]) -> float:
    words = [w for w in tokens(unit_text) if w not in _OPENER_WORDS and w.isalnum()]
    if not words:
        return -1.0
    return sum(1 for w in words if w in problem_words) / len(words)


class _Ctx:
    """Units + answers of one text, with position lookups."""

    def __init__(self, text: str, units: list[Unit], answers: list[AnswerSpan]):
        self.text = text
        self.units = units
        self.starts = [u.start for u in units]
        self.answers = answers
        # unit index -> answers whose statement ends in that unit
        self.by_unit: dict[int, list[AnswerSpan]] = {}
        for a in answers:
            ui = self.unit_at(max(a.start, a.end - 1))
            self.by_unit.setdefault(ui, []).append(a)

    def unit_at(self, pos: int) -> int:
        return max(0, bisect.bisect_right(self.starts, pos) - 1)

    def utext(self, i: int) -> str:
        u = self.units[i]
        return self.text[u.start : u.end]


def _is_tail(ctx: _Ctx, i: int) -> bool:
    u = ctx.units[i]
    t = ctx.utext(i)
    if is_blank(t):
        return True
    if u.cue is not None or i in ctx.by_unit:
        return False
    return len(t.strip()) <= _TAIL_MAX_CHARS and not _MATH_RE.search(t)


def _is_conclude(ctx: _Ctx, i: int, final: AnswerSpan | None) -> bool:
    u = ctx.units[i]
    t = ctx.utext(i)
    if is_blank(t):
        return True
    if u.cue == "conclude":
        return True
    if final is not None and u.cue is None and len(t.strip()) <= 400:
        for a in ctx.by_unit.get(i, ()):
            if a.explicit and _norm(a.text) == _norm(final.text):
                return True
    # "Hence, … p + q = 11." closing a thinking whose **Final Answer** tail was split off by ingestion:
    # a short connective sentence that states an answer (implicit answers only ever match the reference)
    if len(t.strip()) <= 400 and _CONCLUDING_CONNECTIVE_RE.match(t) and ctx.by_unit.get(i):
        return True
    return False


_CONCLUDING_CONNECTIVE_RE = re.compile(
    r"\s*(?:so|thus|therefore|hence|finally|consequently|in conclusion|in summary)\b", re.IGNORECASE
)


def _norm(s: str) -> str:
    s = re.sub(r"\\(?:left|right|displaystyle|,|;|!|\s)", "", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("$", "")
    return re.sub(r"\s+", "", s).rstrip(".").lower()


def answer_key(answer: AnswerSpan | None) -> str:
    return "none" if answer is None else "ans:" + _norm(answer.text)


def segment_units(
    text: str,
    problem: str = "",
    reference_answer: str = "",
    checker: CheckerLike | None = None,
    config: SegmenterConfig | None = None,
    final_response: str | None = None,
) -> tuple[list[Segment], AnswerSpan | None]:
    """Segments of ``text`` and its final explicit answer (see module docstring)."""
    cfg = config or SegmenterConfig()
    if not text:
        return [], None
    units = split_units(text)
    n = len(units)

    # --- question restatement (before answers: answers inside it are ignored)
    problem_words = {w for w in tokens(problem) if w.isalnum()}
    # the options of a multiple-choice problem are candidate answers, not given data: a unit that states one of
    # their numbers is work, not a restatement
    stem = problem_without_choices(problem, parse_choices(problem))
    problem_numbers = set(_NUMBER_RE.findall(stem.translate(_SUBDIGITS)))
    r = 0
    count = 0
    i = 0
    while problem_words and i < n:
        t = text[units[i].start : units[i].end]
        if is_blank(t):
            i += 1
            continue
        if count >= cfg.restatement_max_units or units[i].cue in ("switch", "verify", "conclude"):
            break
        cont = _containment(t, problem_words)
        if cont < 0:  # no content words ("Okay, let's see."): neutral, look further
            i += 1
            continue
        if (
            cont >= cfg.restatement_containment
            and len(t) <= 2 * len(problem) + 300
            and set(_NUMBER_RE.findall(t.translate(_SUBDIGITS))) <= problem_numbers
            and not _ARITH_RE.search(t)
        ):
            count += 1
            i += 1
            r = i
            continue
        break
    restate_end = units[r - 1].end if r else 0

    answers, explicit = locate_answers(text, problem, reference_answer, checker, cfg, restate_end, final_response)
    ctx = _Ctx(text, units, answers)
    final = explicit[-1] if explicit else None

    # --- conclusion: trailing tail units, preceded by conclude-like units
    j = n - 1
    while j >= r and _is_tail(ctx, j):
        j -= 1
    c = n
    while j >= r and _is_conclude(ctx, j, final):
        c = j
        j -= 1
    if c < n:
        # a conclusion made only of blank units is no conclusion
        if all(is_blank(ctx.utext(k)) for k in range(c, n)):
            c = n
        else:
            while c < n and is_blank(ctx.utext(c)) and c > r:
                # leading blank units belong to the previous segment
                c += 1
    # the body must keep at least one non-blank unit when there is anything before the conclusion
    if c <= r and r < n:
        c = n

    # --- first answer inside the body
    first_u = None
    for k in range(r, c):
        if k in ctx.by_unit:
            first_u = k
            break

    # --- problem understanding
    limit_pos = units[first_u].start if first_u is not None else (units[c - 1].end if c > r else 0)
    budget = max(cfg.understanding_max_share * max(0, limit_pos - restate_end), _MIN_UNDERSTANDING_BUDGET)
    s = r
    while s < c and (first_u is None or s < first_u):
        u = units[s]
        t = ctx.utext(s)
        if not is_blank(t):
            if u.cue in ("switch", "verify", "conclude") or _MATH_RE.search(t) or _WORK_RE.match(t):
                break
            if u.end - restate_end > budget:
                break
        s += 1
    if s >= c:
        # nothing left for the body: everything after the restatement is reasoning
        s = r
    # blank units right after understanding stay with it; understanding never ends in the middle of a solution

    segs: list[tuple[SegmentKind, int, int, str | None]] = []  # kind, first unit, last unit (excl), cue

    def add(kind: SegmentKind, a: int, b: int) -> None:
        if b > a:
            segs.append((kind, a, b, units[a].cue))

    add(SegmentKind.QUESTION_RESTATEMENT, 0, r)
    add(SegmentKind.PROBLEM_UNDERSTANDING, r, s)

    # --- solutions
    sol_end = (first_u + 1) if first_u is not None else c
    # short wrap-up lines right after the first answer ("So, she bikes 27 miles.") stay with it
    sol_end = _extend_wrapup(ctx, sol_end, c)
    cur = s
    for k in range(s + 1, sol_end):
        if (
            units[k].cue == "switch"
            and _approach_switch(text, units[k])
            and len(text[units[cur].start : units[k].start].strip()) >= _MIN_APPROACH_CHARS
        ):
            add(SegmentKind.SOLUTION, cur, k)
            cur = k
    add(SegmentKind.SOLUTION, cur, sol_end)

    # --- checks: one per check episode (see the module docstring)
    if sol_end < c:
        cur = sol_end
        cur_chars = 0
        wrap_chars = 0
        cur_has_math = False
        closed = False  # the current check reached an answer or affirmed its result
        # it reached an answer: only then does plain new work (a formula, no cue) open the next check; after an
        # affirmation alone ("log_2(81) = 4, correct.") the same pass goes on ("log_3(...) = 4, correct.")
        answered = False
        opts_seen = False  # the current check goes over the options one by one ("Option A: ...")
        for k in range(sol_end, c):
            t = ctx.utext(k)
            blank = is_blank(t)
            split = False
            if k > cur and not blank:
                cue = units[k].cue
                if cue == "conclude":
                    # "So the answer is 42." closes the current check rather than opening one
                    split = closed and k in ctx.by_unit and not _same_answers(ctx, k, cur, k)
                elif cue in ("verify", "switch"):
                    # a new act of checking; a content-free announcement ("Let me check.", "Wait, but just to be
                    # thorough, maybe I should check the other options too.") merges into the check it announces
                    split = closed or cur_has_math or (
                        cur_chars >= _MIN_CHECK_CHARS and not _announcement(text[units[cur].start : units[k].start])
                    )
                elif cue is not None:
                    # "Wait, ...", "Hmm": a new episode only once the current one has settled
                    split = closed
                elif answered:
                    wrap_chars += len(t.strip())
                    split = (
                        bool(_MATH_RE.search(t)) and wrap_chars > _WRAPUP_CHARS // 3
                    ) or wrap_chars > _WRAPUP_CHARS or (k in ctx.by_unit and not _same_answers(ctx, k, cur, k))
            if split and opts_seen and _OPTION_START_RE.match(t) and units[k].cue is None:
                # "Option C is ..." after "Option A ... Option B ...": the same pass over the options goes on
                split = False
            if split:
                add(SegmentKind.VERIFICATION, cur, k)
                cur, cur_chars, wrap_chars, cur_has_math, closed, answered = k, 0, 0, False, False, False
                opts_seen = False
            opts_seen = opts_seen or bool(_OPTION_START_RE.match(t))
            cur_chars += len(t.strip())
            cur_has_math = cur_has_math or bool(_MATH_RE.search(t))
            answered = answered or k in ctx.by_unit
            if k in ctx.by_unit or (not blank and _AFFIRM_RE.search(t)):
                closed = True
                wrap_chars = 0
        add(SegmentKind.VERIFICATION, cur, c)

    add(SegmentKind.CONCLUSION, c, n)

    # leading blank-only units at the very start are merged into the first segment
    out: list[Segment] = []
    for idx, (kind, a, b, cue) in enumerate(segs):
        start, end = units[a].start, units[b - 1].end
        ans = None
        if kind is SegmentKind.SOLUTION and first_u is not None and a <= first_u < b:
            # the solution that reaches the first answer: its answer is that one (its wrap-up may restate it)
            ans = ctx.by_unit[first_u][-1]
        for k in range(b - 1, a - 1, -1) if ans is None else ():
            lst = ctx.by_unit.get(k)
            if lst:
                ans = lst[-1]
                break
        if kind in (SegmentKind.QUESTION_RESTATEMENT, SegmentKind.PROBLEM_UNDERSTANDING):
            ans = None
        out.append(Segment(idx=idx, kind=kind, start=start, end=end, cue=cue, answer=ans))

    return out, final


def segment_trace(
    thinking: str,
    problem: str = "",
    reference_answer: str = "",
    checker: CheckerLike | None = None,
    config: SegmenterConfig | None = None,
) -> list[Segment]:
    """Segments (kind, start, end, answer) covering ``thinking`` exactly; ``[]`` for an empty text.

    Without ``reference_answer``/``checker`` only explicit answer statements
    are used to find the first answer.
    """
    return segment_units(thinking, problem, reference_answer, checker, config)[0]


class RuleSegmenter:
    """``Segmenter`` implementation with the rules above."""

    def __init__(self, checker: CheckerLike | None = None, config: SegmenterConfig | None = None):
        self.checker = checker
        self.config = config or SegmenterConfig()

    def segment(self, record) -> SegmentedTrace:
        rec = TraceInput.of(record)
        segs, final = segment_units(rec.thinking, rec.problem, rec.reference_answer, self.checker, self.config,
                                    rec.final_response)
        return SegmentedTrace(record=rec, segments=segs, final_answer=final)
