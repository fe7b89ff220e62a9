"""Human annotations of real traces, and how the segmenter / pruner is scored against them.

An annotation refers to a trace by ``file`` (relative to ``<shared>/data/traces``), ``id`` (the id the ingestion
gives the record) and character offsets into its ``thinking`` as ingested (``thinking_sha256`` pins the text). The
traces themselves are never copied: the fixture holds offsets, labels and short anchor quotes only.

Sentences are counted with :func:`annotation_sentences`, a splitter frozen here on purpose (the engine's own
helpers may change; the unit of the error must not).

Fields of one annotation (JSON object, one per line of the fixture)::

    file, id, split ("tune" | "test"), thinking_sha256, n_sentences
    first_answer: {"sentence": i, "offset": char offset where the first answer statement ends, "quote": "..."} | null
    checks: [{"start": offset, "end": offset, "start_sentence": i, "end_sentence": j (exclusive),
              "type": recompute | substitute | options | numeric | special_case | alternative_method | other,
              "redundant": bool, "quote": first words of the check}]
    conclusion_start: offset | null
    notes: free text
    round: the annotation round (absent = 1; later rounds were drawn after the rules were tuned on earlier ones)
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

CHECK_TYPES = ("recompute", "substitute", "options", "numeric", "special_case", "alternative_method", "other")

# a sentence ends after . ! ? (plus closing quotes / brackets / emphasis) and spaces, or at a run of newlines
_SENT_END = re.compile(r"(?:(?<=[.!?])[\"')\]*_]*[ \t]+|\n[ \t\r\n\u2028\u2029]*)")


def annotation_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans that tile ``text`` (trailing whitespace belongs to the sentence)."""
    ends = [m.end() for m in _SENT_END.finditer(text) if 0 < m.end() < len(text)]
    bounds = [0, *sorted(set(ends)), len(text)]
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def sentence_index(spans: list[tuple[int, int]], pos: int) -> int:
    """Index of the sentence holding character ``pos`` (the last sentence for ``pos >= len``)."""
    starts = [a for a, _ in spans]
    return max(0, min(len(spans) - 1, bisect.bisect_right(starts, pos) - 1))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Annotation:
    file: str
    id: str
    split: str
    thinking_sha256: str
    first_answer: dict | None
    checks: list[dict]
    conclusion_start: int | None
    notes: str = ""
    round: int = 1
    raw: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "Annotation":
        return cls(
            file=d["file"],
            id=d["id"],
            split=d.get("split", "tune"),
            thinking_sha256=d["thinking_sha256"],
            first_answer=d.get("first_answer"),
            checks=list(d.get("checks") or []),
            conclusion_start=d.get("conclusion_start"),
            notes=d.get("notes", ""),
            round=int(d.get("round", 1)),
            raw=d,
        )


def load_annotations(path: Path) -> list[Annotation]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").split("\n"):
        if line.strip():
            out.append(Annotation.from_dict(json.loads(line)))
    return out


def validate(ann: Annotation, thinking: str) -> list[str]:
    """Problems of one annotation against its trace text (empty when consistent)."""
    probs = []
    if sha256(thinking) != ann.thinking_sha256:
        probs.append("thinking_sha256 differs: the trace text changed")
        return probs
    n = len(thinking)
    fa = ann.first_answer
    if fa is not None:
        if not 0 < fa["offset"] <= n:
            probs.append(f"first_answer offset {fa['offset']} out of range")
        q = fa.get("quote") or ""
        if q and thinking[max(0, fa["offset"] - len(q)) : fa["offset"]] != q:
            probs.append(f"first_answer quote {q!r} does not end at offset {fa['offset']}")
    prev_end = 0
    for k, c in enumerate(ann.checks):
        if not (0 <= c["start"] < c["end"] <= n):
            probs.append(f"check {k}: bad span {c['start']}..{c['end']}")
        if c["start"] < prev_end:
            probs.append(f"check {k} overlaps the previous one")
        if fa is not None and c["start"] < fa["offset"] - 1 and k == 0 and c["start"] < _sentence_start(thinking, fa["offset"]):
            probs.append(f"check {k} starts before the first answer")
        if c.get("type") not in CHECK_TYPES:
            probs.append(f"check {k}: unknown type {c.get('type')!r}")
        if not isinstance(c.get("redundant"), bool):
            probs.append(f"check {k}: redundant must be true/false")
        q = c.get("quote") or ""
        if q and not thinking[c["start"] : c["end"]].lstrip().startswith(q.strip()):
            probs.append(f"check {k}: quote {q!r} is not at its start")
        prev_end = c["end"]
    if ann.conclusion_start is not None and not (0 <= ann.conclusion_start <= n):
        probs.append("conclusion_start out of range")
    return probs


def _sentence_start(text: str, pos: int) -> int:
    spans = annotation_sentences(text)
    return spans[sentence_index(spans, max(0, pos - 1))][0]


# ---------------------------------------------------------------------------------------------- scoring


@dataclass
class TraceScore:
    file: str
    id: str
    split: str
    first_answer_error: int | None  # |predicted - annotated| in sentences; None when either side has none
    first_answer_both_none: bool
    first_answer_missing: bool  # annotated, not predicted (or the reverse)
    check_tp: int
    check_fp: int
    check_fn: int
    has_checks: bool
    has_pred_checks: bool
    red_tp: int
    red_fp: int
    red_fn: int
    #: sentences inside annotated checks, and how many of them lie inside predicted verification segments
    check_sentences: int = 0
    check_sentences_covered: int = 0
    round: int = 1
    #: sentences from the annotated first answer to the start of the first predicted verification segment (the
    #: issue's "starts a median 16 sentences after the first answer"); None without either
    verification_gap: int | None = None


def predicted_first_answer(segments: list[Any]) -> int | None:
    """End offset of the first answer the segmenter found: the answer of the last solution segment. When that
    segment holds no answer of its own and takes the conclusion's (``answer_inherited``: the thinking runs straight
    from the work into its wrap-up), the solution's end: that is where the segmenter put the first answer, and the
    conclusion's own answer statement can lie several sentences further on ("**Final Answer** \\boxed{321}")."""
    sols = [s for s in segments if _kind(s) == "solution"]
    if not sols:
        return None
    ans = _get(sols[-1], "answer")
    if ans is None:
        return None
    if _get(sols[-1], "answer_inherited"):
        return int(_get(sols[-1], "end"))
    return int(_get(ans, "end"))


def _kind(s: Any) -> str:
    k = _get(s, "kind")
    return getattr(k, "value", k)


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name)


def score_trace(ann: Annotation, thinking: str, segments: list[Any], tolerance: int = 1) -> TraceScore:
    """Compare one trace's predicted segments (engine ``Segment`` objects or their dicts, labelled and pruned) with
    its annotation.

    * first answer: the sentence of the predicted first-answer end vs the annotated one;
    * check boundaries: each predicted verification segment's start sentence matches an annotated check start
      within ``tolerance`` sentences (one-to-one, greedy by distance);
    * redundancy: each annotated check is mapped to the predicted verification segment that overlaps it most;
      it is predicted redundant when that segment was dropped as a repeat (``redundant_repeat_of:*``);
    * coverage: the (non-blank) sentences inside annotated checks, and how many start inside a predicted
      verification segment;
    * gap: sentences from the annotated first answer to the first predicted verification segment.
    """
    spans = annotation_sentences(thinking)
    fa_pred = predicted_first_answer(segments)
    fa_ann = ann.first_answer["offset"] if ann.first_answer else None
    err = None
    if fa_pred is not None and fa_ann is not None:
        err = abs(sentence_index(spans, max(0, fa_pred - 1)) - sentence_index(spans, max(0, fa_ann - 1)))
    both_none = fa_pred is None and fa_ann is None
    missing = (fa_pred is None) != (fa_ann is None)

    pred_checks = [s for s in segments if _kind(s) == "verification"]
    p_starts = [sentence_index(spans, _first_content(thinking, int(_get(s, "start")))) for s in pred_checks]
    a_starts = [sentence_index(spans, _first_content(thinking, int(c["start"]))) for c in ann.checks]
    tp = len(_match_nearest(p_starts, a_starts, tolerance))

    red_tp = red_fp = red_fn = 0
    for c in ann.checks:
        best, best_ov = None, 0
        for s in pred_checks:
            ov = min(int(_get(s, "end")), c["end"]) - max(int(_get(s, "start")), c["start"])
            if ov > best_ov:
                best, best_ov = s, ov
        pred_red = best is not None and str(_get(best, "drop_reason") or "").startswith("redundant_repeat_of")
        if pred_red and c["redundant"]:
            red_tp += 1
        elif pred_red and not c["redundant"]:
            red_fp += 1
        elif c["redundant"] and not pred_red:
            red_fn += 1
    ver_spans = [(int(_get(s, "start")), int(_get(s, "end"))) for s in pred_checks]
    n_sent = n_cov = 0
    for c in ann.checks:
        for a, _b in spans:
            if c["start"] <= a < c["end"] and thinking[a:_b].strip():
                n_sent += 1
                n_cov += any(vs <= a < ve for vs, ve in ver_spans)
    return TraceScore(
        file=ann.file,
        id=ann.id,
        split=ann.split,
        first_answer_error=err,
        first_answer_both_none=both_none,
        first_answer_missing=missing,
        check_tp=tp,
        check_fp=len(p_starts) - tp,
        check_fn=len(a_starts) - tp,
        has_checks=bool(ann.checks),
        has_pred_checks=bool(pred_checks),
        red_tp=red_tp,
        red_fp=red_fp,
        red_fn=red_fn,
        check_sentences=n_sent,
        check_sentences_covered=n_cov,
        round=ann.round,
        verification_gap=(p_starts[0] - sentence_index(spans, max(0, fa_ann - 1))
                          if p_starts and fa_ann is not None else None),
    )


def annotation_as_segments(ann: Annotation, thinking: str) -> list[dict]:
    """One annotation written as the segments :func:`score_trace` reads, so that a second annotator of the same trace
    is scored exactly as the engine is (a ceiling for the engine's figures): a solution segment whose answer ends at
    the annotated first answer, one verification segment per check, dropped as a repeat when marked redundant, and the
    conclusion. Offsets are the annotation's own."""
    n = len(thinking)
    fa = ann.first_answer["offset"] if ann.first_answer else None
    first_check = ann.checks[0]["start"] if ann.checks else None
    sol_end = first_check if first_check is not None else (ann.conclusion_start or fa or n)
    segs: list[dict] = [{"kind": "solution", "start": 0, "end": sol_end, "answer_inherited": False,
                         "answer": {"start": fa, "end": fa} if fa is not None else None}]
    for k, c in enumerate(ann.checks):
        segs.append({"kind": "verification", "start": c["start"], "end": c["end"],
                     "drop_reason": f"redundant_repeat_of:annotated_{k}" if c["redundant"] else None})
    if ann.conclusion_start is not None:
        segs.append({"kind": "conclusion", "start": ann.conclusion_start, "end": n})
    return segs


def matched_check_labels(a: Annotation, b: Annotation, thinking: str, tolerance: int = 1) -> list[tuple[bool, bool]]:
    """``(a redundant, b redundant)`` for each pair of checks of two annotations of one trace whose start sentences
    lie within ``tolerance`` of each other (one to one, nearest first, as :func:`score_trace` matches boundaries)."""
    spans = annotation_sentences(thinking)
    sa = [sentence_index(spans, _first_content(thinking, int(c["start"]))) for c in a.checks]
    sb = [sentence_index(spans, _first_content(thinking, int(c["start"]))) for c in b.checks]
    return [(bool(a.checks[i]["redundant"]), bool(b.checks[j]["redundant"]))
            for i, j in _match_nearest(sa, sb, tolerance)]


def _match_nearest(xs: list[int], ys: list[int], tolerance: int) -> list[tuple[int, int]]:
    """One-to-one pairs ``(i, j)`` of positions ``xs[i]``, ``ys[j]`` at most ``tolerance`` apart, nearest first."""
    pairs = sorted((abs(x - y), i, j) for i, x in enumerate(xs) for j, y in enumerate(ys) if abs(x - y) <= tolerance)
    used_x, used_y, out = set(), set(), []
    for _d, i, j in pairs:
        if i not in used_x and j not in used_y:
            used_x.add(i)
            used_y.add(j)
            out.append((i, j))
    return out


def cohen_kappa(pairs: Iterable[tuple[bool, bool]]) -> float | None:
    """Cohen's kappa of two binary labellings (None when there is nothing to compare or chance agreement is total)."""
    pairs = list(pairs)
    n = len(pairs)
    if not n:
        return None
    po = sum(x == y for x, y in pairs) / n
    pa, pb = sum(x for x, _ in pairs) / n, sum(y for _, y in pairs) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    return None if pe >= 1 else (po - pe) / (1 - pe)


def _first_content(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def summarize(scores: Iterable[TraceScore], within: int = 2) -> dict:
    """Aggregate figures of a set of trace scores."""
    scores = list(scores)
    n = len(scores)
    errs = [s.first_answer_error for s in scores if s.first_answer_error is not None]
    ok = sum(1 for s in scores if (s.first_answer_error is not None and s.first_answer_error <= within)
             or s.first_answer_both_none)
    tp = sum(s.check_tp for s in scores)
    fp = sum(s.check_fp for s in scores)
    fn = sum(s.check_fn for s in scores)
    cp, cr, cf = _prf(tp, fp, fn)
    rtp = sum(s.red_tp for s in scores)
    rfp = sum(s.red_fp for s in scores)
    rfn = sum(s.red_fn for s in scores)
    rp, rr, rf = _prf(rtp, rfp, rfn)
    with_checks = [s for s in scores if s.has_checks]
    gaps = [s.verification_gap for s in with_checks if s.verification_gap is not None]
    return {
        "traces": n,
        "first_answer_within": within,
        "first_answer_ok_share": ok / n if n else 0.0,
        "first_answer_median_error": statistics.median(errs) if errs else None,
        "first_answer_missing": sum(1 for s in scores if s.first_answer_missing),
        "check_boundary_precision": cp,
        "check_boundary_recall": cr,
        "check_boundary_f1": cf,
        "traces_with_checks": len(with_checks),
        "traces_with_checks_and_predicted_verification": sum(1 for s in with_checks if s.has_pred_checks),
        # where annotated checks exist: sentences from the annotated first answer to the first verification segment
        "verification_gap_median": statistics.median(gaps) if gaps else None,
        "check_sentences_in_verification_share": (
            sum(s.check_sentences_covered for s in scores) / max(1, sum(s.check_sentences for s in scores))
        ),
        "redundancy_precision": rp,
        "redundancy_recall": rr,
        "redundancy_f1": rf,
        "redundancy_counts": {"tp": rtp, "fp": rfp, "fn": rfn},
    }
