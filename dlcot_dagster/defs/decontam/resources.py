"""The decontamination settings every step of a run shares (the step itself and the check on corrected_traces)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from ...domain.decontam import DEFAULT_CORPUS_SAMPLE, DecontamSettings, DecontamSpec
from ..benchmarks import BenchmarksResource

_D = DecontamSettings()


class DecontamResource(dg.ConfigurableResource):
    """How a training problem is matched against the ``benchmarks`` list (see ``domain/decontam``).

    A problem matches a benchmark problem when their normalized texts are equal, or when at least ``threshold`` of
    the benchmark problem's distinctive ``ngram``-word n-grams (not boilerplate) occur in it, and in either case
    every number of the benchmark problem occurs in it. Boilerplate: an n-gram found in ``boilerplate_min_df`` or
    more unrelated benchmark problems, or in max(``corpus_min_df``, ``corpus_min_share`` x distinct problems) of the
    first ``corpus_sample`` problems of the partition."""

    ngram: int = Field(default=_D.ngram, ge=2, description="words per n-gram")
    threshold: float = Field(
        default=_D.threshold, gt=0, le=1,
        description="share of the benchmark problem's distinctive n-grams that must occur in the training problem",
    )
    min_shared: int = Field(default=_D.min_shared, ge=1, description="and at least this many distinctive n-grams")
    boilerplate_min_df: int = Field(
        default=_D.boilerplate_min_df, ge=2, description="an n-gram in this many unrelated benchmark problems is boilerplate"
    )
    corpus_sample: int = Field(
        default=DEFAULT_CORPUS_SAMPLE, ge=0, description="first N problems of a partition to learn its boilerplate (0 = off)"
    )
    corpus_min_df: int = Field(default=_D.corpus_min_df, ge=2, description="corpus boilerplate: at least this many problems")
    corpus_min_share: float = Field(
        default=_D.corpus_min_share, ge=0, le=1, description="corpus boilerplate: and at least this share of the sample"
    )
    min_short_tokens: int = Field(
        default=_D.min_short_tokens, ge=1, description="a benchmark problem shorter than ngram matches by containment"
    )
    drop_duplicates: bool = Field(
        default=True, description="drop a trace with the same problem and thinking as an earlier one (duplicate_trace)"
    )

    def settings(self) -> DecontamSettings:
        return DecontamSettings(
            ngram=self.ngram, threshold=self.threshold, min_shared=self.min_shared,
            boilerplate_min_df=self.boilerplate_min_df, corpus_min_df=self.corpus_min_df,
            corpus_min_share=self.corpus_min_share, min_short_tokens=self.min_short_tokens,
        )

    def spec(self, benchmarks: BenchmarksResource) -> DecontamSpec:
        return DecontamSpec(
            benchmarks=benchmarks.specs(), settings=self.settings(), drop_duplicates=self.drop_duplicates,
            corpus_sample=self.corpus_sample,
        )
