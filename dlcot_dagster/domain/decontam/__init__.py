"""Benchmark decontamination: no evaluation problem reaches a student through its training data.

* :mod:`.normalize`: problem text -> canonical tokens (wrappers, delimiters, fractions, formatting, numbers);
* :mod:`.index`: the benchmark index, boilerplate n-grams (learned from the benchmarks and the corpus) and the
  matcher (exact, contained, n-gram overlap; numbers must agree);
* :mod:`.spec`: the picklable recipe worker processes rebuild the index from;
* :mod:`.step`: verdicts per raw row, duplicate traces, the kept-row re-check, the per-partition report.

Nothing here imports dagster.
"""

from .index import BenchmarkIndex, BenchmarkProblem, DecontamSettings, Overlap
from .normalize import normalize_text, tokens
from .spec import DEFAULT_CORPUS_SAMPLE, DecontamSpec, load_problems
from .step import (
    DECONTAM_SCHEMA,
    DECONTAM_STAGE,
    DUPLICATE_REASON,
    EVIDENCE_SCHEMA,
    OVERLAP_REASON,
    DecontamReport,
    TraceDeduper,
    attach_evidence,
    decontam_frame,
    kept_overlaps,
    learn_spec,
    shared_problems,
    verdict_drops,
)

__all__ = [
    "BenchmarkIndex", "BenchmarkProblem", "DecontamSettings", "Overlap", "normalize_text", "tokens",
    "DEFAULT_CORPUS_SAMPLE", "DecontamSpec", "load_problems", "DECONTAM_SCHEMA", "DECONTAM_STAGE",
    "DUPLICATE_REASON", "EVIDENCE_SCHEMA", "OVERLAP_REASON", "DecontamReport", "TraceDeduper", "attach_evidence",
    "decontam_frame", "kept_overlaps", "learn_spec", "shared_problems", "verdict_drops",
]
