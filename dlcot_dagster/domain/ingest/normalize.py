"""Split one generation's text into ``thinking`` and ``final_response``, or explain why not.

Every layout seen in public dumps:

* ``<think>…</think>`` then the answer (the opening tag may be missing), the answer possibly wrapped in
  ``<answer>…</answer>`` (AM-*);
* a reasoning field plus an answer field;
* thinking whose tags were stripped, ending in a ``**Final Answer**`` tail;
* ``<|begin_of_thought|>…<|end_of_thought|><|begin_of_solution|>…<|end_of_solution|>``;
* chat ``messages`` lists (the assistant turn, optionally with ``reasoning_content``).

Which field is which (and how many generations a row holds) is :mod:`.formats`' job; :func:`normalize_record`
keeps the one-record, one-trace interface for callers that want it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .schema import Layout, RejectReason
from .sources import IdScope, LayoutHint, SourceSpec

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
BOT, EOT = "<|begin_of_thought|>", "<|end_of_thought|>"
BOS, EOS = "<|begin_of_solution|>", "<|end_of_solution|>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
FINAL_ANSWER_RE = re.compile(r"\*\*\s*Final\s+Answer\s*:?\s*\*\*", re.IGNORECASE)
# lone UTF-16 surrogates: valid in JSON ("\ud800") and in a Python str, but not encodable as UTF-8
# (Polars / Arrow / Parquet refuse them), so such a record is rejected like undecodable bytes
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class RecordError(Exception):
    """A record that cannot be used; carries the reject reason and the field at fault."""

    def __init__(self, reason: RejectReason, detail: str, field: str | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class Normalized:
    raw_id: str | None
    problem: str
    reference_answer: str
    thinking: str
    final_response: str | None
    layout: Layout
    thinking_closed: bool


@dataclass(frozen=True)
class Split:
    thinking: str
    final_response: str | None
    layout: Layout
    closed: bool


def as_text(value: Any, field: str, *, join_lists: bool = False) -> str | None:
    """A field value as text. Scalars become strings; a one-element list is unwrapped."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        items = [v for v in value if v is not None]
        if not items:
            return None
        if len(items) == 1 or not join_lists:
            return as_text(items[0], field)
        parts = [as_text(v, field) for v in items]
        return ", ".join(p for p in parts if p)
    raise RecordError(RejectReason.WRONG_TYPE, f"expected text, got {type(value).__name__}", field)


_as_text = as_text  # the former private name


def split_thinking(text: str, hint: LayoutHint = LayoutHint.AUTO) -> Split:
    """Split a model's text into (thinking, final response) and say how it was found."""
    if hint in (LayoutHint.AUTO, LayoutHint.BEGIN_OF_THOUGHT) and (BOT in text or EOT in text):
        start = text.find(BOT)
        body_start = start + len(BOT) if start >= 0 else 0
        end = text.find(EOT, body_start)
        if end < 0:
            return Split(text[body_start:].strip("\n"), None, Layout.BEGIN_OF_THOUGHT, False)
        rest = text[end + len(EOT):]
        sol_start = rest.find(BOS)
        if sol_start >= 0:
            rest = rest[sol_start + len(BOS):]
            sol_end = rest.find(EOS)
            if sol_end >= 0:
                rest = rest[:sol_end]
        final = rest.strip() or None
        return Split(text[body_start:end].strip("\n"), final, Layout.BEGIN_OF_THOUGHT, True)
    if hint in (LayoutHint.AUTO, LayoutHint.THINK_TAGS) and (THINK_OPEN in text or THINK_CLOSE in text):
        start = text.find(THINK_OPEN)
        body_start = start + len(THINK_OPEN) if start >= 0 else 0
        end = text.find(THINK_CLOSE, body_start)
        if end < 0:
            return Split(text[body_start:].strip("\n"), None, Layout.THINK_TAGS, False)
        final = text[end + len(THINK_CLOSE):].strip() or None
        return Split(text[body_start:end].strip("\n"), final, Layout.THINK_TAGS, True)
    if hint == LayoutHint.THINK_TAGS:
        # the chat template opened <think> and the model never closed it
        return Split(text, None, Layout.THINK_TAGS, False)
    if hint in (LayoutHint.AUTO, LayoutHint.FINAL_ANSWER_TAIL):
        matches = list(FINAL_ANSWER_RE.finditer(text))
        if matches:
            cut = matches[-1].start()
            thinking = text[:cut].rstrip()
            if thinking.strip():
                return Split(thinking, text[cut:].strip() or None, Layout.FINAL_ANSWER_TAIL, True)
    return Split(text, None, Layout.PLAIN, True)


def strip_answer_tags(final: str | None) -> str | None:
    """``<answer>…</answer>`` (AM-*) around a final response: the inside."""
    if not final or ANSWER_OPEN not in final[:64]:
        return final
    body = final[final.find(ANSWER_OPEN) + len(ANSWER_OPEN):]
    end = body.rfind(ANSWER_CLOSE)
    if end >= 0:
        body = body[:end]
    return body.strip() or None


def split_generation(gen, hint: LayoutHint, reasoning_off: bool = False) -> Split:
    """Thinking and final response of one :class:`.formats.Generation`; raises ``RecordError`` (the field named)."""
    if gen.error is not None:
        raise gen.error
    if gen.thinking_field is not None:  # a reasoning field next to a write-up
        thinking = gen.thinking
        if thinking is None or not thinking.strip():
            if reasoning_off:
                raise RecordError(RejectReason.NO_THINKING, "reasoning is off and the reasoning field is empty", gen.thinking_field)
            raise RecordError(RejectReason.EMPTY_FIELD, "thinking is empty", gen.thinking_field or "thinking")
        final = gen.response
        if final and (THINK_CLOSE in final or EOT in final):
            final = split_thinking(final).final_response
        final = strip_answer_tags(final.strip() if final and final.strip() else None)
        layout = Layout.MESSAGES if gen.from_messages else Layout.SEPARATE_FIELDS
        return Split(thinking, final, layout, True)
    text = gen.text
    if text is None or not text.strip():
        raise RecordError(RejectReason.EMPTY_FIELD, "response is empty", gen.text_field or "response")
    split = split_thinking(text, LayoutHint.AUTO if gen.from_messages else hint)
    if split.layout == Layout.PLAIN:
        if reasoning_off or gen.expects_markers:
            why = "reasoning is off" if reasoning_off else "the layout marks its thinking and this text has no marker"
            raise RecordError(RejectReason.NO_THINKING, f"no thinking: {why} (a direct answer, not a reasoning trace)",
                              gen.text_field or "response")
        if gen.empty_reasoning_field:
            # the dump has a reasoning field, left empty, and the response carries no closing
            # marker: the model never left its (template-opened) thinking block
            split = Split(text, None, Layout.THINK_TAGS, False)
    if not split.thinking.strip():
        if reasoning_off:
            raise RecordError(RejectReason.NO_THINKING, "reasoning is off: the thinking block is empty", gen.text_field or "thinking")
        raise RecordError(RejectReason.EMPTY_FIELD, "thinking is empty", "thinking")
    final = strip_answer_tags(split.final_response)
    layout = Layout.MESSAGES if gen.from_messages else split.layout
    return Split(split.thinking, final, layout, split.closed)


def check_surrogates(pairs) -> None:
    """Reject text with a lone UTF-16 surrogate (not encodable as UTF-8), naming the field."""
    for name, value in pairs:
        if value is not None and _SURROGATE_RE.search(value):
            raise RecordError(
                RejectReason.UNDECODABLE_BYTES, "text contains a lone UTF-16 surrogate (not encodable as UTF-8)", name
            )


def normalize_record(obj: Any, spec: SourceSpec) -> Normalized:
    """The first trace of one parsed record with a given reference; raises ``RecordError`` naming the field at fault.

    Ingestion itself (:mod:`.core`) handles every generation of a row and the other reference sources."""
    from .formats import analyze_row
    from .references import given_reference

    if not isinstance(obj, dict):
        raise RecordError(RejectReason.NOT_AN_OBJECT, f"expected a JSON object, got {type(obj).__name__}")
    row = analyze_row(obj, spec)
    gen = row.generations[0]
    split = split_generation(gen, spec.layout, row.reasoning_off)
    if row.problem_error is not None:
        raise row.problem_error
    ref = given_reference(row)
    if ref is None:
        raise RecordError(RejectReason.MISSING_FIELD, "no reference answer field", "reference_answer")
    check_surrogates([(row.id_field, row.raw_id), ("problem", row.problem), ("reference_answer", ref[0]),
                      ("thinking", split.thinking), ("response", split.final_response)])
    return Normalized(row.raw_id, row.problem, ref[0], split.thinking, split.final_response, split.layout, split.closed)


def clean_text(value: str | None) -> str | None:
    """``value`` with lone surrogates replaced, safe for a Polars / Parquet string column."""
    if value is None or not _SURROGATE_RE.search(value):
        return value
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def record_id(raw_id: str | None, file_stem: str, line: int, scope: IdScope) -> str:
    """The record's id inside its teacher partition."""
    base = raw_id if raw_id is not None else f"L{line}"
    if scope == IdScope.TEACHER and raw_id is not None:
        return raw_id
    return f"{file_stem}/{base}"
