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
from pydantic import BaseModel, ConfigDict, Field

ID_FIELDS = ("id", "idx", "item_id", "unique_id", "uid", "question_id", "Question ID", "problem_id", "qid")
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
# a field that holds only the reasoning
THINKING_FIELDS = ("reasoning", "reasoning_content", "thinking", "reasoning_trace", "thoughts", "thought")
# the final write-up, when the reasoning is in a field of its own
ANSWER_TEXT_FIELDS = ("final_response", "answer_text", "solution", "response", "output", "completion")
# one text holding reasoning (tagged or not) and possibly the answer after it
RESPONSE_FIELDS = (
    "full_response",
    "response",
    "generated_text",
    "generation",
    "output",
    "completion",
    "model_output",
    "code",
    "generated_responses",
    "text",
    "solution",
)
MESSAGES_FIELDS = ("messages", "conversation", "conversations", "chat")


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

    @classmethod
    def from_yaml(cls, path: str | Path) -> "SourceSpec":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read source spec: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a source spec must be a mapping of field names, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except Exception as exc:
            raise ValueError(f"{path}: invalid source spec: {exc}") from exc


_MISSING = object()


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
