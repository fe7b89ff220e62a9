"""SFT datasets out: one teacher partition's corrected_traces in the formats trainers read (domain/export/)."""

from typing import Literal

import dagster as dg
from pydantic import Field

from ...domain.export import (
    CARD_NAME,
    DEFAULT_EXPORT_BATCH,
    DEFAULT_SHARD_ROWS,
    EXPORT_VERSION,
    ExportTarget,
    export_partition,
    parse_card,
)
from ...domain.stream import ParquetTable
from ..constants import (
    CHECK_EXPORT_COMPLETE,
    CORRECTED_TRACES,
    DROPPED_TRACES,
    EXPORT_GROUP,
    RAW_TRACES,
    SFT_EXPORTS,
)
from ..partitions import teacher_partitions
from ..resources import BlobStoreResource, TokenizerResource
from ..settings import scratch_dir


class ExportTargetConfig(dg.Config):
    format: Literal["jsonl", "parquet", "hf"] = Field(
        default="parquet", description="jsonl | parquet (data/train-*.<ext> shards) | hf (datasets.save_to_disk folder)"
    )
    style: Literal["messages", "sharegpt"] = Field(
        default="messages", description="messages (role/content) | sharegpt (conversations: from/value)"
    )
    sharegpt_roles: Literal["human_gpt", "user_assistant"] = Field(
        default="human_gpt", description="ShareGPT role names: human/gpt (LLaMA-Factory's default) or user/assistant"
    )


def _default_targets() -> list[ExportTargetConfig]:
    return [
        ExportTargetConfig(format="parquet", style="messages"),
        ExportTargetConfig(format="hf", style="messages"),
        ExportTargetConfig(format="jsonl", style="sharegpt"),
    ]


class SFTExportConfig(dg.Config):
    targets: list[ExportTargetConfig] = Field(
        default_factory=_default_targets, description="the exports to write, each under <prefix>/<teacher>/<style>-<format>/"
    )
    prefix: str = Field(default="exports", description="key prefix in the blob store (local folder or s3://)")
    batch_size: int = Field(default=DEFAULT_EXPORT_BATCH, ge=1, description="rows read and written per batch")
    shard_rows: int = Field(default=DEFAULT_SHARD_ROWS, ge=1, description="rows per data file (jsonl, parquet)")


@dg.asset(
    key=SFT_EXPORTS,
    ins={
        "corrected_traces": dg.AssetIn(CORRECTED_TRACES),
        "raw_traces": dg.AssetIn(RAW_TRACES),
        "dropped_traces": dg.AssetIn(DROPPED_TRACES),
    },
    partitions_def=teacher_partitions,
    group_name=EXPORT_GROUP,
    code_version=EXPORT_VERSION,
    check_specs=[
        dg.AssetCheckSpec(CHECK_EXPORT_COMPLETE, asset=SFT_EXPORTS, blocking=True,
                          description="every export holds all corrected_traces rows, and its stored card lists files "
                                      "that exist"),
    ],
    description="corrected_traces as SFT datasets (chat messages / ShareGPT as JSONL, Parquet or a datasets "
    "save_to_disk folder), each with a dataset card, in the blob store under exports/<teacher>/.",
)
def sft_exports(
    context: dg.AssetExecutionContext,
    config: SFTExportConfig,
    corrected_traces: ParquetTable,
    raw_traces: ParquetTable,
    dropped_traces: ParquetTable,
    blob_store: BlobStoreResource,
    tokenizer: TokenizerResource,
) -> dg.MaterializeResult:
    teacher = context.partition_key
    targets = [ExportTarget(t.format, t.style, t.sharegpt_roles) for t in config.targets]
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError(f"sft_exports: the targets {names} repeat a format/style; each needs its own folder")
    store = blob_store.store()
    expected = corrected_traces.num_rows
    reports = []
    for target in targets:
        rep = export_partition(
            corrected_traces.path, store, f"{config.prefix.strip('/')}/{teacher}/{target.name}", target,
            teacher=teacher, raw=raw_traces.path, dropped=dropped_traces.path,
            tokenizer=tokenizer.per_teacher.get(teacher) or tokenizer.default,
            batch_size=config.batch_size, shard_rows=config.shard_rows, scratch=scratch_dir(),
        )
        context.log.info(f"{target.name}: {rep.rows} rows in {rep.seconds:.2f}s -> {rep.uri}")
        reports.append(rep)

    # read back what was published: the card's row count and files, as a reader would find them
    problems = []
    for target, rep in zip(targets, reports):
        prefix = f"{config.prefix.strip('/')}/{teacher}/{target.name}"
        head, _ = parse_card(store.get_bytes(f"{prefix}/{CARD_NAME}").decode("utf-8"))
        meta = head.get("dlcot") or {}
        if meta.get("rows") != expected:
            problems.append(f"{target.name}: card says {meta.get('rows')} rows, corrected_traces has {expected}")
        missing = [f for f in meta.get("files") or [] if not store.exists(f"{prefix}/{f}")]
        if missing:
            problems.append(f"{target.name}: files listed but not stored: {missing[:5]}")

    first = reports[0] if reports else None
    seconds = sum(r.seconds for r in reports)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": expected,
            "exports": dg.MetadataValue.json([r.as_dict() for r in reports]),
            **{f"uri_{r.target}": dg.MetadataValue.path(r.uri) for r in reports},
            "reference_sources": dg.MetadataValue.json(first.reference_sources if first else {}),
            "export_seconds": round(seconds, 3),
            "rows_per_s": round(expected * len(reports) / seconds, 1) if seconds else 0.0,
            "card": dg.MetadataValue.md(parse_card(first.card)[1] if first else "_(no targets)_"),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK_EXPORT_COMPLETE,
                passed=not problems,
                metadata={"targets": len(reports), "rows": expected,
                          "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")},
            )
        ],
    )
