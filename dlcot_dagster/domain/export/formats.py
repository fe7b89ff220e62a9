"""What an SFT export looks like: the target (container x conversation style) and the rows' Arrow schema.

Two conversation styles, the two that trainers read:

* ``messages``: ``messages: [{role, content}]`` (OpenAI / ChatML style; TRL's ``SFTTrainer`` reads it as is);
* ``sharegpt``: ``conversations: [{from, value}]``. Role names ``human`` / ``gpt`` by default, as the ShareGPT dumps
  and LLaMA-Factory's ``formatting: sharegpt`` defaults have them; ``sharegpt_roles="user_assistant"`` writes
  ``user`` / ``assistant`` instead, which TRL reads directly (it renames ``from``/``value`` to ``role``/``content``
  but keeps the role names, which chat templates such as Qwen2.5's only render for user/assistant/system).

Three containers: ``jsonl`` and ``parquet`` (shards ``data/train-NNNNN-of-NNNNN.<ext>``, the Hub's layout, with a
``configs:`` block in the card so ``datasets.load_dataset(folder)`` finds them) and ``hf`` (a ``save_to_disk``
folder for ``datasets.load_from_disk``).

Every row also carries its provenance: ``id``, ``teacher``, ``reference_answer``, ``reference_source``,
``final_answer`` and the token counts. Trainers ignore columns they do not use (TRL drops them before collation).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from ..ingest.schema import REFERENCE_SOURCES as INGEST_REFERENCE_SOURCES, ReferenceSource

STYLES = ("messages", "sharegpt")
CONTAINERS = ("jsonl", "parquet", "hf")
SHAREGPT_ROLES = ("human_gpt", "user_assistant")

#: ShareGPT role names by ``sharegpt_roles``; a role not listed is written unchanged
ROLE_MAPS = {
    "human_gpt": {"user": "human", "assistant": "gpt", "system": "system"},
    "user_assistant": {"user": "user", "assistant": "assistant", "system": "system"},
}

#: reference_source values (ingestion resolves a reference per row); rows without the column count as ``given``
REFERENCE_SOURCES = INGEST_REFERENCE_SOURCES
DEFAULT_REFERENCE_SOURCE = ReferenceSource.GIVEN.value

#: corrected_traces columns an export reads (``reference_source`` too when the table has it)
SOURCE_COLUMNS = (
    "id", "teacher", "messages", "reference_answer", "final_answer", "raw_tokens", "corrected_tokens", "seq_tokens",
)

_META_FIELDS = [
    pa.field("teacher", pa.string()),
    pa.field("reference_answer", pa.string()),
    pa.field("reference_source", pa.string()),
    pa.field("final_answer", pa.string()),
    pa.field("raw_tokens", pa.int64()),
    pa.field("corrected_tokens", pa.int64()),
    pa.field("seq_tokens", pa.int64()),
]

#: what each metadata column means (dataset card)
FIELD_DOCS = {
    "id": "record id from ingestion (`<file stem>/<id>` unless the source spec says otherwise)",
    "messages": "the conversation: user problem, assistant `<think>` corrected thinking `</think>` + final answer",
    "conversations": "the conversation in ShareGPT form (`from` / `value`)",
    "teacher": "teacher model (partition) the trace came from",
    "reference_answer": "the reference the final answer was checked against",
    "reference_source": "where the reference came from: given, extracted, joined, majority or self",
    "final_answer": "the final answer of the corrected trace (verified equivalent to the reference)",
    "raw_tokens": "tokens of the teacher's original thinking",
    "corrected_tokens": "tokens of the thinking after DLCoT",
    "seq_tokens": "tokens of the whole sample (problem + assistant turn)",
}


class ExportError(ValueError):
    """An export cannot be written as asked (bad target, missing or inconsistent input); names what and where."""


@dataclass(frozen=True)
class ExportTarget:
    """One export of a partition: a container and a conversation style."""

    format: str  # jsonl | parquet | hf
    style: str = "messages"  # messages | sharegpt
    sharegpt_roles: str = "human_gpt"  # human_gpt | user_assistant (sharegpt only)

    def __post_init__(self) -> None:
        if self.format not in CONTAINERS:
            raise ExportError(f"export format {self.format!r}: use one of {', '.join(CONTAINERS)}")
        if self.style not in STYLES:
            raise ExportError(f"export style {self.style!r}: use one of {', '.join(STYLES)}")
        if self.sharegpt_roles not in SHAREGPT_ROLES:
            raise ExportError(f"sharegpt_roles {self.sharegpt_roles!r}: use one of {', '.join(SHAREGPT_ROLES)}")

    @property
    def name(self) -> str:
        """Folder name of this target under a teacher's export prefix, e.g. ``messages-parquet``."""
        base = f"{self.style}-{self.format}"
        if self.style == "sharegpt" and self.sharegpt_roles != "human_gpt":
            base += f"-{self.sharegpt_roles.replace('_', '-')}"
        return base

    @property
    def conversation_column(self) -> str:
        return "messages" if self.style == "messages" else "conversations"

    @property
    def extension(self) -> str:
        return {"jsonl": "jsonl", "parquet": "parquet", "hf": "arrow"}[self.format]


def arrow_schema(target: ExportTarget) -> pa.Schema:
    """Plain ``string`` / ``list`` types (not the ``large_*`` ones Polars writes), which every reader accepts."""
    if target.style == "messages":
        turn = pa.struct([pa.field("role", pa.string()), pa.field("content", pa.string())])
    else:
        turn = pa.struct([pa.field("from", pa.string()), pa.field("value", pa.string())])
    return pa.schema([pa.field("id", pa.string()), pa.field(target.conversation_column, pa.list_(turn)), *_META_FIELDS])


def to_arrow(batch: pl.DataFrame, target: ExportTarget) -> pa.Table:
    """Export rows of a corrected_traces batch (which must have a ``reference_source`` column by now)."""
    if target.style == "messages":
        conv = pl.col("messages")
    else:
        roles = ROLE_MAPS[target.sharegpt_roles]
        conv = pl.col("messages").list.eval(
            pl.struct(
                pl.element().struct.field("role").replace(roles).alias("from"),
                pl.element().struct.field("content").alias("value"),
            )
        )
    out = batch.select(
        pl.col("id"),
        conv.alias(target.conversation_column),
        *(pl.col(f.name) for f in _META_FIELDS),
    )
    return out.to_arrow().cast(arrow_schema(target))
