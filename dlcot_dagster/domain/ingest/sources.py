"""Per-source field mapping: which field of a teacher dump holds what.

A ``SourceSpec`` names the fields (dotted paths reach into nested objects,
e.g. ``metadata.uid``). Every field left unset is auto-detected from a list of
names seen in public dumps, so a new teacher dump usually needs no spec at
all, and never needs code. A spec is loaded from YAML, typically a
``dlcot_source.yaml`` file placed in the teacher's landing folder::

    problem: Instruction
    reference_answer: Correct Answer
    response: "deepseek-reasoner (response)"
    id_scope: teacher
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

ID_FIELDS = ("id", "idx", "item_id", "unique_id", "uid", "uuid", "question_id", "Question ID", "problem_id", "qid")
PROBLEM_FIELDS = ("problem", "question", "prompt", "Instruction", "instruction", "query", "input")
REFERENCE_FIELDS = (
    "gold_answer",
    "ground_truth",
    "reference_answer",
    "gt",
    "correct_answer",
    "Correct Answer",
    "final_answer",
    "expected_answer",
    "answer",
    "target",
)
# reference fields looked up inside nested dicts (per-turn `info` of AM-*, verl's `reward_model`, `metadata`)
NESTED_REFERENCE_FIELDS = REFERENCE_FIELDS + ("ref_answer", "ground_truth_answer")
NESTED_INFO_FIELDS = ("info", "metadata", "meta", "extra_info", "reward_model", "extra")
# a worked reference solution: its final statement (\boxed{} ...) is the reference when no answer field is given
WORKED_SOLUTION_FIELDS = ("ground_truth_solution", "reference_solution", "gold_solution", "official_solution", "solution")
# a field that holds only the reasoning
THINKING_FIELDS = (
    "reasoning",
    "reasoning_content",
    "thinking",
    "reasoning_trace",
    "thoughts",
    "thought",
    "thinking_trajectories",
    "thinking_trajectory",
)
# the final write-up, when the reasoning is in a field of its own (the model's, before a reference `solution`)
ANSWER_TEXT_FIELDS = ("final_response", "answer_text", "attempt", "solution", "response", "output", "completion")
# one text holding reasoning (tagged or not) and possibly the answer after it
RESPONSE_FIELDS = (
    "full_response",
    "response",
    "generated_solution",
    "generated_text",
    "generation",
    "output",
    "completion",
    "model_output",
    "code",
    "text",
    "solution",
)
MESSAGES_FIELDS = ("messages", "conversation", "conversations", "chat")
# a list holding several generations of the same problem (one trace each, id <row id>#<k>)
GENERATION_LIST_FIELDS = ("generations", "generated_responses", "responses", "completions", "outputs", "samples")
# per-generation flags: lists aligned with the generations, or scalars for a one-trace row
LABEL_FIELDS = ("correctness_math_verify", "correctness_llama", "correctness", "is_correct", "correct", "score")
FINISH_FIELDS = ("finish_reasons", "finish_reason", "stop_reason")
COMPLETE_FIELDS = ("is_reasoning_complete", "reasoning_complete", "is_complete")


class IdScope(str, Enum):
    FILE = "file"  # ids are unique within one file: id = "<file stem>/<raw id>"
    TEACHER = "teacher"  # ids are unique across the teacher's files: id = raw id


class LayoutHint(str, Enum):
    AUTO = "auto"
    THINK_TAGS = "think_tags"
    SEPARATE_FIELDS = "separate_fields"
    FINAL_ANSWER_TAIL = "final_answer_tail"
    BEGIN_OF_THOUGHT = "begin_of_thought"
    MESSAGES = "messages"
    PLAIN = "plain"


class TeacherColumns(BaseModel):
    """The columns of one teacher in a row that holds several teachers' traces (s1K-1.1: ``deepseek_*``)."""

    model_config = ConfigDict(extra="forbid")

    thinking: str | None = Field(default=None, description="the teacher's reasoning column")
    response: str | None = Field(default=None, description="its final write-up (or one text with think tags)")
    label: str | None = Field(default=None, description="the dataset's correctness label of this teacher's trace")


class ProblemsFile(BaseModel):
    """A problems file with reference answers, joined to traces that carry none (reference source ``joined``).

    The field mapping is the benchmark files' (:mod:`..students.benchmarks`): ``name`` picks a built-in mapping
    (``math500``, ``aime24``, ``gsm8k``, ...), the ``*_field`` keys override it."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="JSONL / JSON / Parquet; relative paths are relative to the teacher folder")
    name: str = Field(default="problems", description="a built-in benchmark mapping, or any label")
    problem_field: str | None = None
    answer_field: str | None = None
    id_field: str | None = None
    answer_transform: str | None = Field(default=None, description="none | gsm8k | first")
    match: str = Field(default="auto", pattern="^(auto|id|problem)$", description="auto: id first, then problem text")


class SourceSpec(BaseModel):
    """Field mapping for one teacher dump. Unset fields are auto-detected."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    problem: str | None = None
    reference_answer: str | None = None
    thinking: str | None = Field(default=None, description="a field holding only the reasoning")
    response: str | None = Field(
        default=None,
        description="the model's text: reasoning with tags, or the final write-up when `thinking` is set",
    )
    messages: str | None = Field(default=None, description="a chat messages list")
    layout: LayoutHint = LayoutHint.AUTO
    id_scope: IdScope = IdScope.FILE
    tokenizer: str | None = Field(default=None, description="tokenizer for this teacher (default: the resource's)")
    generations: str | None = Field(default=None, description="a list of generations of the same problem")
    teachers: dict[str, TeacherColumns] | None = Field(
        default=None,
        description="column groups of several teachers in one row: each becomes the partition <folder>:<name>",
    )
    group: str | None = Field(
        default=None, description="the teacher column group to ingest (set by the landing zone for <folder>:<name>)"
    )
    problems: ProblemsFile | None = Field(default=None, description="reference answers to join (source `joined`)")
    require_reference: bool = Field(
        default=False, description="reject traces whose only reference would be their own answer (`no_reference`)"
    )
    majority_k: int = Field(default=2, ge=2, description="generations of a problem needed for a `majority` reference")
    reference_sources: list[str] = Field(
        default_factory=lambda: ["given", "extracted", "joined", "majority", "self"],
        description="the resolution order; leave a source out to disable it",
    )

    @field_validator("reference_sources")
    @classmethod
    def _known_sources(cls, v: list[str]) -> list[str]:
        known = ("given", "extracted", "joined", "majority", "self")
        bad = [x for x in v if x not in known]
        if bad:
            raise ValueError(f"unknown reference source(s) {bad}: use {', '.join(known)}")
        return [x for x in known if x in v]  # the order is fixed

    @classmethod
    def from_yaml(cls, path: str | Path, resolve_paths: bool = True) -> "SourceSpec":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read source spec: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a source spec must be a mapping of field names, got {type(data).__name__}")
        try:
            spec = cls.model_validate(data)
        except Exception as exc:
            raise ValueError(f"{path}: invalid source spec: {exc}") from exc
        if resolve_paths and spec.problems is not None and not Path(spec.problems.path).expanduser().is_absolute():
            # a problems file is named relative to the spec's folder (the teacher folder)
            problems = spec.problems.model_copy(update={"path": str(path.parent / spec.problems.path)})
            spec = spec.model_copy(update={"problems": problems})
        return spec


MISSING = _MISSING = object()  # get_path: the path is absent (a present null is None)


def get_path(obj: dict, path: str) -> Any:
    """Look up ``path`` in ``obj``: the exact key first, then a dotted path. ``_MISSING`` if absent."""
    if path in obj:
        return obj[path]
    cur: Any = obj
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


def find_field(obj: dict, explicit: str | None, candidates: tuple[str, ...]) -> tuple[str | None, Any]:
    """(field name, value) for the first present candidate; an explicit name wins and is never guessed."""
    if explicit is not None:
        value = get_path(obj, explicit)
        return (explicit, None) if value is _MISSING else (explicit, value)
    for name in candidates:
        if name in obj and obj[name] is not None:
            return name, obj[name]
    return None, None


def find_response_field(obj: dict, explicit: str | None) -> tuple[str | None, Any]:
    name, value = find_field(obj, explicit, RESPONSE_FIELDS)
    if name is None and explicit is None:
        # dumps named after the model, e.g. "deepseek-reasoner (response)"
        for key, val in obj.items():
            if "response" in key.lower() and val is not None:
                return key, val
    return name, value
