"""The DLCoT engine: segment → label → cluster → prune → correct, for one record or a batch.

Each step is a small interface (``typing.Protocol``) so that an LLM-assisted
implementation (vLLM with structured output) can replace any one of them
behind the same types; :class:`RulesEngine` wires the rule-based
implementations of this package.

Final answer of a kept sample
-----------------------------
The assistant turn of the SFT record is
``<think>\\n{corrected_thinking}\\n</think>\\n\\n{final_text}`` where
``final_text`` is the record's ``final_response`` when there is one and its
extracted final answer is equivalent to the reference
(``final_answer_source="final_response"``); otherwise it is built as
``The final answer is $\\boxed{X}$.`` with ``X`` the answer of the kept
conclusion when it is correct, else the answer of the trunk's first correct
segment (``"built"``). ``answer_equivalent`` is the checker's verdict on the
answer in ``final_text``; a sample whose verdict is not ``True`` is dropped
(``final_answer_not_equivalent`` / ``final_answer_unverified``), so every kept
sample preserves the answer, under every policy.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, runtime_checkable

from .answers_in_text import CheckerLike
from .checking import MemoChecker
from .correct import Rewrite, RuleRewriter
from .label import RuleLabeler
from .policy import DLCoTPolicy, EngineConfig, PruningMode, config_hash
from .prune import RulePruner, first_correct_index
from .segment import RuleSegmenter
from .method import MethodClusterer
from .similarity import RuleClusterer
from .types import DLCoTResult, Label, SampleStatus, SegmentedTrace, SegmentKind, TraceInput

#: Bump when a change alters outputs for the same input and config.
ENGINE_VERSION = "dlcot-rules-0.3.36"


# ---------------------------------------------------------------------- step interfaces


@runtime_checkable
class Segmenter(Protocol):
    def segment(self, record: Any) -> SegmentedTrace: ...


@runtime_checkable
class Labeler(Protocol):
    def label(self, trace: SegmentedTrace) -> SegmentedTrace: ...


@runtime_checkable
class Clusterer(Protocol):
    def cluster(self, trace: SegmentedTrace) -> SegmentedTrace: ...


@runtime_checkable
class Pruner(Protocol):
    def prune(self, trace: SegmentedTrace, policy: DLCoTPolicy) -> SegmentedTrace: ...


@runtime_checkable
class Rewriter(Protocol):
    def rewrite(self, trace: SegmentedTrace, policy: DLCoTPolicy) -> Rewrite: ...


# ---------------------------------------------------------------------- engine


def _boxed(ans: str) -> str:
    return f"The final answer is $\\boxed{{{ans}}}$."


class RulesEngine:
    """Runs the five steps for one record; any step may be swapped for another implementation."""

    def __init__(
        self,
        policy: DLCoTPolicy | str | None = None,
        checker: CheckerLike | None = None,
        config: EngineConfig | None = None,
        *,
        segmenter: Segmenter | None = None,
        labeler: Labeler | None = None,
        clusterer: Clusterer | None = None,
        pruner: Pruner | None = None,
        rewriter: Rewriter | None = None,
        engine_version: str = ENGINE_VERSION,
    ):
        if policy is None:
            policy = DLCoTPolicy()
        elif isinstance(policy, (str, PruningMode)):
            policy = DLCoTPolicy.preset(policy)
        self.policy = policy
        self.config = config or EngineConfig()
        self.checker = checker if isinstance(checker, MemoChecker) else MemoChecker(checker)
        self.segmenter = segmenter or RuleSegmenter(self.checker, self.config.segmenter)
        self.labeler = labeler or RuleLabeler(self.checker)
        self.clusterer = clusterer or (
            MethodClusterer(self.config.cluster)
            if self.config.cluster.method == "evidence"
            else RuleClusterer(self.config.cluster)
        )
        self.pruner = pruner or RulePruner()
        self.rewriter = rewriter or RuleRewriter(self.config.corrector)
        self.engine_version = engine_version
        self.config_hash = config_hash(self.policy, self.config, engine_version)

    # a later LLM engine overrides single steps; the façade stays the same
    def analyze(self, record: Any) -> SegmentedTrace:
        """segment → label → cluster → prune (no rewriting)."""
        trace = self.segmenter.segment(record)
        trace = self.labeler.label(trace)
        trace = self.clusterer.cluster(trace)
        return self.pruner.prune(trace, self.policy)

    def run(self, record: Any) -> DLCoTResult:
        """All five steps for one record."""
        t0 = self.checker.timeouts
        res = self.finalize(self.analyze(TraceInput.of(record)))
        if self.checker.timeouts != t0:
            res = res.model_copy(update={"checker_timeouts": self.checker.timeouts - t0})
        return res

    def finalize(self, trace: SegmentedTrace) -> DLCoTResult:
        """rewrite + final answer for an analyzed (labelled, clustered, pruned) trace."""
        rec = trace.record
        base = dict(
            id=rec.id,
            teacher=rec.teacher,
            engine_version=self.engine_version,
            config_hash=self.config_hash,
            policy=self.policy.name,
            reference_answer=rec.reference_answer,
            raw_chars=len(rec.thinking),
        )
        if trace.status is SampleStatus.DROPPED:
            return DLCoTResult(status=SampleStatus.DROPPED, reason=trace.reason, segments=trace.segments, **base)

        rw = self.rewriter.rewrite(trace, self.policy)
        final_answer, final_text, source, verdict = self._final(trace, rw)
        eq = getattr(verdict, "equivalent", None) if verdict is not None else None
        why = str(getattr(verdict, "reason", "")) if verdict is not None else "no_final_answer"
        status, reason = SampleStatus.KEPT, None
        if eq is not True:
            status = SampleStatus.DROPPED
            reason = "final_answer_not_equivalent" if eq is False else "final_answer_unverified"
        if status is SampleStatus.KEPT and not all(
            any(k.start <= a and b <= k.end for k in rw.kept_spans) for a, b in rw.protected
        ):
            status, reason = SampleStatus.DROPPED, "answer_statement_removed"
        if len(rw.corrected_thinking) > len(rec.thinking) or not rw.corrected_thinking.strip():
            status, reason = SampleStatus.DROPPED, "empty_or_longer_output"
        messages = None
        if status is SampleStatus.KEPT:
            messages = [
                {"role": "user", "content": rec.problem},
                {"role": "assistant", "content": f"<think>\n{rw.corrected_thinking}\n</think>\n\n{final_text}"},
            ]
        return DLCoTResult(
            status=status,
            reason=reason,
            segments=trace.segments,
            kept_spans=rw.kept_spans,
            removed_spans=rw.removed_spans,
            edits=rw.edits,
            corrected_thinking=rw.corrected_thinking,
            final_answer=final_answer,
            final_answer_source=source,
            answer_equivalent=eq,
            answer_check_reason=why,
            final_text=final_text,
            messages=messages,
            corrected_chars=len(rw.corrected_thinking),
            **base,
        )

    def _final(self, trace: SegmentedTrace, rw: Rewrite):
        rec = trace.record
        ref = rec.reference_answer
        segs = trace.segments
        concl = next((sg for sg in segs if sg.kind is SegmentKind.CONCLUSION and sg.kept), None)
        answer: str | None = None
        if concl is not None and concl.answer is not None and (
            concl.label is Label.CORRECT or self.policy.mode is PruningMode.NONE
        ):
            answer = concl.answer.text
        if answer is None:
            fc = first_correct_index(trace)
            if fc is not None:
                answer = segs[fc].answer.text if segs[fc].answer else None
        if answer is None:
            # keep-everything modes without a correct segment: the last answer stated
            kept_answers = [sg.answer for sg in segs if sg.kept and sg.answer is not None]
            if kept_answers:
                answer = kept_answers[-1].text
        # final text: the record's own final response when it still carries the right answer
        if rec.final_response and rec.final_response.strip():
            from dlcot_dagster.domain.answers import extract_final_answer

            fa = extract_final_answer(rec.final_response)
            if fa is not None and fa.text:
                v = self.checker.compare(ref, fa.text)
                if getattr(v, "equivalent", None) is True:
                    return fa.text, rec.final_response.strip(), "final_response", v
        if answer is None:
            return None, None, "none", None
        v = self.checker.compare(ref, answer)
        return answer, _boxed(answer), "built", v



def run_dlcot(
    record: Any,
    policy: DLCoTPolicy | str | None = None,
    checker: CheckerLike | None = None,
    config: EngineConfig | None = None,
) -> DLCoTResult:
    """Run the rule engine on one record (a ``TraceRecord``, an object with its attributes, or a dict)."""
    return RulesEngine(policy, checker, config).run(record)


def run_dlcot_batch(
    records: Iterable[Any],
    policy: DLCoTPolicy | str | None = None,
    checker: CheckerLike | None = None,
    config: EngineConfig | None = None,
) -> list[DLCoTResult]:
    """Run the rule engine on many records with one engine (shared checker memo); results in input order."""
    engine = RulesEngine(policy, checker, config)
    return [engine.run(r) for r in records]


def engine_code_version(policy: DLCoTPolicy | str | None = None, config: EngineConfig | None = None) -> str:
    """``ENGINE_VERSION`` + config hash: a Dagster ``code_version`` for assets built with this engine."""
    pol = DLCoTPolicy.preset(policy) if isinstance(policy, (str, PruningMode)) else (policy or DLCoTPolicy())
    return f"{ENGINE_VERSION}+{config_hash(pol, config)}"
