"""Dataset layouts: one source row -> its problem, its generations and where its reference may be.

The public long-CoT corpora are recognized by their field sets and value shapes, never by file names:

* one text per row with think tags or ``<|begin_of_thought|>`` (OpenMathReasoning ``generated_solution``,
  Nemotron ``output``, LIMO ``solution``, the shared dumps), or a reasoning field plus a write-up field
  (OpenThoughts ``metadata`` ``deepseek_reasoning`` / ``deepseek_solution``, s1K ``thinking_trajectories`` /
  ``attempt``);
* chat turns (``messages`` / ``conversations`` with ``role``/``content`` or ShareGPT ``from``/``value``,
  ``human``/``gpt``): Mixture-of-Thoughts, OpenThoughts-114k, Bespoke-Stratos, OpenThoughts3, Light-R1, AM-*;
  system turns are skipped (their prompts may quote ``<think>`` or ``<|begin_of_thought|>``);
* several generations per row: a list (OpenR1-Math ``generations``, with per-generation
  ``correctness_math_verify`` / ``is_reasoning_complete`` / ``finish_reasons``) or numbered columns
  (DeepMath ``r1_solution_1..3``): one trace each, ``k`` = 0-based position;
* several teachers per row: column groups ``<name>_thinking_trajectory`` / ``<name>_attempt`` /
  ``<name>_grade`` (s1K-1.1: ``deepseek``, ``gemini``), or ``teachers:`` in the spec; each group is a teacher
  partition ``<folder>:<name>``;
* references nested in dicts (AM-* per-turn ``info``, verl ``reward_model``, ``metadata``), also when the dict
  is a Python-repr or JSON string (s1K ``metadata``), parsed literally and size-capped, never evaluated.

:func:`analyze_row` does the work per row; what depends only on the row's key set (candidate fields, numbered
columns, teacher groups) is cached per key tuple, so rows of one file are analysed with a few dict lookups.
Nothing here imports dagster.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .normalize import RecordError, as_text
from .schema import RejectReason
from .sources import (
    ANSWER_TEXT_FIELDS,
    COMPLETE_FIELDS,
    FINISH_FIELDS,
    GENERATION_LIST_FIELDS,
    ID_FIELDS,
    LABEL_FIELDS,
    MESSAGES_FIELDS,
    NESTED_INFO_FIELDS,
    NESTED_REFERENCE_FIELDS,
    PROBLEM_FIELDS,
    REFERENCE_FIELDS,
    RESPONSE_FIELDS,
    THINKING_FIELDS,
    WORKED_SOLUTION_FIELDS,
    LayoutHint,
    MISSING,
    SourceSpec,
    TeacherColumns,
    find_field,
    find_response_field,
    get_path,
)

USER_ROLES = frozenset(("user", "human", "prompter"))
ASSISTANT_ROLES = frozenset(("assistant", "gpt", "model", "bot", "chatgpt"))
SYSTEM_ROLES = frozenset(("system", "developer"))

# numbered generation columns: r1_solution_1 (DeepMath), response_2, generation_3, ...
_NUMBERED_RE = re.compile(r"^(?:(?P<prefix>[A-Za-z0-9]+)_)?(?:solution|response|generation|output|completion|trace)_(?P<n>\d{1,3})$")
# teacher column groups: deepseek_thinking_trajectory (s1K-1.1), deepseek_reasoning (OpenThoughts metadata)
_GROUP_RE = re.compile(r"^(?P<g>[A-Za-z0-9][A-Za-z0-9.-]*)_(?:thinking_trajector(?:y|ies)|reasoning|reasoning_content|thinking)$")
_GROUP_RESPONSE = ("attempt", "solution", "response", "answer")
_GROUP_LABEL = ("grade", "is_correct", "correct", "correctness")
# Llama-3 chat template text in a string prompt (Nemotron v1 `input`)
_LLAMA_USER_RE = re.compile(r"<\|start_header_id\|>user<\|end_header_id\|>\s*(.*?)(?:<\|eot_id\|>|$)", re.S)
_SPECIAL_TOKEN_RE = re.compile(r"<\|(?:eot_id|end_of_text|begin_of_text|im_end|endoftext)\|>\s*$")
_REASONING_FLAG_RE = re.compile(r"detailed thinking (on|off)", re.I)
MAX_REPR_CHARS = 65_536  # a Python-repr / JSON string longer than this is not parsed for nested references


@dataclass
class Generation:
    """One trace of a row, before its text is split into thinking and final response."""

    k: int | None = None  # position among the row's generations; None for a one-trace row
    group: str | None = None  # teacher column group; None = the partition's teacher
    text: str | None = None  # one text with the thinking (tagged or not) and maybe the answer
    text_field: str | None = None
    thinking: str | None = None  # a separate reasoning field
    thinking_field: str | None = None
    response: str | None = None  # the final write-up next to a separate reasoning field
    response_field: str | None = None
    expects_markers: bool = False  # the layout marks its thinking: an unmarked text has none (no_thinking)
    from_messages: bool = False
    empty_reasoning_field: bool = False  # the dump has a reasoning field, left empty, next to this response text
    label: bool | None = None
    finish_reason: str | None = None
    complete: bool | None = None
    error: RecordError | None = None  # this generation alone is unusable


@dataclass
class Row:
    raw_id: str | None
    id_field: str | None
    problem: str | None
    problem_error: RecordError | None
    generations: list[Generation]
    format: str
    reasoning_off: bool = False
    # references: the declared top-level field (name, value, present-but-null), nested values, worked solutions
    given_field: str | None = None
    given_value: Any = None
    given_declared: bool = False
    nested_given: tuple[str, Any] | None = None
    worked: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Keys:
    """What the key tuple of a row says (cached per tuple)."""

    id_field: str | None
    problem_field: str | None
    messages_field: str | None
    generations_field: str | None
    numbered: tuple[str, ...]
    groups: tuple[tuple[str, str | None, str | None, str | None], ...]  # (name, thinking, response, label)
    thinking_field: str | None
    answer_field: str | None
    response_field: str | None
    reference_fields: tuple[str, ...]
    worked_fields: tuple[str, ...]
    info_fields: tuple[str, ...]
    label_field: str | None
    finish_field: str | None
    complete_field: str | None


_KEYS_CACHE: dict[tuple, _Keys] = {}


def _first(keys: set[str], candidates: tuple[str, ...]) -> str | None:
    for c in candidates:
        if c in keys:
            return c
    return None


def _keys_of(obj: dict) -> _Keys:
    key = tuple(obj)
    hit = _KEYS_CACHE.get(key)
    if hit is not None:
        return hit
    keys = set(key)
    numbered = sorted(
        (k for k in keys if _NUMBERED_RE.match(k)), key=lambda k: (k.rsplit("_", 1)[0], int(k.rsplit("_", 1)[1]))
    )
    # only one family of numbered columns (the one with the most members) counts as generations
    fams: dict[str, list[str]] = {}
    for k in numbered:
        fams.setdefault(k.rsplit("_", 1)[0], []).append(k)
    numbered_t = tuple(max(fams.values(), key=len)) if fams else ()
    groups = []
    for k in sorted(keys):
        m = _GROUP_RE.match(k)
        if not m:
            continue
        g = m.group("g")
        resp = next((f"{g}_{s}" for s in _GROUP_RESPONSE if f"{g}_{s}" in keys), None)
        label = next((f"{g}_{s}" for s in _GROUP_LABEL if f"{g}_{s}" in keys), None)
        groups.append((g, k, resp, label))
    out = _Keys(
        id_field=_first(keys, ID_FIELDS),
        problem_field=_first(keys, PROBLEM_FIELDS),
        messages_field=_first(keys, MESSAGES_FIELDS),
        generations_field=_first(keys, GENERATION_LIST_FIELDS),
        numbered=numbered_t,
        groups=tuple(groups),
        thinking_field=_first(keys, THINKING_FIELDS),
        answer_field=_first(keys, ANSWER_TEXT_FIELDS),
        response_field=_first(keys, RESPONSE_FIELDS),
        reference_fields=tuple(c for c in REFERENCE_FIELDS if c in keys),
        worked_fields=tuple(c for c in WORKED_SOLUTION_FIELDS if c in keys),
        info_fields=tuple(c for c in NESTED_INFO_FIELDS if c in keys),
        label_field=_first(keys, LABEL_FIELDS),
        finish_field=_first(keys, FINISH_FIELDS),
        complete_field=_first(keys, COMPLETE_FIELDS),
    )
    if len(_KEYS_CACHE) > 256:
        _KEYS_CACHE.clear()
    _KEYS_CACHE[key] = out
    return out


# --------------------------------------------------------------------------------------------- small helpers


def as_mapping(value: Any) -> dict | None:
    """A dict, or a string holding a JSON object or a Python-repr dict (parsed literally, size-capped)."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return None
    s = value.strip()
    if not (s.startswith("{") and s.endswith("}")) or len(s) > MAX_REPR_CHARS:
        return None
    try:
        out = json.loads(s)
    except (ValueError, RecursionError):
        try:
            out = ast.literal_eval(s)  # literals only: no names, calls or attribute access are evaluated
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    return out if isinstance(out, dict) else None


def label_value(value: Any) -> bool | None:
    """A dataset's correctness label as a bool: True/False, yes/no, correct/incorrect, 1/0; else None."""
    if isinstance(value, (list, tuple)):
        return label_value(value[0]) if len(value) == 1 else None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return True if value == 1 else False if value == 0 else None
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("yes", "y", "true", "correct", "right", "pass", "1", "1.0"):
            return True
        if v in ("no", "n", "false", "incorrect", "wrong", "fail", "0", "0.0"):
            return False
    return None


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, (list, tuple)):
        return _scalar_text(value[0]) if len(value) == 1 else None
    return value if isinstance(value, str) else None


def _flag_at(value: Any, k: int | None) -> Any:
    """Element ``k`` of a per-generation list, or the scalar itself for a one-trace row."""
    if isinstance(value, (list, tuple)):
        if k is None:
            return value[0] if len(value) == 1 else None
        return value[k] if 0 <= k < len(value) else None
    return value if k is None else None


def _has_text(obj: dict, name: str | None) -> bool:
    v = obj.get(name) if name else None
    return (bool(v) and not v.isspace()) if isinstance(v, str) else bool(v) and isinstance(v, (list, tuple))


def _is_flag(value: Any) -> bool:
    """``reasoning: on/off`` (Nemotron) is a switch, not a reasoning text."""
    return isinstance(value, str) and len(value) <= 8 and value.strip().lower() in ("on", "off")


def _item_text(item: Any, where: str) -> str | None:
    """A generation list element: a string, or a dict with the text (vLLM-style ``{"text": ...}``)."""
    if isinstance(item, dict):
        for k in ("text", "content", "response", "output", "generation"):
            if k in item:
                return as_text(item[k], f"{where}.{k}")
        raise RecordError(RejectReason.WRONG_TYPE, "a generation object has no text field", where)
    return as_text(item, where)


# --------------------------------------------------------------------------------------------- chat turns


@dataclass
class Turns:
    user: str | None
    assistant: str | None
    assistant_reasoning: str | None
    system: str | None
    infos: list[dict]


def read_turns(messages: Any, field_name: str) -> Turns:
    """The last assistant turn, the user turn before it, the system text and every per-turn ``info`` dict."""
    if not isinstance(messages, (list, tuple)) or not messages:
        raise RecordError(RejectReason.WRONG_TYPE, "messages must be a non-empty list of {role, content}", field_name)
    users: list[tuple[int, str]] = []
    last_assistant: tuple[int, str, str | None] | None = None
    system: list[str] = []
    infos: list[dict] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise RecordError(RejectReason.WRONG_TYPE, f"message {i} is not an object", f"{field_name}[{i}]")
        role = str(m.get("role") or m.get("from") or "").strip().lower()
        content = m.get("content", m.get("value"))
        content = as_text(content, f"{field_name}[{i}].content") or ""
        info = m.get("info")
        if info is not None:
            info = as_mapping(info)
            if info:
                infos.append(info)
        if role in USER_ROLES:
            users.append((i, content))
        elif role in ASSISTANT_ROLES:
            reasoning = m.get("reasoning_content") or m.get("reasoning") or m.get("thinking")
            if _is_flag(reasoning):
                reasoning = None
            last_assistant = (i, content, as_text(reasoning, f"{field_name}[{i}].reasoning_content") if reasoning else None)
        elif role in SYSTEM_ROLES:
            system.append(content)
    if last_assistant is None:  # a prompt (Nemotron `input`): its last user turn is the one to answer
        return Turns(users[-1][1] if users else None, None, None, "\n".join(system) or None, infos)
    before = [u for u in users if u[0] < last_assistant[0]]
    user = before[-1][1] if before else (users[0][1] if users else None)
    return Turns(user, last_assistant[1], last_assistant[2], "\n".join(system) or None, infos)


def _problem_from(value: Any, name: str) -> str | None:
    """A problem field's text; a messages list gives its user turn, a Llama-3 template string its user part."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        # a prompt as chat turns (Nemotron `input`, verl `prompt`): its last user turn is the one answered
        users = [t for t in value if str(t.get("role") or t.get("from") or "").strip().lower() in USER_ROLES]
        if not users:
            return None
        return as_text(users[-1].get("content", users[-1].get("value")), f"{name}[].content")
    text = as_text(value, name)
    if text and "<|start_header_id|>" in text:
        m = _LLAMA_USER_RE.search(text)
        if m:
            return m.group(1).strip()
    return text


def _strip_special(text: str) -> str:
    return _SPECIAL_TOKEN_RE.sub("", text) if text.endswith("|>") else text


# --------------------------------------------------------------------------------------------- the row


def analyze_row(obj: dict, spec: SourceSpec) -> Row:
    """Problem, generations and reference candidates of one record (a dict). Raises only for the whole row."""
    keys = _keys_of(obj)

    # id
    id_name = spec.id or keys.id_field
    raw_id = None
    if id_name is not None:
        id_value = get_path(obj, id_name) if spec.id else obj.get(id_name)
        if isinstance(id_value, (dict, list)):
            raise RecordError(RejectReason.WRONG_TYPE, "id must be a string or number", id_name)
        if id_value is not None and id_value is not MISSING:
            raw_id = str(id_value).strip() or None

    fmt = "generic"
    gens: list[Generation] = []
    turns: Turns | None = None
    reasoning_off = False
    used: set[str] = set()  # fields that hold the traces (never a worked reference solution)

    # several teachers per row
    groups = _groups(obj, keys, spec)
    if groups:
        fmt = "teacher_groups"
        if spec.group is not None:
            groups = [g for g in groups if g[0] == spec.group]
            if not groups:
                raise RecordError(
                    RejectReason.MISSING_FIELD, f"no columns of teacher {spec.group!r} in this row", f"{spec.group}_*"
                )
        for name, cols in groups:
            gens.append(_group_generation(obj, name, cols))
            used.update(c for c in (cols.thinking, cols.response) if c)

    # several generations per row: a list, or numbered columns
    if not gens:
        gen_field = spec.generations or keys.generations_field
        gen_value = get_path(obj, gen_field) if gen_field else None
        if (
            gen_field
            and isinstance(gen_value, (list, tuple))
            and gen_value
            # a one-element copy next to a reasoning field (aime2024 gemini `generated_responses`) is not a list
            # of generations: the reasoning field is the trace
            and (len(gen_value) > 1 or spec.generations or not _has_text(obj, keys.thinking_field))
        ):
            fmt = "openr1" if "correctness_math_verify" in obj or gen_field == "generations" else "generations"
            used.add(gen_field)
            for k, item in enumerate(gen_value):
                g = Generation(k=k, text_field=f"{gen_field}[{k}]", expects_markers=fmt == "openr1")
                try:
                    g.text = _item_text(item, g.text_field)
                except RecordError as err:
                    g.error = err
                gens.append(g)
        elif keys.numbered and spec.response is None and spec.thinking is None and spec.messages is None:
            fmt = "numbered_generations"
            for k, col in enumerate(keys.numbered):  # k: the column's position, also when an earlier one is null
                used.add(col)
                if obj.get(col) is None:
                    continue  # a missing sample (fewer generations for this row), not an error
                g = Generation(k=k, text_field=col, expects_markers=True)
                try:
                    g.text = as_text(obj[col], col)
                except RecordError as err:
                    g.error = err
                gens.append(g)
            if not gens:
                raise RecordError(RejectReason.MISSING_FIELD, f"no generation in {', '.join(keys.numbered)}", keys.numbered[0])

    # chat turns
    messages_name = spec.messages or keys.messages_field
    messages = get_path(obj, messages_name) if messages_name else None
    use_messages = spec.layout == LayoutHint.MESSAGES or (
        spec.layout == LayoutHint.AUTO and messages_name is not None and messages is not None and not gens
        and spec.response is None and spec.thinking is None
    )
    if use_messages:
        if messages is None:
            raise RecordError(RejectReason.MISSING_FIELD, "no messages field", spec.messages or "messages")
        turns = read_turns(messages, messages_name or "messages")
        if turns.assistant is None:
            raise RecordError(RejectReason.MISSING_FIELD, "messages contain no assistant turn", messages_name or "messages")
        fmt = "chat"
        used.add(messages_name or "messages")
        text = turns.assistant
        if turns.assistant_reasoning:
            gens.append(Generation(thinking=turns.assistant_reasoning, thinking_field=f"{messages_name}.reasoning_content",
                                   response=text, response_field=messages_name, from_messages=True))
        else:
            gens.append(Generation(text=text, text_field=messages_name, expects_markers=True, from_messages=True))
    elif messages is not None and messages_name is not None and gens:
        try:  # a copy of one generation as chat turns (OpenR1): only its user turn and infos are of use
            turns = read_turns(messages, messages_name)
        except RecordError:
            turns = None

    # one trace per row: a reasoning field (+ write-up), or one response text
    if not gens:
        gens.append(_single_generation(obj, keys, spec, used))
        fmt = "fields" if gens[0].thinking_field else "response"

    # reasoning on/off switch (Nemotron `reasoning`, `system_prompt`, or a system turn "detailed thinking off")
    flag = obj.get("reasoning")
    if _is_flag(flag):
        reasoning_off = flag.strip().lower() == "off"
        fmt = "nemotron" if "output" in obj else fmt
        switch = True
    else:
        sys_text = _scalar_text(obj.get("system_prompt")) or _scalar_text(obj.get("system")) or ""
        if turns is not None and turns.system:
            sys_text += "\n" + turns.system
        elif turns is None and keys.problem_field and isinstance(obj.get(keys.problem_field), (list, tuple)):
            try:
                sys_text += "\n" + (read_turns(obj[keys.problem_field], keys.problem_field).system or "")
            except RecordError:
                pass
        m = _REASONING_FLAG_RE.search(sys_text) if sys_text else None
        if m:
            reasoning_off = m.group(1).lower() == "off"
        switch = m is not None
    if switch:  # the dataset switches reasoning per row: a row without markers has none
        for g in gens:
            g.expects_markers = True

    # problem: a problem field (a messages list there gives its user turn), else the user turn of the chat
    problem, problem_error = None, None
    try:
        name, value = find_field(obj, spec.problem, PROBLEM_FIELDS)
        if name is not None and value is not None:
            problem = _problem_from(value, name)
            if problem is None or not problem.strip():
                raise RecordError(RejectReason.EMPTY_FIELD, "problem is empty", name)
        elif spec.problem is None and turns is not None and turns.user is not None:
            problem = turns.user
            if not problem.strip():
                raise RecordError(RejectReason.EMPTY_FIELD, "user turn is empty", messages_name or "messages")
        else:
            expected = spec.problem or " / ".join(PROBLEM_FIELDS[:6])
            raise RecordError(RejectReason.MISSING_FIELD, f"no problem field (looked for {expected})", spec.problem or "problem")
    except RecordError as err:
        problem_error = err

    row = Row(raw_id=raw_id, id_field=id_name, problem=problem, problem_error=problem_error, generations=gens,
              format=fmt, reasoning_off=reasoning_off)

    # per-generation flags
    for g in gens:
        if g.group is not None:
            continue
        if keys.label_field and g.label is None:
            g.label = label_value(_flag_at(obj.get(keys.label_field), g.k))
            if g.label is None and keys.label_field == "correctness_math_verify" and "correctness_llama" in obj:
                g.label = label_value(_flag_at(obj.get("correctness_llama"), g.k))
        if keys.finish_field:
            fr = _flag_at(obj.get(keys.finish_field), g.k)
            g.finish_reason = str(fr) if isinstance(fr, (str, int, float)) and not isinstance(fr, bool) else None
        if keys.complete_field:
            c = _flag_at(obj.get(keys.complete_field), g.k)
            g.complete = c if isinstance(c, bool) else label_value(c)

    # references
    _reference_candidates(obj, keys, spec, row, turns, used)
    return row


def group_names(keys: list[str] | None, spec: SourceSpec) -> list[str]:
    """The teacher column groups of rows with these keys: the spec's ``teachers``, else two or more detected
    ``<name>_thinking_trajectory`` groups; [] for a one-teacher layout."""
    if spec.teachers:
        return list(spec.teachers)
    if not keys or spec.thinking or spec.response or spec.messages:
        return []
    found = sorted({m.group("g") for k in keys if (m := _GROUP_RE.match(k))})
    return found if len(found) >= 2 else []


def _groups(obj: dict, keys: _Keys, spec: SourceSpec) -> list[tuple[str, TeacherColumns]]:
    """Teacher column groups: the spec's, or two or more detected ``<name>_thinking_trajectory`` groups."""
    if spec.teachers:
        return list(spec.teachers.items())
    if spec.thinking or spec.response or spec.messages or len(keys.groups) < 2:
        return []
    out = []
    for name, thinking, response, label in keys.groups:
        v = obj.get(thinking)
        if isinstance(v, str) or (isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)) or v is None:
            out.append((name, TeacherColumns(thinking=thinking, response=response, label=label)))
    return out if len(out) >= 2 else []


def _join(value: Any, name: str) -> str | None:
    if isinstance(value, (list, tuple)):
        parts = [as_text(v, name) for v in value if v is not None]
        parts = [p for p in parts if p]
        return "\n\n".join(parts) if parts else None
    return as_text(value, name)


def _group_generation(obj: dict, name: str, cols: TeacherColumns) -> Generation:
    g = Generation(group=name)
    try:
        if cols.thinking:
            g.thinking_field = cols.thinking
            v = get_path(obj, cols.thinking)
            g.thinking = _join(v, cols.thinking) if v is not None and v is not MISSING else None
        if cols.response:
            v = get_path(obj, cols.response)
            if v is not None and v is not MISSING:
                if g.thinking_field:
                    g.response, g.response_field = as_text(v, cols.response), cols.response
                else:
                    g.text, g.text_field, g.expects_markers = as_text(v, cols.response), cols.response, True
        if cols.label:
            g.label = label_value(get_path(obj, cols.label))
        if g.thinking is None and g.text is None:
            missing = cols.thinking or cols.response or name
            g.error = RecordError(RejectReason.MISSING_FIELD, f"teacher {name!r} has no trace in this row", missing)
    except RecordError as err:
        g.error = err
    return g


def _single_generation(obj: dict, keys: _Keys, spec: SourceSpec, used: set[str]) -> Generation:
    thinking_name, thinking_value = find_field(obj, spec.thinking, THINKING_FIELDS)
    if thinking_name is not None and _is_flag(thinking_value):
        thinking_name, thinking_value = None, None
    if thinking_name is None and spec.thinking is None and spec.response is None and len(keys.groups) == 1:
        # one teacher's prefixed columns (OpenThoughts `metadata`: deepseek_reasoning / deepseek_solution)
        _g, g_thinking, g_response, g_label = keys.groups[0]
        if obj.get(g_thinking) is not None:
            thinking_name, thinking_value = g_thinking, obj[g_thinking]
            if g_response is not None and obj.get(g_response) is not None and spec.response is None:
                spec = spec.model_copy(update={"response": g_response})
    thinking_text = _join(thinking_value, thinking_name) if thinking_name is not None and thinking_value is not None else None
    separate = spec.layout == LayoutHint.SEPARATE_FIELDS or (spec.layout == LayoutHint.AUTO and thinking_text)
    if separate:
        used.add(thinking_name or "thinking")
        ans_name, ans_value = find_field(obj, spec.response, ANSWER_TEXT_FIELDS)
        final = as_text(ans_value, ans_name) if ans_name else None
        if ans_name:
            used.add(ans_name)
        return Generation(thinking=thinking_text, thinking_field=thinking_name or "thinking", response=final,
                          response_field=ans_name)
    resp_name, resp_value = find_response_field(obj, spec.response)
    if resp_name is None or resp_value is None:
        expected = spec.response or "full_response / response / output / solution / messages"
        raise RecordError(
            RejectReason.MISSING_FIELD, f"no thinking or response field (looked for {expected})", spec.response or "thinking"
        )
    used.add(resp_name)
    text = as_text(resp_value, resp_name)
    if text is not None:
        text = _strip_special(text)
    return Generation(
        text=text,
        text_field=resp_name,
        expects_markers=resp_name == "generated_solution",
        empty_reasoning_field=thinking_name is not None,
    )


def _reference_candidates(obj: dict, keys: _Keys, spec: SourceSpec, row: Row, turns: Turns | None, used: set[str]) -> None:
    if spec.reference_answer is not None:
        value = get_path(obj, spec.reference_answer)
        row.given_declared = True
        row.given_field = spec.reference_answer
        row.given_value = None if value is MISSING else value
    else:
        for name in keys.reference_fields:
            if name in used:
                continue
            row.given_declared = True
            if row.given_field is None:
                row.given_field = name
            if obj[name] is not None:
                row.given_field, row.given_value = name, obj[name]
                break
    # nested: per-turn info dicts (user turn first), then top-level info/metadata/reward_model dicts
    nested: list[tuple[str, dict]] = []
    if turns is not None:
        nested += [(f"{spec.messages or keys.messages_field or 'messages'}[].info", d) for d in turns.infos]
    for name in keys.info_fields:
        d = as_mapping(obj.get(name))
        if d:
            nested.append((name, d))
    for where, d in nested:
        for ref in NESTED_REFERENCE_FIELDS:
            v = d.get(ref)
            if v is not None and not isinstance(v, (dict, bool)) and (not isinstance(v, str) or v.strip()):
                row.nested_given = (f"{where}.{ref}", v)
                break
        if row.nested_given is not None:
            break
    for name in keys.worked_fields:
        if name in used:
            continue
        v = obj.get(name)
        if isinstance(v, str) and v.strip():
            row.worked.append((name, v))
