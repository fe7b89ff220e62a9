"""Method evidence: which solutions and checks are the same approach, the way DLCoT means it.

DLCoT clusters the approaches and checks of a trace under five novelty criteria (a fundamentally different
method; very different intermediate steps; different assumptions; a general vs a special case; a much simpler or
much more complex approach) and keeps the first member of each cluster. A check that redoes the trunk's own method
to reach the same answer is a repeat; a check that brings a new method is kept, one per method. Re-checks reword
the same steps, so this module compares segments by *method evidence*, not by wording.

Evidence of a text
------------------
``value:<v>``
    every number (thousands separators and trailing zeros dropped; ``\\frac{a}{b}`` and ``a/b`` read as ``a/b``).
    Intermediate values are the clearest trace of the steps taken: a re-computation produces the same ones, a
    new method (a special case, another decomposition, a complementary count) produces new ones.
``expr:<e>``
    every run of math tokens that holds an operator or a relation (``35+84``, ``5^s+a=35``, ``\\binom{10}{4}``),
    normalized (no spaces, ``\\dfrac`` -> ``\\frac``, no ``\\left``/``\\right``): the operations applied.
``op:<name>``
    technique words (substitution, factoring, Vieta, modular arithmetic, derivatives, coordinates, complementary
    counting, a special case, an estimate, ...; see :data:`TECHNIQUES`): the method as the model names it.
``assume:<topic>``
    for a check only: an assumption or reading of the problem that its opening questions ("Could they be
    negative?", "is there overlap in counting?", "the uniqueness of A"; see :data:`ASSUMPTION_TOPICS`), DLCoT's
    "different assumptions". An assumption the problem itself states counts as seen.
``word:<stem>``
    content-word stems, used only for a text with little math evidence (a re-reading of the problem, a check of
    the wording), where they are the only evidence there is.

Weights: ``op`` 3, ``assume`` 3, ``expr`` 1, ``value`` 1 (0.5 for a number the problem states: re-stating a given says little),
``word`` 0.25.

Novelty and redundancy
----------------------
Segments are taken in text order; *seen* evidence starts with the problem's and the kept understanding's, and
grows with every segment kept as distinct. The **novelty** of a segment is the weighted share of its evidence not
seen yet. A solution or check is a **redundant repeat** when

* its novelty is below ``novelty_threshold`` (0.55 by default, 0.70 for an announced re-computation; measured on
  the tune half of the labelled set, see
  ``bench/bench_segmentation.py``), or its text is a near-verbatim copy of an earlier segment (word 3-shingle
  Jaccard >= ``jaccard_threshold``, as looping traces do), and
* it reaches the same answer as the trunk (both correct, or the same wrong answer) or no answer at all, and
* it is not the first correct segment (the trunk's end is never a repeat) and it does not correct anything (a
  segment that reaches a different answer is not a repeat: the pruner judges it by its label).

The first check that tests the other options of a multiple-choice problem is distinct whatever evidence it shares
(the annotation guide's rule: the options' values and the trunk's arithmetic are often all it holds); a later one is
judged as above.

A repeat's cluster is the earlier kept segment whose evidence overlaps its own most. A check with almost no
evidence (total weight below ``min_evidence``; "Hmm, let me think.") is a repeat of the segment before it: it
brings nothing new. Nor does an **announced alternative that is not carried out**: a check that opens as another
method ("Alternatively, perhaps I can use integral representations.", "Is there a different method to solve
this? Maybe in terms of rates per minute instead?") but computes no value or operation run not seen before and
reaches no answer is a repeat of the segment before it (on the labelled set 25 of the 28 such checks the engine
kept were annotated redundant: the model names a method and goes back to its own).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from .text import lower_case_twin
from .types import Label, SegmentedTrace, SegmentKind

# technique words -> op name (matched on the lower-cased text as word prefixes)
TECHNIQUES: dict[str, tuple[str, ...]] = {
    "substitute": ("substitut", "plug", "plugging", "put back", "back into", "back in"),
    "factor": ("factor",),
    "expand": ("expand", "expansion", "distribut"),
    "quadratic": ("quadratic formula", "discriminant", "complete the square", "completing the square"),
    "vieta": ("vieta", "sum of the roots", "product of the roots", "sum of roots", "product of roots"),
    "modular": ("modulo", "mod ", "congruen", "remainder", "residue"),
    "calculus": ("derivative", "differentiat", "integra", "limit"),
    "coordinates": ("coordinate", "cartesian", "x-axis", "y-axis", "slope"),
    "vectors": ("vector", "dot product", "cross product"),
    "complex": ("complex number", "modulus", "argument", "polar form", "de moivre", "roots of unity"),
    "trig": ("law of cosines", "law of sines", "trig", "sine", "cosine", "tangent"),
    "pythagoras": ("pythagor",),
    "similar": ("similar triangle", "similarity", "proportion"),
    "area": ("area", "heron", "shoelace"),
    "volume": ("volume",),
    "probability": ("probabilit",),
    "complement": ("complement", "complementary"),
    "inclusion_exclusion": ("inclusion-exclusion", "inclusion exclusion", "principle of inclusion"),
    "combinatorics": ("binomial", "choose", "combination", "permutation", "arrangement"),
    "recursion": ("recurs", "recurrence"),
    "generating_function": ("generating function",),
    "induction": ("induction",),
    "parity": ("parity", "even and odd", "odd and even"),
    "symmetry": ("symmetr",),
    "casework": ("case 1", "case 2", "casework", "cases:", "each case", "consider cases"),
    "bijection": ("bijection", "one-to-one correspondence"),
    "inequality": ("am-gm", "am gm", "cauchy", "jensen", "inequality"),
    "logarithm": ("logarithm", "log base", "log_"),
    "primes": ("prime factor", "factorization", "gcd", "lcm", "divisor", "divisib"),
    "enumerate": ("list all", "listing", "enumerat", "count them", "one by one", "brute force"),
    "estimate": ("estimat", "approximat", "roughly", "order of magnitude", "sanity"),
    "special_case": ("special case", "small case", "smaller case", "simpler case", "for example", "e.g.", "test case",
                     "n = 1", "n=1", "n = 2", "n=2"),
    "series": ("geometric series", "arithmetic series", "telescop", "sum formula", "arithmetic sequence",
               "geometric sequence"),
    "matrix": ("matrix", "determinant", "eigen"),
    "units": ("units", "dimension"),
    "options": ("option", "choice"),
    "graph": ("graph", "plot", "sketch", "draw"),
    "table": ("table",),
    "reread": ("re-read", "reread", "read the problem", "problem says", "problem states", "question asks",
               "the problem asks"),
}
# (keyword, technique) pairs; a keyword matches anywhere in the lower-cased text (a word prefix: "substitut")
_TECH_KEYS = tuple((w, name) for name, words in TECHNIQUES.items() for w in words)
_WORD_START3_RE = re.compile(r"(?<![a-z])[a-z]{3}")

_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}\s*\{\s*(-?\d+(?:\.\d+)?)\s*\}")
# a number not preceded by a word character or a dot: ``(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)...``, written to start
# with its first digit (the look-behind then checks the character before it), so that ``re`` scans for digits
# instead of trying the look-behind at every position; same matches, twice as fast
_NUM_RE = re.compile(r"(\d(?<![\w.]\d)(?:\d{0,2}(?:,\d{3})+|\d*))(?:\.(\d+))?(?:\s*/\s*(\d+)(?![\d.]))?")
# tokens of a math run: LaTeX commands, numbers, letter runs (a run of 2+ letters is a word and ends the math run),
# operators and brackets; everything else (spaces, $, punctuation) is skipped
_EXPR_TOKEN_RE = re.compile(r"\\[a-zA-Z]+|\d+(?:\.\d+)?|[a-zA-Z]+|[=+\-*/^<>≤≥≠√()\[\]|!]")
# a word token of _EXPR_TOKEN_RE: a run of two or more letters that is not (part of) a LaTeX command, i.e.
# ``(?<![a-zA-Z\\])[a-zA-Z]{2,}``, written to start with a letter (the look-behind then checks the character before it)
_WORD = r"[a-zA-Z](?<![a-zA-Z\\][a-zA-Z])[a-zA-Z]+"
# what _exprs splits on: a word, and with it any following stretches up to the next word that hold no letter, no
# backslash and no operator character (such a stretch between two words holds no operator, so _exprs would skip it
# anyway): the stretches left between the pieces are exactly the stretches between words that may hold an operator
_WORD_SPLIT_RE = re.compile(rf"{_WORD}(?:[^a-zA-Z\\=+\-*/^<>≤≥≠√]*{_WORD})*")
# an operator: a symbol or an operator LaTeX command; each is one token of _EXPR_TOKEN_RE
_HAS_OP_RE = re.compile(r"[=+\-*/^<>≤≥≠√]|\\(?:frac|sqrt|cdot|times|binom|sum|prod|le|ge|leq|geq|neq|div|log|ln|sin|"
                        r"cos|tan)(?![a-zA-Z])")
_WORD_RE = re.compile(r"[a-z][a-z'-]{3,}")
_STOP = frozenset(
    """that this with from have there their then than what when where which while would could should these those
    into also just like make sure some more most much many only other same such very will been being does done
    doing each every here how its it's let's maybe need okay perhaps really right seems since still wait well
    hmm think know look looks see thus therefore hence answer check verify again correct yes""".split()
)

# what kind of check a verification segment is, from its opening words (see ANNOTATION_GUIDE.md's check types)
CHECK_OPENERS: tuple[tuple[str, re.Pattern], ...] = (
    ("options", re.compile(r"\b(?:other|remaining|each of the|all the|the rest of the) (?:options|choices|answers)\b|"
                           r"\bcheck(?:ing)? (?:option|choice)|\b(?:option|choice) [A-E]\b.{0,40}\b(?:is|gives|would)\b",
                           re.IGNORECASE)),
    ("substitute", re.compile(r"\b(?:plug\w*|substitut\w*|put(?:ting)?)\b.{0,40}?\b(?:back|into|in)\b|\bback into\b|"
                              r"\b(?:original|given) (?:system|equations?|conditions?|constraints?|expression)\b.{0,60}?"
                              r"\b(?:satisf\w*|holds?|true|works?)\b|\bverify (?:by|with) substitut|"
                              r"\bif (?:x|n|k|y|t|a|b) ?= ?-?\d", re.IGNORECASE)),
    ("special_case", re.compile(r"\b(?:special|small|smaller|simple|simpler|edge|extreme|boundary|trivial) cases?\b|"
                                r"\b(?:simpler|simple|small|smaller|concrete|specific|toy) (?:example|instance|version)\b|"
                                r"\btest (?:it )?(?:with|on)\b|\bfor example\b|\b(?:n|k|m) ?= ?[0-3]\b", re.IGNORECASE)),
    ("numeric", re.compile(r"\b(?:approximat\w*|estimat\w*|roughly|numerically|decimal|sanity|ballpark|"
                           r"order of magnitude|plausib\w*|makes? sense)\b", re.IGNORECASE)),
    ("alternative_method", re.compile(r"\b(?:another|different|alternative|other) (?:way|approach|method|perspective|"
                                      r"thought|idea)|\bwithout (?:needing to|having to) (?:compute|calculate|find)|"
                                      r"\balternatively\b", re.IGNORECASE)),
    ("recompute", re.compile(r"\b(?:recap|re-?do|re-?comput\w*|re-?calculat\w*|go (?:through|over)|again|"
                             r"double[- ]?check\w* (?:my|the|these|those|all)? ?(?:calculations?|computations?|arithmetic|"
                             r"steps|work|math)|re-?check\w* (?:my|the)? ?(?:calculations?|computations?|arithmetic|"
                             r"steps))\b",
                             re.IGNORECASE)),
)
# "different assumptions" (one of DLCoT's novelty criteria): a check that questions an assumption or a reading of
# the problem ("Could they be negative?", "is there overlap in counting?", "Consider the uniqueness of A", "another
# interpretation") brings the assumption it questions as evidence, one item per topic, so the first check of each
# topic is new and a later one on the same topic is not. Looked for in a check's opening (ASSUMPTION_HEAD chars);
# the topic is the group that matched.
ASSUMPTION_TOPICS: dict[str, str] = {
    # signs and zero are everyday words of a computation ("negative reciprocals", "subtracting a negative"): only
    # as a property something could have ("Could they be negative?", "0 is considered positive")
    "negative": r"(?:be|being|are|is|were|allow\w*|also|any|include) negative(?! *(?:reciprocal|sign|slope|one))|"
                r"negative (?:values?|numbers?|integers?|solutions?|roots?|cases?|answers?)",
    "zero": r"(?:be|being|is|equal to|include|includ\w*) zero(?! *[-+*/=])|0 (?:is|be) (?:considered|counted|allowed)",
    "positive": r"(?:be|are|were|considered|strictly|be all) positive(?= *(?:[?.,;:]|integers?|numbers?|only))|"
                r"positive means|only positive",
    "order": r"(?:in|any|different|decreasing|increasing|reverse) order|ordered|unordered",
    "distinct": r"distinct|repeat(?:ed|s)?|duplicate\w*",
    "unique": r"uniqueness|(?:is|are|be) (?:it |this |that |the \w+ )?unique(?= *[?.,;])|only (?:one|possible) "
              r"(?:solution|such|possibility)",
    "overlap": r"overlap\w*|double[- ]count\w*|counted twice",
    "interpretation": r"interpret\w*|another reading|read differently",
    "constraint": r"constraints?|restrictions?|conditions? (?:I|we) (?:might|may) have missed",
    "nuance": r"nuances?",
    "coprime": r"relatively prime|coprime",
    "integer": r"non-?integers?|integers? (?:only|solutions?)|must be (?:an )?integers?",
    "domain": r"domain|undefined|division by zero",
    "degenerate": r"degenerate|collinear",
}
ASSUMPTION_HEAD = 300
W_ASSUME = 3.0
_ASSUMPTION_RE = re.compile(
    r"\b(?:" + "|".join(f"(?P<{name}>{rx})" for name, rx in ASSUMPTION_TOPICS.items()) + r")\b", re.IGNORECASE
)
# the opening must ask about it ("could", "what if", "consider", a question mark ...), not just use the word
_ASSUMPTION_ASK_RE = re.compile(
    r"\?|\b(?:could|can|what if|what about|whether|consider(?:ing)?|does(?:n't)? (?:the problem|it) (?:say|specify|"
    r"require|mean)|ensure|make sure|check (?:if|whether|that)|verify (?:the|that)|assum\w*|interpret\w*)\b",
    re.IGNORECASE,
)


def assumption_topics(text: str) -> set[str]:
    """The assumptions a check's opening questions (names of :data:`ASSUMPTION_TOPICS`), empty if it asks none."""
    head = text[:ASSUMPTION_HEAD]
    if _ASSUMPTION_ASK_RE.search(head) is None:
        return set()
    return {m.lastgroup for m in _ASSUMPTION_RE.finditer(head) if m.lastgroup}


# a first check of these kinds brings new steps by the guide's rules; recompute/other never do by their kind alone
TYPE_WEIGHTS = {"substitute": 4.0, "options": 4.0, "special_case": 4.0, "numeric": 3.0, "alternative_method": 3.0}
#: the first check of these kinds is a distinct approach whatever else it shares (ANNOTATION_GUIDE.md: "Testing the
#: other options the first time is distinct")
FIRST_DISTINCT_KINDS = frozenset({"options"})
#: a re-computation must bring clearly new evidence to count as distinct: its threshold is raised by this much
RECOMPUTE_BONUS = 0.15


# case-sensitive twins of CHECK_OPENERS for a lower-cased ASCII head (see text.lower_case_twin; "[A-E]" under
# IGNORECASE is "[a-e]" on lower-cased text): same results, about twice as fast
_CHECK_OPENERS_ASCII = tuple(
    (name, lower_case_twin(re.compile(rx.pattern.replace("[A-E]", "[a-e]"), rx.flags))) for name, rx in CHECK_OPENERS
)


def check_type(text: str) -> str:
    """The kind of check ``text`` opens with (its first 300 characters): one of CHECK_OPENERS' names or ``other``."""
    head = text[:300]
    openers = CHECK_OPENERS
    if head.isascii():
        head = head.lower()
        openers = _CHECK_OPENERS_ASCII
    for name, rx in openers:
        if rx.search(head):
            return name
    return "other"


W_OP = 3.0
W_EXPR = 1.0
W_VALUE = 1.0
W_GIVEN_VALUE = 0.5
W_WORD = 0.25


def _norm_number(whole: str, frac: str | None, den: str | None) -> str:
    w = whole.replace(",", "").lstrip("0") or "0"
    if frac is not None:
        f = frac.rstrip("0")
        w = f"{w}.{f}" if f else w
    if den is not None:
        return f"{w}/{den.lstrip('0') or '0'}"
    return w


_UNI = str.maketrans({"²": "^2", "³": "^3", "⁴": "^4", "×": "*", "·": "*", "⋅": "*", "−": "-", "–": "-", "÷": "/",
                      "₀": "0", "₁": "1", "₂": "2", "₃": "3", "₄": "4", "₅": "5", "₆": "6", "₇": "7", "₈": "8",
                      "₉": "9"})
_LATEX_OPS_RE = re.compile(r"\\(?:times|cdot|ast)(?![a-zA-Z])")
# the characters of _UNI, replaced match by match: the same as ``str.translate(_UNI)``, which walks a non-ASCII text
# character by character (and they are rare)
_UNI_RE = re.compile("[" + re.escape("".join(map(chr, _UNI))) + "]")


def _uni(m: re.Match[str]) -> str:
    return _UNI[ord(m.group())]


def _plain(text: str) -> str:
    """Unicode and LaTeX operators as ASCII ("x² × 3" -> "x^2 * 3"), so the same step written two ways meets."""
    if not text.isascii():
        text = _UNI_RE.sub(_uni, text)
    if "\\" in text:
        text = _LATEX_OPS_RE.sub("*", text).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return text


def numbers(text: str) -> set[str]:
    out = {f"{a}/{b}" for a, b in _FRAC_RE.findall(text)}
    # each distinct match once (a text repeats its numbers); findall gives "" for a group that did not match
    for whole, frac, den in set(_NUM_RE.findall(text)):
        if not frac and not den and whole[0] != "0" and "," not in whole:
            out.add(whole)  # already normal
        else:
            out.add(_norm_number(whole, frac or None, den or None))
    return out


def _exprs(text: str) -> set[str]:
    """Runs of math tokens holding an operator (see the module docstring), joined without spaces."""
    out = set()
    # a word (two or more letters, not a LaTeX command) ends a run: read only the stretches between words that
    # hold an operator (an operator is a token of its own, so such a stretch's run holds one)
    for chunk in _WORD_SPLIT_RE.split(text):
        if len(chunk) < 3 or not _HAS_OP_RE.search(chunk):
            continue
        run = _EXPR_TOKEN_RE.findall(chunk)
        if len(run) >= 3:
            e = "".join(run).strip("=")
            if len(e) >= 3:
                out.add(e[:80])
                if "=" in e:
                    out.update(p[:80] for p in e.split("=") if len(p) >= 3)
    return out


def technique_occurrences(low: str) -> list[tuple[int, int, str]]:
    """(start, end, technique) of every key phrase in the lower-cased ``low``, by start. A key that begins with a
    letter counts at the start of a word only ("graph", not "paragraph"; "table", not "suitable")."""
    starts3 = set(_WORD_START3_RE.findall(low))
    out = []
    for key, name in _TECH_KEYS:
        word_key = key[0].isalpha()
        if word_key and key[:3] not in starts3:
            continue
        i = low.find(key)
        n = len(key)
        while i != -1:
            if not word_key or i == 0 or not low[i - 1].isalpha():
                out.append((i, i + n, name))
            i = low.find(key, i + 1)
    out.sort()
    return out


def techniques_within(occ: list[tuple[int, int, str]], starts: list[int], start: int, end: int) -> set[str]:
    """The techniques of :func:`technique_occurrences` whose key lies inside ``[start, end)``."""
    lo = bisect.bisect_left(starts, start)
    hi = bisect.bisect_left(starts, end)
    return {name for s0, e0, name in occ[lo:hi] if e0 <= end}


def _keys_by_start3() -> tuple[dict[str, tuple[tuple[str, str], ...]], tuple[tuple[str, str], ...]]:
    by3: dict[str, list[tuple[str, str]]] = {}
    other = []
    for key, name in _TECH_KEYS:
        if key[0].isalpha():
            by3.setdefault(key[:3], []).append((key, name))
        else:
            other.append((key, name))
    return {k: tuple(v) for k, v in by3.items()}, tuple(other)


# the word keys (first character a letter) by their first three characters, and the other keys
_TECH_BY_START3, _TECH_NON_WORD = _keys_by_start3()
_TECH_START3 = frozenset(_TECH_BY_START3)


def techniques_between(low: str, start: int, end: int) -> set[str]:
    """The techniques whose key lies inside ``low[start:end]``: :func:`techniques_within` of the whole text's
    occurrences, without finding every occurrence of the text (one valid occurrence of a key is enough, and only the
    segments that need evidence are read). A key at ``start`` is judged by the letter before it, as in the whole
    text. The first-three-letters filter is that of :func:`technique_occurrences`, over the span (a key with a
    valid occurrence inside it always passes), read as a set intersection: only the keys that can occur are tried."""
    out = set()
    for p in _TECH_START3.intersection(_WORD_START3_RE.findall(low, start, end)):
        for key, name in _TECH_BY_START3[p]:
            if name in out:
                continue
            i = low.find(key, start, end)
            while i != -1:
                if i == 0 or not low[i - 1].isalpha():
                    out.add(name)
                    break
                i = low.find(key, i + 1, end)
    for key, name in _TECH_NON_WORD:
        if name not in out and low.find(key, start, end) != -1:
            out.add(name)
    return out


def techniques(text: str) -> set[str]:
    """The techniques whose key phrases occur in ``text`` (see :func:`technique_occurrences`)."""
    return {name for _s, _e, name in technique_occurrences(text.lower())}


@dataclass
class Evidence:
    items: dict[str, float] = field(default_factory=dict)

    @property
    def weight(self) -> float:
        return sum(self.items.values())

    def math_weight(self) -> float:
        return sum(w for k, w in self.items.items() if not k.startswith("word:"))


def evidence(
    text: str,
    given_values: set[str] | frozenset[str] = frozenset(),
    with_words: bool | None = None,
    kind: str | None = None,
    tech: set[str] | None = None,
) -> Evidence:
    """Method evidence of ``text`` (see the module docstring); ``kind``: the check type, for a verification."""
    items: dict[str, float] = {}
    text = _plain(text)
    if kind in TYPE_WEIGHTS:
        items["check:" + kind] = TYPE_WEIGHTS[kind]
    if kind is not None:
        for topic in assumption_topics(text):
            items["assume:" + topic] = W_ASSUME
    for v in numbers(text):
        items["value:" + v] = W_GIVEN_VALUE if v in given_values else W_VALUE
    for e in _exprs(text):
        items["expr:" + e] = W_EXPR
    for t in techniques(text) if tech is None else tech:
        items["op:" + t] = W_OP
    if with_words is None:
        with_words = sum(items.values()) < 4.0
    if with_words:
        for w in _WORD_RE.findall(text.lower()):
            if w not in _STOP:
                items.setdefault("word:" + w[:5], W_WORD)
    return Evidence(items)


def novelty(ev: Evidence, seen: set[str]) -> float:
    """Weighted share of ``ev`` not in ``seen`` (1.0 for empty evidence)."""
    total = ev.weight
    if total <= 0:
        return 1.0
    return sum(w for k, w in ev.items.items() if k not in seen) / total


def _new_math(ev: Evidence, seen: set[str]) -> bool:
    """Whether ``ev`` holds a value or an operation run not in ``seen``: whether its text computed anything new."""
    return any(k not in seen for k in ev.items if k.startswith(("value:", "expr:")))


def overlap(a: Evidence, b: Evidence) -> float:
    """Weighted share of ``a`` that ``b`` also holds."""
    total = a.weight
    if total <= 0:
        return 0.0
    return sum(w for k, w in a.items.items() if k in b.items) / total


def problem_evidence(problem: str) -> tuple[set[str], set[str]]:
    """(seen items, given values) of a problem statement; words are always included for the problem."""
    given = numbers(_plain(problem))
    ev = evidence(problem, given, with_words=True)
    # a problem states facts, it applies no method: its technique words are not "seen" methods
    seen = {k for k in ev.items if not k.startswith("op:")}
    # an assumption the problem states itself ("distinct positive integers") is not a new one when a check asks it
    seen.update("assume:" + m.lastgroup for m in _ASSUMPTION_RE.finditer(problem) if m.lastgroup)
    return seen, given


_BODY = (SegmentKind.SOLUTION, SegmentKind.VERIFICATION)
_PROBLEM_MEMO_MAX = 4096


class MethodClusterer:
    """``Clusterer``: redundant repeats by method evidence (see the module docstring); verbatim loops by shingle
    Jaccard as before."""

    def __init__(self, config=None):
        from .policy import ClusterConfig

        self.config = config or ClusterConfig()
        # problem text -> (seen items, given values) of problem_evidence: one problem comes with many traces
        # (one per teacher); read-only copies, emptied when full
        self._problems: dict[str, tuple[frozenset[str], frozenset[str]]] = {}

    def _problem_evidence(self, problem: str) -> tuple[frozenset[str], frozenset[str]]:
        hit = self._problems.get(problem)
        if hit is None:
            seen, given = problem_evidence(problem)
            if len(self._problems) >= _PROBLEM_MEMO_MAX:
                self._problems.clear()
            hit = self._problems[problem] = frozenset(seen), frozenset(given)
        return hit

    def cluster(self, trace: SegmentedTrace) -> SegmentedTrace:
        from .similarity import LeaderClusterer, cluster_key

        cfg = self.config
        text = trace.record.thinking
        low = text.lower()
        # positions of the lower-cased text are the text's own unless lower-casing changed its length
        same_len = len(low) == len(text)

        def tech_of(a: int, b: int) -> set[str] | None:
            return techniques_between(low, a, b) if same_len else None

        seen_problem, given = self._problem_evidence(trace.record.problem)
        seen = set(seen_problem)

        # Evidence (with the check kind) of a solution/check, memoized per trace: looping traces repeat segments
        # verbatim. It depends on the body and on whether the segment is a check (only a check has a kind), and on
        # one character outside the body: a technique key at the body's very start counts only when the character
        # before it is not a letter (see techniques_between). (All technique keys are ASCII, so the context of
        # lower-casing — a final sigma — cannot change a match.)
        ev_memo: dict[tuple[str, bool, bool], tuple[str | None, Evidence]] = {}

        def evidence_of(sg, body: str, opener: str | None = None) -> tuple[str | None, Evidence]:
            mkey = (
                body,
                sg.kind is SegmentKind.VERIFICATION,
                same_len and sg.start > 0 and low[sg.start - 1].isalpha(),
            )
            hit = ev_memo.get(mkey)
            if hit is None:
                kind = (opener or check_type(body)) if sg.kind is SegmentKind.VERIFICATION else None
                hit = ev_memo[mkey] = kind, evidence(body, given, kind=kind, tech=tech_of(sg.start, sg.end))
            return hit

        plain_ev: dict[int, Evidence | None] = {}  # evidence without the check-kind item, reused below
        lc = LeaderClusterer(cfg.jaccard_threshold, cfg.shingle_k, cfg.sketch_k, cfg.max_candidates)
        kept: list[tuple[int, Evidence, str]] = []  # (idx, evidence, answer key) of segments kept as distinct
        kept_idx: set[int] = set()  # the idx of kept, and their answer keys, for membership tests
        kept_keys: set[str] = set()
        correct_seen = False
        prev_body: int | None = None
        segs = []
        for sg in trace.segments:
            if sg.kind is SegmentKind.PROBLEM_UNDERSTANDING:
                seen.update(evidence(text[sg.start:sg.end], given, with_words=True).items)
            if sg.kind not in _BODY:
                segs.append(sg)
                continue
            body = text[sg.start:sg.end]
            key = cluster_key(sg)
            leader, jac = lc.add(sg.idx, body, key)
            is_first_correct = sg.label is Label.CORRECT and not correct_seen
            same_result = key == "none" or key in kept_keys or (key == "correct" and correct_seen)
            # the first test of the other options is distinct, near-verbatim or not (see FIRST_DISTINCT_KINDS)
            opener = None
            if sg.kind is SegmentKind.VERIFICATION and kept and not is_first_correct and same_result:
                opener = check_type(body)
            first_of_kind = opener in FIRST_DISTINCT_KINDS and "check:" + opener not in seen
            if (kept and not is_first_correct and same_result and leader != sg.idx and leader in kept_idx
                    and not first_of_kind):
                # a near-verbatim loop of a kept segment: a repeat whatever its evidence, which is not computed
                # (a repeat's evidence is never read again: only kept segments' is, in `kept` and _superseded)
                segs.append(sg.model_copy(update={"cluster": leader, "similarity": round(float(jac), 4)}))
                if sg.label is Label.CORRECT:
                    correct_seen = True
                continue
            kind, ev = evidence_of(sg, body, opener)  # the opener, when read above, is the check kind
            plain_ev[sg.idx] = ev if kind not in TYPE_WEIGHTS else None
            nov = novelty(ev, seen)
            threshold = cfg.novelty_threshold + (RECOMPUTE_BONUS if kind == "recompute" else 0.0)
            repeat_of: int | None = None
            sim = None
            if kept and not is_first_correct and same_result and not first_of_kind:
                if ev.weight < cfg.min_evidence or (kind == "alternative_method" and key == "none"
                                                    and not _new_math(ev, seen)):
                    repeat_of, sim = (prev_body if prev_body is not None else kept[-1][0]), 1.0
                elif nov < threshold:
                    best = max(kept, key=lambda k: (overlap(ev, k[1]), -k[0]))
                    repeat_of, sim = best[0], 1.0 - nov
            if repeat_of is None:
                kept.append((sg.idx, ev, key))
                kept_idx.add(sg.idx)
                kept_keys.add(key)
                seen.update(ev.items)
                segs.append(sg.model_copy(update={"cluster": sg.idx, "similarity": round(1.0 - nov, 4)}))
                prev_body = sg.idx
            else:
                segs.append(sg.model_copy(update={"cluster": repeat_of, "similarity": round(float(sim), 4)}))
            if sg.label is Label.CORRECT:
                correct_seen = True
        return trace.model_copy(update={"segments": self._superseded(segs, text, seen_problem, given, plain_ev)})

    def _superseded(self, segs: list, text: str, seen_problem: set[str], given: set[str], plain_ev: dict) -> list:
        """Earlier attempts of the trunk's method: an incomplete or incorrect solution/check before the first correct
        one whose evidence the first correct one (with the problem) mostly holds is the same approach, abandoned or
        done wrong; of the two, the one that reaches the answer is the member to keep."""
        first = next((sg for sg in segs if sg.kind in _BODY and sg.label is Label.CORRECT), None)
        if first is None:
            return segs
        def ev_of(sg) -> Evidence:
            got = plain_ev.get(sg.idx)
            return got if got is not None else evidence(text[sg.start:sg.end], given)

        target = set(seen_problem) | set(ev_of(first).items)
        out = []
        for sg in segs:
            if (
                sg.kind in _BODY
                and sg.idx < first.idx
                and sg.cluster == sg.idx
                and sg.label is not Label.CORRECT
            ):
                ev = ev_of(sg)
                nov = novelty(ev, target)
                if ev.weight >= self.config.min_evidence and nov < self.config.novelty_threshold:
                    sg = sg.model_copy(update={"cluster": first.idx, "similarity": round(1.0 - nov, 4)})
            out.append(sg)
        return out
