from typing import Literal

import dagster as dg
from pydantic import Field

from ...domain.answers import AnswerChecker
from ...domain.dlcot import DLCoTPolicy, RulesEngine
from ...domain.llm import LLM_STEPS, build_llm_engine
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

    def engine(self) -> RulesEngine:
        policy = DLCoTPolicy.preset(self.policy)
        checker = AnswerChecker(timeout_s=self.answer_timeout_s)
        if self.engine_kind == "llm":
            return build_llm_engine(
                self.llm.client(), policy, checker, steps=self.llm_steps, step_config=self.llm.step_config()
            )
        return RulesEngine(policy, checker)
