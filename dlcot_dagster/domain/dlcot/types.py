"""Data types of the DLCoT engine (pydantic v2, JSON-serializable, deterministic)."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SegmentKind(str, Enum):
    QUESTION_RESTATEMENT = "question_restatement"
    PROBLEM_UNDERSTANDING = "problem_understanding"
    SOLUTION = "solution"
    VERIFICATION = "verification"
    CONCLUSION = "conclusion"


class Label(str, Enum):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    INCOMPLETE = "incomplete"


class SampleStatus(str, Enum):
    KEPT = "kept"
    DROPPED = "dropped"


class TraceInput(BaseModel):
    """The plain fields of a normalized trace record that the engine reads."""

    model_config = ConfigDict(frozen=True)

    id: str
    teacher: str = ""
    problem: str = ""
    reference_answer: str = ""
    thinking: str = ""
    final_response: str | None = None
    thinking_closed: bool = True

    @classmethod
    def of(cls, record: Any) -> "TraceInput":
        """Build from a ``TraceRecord``, any object with these attributes, or a mapping."""
        if isinstance(record, TraceInput):
            return record
        get = record.get if isinstance(record, dict) else lambda k, d=None: getattr(record, k, d)
        closed = get("thinking_closed", True)
        return cls(
            id=str(get("id", "")),
            teacher=str(get("teacher", "") or ""),
            problem=str(get("problem", "") or ""),
            reference_answer=str(get("reference_answer", "") or ""),
            thinking=str(get("thinking", "") or ""),
            final_response=get("final_response", None),
            thinking_closed=True if closed is None else bool(closed),
        )


class AnswerSpan(BaseModel):
    """An answer stated inside the thinking: ``text`` is the answer content, ``start``/``end`` the statement span."""

    model_config = ConfigDict(frozen=True)

    text: str
    start: int
    end: int
    kind: str = Field(description="boxed/final_answer/answer_is/hash/choice (explicit), or implicit / choice_value / implicit_step (a bare computation step)")
    explicit: bool = True


class Segment(BaseModel):
    """A character span ``thinking[start:end]`` of one of the five DLCoT kinds, with its annotations."""

    idx: int
    kind: SegmentKind
    start: int
    end: int
    cue: str | None = Field(default=None, description="cue class that opened the segment")
    answer: AnswerSpan | None = None
    answer_inherited: bool = Field(default=False, description="answer taken from the conclusion it leads to")
    label: Label | None = None
    label_reason: str | None = None
    cluster: int | None = Field(default=None, description="idx of the cluster's first member")
    similarity: float | None = Field(default=None, description="Jaccard with the cluster's first member")
    kept: bool | None = None
    drop_reason: str | None = None
    # set only by the LLM labeler; omitted from dumps when empty, so rule-engine output is unchanged
    error_spans: list["Span"] | None = Field(
        default=None,
        exclude_if=lambda v: not v,
        description="passages stating a wrong intermediate result (absolute offsets), from an LLM labeler",
    )

    @property
    def length(self) -> int:
        return self.end - self.start


class SegmentedTrace(BaseModel):
    """A record plus its segments; each pipeline step returns an annotated copy."""

    record: TraceInput
    segments: list[Segment]
    final_answer: AnswerSpan | None = Field(default=None, description="the last explicit answer of the thinking")
    status: SampleStatus | None = None
    reason: str | None = None

    def texts(self) -> list[str]:
        t = self.record.thinking
        return [t[s.start : s.end] for s in self.segments]


class Span(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: int
    end: int
    reason: str | None = None


class Edit(BaseModel):
    """A short connective edit: at original offset ``pos``, ``removed`` (original text) becomes ``inserted``."""

    model_config = ConfigDict(frozen=True)

    pos: int
    removed: str
    inserted: str
    reason: str


class DLCoTResult(BaseModel):
    """Outcome of the engine for one record."""

    id: str
    teacher: str
    engine_version: str
    config_hash: str
    policy: str
    status: SampleStatus
    reason: str | None = None
    reference_answer: str
    segments: list[Segment]
    kept_spans: list[Span] = Field(default_factory=list)
    removed_spans: list[Span] = Field(default_factory=list)
    edits: list[Edit] = Field(default_factory=list)
    corrected_thinking: str | None = None
    final_answer: str | None = None
    final_answer_source: str | None = Field(default=None, description="final_response | built | none")
    answer_equivalent: bool | None = None
    answer_check_reason: str | None = None
    final_text: str | None = Field(default=None, description="assistant text after </think>")
    messages: list[dict[str, str]] | None = None
    raw_chars: int = 0
    corrected_chars: int = 0
    checker_timeouts: int = Field(
        default=0, description="checker verdicts used for this record that timed out (output then depends on load)"
    )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace variation): byte-identical for identical results."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
