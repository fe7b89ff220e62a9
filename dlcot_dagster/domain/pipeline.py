"""The DLCoT stages over whole tables (Polars frames), one function per asset.

``segment_frame`` -> ``prune_frame`` -> ``correct_frame`` each take the previous
stage's frame plus ``raw_traces`` and run one step of the engine on every
row, so each Dagster asset stores exactly one stage and can be re-run from the
one before. Segments travel between stages as canonical JSON of the engine's
pydantic models. Nothing here imports dagster; the ``dlcot inspect`` command
uses the same functions.

Per-record time budget
----------------------
Each stage runs every record's engine steps under ``record_budget_s`` seconds
(see :mod:`.budget`; ``None``/``0`` switch it off). A record that overruns is
not an error: it becomes a drop with reason ``timeout`` and the other rows go
on. The prune stage's budget covers label + cluster + prune of the record
together. A record that timed out in ``segment`` (``status``/``reason`` on the
segmented row) or ``prune`` is carried through the later stages untouched and
lands in ``dropped`` with ``stage`` = where it timed out; every raw row still
yields exactly one row per stage. The batch hooks (``prepare`` of the LLM
steps) run outside the per-record budget.

Decontamination drops
---------------------
A record the decontamination step dropped (``drops`` of :func:`segment_frame`: id -> reason
``benchmark_overlap:<benchmark>`` or ``duplicate_trace``) is carried through the stages the same
way, unsegmented, and lands in ``dropped`` with ``stage`` = ``decontam``; its evidence columns are
filled from the step's verdicts (:func:`.decontam.step.attach_evidence`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Iterator

import polars as pl

from .budget import DEFAULT_RECORD_BUDGET_S, TIMEOUT_REASON, RecordTimeout, record_budget
from .decontam.step import DECONTAM_STAGE, EVIDENCE_SCHEMA, is_decontam_reason
from .dlcot import AnswerSpan, DLCoTResult, RulesEngine, Segment, SegmentedTrace, TraceInput
from .dlcot.types import SampleStatus, SegmentKind
from .tokens import TokenCounter, TokenMemo

SEGMENTED_SCHEMA = {
    "id": pl.String(),
    "teacher": pl.String(),
    "segments": pl.String(),  # JSON list of Segment
    "final_answer": pl.String(),  # JSON AnswerSpan or null
    "n_segments": pl.Int64(),
    "n_solutions": pl.Int64(),
    "n_verifications": pl.Int64(),
    "status": pl.String(),  # null, or "dropped" when the record timed out in this stage
    "reason": pl.String(),  # null, or "timeout"
}

PRUNED_SCHEMA = {
    "id": pl.String(),
    "teacher": pl.String(),
    "status": pl.String(),  # kept | dropped
    "reason": pl.String(),
    "segments": pl.String(),  # JSON list of Segment with label, cluster, kept, drop_reason
    "final_answer": pl.String(),
    "n_correct": pl.Int64(),
    "n_incorrect": pl.Int64(),
    "n_incomplete": pl.Int64(),
    "n_clusters": pl.Int64(),
    "n_kept_segments": pl.Int64(),
    "n_dropped_segments": pl.Int64(),
    "drop_stage": pl.String(),  # where a dropped sample was dropped: segment | prune (null when kept)
    "n_checks": pl.Int64(),  # verification segments (one per check episode)
    "n_redundant_checks": pl.Int64(),  # checks dropped as repeats of an earlier method
    "n_distinct_methods": pl.Int64(),  # kept solutions/checks that lead their cluster (one per method)
}

MESSAGE = pl.Struct({"role": pl.String(), "content": pl.String()})

CORRECTED_SCHEMA = {
    "id": pl.String(),
    "teacher": pl.String(),
    "problem": pl.String(),
    "reference_answer": pl.String(),
    "corrected_thinking": pl.String(),
    "final_text": pl.String(),
    "final_answer": pl.String(),
    "final_answer_source": pl.String(),
    "answer_equivalent": pl.Boolean(),
    "messages": pl.List(MESSAGE),
    "raw_tokens": pl.Int64(),
    "corrected_tokens": pl.Int64(),
    "seq_tokens": pl.Int64(),
    "raw_chars": pl.Int64(),
    "corrected_chars": pl.Int64(),
    "removed_spans": pl.String(),  # JSON list of {start, end, reason}
    "edits": pl.String(),  # JSON list of {pos, removed, inserted, reason}
    "n_error_spans": pl.Int64(),  # intermediate error states removed (retractions, contradicted values, error states)
    "policy": pl.String(),
    "engine_version": pl.String(),
    "config_hash": pl.String(),
    "reference_source": pl.String(),  # given | extracted | joined | majority | self (from raw_traces)
}

DROPPED_SCHEMA = {
    "id": pl.String(),
    "teacher": pl.String(),
    "stage": pl.String(),  # decontam | segment | prune | correct
    "reason": pl.String(),
    "raw_tokens": pl.Int64(),
    "reference_source": pl.String(),
    **EVIDENCE_SCHEMA,  # decontam drops: the benchmark (problem) or earlier trace matched, and the evidence
}


def _dump_segments(segments: list[Segment]) -> str:
    return json.dumps([s.model_dump(mode="json") for s in segments], sort_keys=True, ensure_ascii=False)


def _load_segments(blob: str) -> list[Segment]:
    return [Segment.model_validate(d) for d in json.loads(blob)]


def _dump_answer(ans: AnswerSpan | None) -> str | None:
    return None if ans is None else json.dumps(ans.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)


def _load_answer(blob: str | None) -> AnswerSpan | None:
    return None if blob is None else AnswerSpan.model_validate_json(blob)


def _rows_in_order(raw: pl.DataFrame, stage: pl.DataFrame, what: str) -> Iterator[tuple[dict, dict]]:
    """(raw row, stage row) pairs in raw order; a mismatch between the two tables is a hard error."""
    stage_rows = {r["id"]: r for r in stage.iter_rows(named=True)}
    missing = [i for i in raw["id"].to_list() if i not in stage_rows]
    if missing or len(stage_rows) != raw.height:
        raise ValueError(
            f"{what} is out of step with raw_traces: {len(missing)} raw ids missing "
            f"(e.g. {missing[:3]}), {len(stage_rows)} rows vs {raw.height}; re-materialize it"
        )
    for r in raw.iter_rows(named=True):
        yield r, stage_rows[r["id"]]


def _prepare(step, items: list, *args) -> None:
    """Batch hook: a step with ``prepare`` (the LLM steps) gets the whole partition first, in one batch."""
    prepare = getattr(step, "prepare", None)
    if prepare is not None and items:
        prepare(items, *args)


# ------------------------------------------------------------------ budget
class _Clock:
    """What is left of one record's budget across the phases of a stage."""

    def __init__(self, budget_s: float | None):
        self.budget_s = budget_s if budget_s and budget_s > 0 else None
        self.spent = 0.0

    def run(self, fn, *args):
        """``fn(*args)`` under what is left; raises :class:`RecordTimeout` when it runs out."""
        if self.budget_s is None:
            return fn(*args)
        left = self.budget_s - self.spent
        if left <= 0:
            raise RecordTimeout(self.budget_s)
        t0 = time.monotonic()
        try:
            with record_budget(left):
                return fn(*args)
        finally:
            self.spent += time.monotonic() - t0


def _timed_out(stage_row: dict) -> bool:
    return stage_row.get("status") == SampleStatus.DROPPED.value and stage_row.get("reason") == TIMEOUT_REASON


def _carried(stage_row: dict) -> bool:
    """Dropped before labelling: timed out in segmentation, or dropped by the decontamination step."""
    return stage_row.get("status") == SampleStatus.DROPPED.value and (
        stage_row.get("reason") == TIMEOUT_REASON or is_decontam_reason(stage_row.get("reason"))
    )


# ------------------------------------------------------------------ segment
def _unsegmented_row(r: dict, reason: str) -> dict:
    """A record dropped before or during segmentation: carried through the later stages as dropped."""
    return {
        "id": r["id"],
        "teacher": r["teacher"],
        "segments": "[]",
        "final_answer": None,
        "n_segments": 0,
        "n_solutions": 0,
        "n_verifications": 0,
        "status": SampleStatus.DROPPED.value,
        "reason": reason,
    }


def segment_frame(
    raw: pl.DataFrame,
    engine: RulesEngine,
    *,
    record_budget_s: float | None = DEFAULT_RECORD_BUDGET_S,
    drops: dict[str, str] | None = None,
) -> pl.DataFrame:
    """Segment every record; ``drops`` (id -> reason): records the decontamination step dropped, not segmented."""
    rows = []
    drops = drops or {}
    records = list(raw.iter_rows(named=True))
    todo = [i for i, r in enumerate(records) if r["id"] not in drops]
    inputs = {i: TraceInput.of(records[i]) for i in todo}
    _prepare(engine.segmenter, list(inputs.values()))
    for i, r in enumerate(records):
        if i not in inputs:
            rows.append(_unsegmented_row(r, drops[r["id"]]))
            continue
        try:
            trace = _Clock(record_budget_s).run(engine.segmenter.segment, inputs[i])
        except RecordTimeout:
            trace = None
        if trace is None:
            rows.append(_unsegmented_row(r, TIMEOUT_REASON))
            continue
        kinds = [s.kind for s in trace.segments]
        rows.append(
            {
                "id": r["id"],
                "teacher": r["teacher"],
                "segments": _dump_segments(trace.segments),
                "final_answer": _dump_answer(trace.final_answer),
                "n_segments": len(kinds),
                "n_solutions": kinds.count(SegmentKind.SOLUTION),
                "n_verifications": kinds.count(SegmentKind.VERIFICATION),
                "status": None,
                "reason": None,
            }
        )
    return pl.DataFrame(rows, schema=SEGMENTED_SCHEMA)


def coverage_problems(raw: pl.DataFrame, segmented: pl.DataFrame, limit: int = 10) -> list[str]:
    """Segments must tile each thinking text exactly: contiguous, from 0 to its length.

    A record dropped at segmentation (``timeout``) has no segments and is not checked."""
    problems = []
    for r, s in _rows_in_order(raw, segmented, "segmented_traces"):
        if s.get("status") == SampleStatus.DROPPED.value:
            continue
        pos = 0
        for seg in json.loads(s["segments"]):
            if seg["start"] != pos or seg["end"] < seg["start"]:
                problems.append(f"{r['id']}: segment {seg['idx']} starts at {seg['start']}, expected {pos}")
                break
            pos = seg["end"]
        else:
            if pos != len(r["thinking"]):
                problems.append(f"{r['id']}: segments end at {pos} of {len(r['thinking'])} characters")
        if len(problems) >= limit:
            break
    return problems


# ------------------------------------------------------------------ prune
def _segmented_trace(raw_row: dict, stage_row: dict) -> SegmentedTrace:
    status = stage_row.get("status")
    return SegmentedTrace(
        record=TraceInput.of(raw_row),
        segments=_load_segments(stage_row["segments"]),
        final_answer=_load_answer(stage_row.get("final_answer")),
        status=SampleStatus(status) if status else None,
        reason=stage_row.get("reason"),
    )


def _timeout_pruned_row(r: dict, stage_row: dict, stage: str, reason: str = TIMEOUT_REASON) -> dict:
    """A sample that timed out (in ``stage``), or was dropped at decontamination, carried unlabelled as dropped."""
    return {
        "id": r["id"],
        "teacher": r["teacher"],
        "status": SampleStatus.DROPPED.value,
        "reason": reason,
        "segments": stage_row["segments"],
        "final_answer": stage_row.get("final_answer"),
        "n_correct": 0,
        "n_incorrect": 0,
        "n_incomplete": 0,
        "n_clusters": 0,
        "n_kept_segments": 0,
        "n_dropped_segments": 0,
        "drop_stage": stage,
        "n_checks": 0,
        "n_redundant_checks": 0,
        "n_distinct_methods": 0,
    }


def prune_frame(
    raw: pl.DataFrame,
    segmented: pl.DataFrame,
    engine: RulesEngine,
    *,
    record_budget_s: float | None = DEFAULT_RECORD_BUDGET_S,
) -> pl.DataFrame:
    """label -> cluster -> prune every record; one budget per record covers the three steps."""
    rows = []
    pairs = list(_rows_in_order(raw, segmented, "segmented_traces"))
    traces = [_segmented_trace(r, s) for r, s in pairs]
    carried = [_carried(s) for _r, s in pairs]  # timed out at segmentation / decontaminated: passed through as dropped
    clocks = [_Clock(record_budget_s) for _ in pairs]
    late = [False] * len(pairs)  # timed out here
    _prepare(engine.labeler, [t for t, c in zip(traces, carried) if not c])
    for i, trace in enumerate(traces):
        if carried[i]:
            continue
        try:
            traces[i] = clocks[i].run(engine.labeler.label, trace)
        except RecordTimeout:
            late[i] = True
    _prepare(engine.clusterer, [t for i, t in enumerate(traces) if not (carried[i] or late[i])])
    for i, ((r, s), trace) in enumerate(zip(pairs, traces)):
        if carried[i]:
            if _timed_out(s):
                rows.append(_timeout_pruned_row(r, s, "segment"))
            else:
                rows.append(_timeout_pruned_row(r, s, DECONTAM_STAGE, s["reason"]))
            continue
        if not late[i]:
            try:
                trace = clocks[i].run(lambda t: engine.pruner.prune(engine.clusterer.cluster(t), engine.policy), trace)
            except RecordTimeout:
                late[i] = True
        if late[i]:
            rows.append(_timeout_pruned_row(r, s, "prune"))
            continue
        labels = [sg.label.value if sg.label else None for sg in trace.segments if sg.kind in _BODY]
        dropped = trace.status is SampleStatus.DROPPED
        rows.append(
            {
                "id": r["id"],
                "teacher": r["teacher"],
                "status": trace.status.value if trace.status else SampleStatus.KEPT.value,
                "reason": trace.reason,
                "segments": _dump_segments(trace.segments),
                "final_answer": _dump_answer(trace.final_answer),
                "n_correct": labels.count("correct"),
                "n_incorrect": labels.count("incorrect"),
                "n_incomplete": labels.count("incomplete"),
                "n_clusters": len({sg.cluster for sg in trace.segments if sg.kind in _BODY and sg.cluster is not None}),
                "n_kept_segments": sum(1 for sg in trace.segments if sg.kept),
                "n_dropped_segments": sum(1 for sg in trace.segments if sg.kept is False),
                "drop_stage": "prune" if dropped else None,
                **structure_counts(trace.segments),
            }
        )
    return pl.DataFrame(rows, schema=PRUNED_SCHEMA)


def structure_counts(segments: list[Segment]) -> dict[str, int]:
    """Checks, checks dropped as repeats, and distinct methods kept (solutions/checks that lead their cluster)."""
    checks = [sg for sg in segments if sg.kind is SegmentKind.VERIFICATION]
    return {
        "n_checks": len(checks),
        "n_redundant_checks": sum(1 for sg in checks if (sg.drop_reason or "").startswith("redundant_repeat_of")),
        "n_distinct_methods": sum(
            1 for sg in segments if sg.kind in _BODY and sg.kept and (sg.cluster is None or sg.cluster == sg.idx)
        ),
    }


#: removals that take out an intermediate error state (see dlcot/correct.py and dlcot/error_states.py)
ERROR_STATE_REASONS = ("retraction", "retracted_by", "contradicted_by", "error_state")


def error_span_count(removed_spans: list, edits: list) -> int:
    """Intermediate error states removed: retractions and what they retract, contradicted values, error states."""
    n = sum(1 for sp in removed_spans if (sp.reason or "").startswith(ERROR_STATE_REASONS))
    return n + sum(1 for e in edits if e.reason.startswith("error_state"))


_BODY = (SegmentKind.SOLUTION, SegmentKind.VERIFICATION)


# ------------------------------------------------------------------ correct
@dataclass
class CorrectedTables:
    kept: pl.DataFrame
    dropped: pl.DataFrame
    results: list[DLCoTResult]


def correct_frame(
    raw: pl.DataFrame,
    pruned: pl.DataFrame,
    engine: RulesEngine,
    counter: TokenCounter | TokenMemo | None,
    *,
    max_seq_len: int | None = None,
    record_budget_s: float | None = DEFAULT_RECORD_BUDGET_S,
) -> CorrectedTables:
    """Rewrite every kept sample; every raw row ends in exactly one of the two tables."""
    results: list[DLCoTResult] = []
    raws: list[dict] = []
    drop_stage: list[str | None] = []  # stage of a sample already dropped before this one
    pairs = list(_rows_in_order(raw, pruned, "pruned_solutions"))
    traces = [_segmented_trace(r, p) for r, p in pairs]
    _prepare(engine.rewriter, [t for t in traces if t.status is not SampleStatus.DROPPED], engine.policy)
    for (r, p), trace in zip(pairs, traces):
        try:
            res = _Clock(record_budget_s).run(engine.finalize, trace)
        except RecordTimeout:
            # finalizing a sample already dropped only fills in the result, with no rewriting: nothing left to time
            res = engine.finalize(trace.model_copy(update={"status": SampleStatus.DROPPED, "reason": TIMEOUT_REASON}))
        results.append(res)
        raws.append(r)
        drop_stage.append((p.get("drop_stage") or "prune") if p["status"] == SampleStatus.DROPPED.value else None)

    kept_idx = [i for i, res in enumerate(results) if res.status is SampleStatus.KEPT]
    texts_think = [results[i].corrected_thinking or "" for i in kept_idx]
    texts_final = [results[i].final_text or "" for i in kept_idx]
    texts_seq = [
        "".join(m["content"] for m in (results[i].messages or [])) for i in kept_idx
    ]  # role tokens of a chat template are not counted
    if counter is not None:
        n = len(kept_idx)
        counts = counter.count(texts_think + texts_final)
        think, final = counts[:n], counts[n:]
        seq = _seq_tokens(counter, [raws[i] for i in kept_idx], [results[i] for i in kept_idx], think, final)
    else:
        think = [len(t) for t in texts_think]
        final = [len(t) for t in texts_final]
        seq = [len(t) for t in texts_seq]

    kept_rows, dropped_rows = [], []
    pos = {i: j for j, i in enumerate(kept_idx)}
    for i, (res, r) in enumerate(zip(results, raws)):
        if res.status is not SampleStatus.KEPT:
            stage = drop_stage[i] or "correct"
            dropped_rows.append(
                {"id": res.id, "teacher": res.teacher, "stage": stage, "reason": res.reason, "raw_tokens": r["raw_tokens"],
                 "reference_source": r.get("reference_source")}
            )
            continue
        j = pos[i]
        corrected_tokens = think[j] + final[j]
        reason = None
        if corrected_tokens > r["raw_tokens"]:
            reason = "longer_than_raw"
        elif max_seq_len is not None and seq[j] > max_seq_len:
            reason = "exceeds_max_seq_len"
        if reason is not None:
            dropped_rows.append(
                {"id": res.id, "teacher": res.teacher, "stage": "correct", "reason": reason, "raw_tokens": r["raw_tokens"],
                 "reference_source": r.get("reference_source")}
            )
            continue
        kept_rows.append(
            {
                "id": res.id,
                "teacher": res.teacher,
                "problem": r["problem"],
                "reference_answer": r["reference_answer"],
                "corrected_thinking": res.corrected_thinking,
                "final_text": res.final_text,
                "final_answer": res.final_answer,
                "final_answer_source": res.final_answer_source,
                "answer_equivalent": res.answer_equivalent,
                "messages": res.messages,
                "raw_tokens": r["raw_tokens"],
                "corrected_tokens": corrected_tokens,
                "seq_tokens": seq[j],
                "raw_chars": res.raw_chars,
                "corrected_chars": res.corrected_chars,
                "removed_spans": json.dumps([s.model_dump(mode="json") for s in res.removed_spans], sort_keys=True),
                "edits": json.dumps([e.model_dump(mode="json") for e in res.edits], sort_keys=True, ensure_ascii=False),
                "n_error_spans": error_span_count(res.removed_spans, res.edits),
                "policy": res.policy,
                "engine_version": res.engine_version,
                "config_hash": res.config_hash,
                "reference_source": r.get("reference_source"),
            }
        )
    return CorrectedTables(
        kept=pl.DataFrame(kept_rows, schema=CORRECTED_SCHEMA),
        dropped=pl.DataFrame(dropped_rows, schema=DROPPED_SCHEMA),
        results=results,
    )


_WRAP_HEAD, _WRAP_MID = "<think>\n", "\n</think>\n\n"


def _seq_tokens(counter: TokenCounter | TokenMemo, raws: list[dict], results: list[DLCoTResult], think: list[int], final: list[int]) -> list[int]:
    """Tokens of problem + assistant turn, without tokenizing them a second time.

    When the messages are the usual ``[problem, <think>\\n{thinking}\\n</think>\\n\\n{final}]`` the count is the
    sum of the parts already counted (problem at ingestion, thinking and final text here) plus the fixed tags:
    an upper bound of the joined text's count (BPE merges across a seam only remove tokens; on real traces the
    two agree or the sum is 1 higher), so the ``max_seq_len`` cut stays safe. Other messages are counted whole.
    """
    wrap = sum(counter.count([_WRAP_HEAD, _WRAP_MID]))  # two short tags, once per batch
    out: list[int | None] = []
    todo: list[tuple[int, str]] = []
    for j, (r, res) in enumerate(zip(raws, results)):
        contents = [m["content"] for m in (res.messages or [])]
        usual = [r["problem"], f"{_WRAP_HEAD}{res.corrected_thinking or ''}{_WRAP_MID}{res.final_text or ''}"]
        if contents == usual and r.get("problem_tokens"):
            out.append(r["problem_tokens"] + think[j] + final[j] + wrap)
        else:
            out.append(None)
            todo.append((j, "".join(contents)))
    for (j, _), c in zip(todo, counter.count([t for _, t in todo])):
        out[j] = c
    return [int(x or 0) for x in out]


def dlcot_accounting_problems(raw: pl.DataFrame, kept: pl.DataFrame, dropped: pl.DataFrame) -> list[str]:
    """kept + dropped-with-reason == raw rows, by id."""
    problems = []
    raw_ids, k, d = set(raw["id"]), kept["id"].to_list(), dropped["id"].to_list()
    if len(k) + len(d) != raw.height:
        problems.append(f"kept {len(k)} + dropped {len(d)} != {raw.height} raw rows")
    both = set(k) & set(d)
    if both:
        problems.append(f"{len(both)} ids both kept and dropped, e.g. {sorted(both)[:3]}")
    lost = raw_ids - set(k) - set(d)
    if lost:
        problems.append(f"{len(lost)} raw ids neither kept nor dropped, e.g. {sorted(lost)[:3]}")
    extra = (set(k) | set(d)) - raw_ids
    if extra:
        problems.append(f"{len(extra)} ids not in raw_traces, e.g. {sorted(extra)[:3]}")
    no_reason = dropped.filter(pl.col("reason").is_null() | (pl.col("reason") == ""))["id"]
    if no_reason.len():
        problems.append(f"{no_reason.len()} dropped rows without a reason, e.g. {sorted(no_reason.to_list())[:3]}")
    return problems


def render_removed(
    thinking: str, removed_spans: list[dict], max_chars: int = 1500, edits: list[dict] | None = None
) -> str:
    """Markdown of a thinking text with its removed spans (and the text that removal edits take out, such as
    error states) struck through, cut to ``max_chars``."""
    out, pos, used = [], 0, 0
    spans = list(removed_spans) + [
        {"start": e["pos"], "end": e["pos"] + len(e["removed"]), "reason": e["reason"]}
        for e in (edits or [])
        if e.get("removed") and not e.get("inserted") and len(e["removed"]) > 20
    ]
    for sp in sorted(spans, key=lambda s: s["start"]):
        a, b = max(sp["start"], pos), sp["end"]
        if a > pos:
            out.append(thinking[pos:a])
        if b > a:
            piece = thinking[a:b].strip()
            if piece:
                out.append(f" ~~{piece}~~ ")
        pos = max(pos, b)
        used = sum(len(x) for x in out)
        if used > max_chars:
            break
    if pos < len(thinking) and used <= max_chars:
        out.append(thinking[pos:])
    text = "".join(out)
    return text if len(text) <= max_chars else text[:max_chars] + " …"
