"""Deterministic DLCoT engine (plain Python; never imports dagster).

DLCoT ("Deconstructing Long Chain-of-Thought", arXiv 2503.16385) splits a
long CoT into question restatement, problem understanding, solutions (up to
the first answer), verification and conclusion; keeps the distinct
approaches of the reasoning trunk, prunes repeated ones, and removes
intermediate error states.

Where the choices are documented:

* :mod:`.segment` — the five parts, units and cues, first answer, approach
  switches, check splitting;
* :mod:`.answers_in_text` — explicit vs implicit (reference-matched)
  answers, hedges;
* :mod:`.label` — labels, "cannot tell" → ``incomplete``, inheritance of the
  conclusion's / final response's answer;
* :mod:`.similarity` — the similarity measure and the 0.5 Jaccard threshold
  (with the measured distribution);
* :mod:`.policy` / :mod:`.prune` — the policies, what happens to
  restatement / understanding / conclusion, every drop reason;
* :mod:`.correct` — retraction removal, join repair, the fidelity contract
  of the edit list;
* :mod:`.engine` — step interfaces, the final answer of the SFT record.

Public API::

    from dlcot_dagster.domain.dlcot import (
        run_dlcot, run_dlcot_batch, RulesEngine, ENGINE_VERSION, engine_code_version,
        DLCoTPolicy, PruningMode, EngineConfig, config_hash,
        segment_trace, DLCoTResult, Segment, SegmentKind, Label, SampleStatus,
        Segmenter, Labeler, Clusterer, Pruner, Rewriter,
    )
"""

from .correct import Rewrite, RuleRewriter, apply_edits
from .engine import (
    ENGINE_VERSION,
    Clusterer,
    Labeler,
    Pruner,
    Rewriter,
    RulesEngine,
    Segmenter,
    engine_code_version,
    run_dlcot,
    run_dlcot_batch,
)
from .label import RuleLabeler
from .policy import ClusterConfig, CorrectorConfig, DLCoTPolicy, EngineConfig, PruningMode, SegmenterConfig, config_hash
from .prune import RulePruner
from .segment import RuleSegmenter, segment_trace
from .method import MethodClusterer
from .similarity import LeaderClusterer, RuleClusterer, text_jaccard
from .checking import MemoChecker
from .types import (
    AnswerSpan,
    DLCoTResult,
    Edit,
    Label,
    SampleStatus,
    Segment,
    SegmentedTrace,
    SegmentKind,
    Span,
    TraceInput,
)

__all__ = [
    "ENGINE_VERSION",
    "AnswerSpan",
    "ClusterConfig",
    "Clusterer",
    "CorrectorConfig",
    "DLCoTPolicy",
    "DLCoTResult",
    "Edit",
    "EngineConfig",
    "Label",
    "Labeler",
    "LeaderClusterer",
    "MemoChecker",
    "MethodClusterer",
    "Pruner",
    "PruningMode",
    "Rewrite",
    "Rewriter",
    "RuleClusterer",
    "RuleLabeler",
    "RulePruner",
    "RuleRewriter",
    "RuleSegmenter",
    "RulesEngine",
    "SampleStatus",
    "Segment",
    "SegmentKind",
    "SegmentedTrace",
    "Segmenter",
    "SegmenterConfig",
    "Span",
    "TraceInput",
    "apply_edits",
    "config_hash",
    "engine_code_version",
    "run_dlcot",
    "run_dlcot_batch",
    "segment_trace",
    "text_jaccard",
]
