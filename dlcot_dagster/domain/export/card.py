"""The dataset card (``README.md``) of an SFT export: a Hub-style YAML header and a Markdown body.

The header has the Hub's own keys (``pretty_name``, ``task_categories``, ``size_categories``, ``dataset_info`` with
the features and the split size, and for JSONL / Parquet exports a ``configs`` block pointing at the shards, so
``datasets.load_dataset(folder)`` reads them and checks the row count), plus a ``dlcot`` block with what this
project knows about the rows: teacher, policy, engine version and configuration hash, counts (exported, ingested,
dropped by reason), reference sources, source files, token statistics and the list of files of the export (a
re-export removes the files of the previous one that it does not rewrite, and nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import yaml

from .formats import FIELD_DOCS, ExportTarget, arrow_schema

CARD_NAME = "README.md"

_SIZE_BOUNDS = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]


def size_category(n: int) -> str:
    for bound, name in _SIZE_BOUNDS:
        if n < bound:
            return name
    return "100M<n<1B"


def _feature(f: pa.Field) -> dict[str, Any]:
    t = f.type
    if pa.types.is_list(t) and pa.types.is_struct(t.value_type):
        return {"name": f.name, "list": [_feature(t.value_type.field(i)) for i in range(t.value_type.num_fields)]}
    if pa.types.is_string(t):
        return {"name": f.name, "dtype": "string"}
    return {"name": f.name, "dtype": str(t)}


@dataclass
class CardFacts:
    """Everything the card states about one export; collected by the writer."""

    teacher: str
    target: ExportTarget
    rows: int
    files: list[str]
    reference_sources: dict[str, int]
    num_bytes: int = 0  # Arrow (in-memory) size of the rows, as the Hub's split info counts it
    download_size: int | None = None  # bytes of the data files
    policies: list[str] = field(default_factory=list)
    engine_versions: list[str] = field(default_factory=list)
    config_hashes: list[str] = field(default_factory=list)
    ingested_rows: int | None = None  # raw_traces rows (records that passed ingestion)
    dropped_by_reason: dict[str, int] | None = None
    sources: list[dict[str, Any]] = field(default_factory=list)  # {file, ingested, exported}
    tokens: dict[str, dict[str, float]] = field(default_factory=dict)  # column -> token_stats
    token_reduction_median: float | None = None
    tokenizer: str | None = None
    created: str | None = None  # ISO time of the export

    def header(self) -> dict[str, Any]:
        t = self.target
        info: dict[str, Any] = {
            "features": [_feature(f) for f in arrow_schema(t)],
            "splits": [{"name": "train", "num_bytes": self.num_bytes, "num_examples": self.rows}],
            **({"download_size": self.download_size} if self.download_size is not None else {}),
            "dataset_size": self.num_bytes,
        }
        head: dict[str, Any] = {
            "pretty_name": f"DLCoT SFT data distilled from {self.teacher}",
            "language": ["en"],
            "task_categories": ["text-generation"],
            "tags": ["dlcot", "long-chain-of-thought", "reasoning", "distillation", "sft", t.style],
            "size_categories": [size_category(self.rows)],
            "dataset_info": info,
        }
        if t.format != "hf":  # a save_to_disk folder is read with load_from_disk, not through data_files
            head["configs"] = [
                {"config_name": "default", "data_files": [{"split": "train", "path": f"data/train-*.{t.extension}"}]}
            ]
        head["dlcot"] = {
            "teacher": self.teacher,
            "format": t.format,
            "style": t.style,
            **({"sharegpt_roles": t.sharegpt_roles} if t.style == "sharegpt" else {}),
            "rows": self.rows,
            "policy": _one_or_list(self.policies),
            "engine_version": _one_or_list(self.engine_versions),
            "config_hash": _one_or_list(self.config_hashes),
            "reference_sources": dict(sorted(self.reference_sources.items())),
            "ingested_rows": self.ingested_rows,
            "dropped_by_reason": self.dropped_by_reason,
            "sources": self.sources,
            "tokens": self.tokens,
            "token_reduction_median": self.token_reduction_median,
            "tokenizer": self.tokenizer,
            "created": self.created,
            "files": self.files,
        }
        return head

    def render(self) -> str:
        head = yaml.safe_dump(self.header(), sort_keys=False, allow_unicode=True, width=120)
        return f"---\n{head}---\n\n{self.body()}"

    # ------------------------------------------------------------------ body
    def body(self) -> str:
        t = self.target
        conv = t.conversation_column
        lines = [
            f"# DLCoT SFT data: {self.teacher}",
            "",
            *(["**This partition has no rows** (every trace was rejected or dropped; see the counts below). "
               "`datasets.load_dataset` refuses a split with no rows; the data files are empty.", ""]
              if not self.rows else []),
            f"{self.rows:,} supervised fine-tuning samples distilled from long chain-of-thought traces of "
            f"**{self.teacher}** by the DLCoT pipeline (segment, prune redundant approaches, remove error states; "
            "arXiv 2503.16385). Every sample's final answer was re-checked against its reference.",
            "",
            f"Layout: `{conv}` ({'role/content' if t.style == 'messages' else 'from/value'}) in "
            f"{ {'jsonl': 'JSON Lines', 'parquet': 'Parquet', 'hf': 'a `datasets.save_to_disk` folder'}[t.format]}.",
            "",
            "## Loading",
            "",
            "```python",
            *self._loading(),
            "```",
            "",
            "## Fields",
            "",
            "| field | meaning |",
            "|---|---|",
            *(f"| `{f.name}` | {FIELD_DOCS.get(f.name, '')} |" for f in arrow_schema(t)),
            "",
            "## Counts",
            "",
            "| | rows |",
            "|---|---|",
            f"| exported | {self.rows:,} |",
        ]
        if self.ingested_rows is not None:
            lines.append(f"| ingested (raw_traces) | {self.ingested_rows:,} |")
        for reason, n in sorted((self.dropped_by_reason or {}).items()):
            lines.append(f"| dropped: {reason} | {n:,} |")
        lines += ["", "## Reference sources", "", "| reference_source | rows | share |", "|---|---|---|"]
        for src, n in sorted(self.reference_sources.items()):
            lines.append(f"| {src} | {n:,} | {n / self.rows:.1%} |" if self.rows else f"| {src} | {n} | - |")
        n_self = self.reference_sources.get("self", 0)
        if n_self:
            lines += [
                "",
                f"**{n_self:,} rows ({n_self / max(1, self.rows):.1%}) have a `self` reference**: the trace's own final "
                "answer. Their correctness check only tests self-consistency; filter them out "
                "(`reference_source != \"self\"`) where that matters.",
            ]
        lines += ["", "## Tokens", "", f"Tokenizer: `{self.tokenizer or 'qwen2 (default)'}`.", "",
                  "| column | count | min | median | p95 | max | mean |", "|---|---|---|---|---|---|---|"]
        for col, st in self.tokens.items():
            lines.append(
                f"| {col} | {st.get('count', 0):,} | {st.get('min', 0)} | {st.get('median', 0)} | {st.get('p95', 0)} "
                f"| {st.get('max', 0)} | {st.get('mean', 0)} |"
            )
        if self.token_reduction_median is not None:
            lines += ["", f"Median reduction of thinking tokens by DLCoT: {self.token_reduction_median:.1%}."]
        lines += [
            "",
            "## Provenance",
            "",
            f"* teacher: `{self.teacher}`",
            f"* pruning policy: `{', '.join(self.policies) or '-'}`",
            f"* DLCoT engine version: `{', '.join(self.engine_versions) or '-'}` "
            f"(configuration hash `{', '.join(self.config_hashes) or '-'}`)",
        ]
        if self.created:
            lines.append(f"* exported: {self.created}")
        if self.sources:
            lines += ["", "| source file | ingested | exported |", "|---|---|---|"]
            for s in self.sources:
                lines.append(f"| `{s['file']}` | {s.get('ingested', '-')} | {s.get('exported', 0)} |")
        lines += [
            "",
            "## License",
            "",
            "The texts come from the teacher's traces and the problems of its source data: this export inherits their "
            "licenses and terms of use. Check them before redistributing.",
            "",
        ]
        return "\n".join(lines)

    def _loading(self) -> list[str]:
        t = self.target
        if t.format == "hf":
            out = ["from datasets import load_from_disk", "", 'ds = load_from_disk("path/to/this/folder")']
        else:
            out = ["from datasets import load_dataset", "", 'ds = load_dataset("path/to/this/folder", split="train")']
        if t.style == "messages":
            out += ["", "# TRL reads the messages column as is:",
                    "# SFTTrainer(model=..., train_dataset=ds, args=SFTConfig(...))"]
        elif t.sharegpt_roles == "human_gpt":
            out += [
                "",
                "# LLaMA-Factory: formatting sharegpt with its default tags (from/value, human/gpt).",
                "# TRL renames from/value to role/content but keeps role names: map human/gpt first.",
                'roles = {"human": "user", "gpt": "assistant"}',
                'ds = ds.map(lambda r: {"conversations": [{"from": roles.get(m["from"], m["from"]), "value": m["value"]}',
                '                                         for m in r["conversations"]]})',
            ]
        else:
            out += ["", "# TRL reads from/value conversations with user/assistant roles directly."]
        return out


def _one_or_list(values: list[str]) -> str | list[str] | None:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def parse_card(text: str) -> tuple[dict[str, Any], str]:
    """(YAML header, Markdown body) of a card; ``({}, text)`` when it has no header."""
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 4)
    if end < 0:
        return {}, text
    head = yaml.safe_load(text[4:end + 1]) or {}
    return (head if isinstance(head, dict) else {}), text[end + 5:].lstrip("\n")
