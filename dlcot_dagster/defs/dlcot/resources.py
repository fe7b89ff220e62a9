from typing import Literal

import dagster as dg
from pydantic import Field

from ...domain.answers import AnswerChecker
from ...domain.dlcot import DLCoTPolicy, RulesEngine
from ...domain.llm import LLM_STEPS, build_llm_engine
from ...domain.budget import DEFAULT_RECORD_BUDGET_S
from ...domain.stream import DEFAULT_BATCH_SIZE, BatchRunner, EngineSpec, choose_workers
from ..llm.resources import LLMConfig


class DLCoTEngineResource(dg.ConfigurableResource):
    """The DLCoT engine used by every stage of a run, so policy and thresholds stay consistent.

    ``engine: llm`` runs the steps named in ``llm_steps`` (segment, label, cluster, rewrite) with the LLM
    configured under ``llm`` (see :class:`~..llm.resources.LLMConfig`); every other step, and every record whose
    LLM result a fidelity guard rejects, uses the rules. Per run, e.g.::

        resources:
          dlcot_engine:
            config: {engine: llm, llm_steps: [segment, label], llm: {backend: openai, model: qwen72b}}
    """

    policy: str = Field(default="default", description="default | first_correct_only | none")
    answer_timeout_s: float = Field(default=2.0, description="time box of one answer comparison")
    engine_kind: Literal["rules", "llm"] = Field(
        default="rules", alias="engine", description="rules (deterministic) | llm (LLM-assisted steps, rules fallback)"
    )
    llm_steps: list[str] = Field(default_factory=lambda: list(LLM_STEPS), description="steps run by the LLM in llm mode")
    llm: LLMConfig = Field(default_factory=LLMConfig, description="the LLM of llm mode")
    record_budget_s: float | None = Field(
        default=DEFAULT_RECORD_BUDGET_S,
        description="per-record time budget in seconds (a slower record is dropped with reason timeout); 0 = off",
    )
    batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE, ge=1, description="rows per batch: peak memory grows with batch_size x workers"
    )
    workers: int = Field(
        default=0, ge=0, description="worker processes per stage (rules engine): 0 = one per core, 1 = no pool"
    )

    def engine(self) -> RulesEngine:
        if self.engine_kind == "llm":
            return build_llm_engine(
                self.llm.client(),
                DLCoTPolicy.preset(self.policy),
                AnswerChecker(timeout_s=self.answer_timeout_s),
                steps=self.llm_steps,
                step_config=self.llm.step_config(),
            )
        return self.spec().build_engine()  # the same recipe the worker processes use

    def spec(self, tokenizer: str | None = None, tokenizer_cache_dir: str | None = None, **kw) -> EngineSpec:
        return EngineSpec(
            policy=self.policy,
            answer_timeout_s=self.answer_timeout_s,
            tokenizer=tokenizer,
            tokenizer_cache_dir=tokenizer_cache_dir,
            record_budget_s=self.record_budget_s or None,
            **kw,
        )

    def runner(self, rows: int | None, counter=None, **kw) -> BatchRunner:
        """Runs a stage's batches: a process pool for the rules engine, this process for the LLM engine."""
        spec = self.spec(
            counter.spec if counter is not None else None,
            getattr(counter, "cache_dir", None),
            **kw,
        )
        if self.engine_kind == "llm":
            return BatchRunner(spec, 1, engine=self.engine(), counter=counter)
        workers = choose_workers(self.workers, rows, self.batch_size)
        return BatchRunner(spec, workers, counter=counter if workers == 1 else None)
