import dagster as dg
from pydantic import Field

from ...domain.answers import AnswerChecker
from ...domain.dlcot import DLCoTPolicy, RulesEngine


class DLCoTEngineResource(dg.ConfigurableResource):
    """The DLCoT engine used by every stage of a run, so policy and thresholds stay consistent."""

    policy: str = Field(default="default", description="default | first_correct_only | none")
    answer_timeout_s: float = Field(default=2.0, description="time box of one answer comparison")

    def engine(self) -> RulesEngine:
        return RulesEngine(DLCoTPolicy.preset(self.policy), AnswerChecker(timeout_s=self.answer_timeout_s))
