"""Configuration of the DLCoT engine: the pruning policy and the rule thresholds.

Policies
--------
``default``
    Keep the *trunk*: every distinct approach (first member of each cluster)
    up to and including the first correct solution (or check). After it,
    keep one member of each verification cluster, drop repeats
    (``redundant_repeat_of:<idx>``), checks that reach a wrong answer
    (``incorrect_check``), content-free checks (``empty_check``), the cut-off
    last check of an unclosed thinking (``truncated_tail``), and, when the
    model's own conclusion is wrong, the checks that drift towards it
    (``drift_to_incorrect_conclusion``). Retractions are removed and joins
    repaired (see :mod:`.correct`).
``first_correct_only``
    The shortest trunk: understanding + the first correct solution +
    conclusion. Earlier solutions are dropped (``incorrect_solution`` /
    ``incomplete_solution``), later checks too (``after_first_correct``).
``none``
    Keep every segment and every character (baseline). The sample-level
    filter still applies (the final answer must match the reference), so
    answer preservation stays 100 % on kept samples under every policy.

Parts other than solutions/checks
---------------------------------
* Question restatement is dropped by ``default``/``first_correct_only``
  (``question_restatement``): the problem is already the user turn of the SFT
  record, and DLCoT found the restatement to carry no reasoning. ``none``
  keeps it. Flip ``keep_restatement`` to keep it.
* Problem understanding and the conclusion are always kept, as in the paper
  (the conclusion carries the final answer; understanding frames the trunk),
  except a conclusion whose answer is wrong or cannot be checked
  (``incorrect_conclusion`` / ``unverified_conclusion``): the trunk's correct
  answer then closes the SFT record.
* Samples: every policy drops a sample without any correct solution/check
  (``no_correct_solution``; ``no_answer_found`` when nothing states an
  answer) and a sample whose final answer is not verified equivalent to the
  reference (``final_answer_not_equivalent`` / ``final_answer_unverified``).
  ``require_closed_thinking`` additionally drops truncated traces.
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PruningMode(str, Enum):
    DEFAULT = "default"
    FIRST_CORRECT_ONLY = "first_correct_only"
    NONE = "none"


class DLCoTPolicy(BaseModel):
    """What to keep. Build presets with :meth:`preset`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: PruningMode = PruningMode.DEFAULT
    keep_restatement: bool = False
    keep_understanding: bool = True
    keep_conclusion: bool = True
    drop_incorrect_checks: bool = True
    remove_retractions: bool = True
    #: remove a computation that a later kept line contradicts and replaces (see error_states.py)
    remove_error_states: bool = True
    fix_joins: bool = True
    require_correct_solution: bool = True
    require_closed_thinking: bool = False

    @classmethod
    def preset(cls, name: str | PruningMode) -> "DLCoTPolicy":
        mode = PruningMode(name)
        if mode is PruningMode.NONE:
            return cls(
                mode=mode,
                keep_restatement=True,
                drop_incorrect_checks=False,
                remove_retractions=False,
                remove_error_states=False,
                fix_joins=False,
            )
        return cls(mode=mode)

    @property
    def name(self) -> str:
        base = self.mode.value
        if self == DLCoTPolicy.preset(self.mode):
            return base
        return f"{base}+custom"


class SegmenterConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: detect answers stated without an answer phrase ("so m + n = 841") when they match the reference
    implicit_answers: bool = True
    #: a unit is a restatement when at least this share of its content words occur in the problem
    restatement_containment: float = 0.5
    restatement_max_units: int = 3
    #: understanding: at most this share of the text before the first answer
    understanding_max_share: float = 0.35
    #: ignore explicit answer statements inside a hedged sentence ("maybe the answer is 5?")
    skip_hedged_answers: bool = True
    #: longest candidate value of an implicit answer, in characters
    implicit_max_chars: int = 80
    #: at most this many distinct implicit candidate values are sent to the checker per trace
    implicit_max_checks: int = 24
    #: multiple-choice problems: commitments to an option by letter or by its text count as answers
    choice_answers: bool = True


class ClusterConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: ``evidence``: repeats by method evidence (values, expressions, techniques; see method.py) and verbatim loops;
    #: ``shingles``: the older measure (same answer and word 3-shingle Jaccard >= jaccard_threshold only)
    method: Literal["evidence", "shingles"] = "evidence"
    #: a segment whose share of unseen method evidence is below this repeats an earlier one (evidence method)
    novelty_threshold: float = 0.55
    #: a check with less evidence weight than this brings nothing new (evidence method)
    min_evidence: float = 1.5
    shingle_k: int = 3
    jaccard_threshold: float = 0.5
    sketch_k: int = 8
    max_candidates: int = 64


class CorrectorConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: also treat a bare "Wait, no" / "No, wait" as a retraction of the sentence before (see correct.py)
    weak_retractions: bool = False
    #: longest retraction sentence removed whole (longer ones lose only the retraction clause)
    max_retraction_sentence_chars: int = 160
    #: the retracted claim (sentence before the retraction) is removed only if at most this long
    max_retracted_chars: int = 400
    #: back-references are looked for in this many sentences after a join
    backref_window_sentences: int = 2
    #: and such a sentence is dropped whole when at most this long (else only the phrase goes)
    max_backref_sentence_chars: int = 200


class EngineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    segmenter: SegmenterConfig = Field(default_factory=SegmenterConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    corrector: CorrectorConfig = Field(default_factory=CorrectorConfig)


def config_hash(policy: DLCoTPolicy, config: EngineConfig | None = None, engine_version: str | None = None) -> str:
    """Stable short hash of (engine version, policy, config): use as a Dagster ``code_version``."""
    from .engine import ENGINE_VERSION

    payload = {
        "engine_version": engine_version or ENGINE_VERSION,
        "policy": policy.model_dump(mode="json"),
        "config": (config or EngineConfig()).model_dump(mode="json"),
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
