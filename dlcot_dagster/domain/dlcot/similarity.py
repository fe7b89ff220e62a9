"""Text similarity for clustering repeated solutions / checks.

Measure
-------
Exact **Jaccard resemblance of word 3-shingle sets** (Broder 1997) over a
normalized math token stream:

* lowercase; tokens are LaTeX commands (``\\frac``), numbers (``1.5``,
  ``2024``), words (unicode letters), and single math symbols
  (``= + - * / ^ < > ≤ ≥ ( ) ...``); everything else (punctuation, ``$``,
  braces) is dropped. Unicode sub/superscript digits are mapped to plain
  digits, so ``x₇₆`` and ``x_{76}`` agree.
* discourse fillers that carry no content ("wait", "hmm", "so", "okay",
  "alternatively", "let", "me", "check", ...) are removed, so "Wait, let me
  check: 18*1.5 = 27" and "Let me double-check: 18*1.5 = 27" become equal.
* shingles: all runs of ``k = 3`` consecutive tokens (one shingle = the whole
  token tuple when there are fewer than 3); hashed with CRC-32 (stable across
  processes, unlike ``hash()``).

Threshold
---------
Two segments are *repeats* when they state the **same answer** (both
correct, i.e. equivalent to the reference; both without an answer; or the
same normalized wrong answer) **and** Jaccard ≥ ``0.5``. Near-duplicate
detection work uses 0.5–0.9 resemblance on 3–5 shingles; we take the low end
because a re-derivation rewords the same steps ("18t + 12t = 45" → "so 30t =
45"), and the answer-equality precondition already removes most false
merges. Measured on the shared traces (17.8k solutions/checks, at most 150
traces per file), the best Jaccard of a segment with an earlier same-answer
segment is bimodal: < 0.2 for 29 % (distinct work), ≥ 0.9 for 66 % (almost
all Sky-T1 loops), and only 2.4 % fall in [0.3, 0.7). 0.5 sits in that
trough, so the result is insensitive to the exact value. Empty segments
(only fillers, e.g. a bare "Wait,") have Jaccard 1 with each other.

Clustering is *leader* clustering in text order: a segment joins the cluster
of the earliest leader it is similar to, else it becomes a new leader. The
cluster id is the leader's segment idx. Candidate leaders come from a
bottom-k sketch index (the ``k = 8`` smallest shingle hashes of each leader):
two sets with Jaccard J miss each other with probability about (1 - J)^8
(< 0.4 % at J = 0.5). Only candidates are compared exactly, so the cost is
near-linear even on 1 MB traces with thousands of segments. A clusterer
shingles each distinct text once (looping traces repeat segments verbatim).
Deterministic: no randomness, ties broken by segment order.
"""

from __future__ import annotations

import heapq
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import filterfalse

# sub/superscript digits and signs -> plain ones; replaced match by match (they are rare, and
# ``str.translate`` walks a non-ASCII text character by character)
_SUB = dict(zip("₀₁₂₃₄₅₆₇₈₉⁰¹²³⁴⁵⁶⁷⁸⁹₊₋₌₍₎⁺⁻⁼⁽⁾", "0123456789" "0123456789" "+-=()" "+-=()"))
_SUB_RE = re.compile(f"[{re.escape(''.join(_SUB))}]")

# "double-check" -> "double check": a hyphen between a letter and two letters. Written to start with the
# literal "-" (the look-behind re-checks the hyphen and the letter before it), so that ``re`` can jump from
# hyphen to hyphen instead of trying the look-behind at every position.
_WORD_HYPHEN = re.compile(r"-(?<=[^\W\d_]-)(?=[^\W\d_]{2})")

# A token is one of: a word (``[^\W\d_]+``), a number (``\d+(?:\.\d+)?``), a LaTeX command
# (``\\[a-zA-Z]+``), a single math symbol. The four kinds have disjoint first characters (``π`` is a
# letter, so it is always part of a word), so the pattern reads the first character from their union (a
# character set, which ``re`` scans for quickly) and a look-behind on that character picks the kind; the
# matches are exactly those of ``\\[a-zA-Z]+|\d+(?:\.\d+)?|[^\W\d_]+|[=+\-*/^<>≤≥≠≈×÷·√∑∏∫π∞!|]``.
_SYMBOLS = "=+\\-*/^<>≤≥≠≈×÷·√∑∏∫∞!|"
_TOKEN_RE = re.compile(
    rf"[\\\w{_SYMBOLS}]"
    rf"(?:(?<=[^\W\d_])[^\W\d_]*+|(?<=[{_SYMBOLS}])|(?<=\d)\d*+(?:\.\d+)?|(?<=\\)[a-zA-Z]++)"
)

FILLERS = frozenset(
    """
    wait hmm hmmm hm okay ok so but and alternatively actually well oh ah alright right yes yeah now then just
    let me us lets let's i we think maybe perhaps check verify double confirm again also hold on hang second
    minute moment sure see look make really thus therefore hence the a an of to is it that this
    """.split()
)
_is_filler = FILLERS.__contains__


def _plain(m: re.Match[str]) -> str:
    return _SUB[m.group()]


def tokens(text: str) -> list[str]:
    """Normalized content tokens of ``text``."""
    if not text.isascii():  # sub/superscripts are never ASCII
        text = _SUB_RE.sub(_plain, text)
    low = _WORD_HYPHEN.sub(" ", text.lower())
    return list(filterfalse(_is_filler, _TOKEN_RE.findall(low)))


def shingles(toks: list[str], k: int = 3) -> frozenset[int]:
    """CRC-32 hashes of the k-shingles of a token list.

    A shingle's hash is ``crc32`` of the UTF-8 of ``"\x1f".join(toks[i : i + k])``; the windows come from
    ``zip`` over shifted lists and join, encode and hash are chained with ``map``, so the loop runs in C.
    """
    if not toks:
        return frozenset()
    if len(toks) < k:
        return frozenset((zlib.crc32("\x1f".join(toks).encode()),))
    if k == 3:  # the default, spelled out (no set-up cost on short lists)
        windows = zip(toks, toks[1:], toks[2:])
    elif k >= 1:
        windows = zip(*[toks[i:] for i in range(k)])
    else:  # degenerate k: every window is empty
        windows = (toks[i : i + k] for i in range(len(toks) - k + 1))
    return frozenset(map(zlib.crc32, map(str.encode, map("\x1f".join, windows))))


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if a is b or (not a and not b):
        return 1.0
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def text_jaccard(x: str, y: str, k: int = 3) -> float:
    return jaccard(shingles(tokens(x), k), shingles(tokens(y), k))


#: largest shingle set whose bottom-k sketch is taken with ``sorted`` (larger ones: ``heapq.nsmallest``)
_SORT_MAX = 192
#: a clusterer's memo of shingled texts is emptied when it reaches this many entries
_MEMO_MAX = 8192


@dataclass
class _Group:
    """Leaders of one answer-key group, with the bottom-k sketch index."""

    leaders: list[int] = field(default_factory=list)
    sets: dict[int, frozenset[int]] = field(default_factory=dict)
    index: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    empty_leader: int | None = None


class LeaderClusterer:
    """Incremental leader clustering with an exact-Jaccard test (see module docstring)."""

    def __init__(self, threshold: float = 0.5, k: int = 3, sketch_k: int = 8, max_candidates: int = 64):
        self.threshold = threshold
        self.k = k
        self.sketch_k = sketch_k
        self.max_candidates = max_candidates
        self._groups: dict[str, _Group] = {}
        # text -> (shingle set, bottom-k sketch): loops repeat segments verbatim (about half of the
        # solutions/checks of the shared traces repeat an earlier one of their trace exactly)
        self._memo: dict[str, tuple[frozenset[int], list[int]]] = {}

    def _sketched(self, text: str) -> tuple[frozenset[int], list[int]]:
        hit = self._memo.get(text)
        if hit is not None:
            return hit
        sh = shingles(tokens(text), self.k)
        # bottom-k sketch: one C sort beats heapq's Python loop until the set is a few hundred hashes large
        if len(sh) <= _SORT_MAX and self.sketch_k >= 0:
            sketch = sorted(sh)[: self.sketch_k]
        else:
            sketch = heapq.nsmallest(self.sketch_k, sh)
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[text] = sh, sketch
        return sh, sketch

    def add(self, item: int, text: str, key: str) -> tuple[int, float]:
        """Add item ``item`` (its text, its answer key); return (cluster leader, similarity to leader)."""
        group = self._groups.setdefault(key, _Group())
        sh, sketch = self._sketched(text)
        if not sh:
            if group.empty_leader is None:
                group.empty_leader = item
                return item, 1.0
            return group.empty_leader, 1.0
        counts: dict[int, int] = {}
        for h in sketch:
            for leader in group.index.get(h, ()):
                counts[leader] = counts.get(leader, 0) + 1
        best, best_sim = None, -1.0
        if counts:
            cands = counts
            if len(counts) > self.max_candidates:
                # most shared sketch entries first, then earliest leader: deterministic. (With no cut the
                # order does not matter: the best is the highest similarity, then the earliest leader.)
                cands = sorted(counts, key=lambda ld: (-counts[ld], ld))[: self.max_candidates]
            for leader in cands:
                sim = jaccard(sh, group.sets[leader])
                if sim >= self.threshold and (sim > best_sim or (sim == best_sim and leader < best)):
                    best, best_sim = leader, sim
        if best is not None:
            return best, best_sim
        group.leaders.append(item)
        group.sets[item] = sh
        for h in sketch:
            group.index[h].append(item)
        return item, 1.0


def cluster_key(segment) -> str:
    """Answer key of a labelled segment: all correct answers are one key (they equal the reference)."""
    from .segment import answer_key
    from .types import Label

    if segment.label is Label.CORRECT:
        return "correct"
    return answer_key(segment.answer)


class RuleClusterer:
    """``Clusterer``: leader clustering of solutions and checks (same answer key + Jaccard ≥ threshold)."""

    def __init__(self, config=None):
        from .policy import ClusterConfig

        self.config = config or ClusterConfig()

    def cluster(self, trace):
        from .types import SegmentKind

        cfg = self.config
        lc = LeaderClusterer(cfg.jaccard_threshold, cfg.shingle_k, cfg.sketch_k, cfg.max_candidates)
        text = trace.record.thinking
        segs = []
        for sg in trace.segments:
            if sg.kind in (SegmentKind.SOLUTION, SegmentKind.VERIFICATION):
                leader, sim = lc.add(sg.idx, text[sg.start : sg.end], cluster_key(sg))
                segs.append(sg.model_copy(update={"cluster": leader, "similarity": round(sim, 4)}))
            else:
                segs.append(sg)
        return trace.model_copy(update={"segments": segs})
