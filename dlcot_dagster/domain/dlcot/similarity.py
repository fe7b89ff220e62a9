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
near-linear even on 1 MB traces with thousands of segments. Deterministic:
no randomness, ties broken by segment order.
"""

from __future__ import annotations

import heapq
import re
import zlib
from collections import defaultdict
from dataclasses import dataclass, field

_SUB = str.maketrans(
    "₀₁₂₃₄₅₆₇₈₉⁰¹²³⁴⁵⁶⁷⁸⁹₊₋₌₍₎⁺⁻⁼⁽⁾",
    "0123456789" "0123456789" "+-=()" "+-=()",
)

_WORD_HYPHEN = re.compile(r"(?<=[^\W\d_])-(?=[^\W\d_]{2})")  # "double-check" -> "double check"
_TOKEN_RE = re.compile(r"\\[a-zA-Z]+|\d+(?:\.\d+)?|[^\W\d_]+|[=+\-*/^<>≤≥≠≈×÷·√∑∏∫π∞!|]")

FILLERS = frozenset(
    """
    wait hmm hmmm hm okay ok so but and alternatively actually well oh ah alright right yes yeah now then just
    let me us lets let's i we think maybe perhaps check verify double confirm again also hold on hang second
    minute moment sure see look make really thus therefore hence the a an of to is it that this
    """.split()
)


def tokens(text: str) -> list[str]:
    """Normalized content tokens of ``text``."""
    low = _WORD_HYPHEN.sub(" ", text.translate(_SUB).lower())
    return [t for t in _TOKEN_RE.findall(low) if t not in FILLERS]


def shingles(toks: list[str], k: int = 3) -> frozenset[int]:
    """CRC-32 hashes of the k-shingles of a token list."""
    if not toks:
        return frozenset()
    if len(toks) < k:
        return frozenset((zlib.crc32("\x1f".join(toks).encode()),))
    ids = ["\x1f".join(toks[i : i + k]) for i in range(len(toks) - k + 1)]
    return frozenset(zlib.crc32(s.encode()) for s in ids)


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a and not b:
        return 1.0
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def text_jaccard(x: str, y: str, k: int = 3) -> float:
    return jaccard(shingles(tokens(x), k), shingles(tokens(y), k))


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

    def add(self, item: int, text: str, key: str) -> tuple[int, float]:
        """Add item ``item`` (its text, its answer key); return (cluster leader, similarity to leader)."""
        group = self._groups.setdefault(key, _Group())
        sh = shingles(tokens(text), self.k)
        if not sh:
            if group.empty_leader is None:
                group.empty_leader = item
                return item, 1.0
            return group.empty_leader, 1.0
        sketch = heapq.nsmallest(self.sketch_k, sh)
        counts: dict[int, int] = {}
        for h in sketch:
            for leader in group.index.get(h, ()):
                counts[leader] = counts.get(leader, 0) + 1
        best, best_sim = None, -1.0
        if counts:
            # most shared sketch entries first, then earliest leader: deterministic
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
