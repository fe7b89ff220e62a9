"""Fidelity guards: what an LLM result must satisfy before it replaces the rules engine's result.

Segmentation
    Each part's first and last words are re-anchored in the original thinking, left to right: an exact match
    first, then a match that ignores differences in whitespace. A part whose quotes cannot both be found is not
    placed. ``coverage`` is the share of the thinking's characters inside placed parts; a split below
    ``min_coverage`` (0.90) is rejected (``low_coverage``), and so is one whose kinds are out of order
    (restatement < understanding < solutions < checks < conclusion: ``kind_order``) or that has no solution
    (``no_solution``). An accepted split is made to tile the text exactly: gaps (at most 10 % of the text) join
    the part before them, overlaps are cut at the earlier part's end.
Labels
    Quoted error passages must be exact substrings of their part (``error_span_not_verbatim``).
Rewrite
    The text with the given parts deleted is the baseline. The model's text may differ from it by at most
    ``max(min_edit_chars, max_edit_ratio * len(baseline))`` edited characters (``edit_distance``), must contain
    every protected answer statement verbatim (``answer_lost``), and must be expressible as short edits inside
    the kept spans of the original (``unmappable``; always true for a diff, checked anyway).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

from ..dlcot.correct import apply_edits
from ..dlcot.types import Edit, SegmentKind

KIND_RANK = {
    SegmentKind.QUESTION_RESTATEMENT: 0,
    SegmentKind.PROBLEM_UNDERSTANDING: 1,
    SegmentKind.SOLUTION: 2,
    SegmentKind.VERIFICATION: 3,
    SegmentKind.CONCLUSION: 4,
}
_QUOTE_TRIM = " \t\r\n\"'`“”‘’«»<>…"
_TOKEN_RE = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


def _clean_quote(q: str) -> str:
    q = q.strip(_QUOTE_TRIM)
    if q.endswith("..."):
        q = q[:-3].rstrip()
    if q.startswith("..."):
        q = q[3:].lstrip()
    return q


def find_quote(text: str, quote: str, start: int = 0) -> tuple[int, int] | None:
    """First occurrence of ``quote`` in ``text[start:]``: exact, else with any run of whitespace matching any other."""
    q = _clean_quote(quote)
    if not q:
        return None
    i = text.find(q, start)
    if i >= 0:
        return i, i + len(q)
    words = q.split()
    if not words:
        return None
    pat = re.compile(r"\s+".join(re.escape(w) for w in words))
    m = pat.search(text, start)
    return (m.start(), m.end()) if m else None


@dataclass
class AnchoredSplit:
    spans: list[tuple[SegmentKind, int, int]]  # tiling of the text (after gap filling)
    coverage: float  # share of characters inside placed parts, before gap filling
    placed: int
    asked: int
    reason: str | None  # None when accepted


def anchor_split(text: str, parts: list[tuple[str, str, str]], min_coverage: float = 0.90) -> AnchoredSplit:
    """Place (kind, first words, last words) parts in ``text``; see the module docstring for the rules."""
    n = len(text)
    placed: list[tuple[SegmentKind, int, int]] = []
    cursor = 0
    for kind, first, last in parts:
        a = find_quote(text, first, cursor)
        if a is None:
            # a part may start slightly before the previous part's (overlapping quotes): look back a little
            a = find_quote(text, first, max(0, cursor - 200))
        if a is None:
            continue
        b = find_quote(text, last, a[0])
        if b is None:
            continue
        s, e = a[0], b[1]
        if placed and s < placed[-1][2]:
            s = placed[-1][2]
        if e <= s:
            continue
        placed.append((SegmentKind(kind), s, e))
        cursor = e
    covered = sum(e - s for _, s, e in placed)
    coverage = covered / n if n else 1.0
    reason = None
    ranks = [KIND_RANK[k] for k, _, _ in placed]
    if not placed:
        reason = "no_parts_placed"
    elif coverage < min_coverage:
        reason = "low_coverage"
    elif any(r2 < r1 for r1, r2 in zip(ranks, ranks[1:])):
        reason = "kind_order"
    elif SegmentKind.SOLUTION not in {k for k, _, _ in placed}:
        reason = "no_solution"
    spans: list[tuple[SegmentKind, int, int]] = []
    if reason is None:
        for i, (k, s, e) in enumerate(placed):
            s = 0 if i == 0 else spans[-1][2]
            e = placed[i + 1][1] if i + 1 < len(placed) else n
            spans.append((k, s, e))
        # one restatement / understanding / conclusion part: merge repeats of those kinds
        merged: list[tuple[SegmentKind, int, int]] = []
        for k, s, e in spans:
            if merged and merged[-1][0] is k and k not in (SegmentKind.SOLUTION, SegmentKind.VERIFICATION):
                merged[-1] = (k, merged[-1][1], e)
            else:
                merged.append((k, s, e))
        spans = merged
    return AnchoredSplit(spans=spans, coverage=round(coverage, 4), placed=len(placed), asked=len(parts), reason=reason)


def exact_spans(part: str, quotes: list[str]) -> list[tuple[int, int]] | None:
    """Offsets of each non-empty quote inside ``part`` (exact substring), or None when one is not verbatim."""
    out = []
    for q in quotes:
        if not q or not q.strip():
            continue
        i = part.find(q)
        if i < 0:
            return None
        out.append((i, i + len(q)))
    return out


# ------------------------------------------------------------------------------------------ rewrite


def _tokens(s: str) -> list[str]:
    return _TOKEN_RE.findall(s)


def edit_distance_chars(a: str, b: str) -> tuple[int, list[tuple[str, int, int, int, int]]]:
    """Characters changed between ``a`` and ``b`` (token-level diff: max(removed, inserted) per change), with the
    opcodes in character offsets. Linear-ish on near-identical texts, unlike a character Levenshtein."""
    ta, tb = _tokens(a), _tokens(b)
    pa = [0]
    for t in ta:
        pa.append(pa[-1] + len(t))
    pb = [0]
    for t in tb:
        pb.append(pb[-1] + len(t))
    sm = SequenceMatcher(None, ta, tb, autojunk=False)
    dist = 0
    ops = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        a1, a2, b1, b2 = pa[i1], pa[i2], pb[j1], pb[j2]
        dist += max(a2 - a1, b2 - b1)
        ops.append((tag, a1, a2, b1, b2))
    return dist, ops


def edits_for(text: str, pieces: list[tuple[int, int]], output: str, reason: str = "llm_rewrite") -> list[Edit] | None:
    """Edits inside ``pieces`` of ``text`` that turn their concatenation into ``output``, or None if impossible."""
    base = "".join(text[a:b] for a, b in pieces)
    _, ops = edit_distance_chars(base, output)
    # baseline offset -> (piece index, original offset)
    starts = []
    acc = 0
    for a, b in pieces:
        starts.append(acc)
        acc += b - a

    def locate_insert(off: int) -> int:
        """Original offset of baseline offset ``off``; at a piece boundary, the end of the earlier piece."""
        for k, (a, b) in enumerate(pieces):
            if starts[k] <= off <= starts[k] + (b - a):
                return a + (off - starts[k])
        raise ValueError(off)

    if not pieces:
        return [] if not output else None
    edits: list[Edit] = []
    for _tag, a1, a2, b1, b2 in ops:
        inserted = output[b1:b2]
        if a1 == a2:
            edits.append(Edit(pos=locate_insert(a1), removed="", inserted=inserted, reason=reason))
            continue
        # split the removed baseline range at piece boundaries; the insertion goes with the first piece
        first = True
        off = a1
        while off < a2:
            k = max(i for i, st in enumerate(starts) if st <= off)
            a, b = pieces[k]
            end_in_piece = min(a2, starts[k] + (b - a))
            o1 = a + (off - starts[k])
            o2 = a + (end_in_piece - starts[k])
            edits.append(Edit(pos=o1, removed=text[o1:o2], inserted=inserted if first else "", reason=reason))
            first = False
            off = end_in_piece
    edits.sort(key=lambda e: (e.pos, len(e.removed) > 0))
    if apply_edits(text, pieces, edits) != output:
        return None
    return edits
