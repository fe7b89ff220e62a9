"""Stage 3, students: ``student_checkpoints`` (SFT per teacher x variant) -> ``benchmark_scores`` (per teacher).

* ``student_checkpoints`` is partitioned ``teacher x variant`` (``variant``: ``dlcot`` trains on the teacher's
  ``corrected_traces``, ``raw`` on its ``raw_traces``); both upstreams map to it through the ``teacher`` dimension.
  The checkpoint goes to the ``blob_store`` (local folder or S3) under
  ``students/<teacher>/<variant>/<content hash[:16]>/`` with a ``manifest.json``; ``.../latest.json`` names the
  newest one that passed the check. Blocking check: the stored checkpoint loads and generates (transformers, a few greedy tokens).
  ``launcher: accelerate`` trains in ``num_processes`` ranks through ``accelerate launch`` (multi-GPU DDP, or FSDP /
  DeepSpeed with an ``accelerate_config`` from ``k8s/accelerate/``); the default ``inprocess`` trains in the step.
* ``benchmark_scores`` is partitioned by ``teacher`` and depends on every variant of that teacher's checkpoints;
  it evaluates each on the benchmark files of the ``benchmarks`` resource (the list decontamination guards
  against, defs/benchmarks.py) through the ``llm`` resource's engine settings (model
  replaced by the checkpoint), stores the per-sample records (Parquet) and shows pass@1 and output tokens side by
  side, raw vs DLCoT.

Both are always GPU steps (GPU pod tags, ``gpu`` pool), like ``teacher_generations``: training and evaluating a
student needs the GPU for the whole step whatever ``DLCOT_GPU_STEPS`` says. Neither is in the ``reprocess_teacher``
job (a landing-sensor run must not train models); materialize them on demand.
"""


import json
import tempfile
import warnings
from pathlib import Path
from typing import Literal

import dagster as dg
import polars as pl
from pydantic import Field, field_validator

from ...domain.answers import AnswerChecker
from ...domain.llm import Sampling
from ...domain.stats import markdown_table, png_markdown
from ...domain.students.benchmarks import DEFAULT_TEMPLATE, file_row_count, load_benchmark
from ...domain.students.engines import engine_alive, release_engine
from ...domain.students.evaluate import (
    dlcot_below_raw,
    evaluate_problems,
    per_benchmark,
    problem_count_problems,
    score_range_problems,
)
from ...domain.students.launch import LaunchSettings, run_sft
from ...domain.students.plots import loss_curve_png, scores_png
from ...domain.students.sft import (
    VARIANTS,
    SFTSettings,
    dir_hash,
    fetch_checkpoint,
    read_manifest,
    smoke_generate,
    store_checkpoint,
    training_messages,
)
from ..benchmarks import BenchmarkConfig, BenchmarksResource  # noqa: F401  (BenchmarkConfig: former home)
from ..constants import BENCHMARK_SCORES, CORRECTED_TRACES, RAW_TRACES, STUDENT_CHECKPOINTS, STUDENTS_GROUP
from ..gpu import GPU_POOL, gpu_op_tags
from ..llm.resources import LLMConfig, LLMResource, resolve_model
from ..partitions import teacher_partitions
from ..resources import BlobStoreResource

CHECK_CHECKPOINT_GENERATES = "checkpoint_loads_and_generates"
CHECK_SCORES_IN_RANGE = "scores_in_unit_interval"
CHECK_PROBLEM_COUNTS = "problem_counts_match"
CHECK_DLCOT_NOT_BELOW_RAW = "dlcot_not_below_raw"

variant_partitions = dg.StaticPartitionsDefinition(list(VARIANTS))
student_partitions = dg.MultiPartitionsDefinition({"teacher": teacher_partitions, "variant": variant_partitions})
with warnings.catch_warnings():  # beta in Dagster 1.13; the mapping the teacher x variant design needs
    warnings.simplefilter("ignore", dg.BetaWarning)
    BY_TEACHER = dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="teacher")


def checkpoint_prefix(teacher: str, variant: str) -> str:
    return f"students/{teacher}/{variant}"


class StudentSFTConfig(dg.Config):
    base_model: str = Field(default="smollm2", description="student: a model folder or HF id ('smollm2' = bundled 135M)")
    learning_rate: float = 1e-5
    num_train_epochs: float = 3.0
    max_steps: int = Field(default=-1, description="> 0: train this many optimizer steps (overrides epochs)")
    max_seq_len: int = Field(default=16_384, description="longest training sequence in tokens (longer ones are cut)")
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 8
    packing: bool = Field(default=False, description="TRL BFD packing (padding-free; exact with flash attention)")
    padding_free: bool = False
    bf16: bool | None = Field(default=None, description="None: bf16 where CUDA supports it, else float32")
    warmup_steps: float = Field(default=0.05, description="steps, or a share of all steps when < 1")
    lr_scheduler_type: str = "cosine"
    gradient_checkpointing: bool = False
    limit: int | None = Field(default=None, description="first N training examples only (demos, smoke runs)")
    seed: int = 0
    launcher: Literal["inprocess", "accelerate"] = Field(
        default="inprocess",
        description="inprocess: train inside the step (one process); accelerate: `accelerate launch` num_processes ranks",
    )
    num_processes: int | None = Field(default=None, description="accelerate ranks; None: the visible GPUs, or 1")
    accelerate_config: str | None = Field(
        default=None, description="accelerate YAML (e.g. k8s/accelerate/fsdp.yaml, deepspeed-zero3.yaml); None: plain DDP"
    )
    mixed_precision: str | None = Field(
        default=None, description="accelerate launch --mixed_precision (no|fp16|bf16|fp8); None: bf16 / the config file decides"
    )

    @field_validator("mixed_precision")
    @classmethod
    def _known_precision(cls, v: str | None) -> str | None:
        if v is not None and v not in ("no", "fp16", "bf16", "fp8"):
            raise ValueError(f"mixed_precision must be no, fp16, bf16 or fp8, got {v!r}")
        return v

    def launch(self) -> LaunchSettings:
        return LaunchSettings(launcher=self.launcher, num_processes=self.num_processes,
                              accelerate_config=self.accelerate_config, mixed_precision=self.mixed_precision)

    def settings(self) -> SFTSettings:
        return SFTSettings(
            learning_rate=self.learning_rate,
            num_train_epochs=self.num_train_epochs,
            max_steps=self.max_steps,
            max_seq_len=self.max_seq_len,
            per_device_train_batch_size=self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            packing=self.packing,
            padding_free=self.padding_free,
            bf16=self.bf16,
            warmup_steps=self.warmup_steps,
            lr_scheduler_type=self.lr_scheduler_type,
            gradient_checkpointing=self.gradient_checkpointing,
            seed=self.seed,
        )


@dg.asset(
    key=STUDENT_CHECKPOINTS,
    ins={
        "raw_traces": dg.AssetIn(RAW_TRACES, partition_mapping=BY_TEACHER),
        "corrected_traces": dg.AssetIn(CORRECTED_TRACES, partition_mapping=BY_TEACHER),
    },
    partitions_def=student_partitions,
    group_name=STUDENTS_GROUP,
    check_specs=[
        dg.AssetCheckSpec(CHECK_CHECKPOINT_GENERATES, asset=STUDENT_CHECKPOINTS, blocking=True,
                          description="the stored checkpoint loads and generates a few tokens")
    ],
    op_tags=gpu_op_tags(),
    pool=GPU_POOL,
    description="A student fine-tuned (TRL SFT, loss on the assistant turn) on one teacher's DLCoT data or raw traces.",
)
def student_checkpoints(
    context: dg.AssetExecutionContext,
    config: StudentSFTConfig,
    raw_traces: pl.DataFrame,
    corrected_traces: pl.DataFrame,
    blob_store: BlobStoreResource,
):
    keys = context.partition_key.keys_by_dimension  # type: ignore[union-attr]
    teacher, variant = keys["teacher"], keys["variant"]
    convs = training_messages(variant, raw_traces, corrected_traces)
    if config.limit is not None:
        convs = convs[: config.limit]
    base = resolve_model(config.base_model)
    store = blob_store.store()
    with tempfile.TemporaryDirectory(prefix="dlcot-sft-") as tmp:
        launch = config.launch()
        if launch.launcher == "accelerate":
            context.log.info(f"SFT through accelerate launch: {launch}")
        res = run_sft(convs, base, Path(tmp) / "ckpt", config.settings(), launch, work_dir=Path(tmp) / "launch",
                      on_line=lambda line: context.log.info(line) if line.strip() else None)
        digest = dir_hash(res.output_dir)
        prefix = f"{checkpoint_prefix(teacher, variant)}/{digest[:16]}"
        manifest = {
            "teacher": teacher,
            "variant": variant,
            "base_model": config.base_model,
            "content_hash": digest,
            **{k: v for k, v in res.as_dict().items() if k not in ("output_dir", "base_model")},
        }
        uri = store_checkpoint(store, prefix, res.output_dir, manifest)
    curve = loss_curve_png(res.losses, f"{teacher} / {variant}: training loss")
    yield dg.MaterializeResult(
        metadata={
            "uri": dg.MetadataValue.path(uri),
            "content_hash": digest,
            "base_model": config.base_model,
            "variant": variant,
            "examples": res.examples,
            "steps": res.steps,
            "train_tokens": res.train_tokens,
            "tokens_per_s": round(res.tokens_per_s, 1),
            "train_seconds": round(res.seconds, 2),
            "launcher": res.launcher,
            "world_size": res.world_size,
            "first_loss": res.first_loss,
            "final_loss": res.final_loss,
            "loss_curve": dg.MetadataValue.md(png_markdown(curve, "training loss")),
        }
    )
    error = None
    with tempfile.TemporaryDirectory(prefix="dlcot-ckpt-") as tmp:
        try:
            sample = smoke_generate(fetch_checkpoint(store, prefix, tmp))
        except Exception as exc:  # the check reports any failure to load or generate
            sample, error = None, f"{type(exc).__name__}: {exc}"
    if error is None:  # only a checkpoint that loads and generates becomes the one benchmark_scores evaluates
        store.put_bytes(f"{checkpoint_prefix(teacher, variant)}/latest.json", json.dumps({"prefix": prefix}).encode())
    yield dg.AssetCheckResult(
        check_name=CHECK_CHECKPOINT_GENERATES,
        passed=error is None,
        metadata={"sample": sample or "", "error": error or "none"},
    )


class EvalConfig(dg.Config):
    # the benchmark files come from the `benchmarks` resource, the list decontamination guards against
    limit: int | None = Field(default=5, description="first N problems of each benchmark (None: all)")
    n_samples: int = Field(default=1, description="samples per problem; pass@1 is averaged over them")
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = Field(default=1024, description="generation budget per sample")
    seed: int = 0
    prompt_template: str = DEFAULT_TEMPLATE
    variants: list[str] = Field(default_factory=lambda: list(VARIANTS))
    include_base_model: bool = Field(
        default=False, description="also evaluate the untuned base model as a reference (rows with variant 'base')"
    )
    base_model: str | None = Field(
        default=None, description="the reference model; None: the students' base model (from their manifest)"
    )


def _engine_config(llm: LLMResource, model: str) -> LLMConfig:
    fields = {k: getattr(llm, k) for k in LLMConfig.model_fields}
    return LLMConfig(**{**fields, "model": model})


@dg.asset(
    key=BENCHMARK_SCORES,
    deps=[dg.AssetDep(STUDENT_CHECKPOINTS, partition_mapping=BY_TEACHER)],
    partitions_def=teacher_partitions,
    group_name=STUDENTS_GROUP,
    io_manager_key="parquet_io_manager",
    check_specs=[
        dg.AssetCheckSpec(CHECK_SCORES_IN_RANGE, asset=BENCHMARK_SCORES, blocking=True,
                          description="every pass@1 lies in [0, 1]"),
        dg.AssetCheckSpec(CHECK_PROBLEM_COUNTS, asset=BENCHMARK_SCORES, blocking=True,
                          description="each benchmark's problem count matches its file (or the configured limit)"),
        dg.AssetCheckSpec(CHECK_DLCOT_NOT_BELOW_RAW, asset=BENCHMARK_SCORES, blocking=False,
                          description="warn when the DLCoT student scores below the raw-trace student"),
    ],
    op_tags=gpu_op_tags(),
    pool=GPU_POOL,
    description="Per-sample benchmark results of every student checkpoint of a teacher (pass@1, output tokens).",
)
def benchmark_scores(
    context: dg.AssetExecutionContext,
    config: EvalConfig,
    llm: LLMResource,
    blob_store: BlobStoreResource,
    benchmarks: BenchmarksResource,
):
    teacher = context.partition_key
    store = blob_store.store()
    specs = list(benchmarks.specs())
    problems = pl.concat([load_benchmark(s, config.limit) for s in specs])
    expected = {s.name: min(file_row_count(s), config.limit) if config.limit is not None else file_row_count(s) for s in specs}
    sampling = Sampling(temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_tokens, seed=config.seed)
    checker = AnswerChecker()
    frames, timings, hashes = [], {}, {}

    def evaluate(variant: str, folder: str, checkpoint_hash: str) -> None:
        smoke_generate(folder, max_new_tokens=2)  # loads and generates, or the step fails before evaluating
        cfg = _engine_config(llm, str(folder))
        borrowed = cfg.backend == "vllm" and engine_alive(cfg.engine_args())  # started by someone else: keep it
        client = cfg.client()
        try:
            records, timing = evaluate_problems(
                client, problems, n_samples=config.n_samples, sampling=sampling, checker=checker,
                template=config.prompt_template,
            )
        finally:
            if cfg.backend == "vllm" and not borrowed:
                release_engine(cfg.engine_args())
        frames.append(records.with_columns(pl.lit(variant).alias("variant"), pl.lit(checkpoint_hash).alias("checkpoint_hash")))
        timings[variant] = round(timing.problems_per_s, 3)
        hashes[variant] = checkpoint_hash

    student_base = None
    for variant in config.variants:
        pointer = json.loads(store.get_bytes(f"{checkpoint_prefix(teacher, variant)}/latest.json"))
        manifest = read_manifest(store, pointer["prefix"])
        student_base = student_base or manifest.get("base_model")
        with tempfile.TemporaryDirectory(prefix="dlcot-eval-") as tmp:
            evaluate(variant, str(fetch_checkpoint(store, pointer["prefix"], tmp)), manifest["content_hash"])
    labels = list(config.variants)
    if config.include_base_model:  # the untuned student as a reference: what SFT added (or cost)
        name = config.base_model or student_base
        if not name:
            raise ValueError("include_base_model: set base_model (no student manifest names one)")
        evaluate("base", resolve_model(name), f"base:{name}")
        labels.append("base")
    records = pl.concat(frames)
    table = pl.concat([per_benchmark(f).with_columns(pl.lit(v).alias("variant")) for v, f in zip(labels, frames)])
    table = table.select("variant", "benchmark", "problems", "pass_at_1", "output_tokens")
    store.put_bytes(f"scores/{teacher}/per_benchmark.json", json.dumps(table.to_dicts(), indent=2).encode())
    side = table.pivot(on="variant", index="benchmark", values=["pass_at_1", "output_tokens"])
    yield dg.Output(
        records,
        metadata={
            "dagster/row_count": records.height,
            "checkpoints": dg.MetadataValue.json(hashes),
            "per_benchmark": dg.MetadataValue.md(markdown_table(table, max_rows=100)),
            "raw_vs_dlcot": dg.MetadataValue.md(markdown_table(side, max_rows=100)),
            "scores_plot": dg.MetadataValue.md(png_markdown(scores_png(table, f"{teacher}: pass@1 and tokens"), "scores")),
            "problems_per_s": dg.MetadataValue.json(timings),
        },
    )
    yield from _score_checks(table, labels, expected)


def _score_checks(table: pl.DataFrame, labels: list[str], expected: dict[str, int]) -> list[dg.AssetCheckResult]:
    """The checks of ``benchmark_scores`` on the per-benchmark table (one row per variant x benchmark); each
    problem names its variant and benchmark."""
    bad = score_range_problems(table)
    counts = [p for v in labels for p in problem_count_problems(table.filter(pl.col("variant") == v), expected)]
    worse = dlcot_below_raw(table)
    return [
        dg.AssetCheckResult(check_name=CHECK_SCORES_IN_RANGE, passed=not bad,
                            metadata={"problems": dg.MetadataValue.json(bad)}),
        dg.AssetCheckResult(check_name=CHECK_PROBLEM_COUNTS, passed=not counts,
                            metadata={"expected": dg.MetadataValue.json(expected), "problems": dg.MetadataValue.json(counts)}),
        dg.AssetCheckResult(check_name=CHECK_DLCOT_NOT_BELOW_RAW, passed=not worse, severity=dg.AssetCheckSeverity.WARN,
                            metadata={"benchmarks": dg.MetadataValue.json(worse)}),
    ]
