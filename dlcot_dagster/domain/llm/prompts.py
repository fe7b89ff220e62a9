"""Prompts of the LLM-assisted DLCoT steps and the pydantic models of their replies.

Every reply is constrained by a JSON schema generated from these models (:func:`schema_of`), so a reply that ran
to completion parses by construction. The instructions are ours; they follow the paper's description of the four
LLM tasks: segment a long CoT into its five parts and its separate solutions/checks, label each solution/check
against the reference answer (with the passages that state wrong intermediate results), group solutions/checks
by method, and rewrite the kept text coherently after given parts are deleted.

Segmentation asks for *quotes* (the first and last words of each part), never for the text itself: the parts are
then re-anchored in the original (see :mod:`.guards`), so a segment is always a verbatim span, and the model
writes a few hundred tokens instead of copying the whole trace.
"""

from __future__ import annotations

import copy
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

PartKind = Literal["question_restatement", "problem_understanding", "solution", "verification", "conclusion"]
LabelValue = Literal["correct", "incorrect", "incomplete"]

QUOTE_MAX_CHARS = 100
EXCERPT_HEAD = 500
EXCERPT_TAIL = 250
DEL_OPEN, DEL_CLOSE = "[[DELETE]]", "[[/DELETE]]"

SYSTEM = (
    "You annotate long step-by-step reasoning written by another model while it solved a math problem. "
    "Reply with JSON only. When asked to quote, copy the words character for character from the reasoning."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------ replies


class SplitPart(_Strict):
    kind: PartKind
    first_words: str = Field(max_length=QUOTE_MAX_CHARS, description="the first 4-12 words of the part, copied exactly")
    last_words: str = Field(max_length=QUOTE_MAX_CHARS, description="the last 4-12 words of the part, copied exactly")


class SplitReply(_Strict):
    parts: list[SplitPart] = Field(min_length=1, max_length=64)


class LabelReply(_Strict):
    reached_answer: str | None = Field(max_length=80, description="the final value this part arrives at, or null")
    label: LabelValue
    error_passages: list[Annotated[str, Field(max_length=300)]] = Field(
        max_length=8, description="exact quotes that state a wrong intermediate result"
    )


class MethodGroup(_Strict):
    method: str = Field(max_length=100)
    members: list[int] = Field(min_length=1)


class ClusterReply(_Strict):
    groups: list[MethodGroup] = Field(min_length=1)


class RewriteReply(_Strict):
    text: str


def _inline(schema: dict) -> dict:
    """Resolve local ``$ref``s (``#/$defs/X``) so that every backend sees a self-contained schema."""
    defs = schema.get("$defs", {})

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                target = copy.deepcopy(defs[ref.split("/")[-1]])
                rest = {k: v for k, v in node.items() if k != "$ref"}
                return walk({**target, **rest})
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def schema_of(model: type[BaseModel], *, max_items: dict[str, int] | None = None) -> dict:
    """Self-contained JSON schema of a reply model; ``max_items`` tightens list bounds by property name."""
    schema = _inline(model.model_json_schema())
    if max_items:

        def walk(node):
            if isinstance(node, dict):
                for name, sub in (node.get("properties") or {}).items():
                    if name in max_items and isinstance(sub, dict) and sub.get("type") == "array":
                        sub["maxItems"] = max_items[name]
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(schema)
    return schema


# ------------------------------------------------------------------------------------------ prompts


def _chat(user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def segment_messages(problem: str, thinking: str) -> list[dict[str, str]]:
    return _chat(
        "Split the reasoning below into consecutive parts that together cover all of it, in their order.\n"
        "Kinds of part:\n"
        "- question_restatement: opening lines that only repeat the problem (may be absent)\n"
        "- problem_understanding: lines that interpret the problem or plan, before any work toward an answer "
        "(may be absent)\n"
        "- solution: the work up to and including the first time the reasoning commits to an answer to the "
        "question (right or wrong; a stated value of the asked quantity, or the letter or the text of a listed "
        "choice; a guess phrased as a question does not count); every abandoned approach before it is its own "
        "solution part\n"
        "- verification: everything after that first answer up to the conclusion, one part per check: a "
        "re-computation, substituting the answer back, testing the other choices, a numeric sanity check, a "
        "special case, or an alternative method each start a new verification part\n"
        "- conclusion: the closing lines that state the final answer (may be absent)\n"
        "For every part give its kind, its first words and its last words (4 to 12 words each, copied exactly "
        "from the reasoning, including punctuation).\n\n"
        f"Problem:\n{problem}\n\nReasoning:\n<<<\n{thinking}\n>>>"
    )


def label_messages(problem: str, reference: str, kind: str, part: str) -> list[dict[str, str]]:
    what = {"solution": "a solution attempt", "verification": "a check", "conclusion": "the conclusion"}.get(kind, kind)
    return _chat(
        f"Below is {what} taken from a longer reasoning about this problem.\n\n"
        f"Problem:\n{problem}\n\nReference answer: {reference}\n\nPart:\n<<<\n{part}\n>>>\n\n"
        "Give the final value this part arrives at (null if it arrives at none); label it correct if that value "
        "equals the reference answer, incorrect if it differs, incomplete if the part arrives at no value; and "
        "quote exactly every passage of the part that states a wrong intermediate result (an empty list if none)."
    )


def _excerpt(text: str) -> str:
    text = text.strip()
    if len(text) <= EXCERPT_HEAD + EXCERPT_TAIL + 20:
        return text
    return f"{text[:EXCERPT_HEAD]} [...] {text[-EXCERPT_TAIL:]}"


#: DLCoT's five criteria for a new approach (arXiv 2503.16385, section 3), in our words
NOVELTY_CRITERIA = (
    "1. they use fundamentally different methods (for example algebra against geometry, or counting a set "
    "directly against counting its complement);\n"
    "2. they reach the result through very different intermediate steps, even if the result is the same;\n"
    "3. they rest on different assumptions or conditions;\n"
    "4. one is general while the other only covers a special case (or the other way round);\n"
    "5. one is much simpler or much more complex than the other."
)


def cluster_messages(problem: str, items: list[tuple[int, str, str]]) -> list[dict[str, str]]:
    """``items``: (number, kind, text) of each solution/check."""
    listing = "\n\n".join(f"[{n}] ({kind})\n{_excerpt(text)}" for n, kind, text in items)
    numbers = ", ".join(str(n) for n, _, _ in items)
    return _chat(
        "Below are the solution attempts and checks of one reasoning, each with its number. Group them by the "
        "method they use. Two parts belong to different groups when any of these holds:\n"
        f"{NOVELTY_CRITERIA}\n"
        "Otherwise they follow the same method and go into one group, even when their wording differs: a check "
        "that redoes the same computation, re-derives the same equations or re-reads the same steps to reach the "
        "same result belongs with the part it repeats. Name each group's method in a few words. "
        f"Every number ({numbers}) must appear in exactly one group.\n\n"
        f"Problem:\n{problem}\n\n{listing}"
    )


def mark_deletions(text: str, removed: list[tuple[int, int]]) -> str:
    out, pos = [], 0
    for a, b in removed:
        out.append(text[pos:a])
        out.append(f"{DEL_OPEN}{text[a:b]}{DEL_CLOSE}")
        pos = b
    out.append(text[pos:])
    return "".join(out)


def rewrite_messages(marked: str) -> list[dict[str, str]]:
    return _chat(
        f"In the reasoning below, every passage between {DEL_OPEN} and {DEL_CLOSE} must be deleted. Return the "
        "reasoning with those passages (and the markers) removed. Where a deletion leaves text that no longer "
        'reads well (a dangling "Wait," or a reference to deleted work), change a few words there so it reads '
        "naturally. Copy everything else exactly, character for character, and keep every stated answer.\n\n"
        f"<<<\n{marked}\n>>>"
    )
