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

    def message(self) -> str:
        where = f"{self.source_file}:{self.source_line}" if self.source_line else self.source_file
        rec = f" record {self.record_id!r}" if self.record_id else ""
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
