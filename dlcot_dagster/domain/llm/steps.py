"""LLM implementations of the DLCoT step interfaces (Segmenter, Labeler, Clusterer, Rewriter).

Each step is a drop-in for its rule-based counterpart in :class:`~dlcot_dagster.domain.dlcot.RulesEngine` and
returns the same types. Batching: a step's ``prepare(items)`` sends the prompts of a whole partition to the
client in one batch; the per-record call (``segment`` / ``label`` / ``cluster`` / ``rewrite``) then only looks
its result up (a record that was not prepared is sent alone). The frame functions of
:mod:`dlcot_dagster.domain.pipeline` call ``prepare`` when a step has it.

Fallback: a result rejected by a guard (:mod:`.guards`), a reply that does not parse, or a request that failed is
replaced, for that record only, by the rule step's result; ``stats.fallbacks`` counts them per reason.
Records with nothing to ask (empty thinking, no reference answer, a single solution to cluster) go to the rule
step too and are counted under ``stats.skipped``.

Segments from the LLM carry the answers found by the same answer finders as the rule segmenter (explicit
statements, and implicit ones matched against the reference), so labelling, pruning and the final answer work
the same. LLM labels must agree with the answer checker wherever the checker can decide on the segment's stated
answer (``label_contradicts_checker`` otherwise); a segment the LLM calls correct without a verifiable answer
becomes ``incomplete``. The rewrite deletes the rules' removal plan plus the LLM's error passages and lets the
model smooth the joins, within the edit budget of :mod:`.guards`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict

from ..dlcot.answers_in_text import locate_answers
from ..dlcot.correct import Rewrite, _merge, _protected_spans
from ..dlcot.engine import ENGINE_VERSION, RulesEngine
from ..dlcot.policy import DLCoTPolicy, EngineConfig, SegmenterConfig
from ..dlcot.types import AnswerSpan, Label, Segment, SegmentedTrace, SegmentKind, Span, TraceInput
from .client import ChatReply, ChatRequest, LLMClient, Sampling, parse_reply
from .guards import anchor_split, edit_distance_chars, edits_for, exact_spans
from .prompts import (
    ClusterReply,
    LabelReply,
    RewriteReply,
    SplitReply,
    cluster_messages,
    label_messages,
    mark_deletions,
    rewrite_messages,
    schema_of,
    segment_messages,
)

LLM_ENGINE_VERSION = "dlcot-llm-0.1.0"
LLM_STEPS = ("segment", "label", "cluster", "rewrite")
BODY = (SegmentKind.SOLUTION, SegmentKind.VERIFICATION)
LABELLED = (SegmentKind.SOLUTION, SegmentKind.VERIFICATION, SegmentKind.CONCLUSION)


class LLMStepConfig(BaseModel):
    """Sampling and guard thresholds of the LLM steps."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    max_tokens_segment: int = 2048
    max_tokens_label: int = 256
    max_tokens_cluster: int = 512
    #: cap of the rewrite's budget (the budget is estimated from the kept text's length)
    max_tokens_rewrite: int = 16384
    max_parts: int = 64
    max_error_passages: int = 8
    min_coverage: float = 0.90
    rewrite_max_edit_ratio: float = 0.05
    rewrite_min_edit_chars: int = 80
    label_must_agree_with_checker: bool = True

    def sampling(self, max_tokens: int) -> Sampling:
        return Sampling(temperature=self.temperature, top_p=self.top_p, max_tokens=max_tokens, seed=self.seed)


@dataclass
class StepStats:
    records: int = 0
    accepted: int = 0
    fallbacks: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "accepted": self.accepted,
            "fallbacks": dict(sorted(self.fallbacks.items())),
            "skipped": dict(sorted(self.skipped.items())),
        }


def _rec_key(rec: TraceInput) -> tuple[str, int]:
    return rec.id, hash(rec.thinking)


def _trace_key(trace: SegmentedTrace) -> tuple:
    return (*_rec_key(trace.record), tuple((s.start, s.end, s.kept) for s in trace.segments))


class _LLMStep:
    name = "step"

    def __init__(self, client: LLMClient, fallback: Any, cfg: LLMStepConfig | None = None):
        self.client = client
        self.fallback = fallback
        self.cfg = cfg or LLMStepConfig()
        self.stats = StepStats()
        self._results: dict[Any, Any] = {}

    def _ask(self, requests: Sequence[ChatRequest]) -> list[ChatReply]:
        return self.client.chat_batch(list(requests)) if requests else []

    def _fallback(self, reason: str) -> None:
        self.stats.fallbacks[reason] += 1


# ------------------------------------------------------------------------------------------ segment


class LLMSegmenter(_LLMStep):
    name = "segment"

    def __init__(self, client, fallback, checker=None, seg_config: SegmenterConfig | None = None, cfg=None):
        super().__init__(client, fallback, cfg)
        self.checker = checker
        self.seg_config = seg_config or SegmenterConfig()
        self.schema = schema_of(SplitReply, max_items={"parts": self.cfg.max_parts})

    def _request(self, rec: TraceInput) -> ChatRequest:
        return ChatRequest(
            segment_messages(rec.problem, rec.thinking), self.schema, self.cfg.sampling(self.cfg.max_tokens_segment), "segment"
        )

    def prepare(self, records: Sequence[Any]) -> None:
        recs = [TraceInput.of(r) for r in records]
        todo = [r for r in recs if r.thinking.strip() and _rec_key(r) not in self._results]
        for rec, rep in zip(todo, self._ask([self._request(r) for r in todo])):
            self._results[_rec_key(rec)] = self._evaluate(rec, rep)

    def _evaluate(self, rec: TraceInput, rep: ChatReply) -> SegmentedTrace | str:
        parsed, why = parse_reply(rep, SplitReply)
        if parsed is None:
            return why or "unparseable"
        split = anchor_split(
            rec.thinking, [(p.kind, p.first_words, p.last_words) for p in parsed.parts], self.cfg.min_coverage
        )
        if split.reason is not None:
            return split.reason
        return self._build(rec, split.spans)

    def _build(self, rec: TraceInput, spans: list[tuple[SegmentKind, int, int]]) -> SegmentedTrace:
        text, cfg = rec.thinking, self.seg_config
        restate_end = spans[0][2] if spans[0][0] is SegmentKind.QUESTION_RESTATEMENT else 0
        answers, explicit = locate_answers(
            text, rec.problem, rec.reference_answer, self.checker, cfg, restate_end, rec.final_response
        )
        segs = []
        for idx, (kind, s, e) in enumerate(spans):
            ans = None
            if kind in LABELLED:
                inside = [a for a in answers if s <= max(a.start, a.end - 1) < e]
                ans = inside[-1] if inside else None
            segs.append(Segment(idx=idx, kind=kind, start=s, end=e, cue="llm", answer=ans))
        return SegmentedTrace(record=rec, segments=segs, final_answer=explicit[-1] if explicit else None)

    def segment(self, record: Any) -> SegmentedTrace:
        rec = TraceInput.of(record)
        self.stats.records += 1
        if not rec.thinking.strip():
            self.stats.skipped["empty_thinking"] += 1
            return self.fallback.segment(rec)
        if _rec_key(rec) not in self._results:
            self.prepare([rec])
        res = self._results.pop(_rec_key(rec))
        if isinstance(res, str):
            self._fallback(res)
            return self.fallback.segment(rec)
        self.stats.accepted += 1
        return res


# ------------------------------------------------------------------------------------------ label


class LLMLabeler(_LLMStep):
    name = "label"

    def __init__(self, client, fallback, checker, cfg=None):
        super().__init__(client, fallback, cfg)
        self.checker = checker
        self.schema = schema_of(LabelReply, max_items={"error_passages": self.cfg.max_error_passages})

    def _requests(self, trace: SegmentedTrace) -> list[tuple[tuple, ChatRequest]]:
        rec, text = trace.record, trace.record.thinking
        if not rec.reference_answer.strip():
            return []
        out = []
        for sg in trace.segments:
            if sg.kind in LABELLED:
                msgs = label_messages(rec.problem, rec.reference_answer, sg.kind.value, text[sg.start : sg.end])
                req = ChatRequest(msgs, self.schema, self.cfg.sampling(self.cfg.max_tokens_label), "label")
                out.append(((*_rec_key(rec), sg.start, sg.end), req))
        return out

    def prepare(self, traces: Sequence[SegmentedTrace]) -> None:
        pairs = [p for t in traces for p in self._requests(t) if p[0] not in self._results]
        for (key, _), rep in zip(pairs, self._ask([r for _, r in pairs])):
            self._results[key] = rep

    def label(self, trace: SegmentedTrace) -> SegmentedTrace:
        self.stats.records += 1
        rec = trace.record
        if not rec.reference_answer.strip():
            self.stats.skipped["no_reference"] += 1
            return self.fallback.label(trace)
        if not any(sg.kind in LABELLED for sg in trace.segments):
            self.stats.skipped["no_parts"] += 1
            return self.fallback.label(trace)
        if any((*_rec_key(rec), sg.start, sg.end) not in self._results for sg in trace.segments if sg.kind in LABELLED):
            self.prepare([trace])
        out, why = self._apply(trace)
        if why is not None:
            self._fallback(why)
            return self.fallback.label(trace)
        self.stats.accepted += 1
        return out

    def _apply(self, trace: SegmentedTrace) -> tuple[SegmentedTrace | None, str | None]:
        rec, text, ref = trace.record, trace.record.thinking, trace.record.reference_answer
        segs = []
        reason = None
        for sg in trace.segments:
            if sg.kind not in LABELLED:
                segs.append(sg)
                continue
            rep = self._results.pop((*_rec_key(rec), sg.start, sg.end))
            if reason is not None:
                continue
            parsed, why = parse_reply(rep, LabelReply)
            if parsed is None:
                reason = why
                continue
            part = text[sg.start : sg.end]
            spans = exact_spans(part, parsed.error_passages)
            if spans is None:
                reason = "error_span_not_verbatim"
                continue
            label = Label(parsed.label)
            why_label = "llm"
            answer = sg.answer
            if answer is not None:
                eq = getattr(self.checker.compare(ref, answer.text), "equivalent", None)
                if self.cfg.label_must_agree_with_checker and (
                    (eq is True and label is not Label.CORRECT) or (eq is False and label is Label.CORRECT)
                ):
                    reason = "label_contradicts_checker"
                    continue
            elif label is Label.CORRECT:
                # a correct part needs an answer the final-answer logic can use: the value it names, if verbatim
                val = (parsed.reached_answer or "").strip()
                pos = part.rfind(val) if val else -1
                eq = getattr(self.checker.compare(ref, val), "equivalent", None) if pos >= 0 else None
                if eq is True:
                    a = sg.start + pos
                    answer = AnswerSpan(text=val, start=a, end=a + len(val), kind="llm", explicit=False)
                else:
                    label, why_label = Label.INCOMPLETE, "llm:unverified_correct"
            errs = sorted({(sg.start + a, sg.start + b) for a, b in spans})
            segs.append(
                sg.model_copy(
                    update={
                        "label": label,
                        "label_reason": why_label,
                        "answer": answer,
                        "error_spans": [Span(start=a, end=b, reason="llm_error_passage") for a, b in errs] or None,
                    }
                )
            )
        if reason is not None:
            return None, reason
        return trace.model_copy(update={"segments": segs}), None


# ------------------------------------------------------------------------------------------ cluster


class LLMClusterer(_LLMStep):
    name = "cluster"

    def __init__(self, client, fallback, cfg=None):
        super().__init__(client, fallback, cfg)
        self.schema = schema_of(ClusterReply)

    def _request(self, trace: SegmentedTrace) -> ChatRequest | None:
        text = trace.record.thinking
        body = [(sg.idx, sg.kind.value, text[sg.start : sg.end]) for sg in trace.segments if sg.kind in BODY]
        if len(body) < 2:
            return None
        schema = schema_of(ClusterReply, max_items={"groups": len(body), "members": len(body)})
        msgs = cluster_messages(trace.record.problem, body)
        return ChatRequest(msgs, schema, self.cfg.sampling(self.cfg.max_tokens_cluster), "cluster")

    def prepare(self, traces: Sequence[SegmentedTrace]) -> None:
        pairs = []
        for t in traces:
            k = _trace_key(t)
            if k in self._results:
                continue
            req = self._request(t)
            if req is not None:
                pairs.append((k, req))
        for (k, _), rep in zip(pairs, self._ask([r for _, r in pairs])):
            self._results[k] = rep

    def cluster(self, trace: SegmentedTrace) -> SegmentedTrace:
        self.stats.records += 1
        body = [sg.idx for sg in trace.segments if sg.kind in BODY]
        if len(body) < 2:
            self.stats.skipped["single_part"] += 1
            return self.fallback.cluster(trace)
        k = _trace_key(trace)
        if k not in self._results:
            self.prepare([trace])
        rep = self._results.pop(k)
        parsed, why = parse_reply(rep, ClusterReply)
        if parsed is None:
            self._fallback(why or "unparseable")
            return self.fallback.cluster(trace)
        seen: list[int] = [m for g in parsed.groups for m in g.members]
        if sorted(seen) != sorted(body):
            self._fallback("cluster_invalid")
            return self.fallback.cluster(trace)
        leader = {m: min(g.members) for g in parsed.groups for m in g.members}
        segs = [
            sg.model_copy(update={"cluster": leader[sg.idx], "similarity": None}) if sg.kind in BODY else sg
            for sg in trace.segments
        ]
        self.stats.accepted += 1
        return trace.model_copy(update={"segments": segs})


# ------------------------------------------------------------------------------------------ rewrite


def _subtract(pieces: list[tuple[int, int]], a: int, b: int) -> list[tuple[int, int]]:
    out = []
    for x, y in pieces:
        if y <= a or x >= b:
            out.append((x, y))
            continue
        if x < a:
            out.append((x, a))
        if b < y:
            out.append((b, y))
    return out


@dataclass
class _Plan:
    base: Rewrite
    pieces: list[tuple[int, int]]
    removed: list[tuple[int, int]]
    extra_removed: list[Span]
    baseline: str


class LLMRewriter(_LLMStep):
    name = "rewrite"

    def __init__(self, client, fallback, cfg=None):
        super().__init__(client, fallback, cfg)
        self.schema = schema_of(RewriteReply)

    def _plan(self, trace: SegmentedTrace, policy: DLCoTPolicy) -> _Plan:
        text = trace.record.thinking
        base = self.fallback.rewrite(trace, policy)
        pieces = [(s.start, s.end) for s in base.kept_spans]
        protected = _protected_spans(trace)
        extra = []
        for sg in trace.segments:
            for sp in (sg.error_spans or []) if sg.kept else []:
                if any(pa < sp.end and sp.start < pb for pa, pb in protected):
                    continue
                before = sum(y - x for x, y in pieces)
                pieces = _subtract(pieces, sp.start, sp.end)
                if sum(y - x for x, y in pieces) < before:
                    extra.append(Span(start=sp.start, end=sp.end, reason="llm_error_passage"))
        removed, pos = [], 0
        for a, b in pieces:
            if a > pos:
                removed.append((pos, a))
            pos = b
        if pos < len(text):
            removed.append((pos, len(text)))
        baseline = "".join(text[a:b] for a, b in pieces)
        return _Plan(base, pieces, _merge(removed), extra, baseline)

    def _request(self, trace: SegmentedTrace, plan: _Plan) -> ChatRequest:
        marked = mark_deletions(trace.record.thinking, plan.removed)
        budget = min(self.cfg.max_tokens_rewrite, int(len(json.dumps(plan.baseline)) / 2.5) + 64)
        return ChatRequest(rewrite_messages(marked), self.schema, self.cfg.sampling(budget), "rewrite")

    def prepare(self, traces: Sequence[SegmentedTrace], policy: DLCoTPolicy) -> None:
        pairs = []
        for t in traces:
            k = _trace_key(t)
            if k in self._results or not any(sg.kept for sg in t.segments):
                continue
            plan = self._plan(t, policy)
            pairs.append((k, plan, self._request(t, plan)))
        for (k, plan, _), rep in zip(pairs, self._ask([r for _, _, r in pairs])):
            self._results[k] = (plan, rep)

    def rewrite(self, trace: SegmentedTrace, policy: DLCoTPolicy) -> Rewrite:
        self.stats.records += 1
        if not any(sg.kept for sg in trace.segments):
            self.stats.skipped["nothing_kept"] += 1
            return self.fallback.rewrite(trace, policy)
        k = _trace_key(trace)
        if k not in self._results:
            self.prepare([trace], policy)
        plan, rep = self._results.pop(k)
        out, why = self._evaluate(trace, plan, rep)
        if out is None:
            self._fallback(why or "unparseable")
            return plan.base
        self.stats.accepted += 1
        return out

    def _evaluate(self, trace: SegmentedTrace, plan: _Plan, rep: ChatReply) -> tuple[Rewrite | None, str | None]:
        parsed, why = parse_reply(rep, RewriteReply)
        if parsed is None:
            return None, why
        text = trace.record.thinking
        out = parsed.text.strip()
        if not out:
            return None, "empty_output"
        dist, _ = edit_distance_chars(plan.baseline, out)
        if dist > max(self.cfg.rewrite_min_edit_chars, self.cfg.rewrite_max_edit_ratio * len(plan.baseline)):
            return None, "edit_distance"
        if any(text[a:b] not in out for a, b in plan.base.protected):
            return None, "answer_lost"
        edits = edits_for(text, plan.pieces, out)
        if edits is None:
            return None, "unmappable"
        removed = sorted([*plan.base.removed_spans, *plan.extra_removed], key=lambda s: (s.start, s.end))
        return (
            Rewrite(
                corrected_thinking=out,
                kept_spans=[Span(start=a, end=b) for a, b in plan.pieces],
                removed_spans=removed,
                edits=edits,
                protected=plan.base.protected,
            ),
            None,
        )


# ------------------------------------------------------------------------------------------ engine


def build_llm_engine(
    client: LLMClient,
    policy: DLCoTPolicy | str | None = None,
    checker: Any = None,
    config: EngineConfig | None = None,
    *,
    steps: Sequence[str] = LLM_STEPS,
    step_config: LLMStepConfig | None = None,
) -> RulesEngine:
    """A :class:`RulesEngine` whose ``steps`` (any of segment, label, cluster, rewrite) run on ``client``."""
    unknown = set(steps) - set(LLM_STEPS)
    if unknown:
        raise ValueError(f"unknown LLM steps {sorted(unknown)}; choose from {LLM_STEPS}")
    model = PurePath(client.model_id).name or client.model_id
    version = f"{ENGINE_VERSION}+{LLM_ENGINE_VERSION}[{','.join(s for s in LLM_STEPS if s in steps)}]@{model}"
    eng = RulesEngine(policy, checker, config, engine_version=version)
    eng.llm_client = client  # type: ignore[attr-defined]
    cfg = step_config or LLMStepConfig()
    if "segment" in steps:
        eng.segmenter = LLMSegmenter(client, eng.segmenter, eng.checker, eng.config.segmenter, cfg)
    if "label" in steps:
        eng.labeler = LLMLabeler(client, eng.labeler, eng.checker, cfg)
    if "cluster" in steps:
        eng.clusterer = LLMClusterer(client, eng.clusterer, cfg)
    if "rewrite" in steps:
        eng.rewriter = LLMRewriter(client, eng.rewriter, cfg)
    return eng


def llm_report(engine: RulesEngine) -> dict[str, Any]:
    """Per-step statistics of the LLM steps of ``engine`` ({} for a pure rules engine)."""
    out = {}
    for step in (engine.segmenter, engine.labeler, engine.clusterer, engine.rewriter):
        if isinstance(step, _LLMStep):
            out[step.name] = step.stats.as_dict()
    return out


def llm_fallbacks(engine: RulesEngine) -> dict[str, int]:
    """``{"<step>:<reason>": count}`` over the LLM steps of ``engine``."""
    out: dict[str, int] = {}
    for name, st in llm_report(engine).items():
        for reason, n in st["fallbacks"].items():
            out[f"{name}:{reason}"] = n
    return dict(sorted(out.items()))
