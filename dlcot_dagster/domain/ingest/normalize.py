"""Map one source record (a dict) to the normalized fields, or explain why not.

Splits the model's text into ``thinking`` and ``final_response`` for every
layout seen in public dumps:

* ``<think>…</think>`` then the answer (the opening tag may be missing);
* a reasoning field plus an answer field;
* thinking whose tags were stripped, ending in a ``**Final Answer**`` tail;
* ``<|begin_of_thought|>…<|end_of_thought|><|begin_of_solution|>…<|end_of_solution|>``;
* chat ``messages`` lists (the assistant turn, optionally with ``reasoning_content``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .schema import Layout, RejectReason
from .sources import (
    ANSWER_TEXT_FIELDS,
    ID_FIELDS,
    MESSAGES_FIELDS,
    PROBLEM_FIELDS,
    REFERENCE_FIELDS,
    THINKING_FIELDS,
    IdScope,
    LayoutHint,
    SourceSpec,
    find_field,
    find_response_field,
)

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
BOT, EOT = "<|begin_of_thought|>", "<|end_of_thought|>"
BOS, EOS = "<|begin_of_solution|>", "<|end_of_solution|>"
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


def _as_text(value: Any, field: str, *, join_lists: bool = False) -> str | None:
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
            return _as_text(items[0], field)
        parts = [_as_text(v, field) for v in items]
        return ", ".join(p for p in parts if p)
    raise RecordError(RejectReason.WRONG_TYPE, f"expected text, got {type(value).__name__}", field)


def _require_text(obj: dict, spec_name: str | None, candidates: tuple[str, ...], what: str, **kw) -> str:
    name, value = find_field(obj, spec_name, candidates)
    if name is None or value is None:
        expected = spec_name or " / ".join(candidates[:6])
        raise RecordError(RejectReason.MISSING_FIELD, f"no {what} field (looked for {expected})", spec_name or what)
    text = _as_text(value, name, **kw)
    if text is None or not text.strip():
        raise RecordError(RejectReason.EMPTY_FIELD, f"{what} is empty", name)
    return text


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


def _from_messages(messages: Any, field: str) -> tuple[str | None, str]:
    """(first user turn, assistant text) from a chat messages list."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise RecordError(RejectReason.WRONG_TYPE, "messages must be a non-empty list of {role, content}", field)
    user = None
    assistant_parts: list[str] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise RecordError(RejectReason.WRONG_TYPE, f"message {i} is not an object", f"{field}[{i}]")
        role = str(m.get("role") or m.get("from") or "").lower()
        content = m.get("content", m.get("value"))
        content = _as_text(content, f"{field}[{i}].content") or ""
        if role in ("user", "human") and user is None:
            user = content
        elif role in ("assistant", "gpt", "model"):
            reasoning = m.get("reasoning_content") or m.get("reasoning") or m.get("thinking")
            if reasoning:
                content = f"{THINK_OPEN}{_as_text(reasoning, f'{field}[{i}].reasoning_content')}{THINK_CLOSE}{content}"
            assistant_parts.append(content)
    if not assistant_parts:
        raise RecordError(RejectReason.MISSING_FIELD, "messages contain no assistant turn", field)
    return user, assistant_parts[-1]


def normalize_record(obj: Any, spec: SourceSpec) -> Normalized:
    """Normalize one parsed record; raises ``RecordError`` naming the field at fault."""
    if not isinstance(obj, dict):
        raise RecordError(RejectReason.NOT_AN_OBJECT, f"expected a JSON object, got {type(obj).__name__}")

    id_name, id_value = find_field(obj, spec.id, ID_FIELDS)
    raw_id = None
    if id_name is not None and id_value is not None:
        if isinstance(id_value, (dict, list)):
            raise RecordError(RejectReason.WRONG_TYPE, "id must be a string or number", id_name)
        raw_id = str(id_value).strip() or None

    messages_name, messages = find_field(obj, spec.messages, MESSAGES_FIELDS)
    use_messages = spec.layout == LayoutHint.MESSAGES or (
        spec.layout == LayoutHint.AUTO and messages_name is not None and messages is not None
    )
    msg_problem = None
    if use_messages:
        if messages is None:
            raise RecordError(RejectReason.MISSING_FIELD, "no messages field", spec.messages or "messages")
        msg_problem, assistant = _from_messages(messages, messages_name or "messages")
        split = split_thinking(assistant, LayoutHint.AUTO)
        layout = Layout.MESSAGES
        thinking, final, closed = split.thinking, split.final_response, split.closed
    else:
        thinking_name, thinking_value = find_field(obj, spec.thinking, THINKING_FIELDS)
        separate = spec.layout == LayoutHint.SEPARATE_FIELDS or (
            spec.layout == LayoutHint.AUTO and thinking_name is not None and _as_text(thinking_value, thinking_name)
        )
        if separate:
            thinking = _as_text(thinking_value, thinking_name or "thinking")
            if thinking is None or not thinking.strip():
                raise RecordError(RejectReason.EMPTY_FIELD, "thinking is empty", thinking_name or "thinking")
            ans_name, ans_value = find_field(obj, spec.response, ANSWER_TEXT_FIELDS)
            final = _as_text(ans_value, ans_name) if ans_name else None
            if final and (THINK_CLOSE in final or EOT in final):
                final = split_thinking(final).final_response
            final = final.strip() if final and final.strip() else None
            layout, closed = Layout.SEPARATE_FIELDS, True
        else:
            resp_name, resp_value = find_response_field(obj, spec.response)
            if resp_name is None or resp_value is None:
                expected = spec.response or "full_response / response / output / solution / messages"
                raise RecordError(
                    RejectReason.MISSING_FIELD,
                    f"no thinking or response field (looked for {expected})",
                    spec.response or "thinking",
                )
            text = _as_text(resp_value, resp_name)
            if text is None or not text.strip():
                raise RecordError(RejectReason.EMPTY_FIELD, "response is empty", resp_name)
            split = split_thinking(text, spec.layout)
            if split.layout == Layout.PLAIN and thinking_name is not None:
                # the dump has a reasoning field, left empty, and the response carries no closing
                # marker: the model never left its (template-opened) thinking block
                split = Split(text, None, Layout.THINK_TAGS, False)
            thinking, final, layout, closed = split.thinking, split.final_response, split.layout, split.closed
        if not thinking.strip():
            raise RecordError(RejectReason.EMPTY_FIELD, "thinking is empty", "thinking")

    if msg_problem is not None and spec.problem is None and not any(k in obj for k in PROBLEM_FIELDS):
        if not msg_problem.strip():
            raise RecordError(RejectReason.EMPTY_FIELD, "user turn is empty", "messages")
        problem = msg_problem
    else:
        problem = _require_text(obj, spec.problem, PROBLEM_FIELDS, "problem")
    reference = _require_text(obj, spec.reference_answer, REFERENCE_FIELDS, "reference_answer", join_lists=True)
    if not thinking.strip():
        raise RecordError(RejectReason.EMPTY_FIELD, "thinking is empty", "thinking")

    for name, value in (
        (id_name, raw_id),
        ("problem", problem),
        ("reference_answer", reference),
        ("thinking", thinking),
        ("response", final),
    ):
        if value is not None and _SURROGATE_RE.search(value):
            raise RecordError(
                RejectReason.UNDECODABLE_BYTES, "text contains a lone UTF-16 surrogate (not encodable as UTF-8)", name
            )

    return Normalized(
        raw_id=raw_id,
        problem=problem,
        reference_answer=reference.strip(),
        thinking=thinking,
        final_response=final,
        layout=layout,
        thinking_closed=closed,
    )


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
