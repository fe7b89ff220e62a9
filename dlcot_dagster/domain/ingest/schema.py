"""The one normalized schema every teacher dump is mapped into.

``TraceRecord`` (pydantic) and ``TRACE_SCHEMA`` (Polars) describe the same
row; ``RejectRecord`` / ``REJECT_SCHEMA`` describe a row of the rejects table.
Every input record ends up in exactly one of the two tables.
"""

from __future__ import annotations

from enum import Enum

import polars as pl
from pydantic import BaseModel, ConfigDict, Field


class Layout(str, Enum):
    """How the thinking was found inside a source record."""

    THINK_TAGS = "think_tags"  # <think>…</think> then the answer (opening tag optional)
    SEPARATE_FIELDS = "separate_fields"  # a reasoning field and an answer field
    FINAL_ANSWER_TAIL = "final_answer_tail"  # tags already stripped, ends in **Final Answer**
    BEGIN_OF_THOUGHT = "begin_of_thought"  # <|begin_of_thought|>…<|end_of_thought|><|begin_of_solution|>…
    MESSAGES = "messages"  # chat messages list
    PLAIN = "plain"  # one text, no markers: all of it is the reasoning


class RejectReason(str, Enum):
    UNREADABLE_FILE = "unreadable_file"  # I/O error, binary content, not JSON at all
    EMPTY_FILE = "empty_file"
    UNDECODABLE_BYTES = "undecodable_bytes"  # a line that is not valid UTF-8
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    EMPTY_FIELD = "empty_field"
    WRONG_TYPE = "wrong_type"
    DUPLICATE_ID = "duplicate_id"
    TOO_MANY_TOKENS = "too_many_tokens"
    TIMEOUT = "timeout"  # normalizing the record ran past the per-record time budget
    NO_THINKING = "no_thinking"  # reasoning off, or an unmarked answer where the layout marks its thinking
    NO_REFERENCE = "no_reference"  # no reference answer could be resolved (or only `self`, with require_reference)


class ReferenceSource(str, Enum):
    """Where a trace's ``reference_answer`` came from, in the order they are tried."""

    GIVEN = "given"  # a reference-answer field of the record
    EXTRACTED = "extracted"  # the final statement (\\boxed{} ...) of a worked reference solution in the record
    JOINED = "joined"  # a problems file named in the source spec, matched by id or normalized problem text
    MAJORITY = "majority"  # the most common final answer of >= k generations of the same problem
    SELF = "self"  # the trace's own final answer: correctness checks then test only self-consistency


REFERENCE_SOURCES = tuple(s.value for s in ReferenceSource)


class TraceRecord(BaseModel):
    """One usable teacher trace."""

    model_config = ConfigDict(frozen=True)

    id: str
    teacher: str
    problem: str
    reference_answer: str
    thinking: str = Field(description="the long chain of thought, without think tags")
    final_response: str | None = Field(default=None, description="text after the thinking, if any")
    source_file: str
    source_line: int = Field(description="1-based line (JSONL) or record number (JSON list, Parquet)")
    layout: Layout
    thinking_closed: bool = Field(description="false when the thinking block was never closed (truncated)")
    problem_tokens: int = 0
    thinking_tokens: int = 0
    response_tokens: int = 0
    raw_tokens: int = Field(default=0, description="thinking_tokens + response_tokens")
    reference_source: str | None = Field(
        default=ReferenceSource.GIVEN.value,
        description="given | extracted | joined | majority | self (None only while ingestion has not resolved it)",
    )
    generation: int | None = Field(default=None, description="k of a row with several generations (id <row id>#<k>)")
    source_label: bool | None = Field(default=None, description="the dataset's own correctness label of this trace")
    finish_reason: str | None = Field(default=None, description="the dataset's finish reason of this generation")
    reasoning_complete: bool | None = Field(default=None, description="the dataset's own completeness flag")
    source_format: str | None = Field(default=None, description="the detected dataset layout, e.g. openr1, sharegpt")


class RejectRecord(BaseModel):
    """One input record (or whole file) that could not be used, and why."""

    model_config = ConfigDict(frozen=True)

    teacher: str
    source_file: str
    source_line: int = Field(description="0 when the whole file is rejected")
    record_id: str | None = None
    reason: RejectReason
    field: str | None = None
    detail: str
    excerpt: str | None = None
    generation: int | None = None

    def message(self) -> str:
        where = f"{self.source_file}:{self.source_line}" if self.source_line else self.source_file
        rec = f" record {self.record_id!r}" if self.record_id else ""
        if self.generation is not None:
            rec += f" generation {self.generation}"
        fld = f" field {self.field!r}" if self.field else ""
        return f"{where}{rec}{fld}: {self.reason.value}: {self.detail}"


TRACE_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),
    "teacher": pl.String(),
    "problem": pl.String(),
    "reference_answer": pl.String(),
    "thinking": pl.String(),
    "final_response": pl.String(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),
    "layout": pl.String(),
    "thinking_closed": pl.Boolean(),
    "problem_tokens": pl.Int64(),
    "thinking_tokens": pl.Int64(),
    "response_tokens": pl.Int64(),
    "raw_tokens": pl.Int64(),
    "reference_source": pl.String(),
    "generation": pl.Int64(),
    "source_label": pl.Boolean(),
    "finish_reason": pl.String(),
    "reasoning_complete": pl.Boolean(),
    "source_format": pl.String(),
}

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "teacher": pl.String(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),
    "record_id": pl.String(),
    "reason": pl.String(),
    "field": pl.String(),
    "detail": pl.String(),
    "excerpt": pl.String(),
    "generation": pl.Int64(),
}

assert list(TRACE_SCHEMA) == list(TraceRecord.model_fields), "TRACE_SCHEMA out of sync with TraceRecord"
assert list(REJECT_SCHEMA) == list(RejectRecord.model_fields), "REJECT_SCHEMA out of sync with RejectRecord"


def _row(model: BaseModel) -> dict:
    row = model.model_dump()
    for k, v in row.items():
        if isinstance(v, Enum):
            row[k] = v.value
    return row


def traces_frame(records: list[TraceRecord]) -> pl.DataFrame:
    return pl.DataFrame([_row(r) for r in records], schema=TRACE_SCHEMA)


def rejects_frame(records: list[RejectRecord]) -> pl.DataFrame:
    return pl.DataFrame([_row(r) for r in records], schema=REJECT_SCHEMA)
