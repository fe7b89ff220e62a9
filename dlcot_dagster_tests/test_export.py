"""SFT datasets out of corrected_traces: every format reads back with `datasets` and TRL, with a true card, streamed,
through local folders and S3, from the CLI and as the sft_exports asset."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
import pytest

from dlcot_dagster.cli import main
from dlcot_dagster.defs.constants import (
    CHECK_EXPORT_COMPLETE,
    CORRECTED_TRACES,
    DROPPED_TRACES,
    RAW_TRACES,
    REPROCESS_JOB,
    SFT_EXPORTS,
)
from dlcot_dagster.definitions import defs
from dlcot_dagster.domain.dlcot import ENGINE_VERSION
from dlcot_dagster.domain.export import CARD_NAME, ExportError, ExportTarget, export_partition, parse_card
from dlcot_dagster.domain.export import writer as export_writer
from dlcot_dagster.domain.storage import LocalBlobStore, blob_store_from_url

from .conftest import shared_data_dir

TEACHER = "mix"
ROLES = {"human": "user", "gpt": "assistant"}  # the map the card of a human/gpt ShareGPT export documents


def _ingest(folder: Path, teacher: str) -> pl.DataFrame:
    from dlcot_dagster.domain.ingest import iter_outcomes, list_data_files, load_spec
    from dlcot_dagster.domain.schema import TraceRecord, traces_frame
    from dlcot_dagster.domain.tokens import TokenCounter

    files = [(p, p.relative_to(folder).as_posix()) for p in list_data_files(folder)]
    outcomes = iter_outcomes(files, teacher, load_spec(folder), TokenCounter("qwen2"))
    return traces_frame([o for o in outcomes if isinstance(o, TraceRecord)])


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory, shared_data) -> Path:
    """Asset storage (``<asset>/<teacher>.parquet``) of one partition built from two shared trace files (one mostly
    kept, one mostly dropped), written in small row groups so every read crosses row groups."""
    from dlcot_dagster.domain.answers import AnswerChecker
    from dlcot_dagster.domain.dlcot import RulesEngine
    from dlcot_dagster.domain.pipeline import correct_frame, prune_frame, segment_frame
    from dlcot_dagster.domain.tokens import TokenCounter

    landing = tmp_path_factory.mktemp("landing") / TEACHER
    landing.mkdir()
    traces = shared_data_dir() / "traces"
    for src in (traces / "math500_deepseek-r1.jsonl", traces / "sky-t1-students" / "Sky-T1-math-wrong-5K-27B__amc23.jsonl"):
        os.symlink(src, landing / src.name)
    raw = _ingest(landing, TEACHER)
    engine = RulesEngine("default", AnswerChecker())
    tables = correct_frame(raw, prune_frame(raw, segment_frame(raw, engine), engine), engine, TokenCounter("qwen2"))
    root = tmp_path_factory.mktemp("store")
    for asset, frame in (("raw_traces", raw), ("corrected_traces", tables.kept), ("dropped_traces", tables.dropped)):
        (root / asset).mkdir()
        frame.write_parquet(root / asset / f"{TEACHER}.parquet", row_group_size=7)
    assert tables.kept.height >= 20 and tables.dropped.height >= 5
    return root


def table(store_dir: Path, asset: str) -> Path:
    return store_dir / asset / f"{TEACHER}.parquet"


def export(store_dir: Path, out: Path, target: ExportTarget, corrected: Path | None = None, raw: Path | None = None, **kw):
    return export_partition(
        corrected or table(store_dir, "corrected_traces"), LocalBlobStore(out), "", target, teacher=TEACHER,
        raw=raw or table(store_dir, "raw_traces"), dropped=table(store_dir, "dropped_traces"), **kw,
    )


def card_of(folder: Path) -> dict:
    head, body = parse_card((folder / CARD_NAME).read_text())
    assert body.startswith("# DLCoT SFT data")
    return head


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def sharegpt_as_messages(conversations: list[dict], roles: dict | None = None) -> list[dict]:
    roles = roles or {}
    return [{"role": roles.get(t["from"], t["from"]), "content": t["value"]} for t in conversations]


def test_jsonl_and_parquet_exports_load_with_datasets_and_their_card_is_true(store_dir, tmp_path):
    import datasets

    corrected = pl.read_parquet(table(store_dir, "corrected_traces"))
    raw = pl.read_parquet(table(store_dir, "raw_traces"))
    dropped = pl.read_parquet(table(store_dir, "dropped_traces"))
    n = corrected.height
    want_messages = [[dict(m) for m in msgs] for msgs in corrected["messages"].to_list()]
    for fmt in ("jsonl", "parquet"):
        for style in ("messages", "sharegpt"):
            target = ExportTarget(fmt, style)
            out = tmp_path / target.name
            rep = export(store_dir, out, target, batch_size=5, shard_rows=16)
            assert rep.rows == n and rep.uri == str(out)
            # the Hub layout: shards named -of-N, found through the card's configs block, row count verified
            shards = [f for f in files_in(out) if f.startswith("data/")]
            assert shards == [f"data/train-{i:05d}-of-{math.ceil(n / 16):05d}.{fmt}" for i in range(math.ceil(n / 16))]
            ds = datasets.load_dataset(str(out), split="train")
            assert ds.num_rows == n and ds["id"] == corrected["id"].to_list()
            if style == "messages":
                assert ds["messages"] == want_messages
            else:
                assert {t["from"] for conv in ds["conversations"] for t in conv} == {"human", "gpt"}
                assert [sharegpt_as_messages(c, ROLES) for c in ds["conversations"]] == want_messages
            assert ds["final_answer"] == corrected["final_answer"].to_list()
            assert set(ds["reference_source"]) == {"given"}  # no reference_source column anywhere: given

            head = card_of(out)
            meta = head["dlcot"]
            assert head["dataset_info"]["splits"][0]["num_examples"] == n
            assert sorted(meta["files"]) == files_in(out)
            assert meta["rows"] == n and meta["teacher"] == TEACHER and meta["style"] == style
            assert meta["engine_version"] == ENGINE_VERSION and meta["policy"] == "default"
            assert meta["reference_sources"] == {"given": n}
            assert meta["ingested_rows"] == raw.height
            assert meta["dropped_by_reason"] == dict(dropped.group_by("reason").len().iter_rows())
            per_file = dict(raw.group_by("source_file").len().iter_rows())
            assert {s["file"]: s["ingested"] for s in meta["sources"]} == per_file and len(per_file) == 2
            assert sum(s["exported"] for s in meta["sources"]) == n
            assert meta["tokens"]["seq_tokens"]["max"] == corrected["seq_tokens"].max()
            assert meta["tokens"]["corrected_tokens"]["count"] == n


@pytest.fixture(scope="module")
def tiny_base(smollm2_dir, tmp_path_factory):
    pytest.importorskip("trl")
    from dlcot_dagster.domain.students.sft import tiny_model

    return tiny_model(smollm2_dir, tmp_path_factory.mktemp("tiny") / "base")


def trl_input_ids(ds, base, out: Path, rows: int = 6) -> list[list[int]]:
    """The token ids TRL's SFTTrainer prepares from (the first rows of) a dataset, after one collated batch proves
    the columns load."""
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    ds = ds.select(range(min(rows, ds.num_rows)))
    tok = AutoTokenizer.from_pretrained(str(base))
    args = SFTConfig(output_dir=str(out), max_length=32_768, per_device_train_batch_size=2, report_to="none",
                     use_cpu=True, disable_tqdm=True)
    trainer = SFTTrainer(model=str(base), args=args, train_dataset=ds, processing_class=tok)
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["input_ids"].shape[0] == 2
    return list(trainer.train_dataset["input_ids"])


def test_hf_folder_and_every_style_read_by_load_from_disk_and_trl(store_dir, tmp_path, tiny_base):
    import datasets
    from transformers import AutoTokenizer

    corrected = pl.read_parquet(table(store_dir, "corrected_traces"))
    tok = AutoTokenizer.from_pretrained(str(tiny_base))

    hf = tmp_path / "hf"
    rep = export(store_dir, hf, ExportTarget("hf", "messages"), batch_size=8)
    assert {"dataset_info.json", "state.json", CARD_NAME} <= set(rep.files)
    ds = datasets.load_from_disk(str(hf))
    assert ds.num_rows == corrected.height and ds["id"] == corrected["id"].to_list()
    assert "configs" not in card_of(hf)  # a save_to_disk folder is not read through data_files
    ids = trl_input_ids(ds, tiny_base, tmp_path / "t1")
    # TRL renders each conversation with the chat template: the same ids as the template applied to the messages
    assert len(ids) == 6
    for i in range(len(ids)):
        msgs = [dict(m) for m in corrected["messages"][i]]
        assert ids[i] == tok.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]

    # ShareGPT with user/assistant roles: TRL converts from/value itself, to the same ids
    ua = tmp_path / "sharegpt-ua"
    export(store_dir, ua, ExportTarget("jsonl", "sharegpt", "user_assistant"))
    assert trl_input_ids(datasets.load_dataset(str(ua), split="train"), tiny_base, tmp_path / "t2") == ids
    # ShareGPT with human/gpt roles (LLaMA-Factory's default): the map the card documents, then the same ids
    hg = tmp_path / "sharegpt-hg"
    export(store_dir, hg, ExportTarget("parquet", "sharegpt"))
    assert 'roles = {"human": "user", "gpt": "assistant"}' in (hg / CARD_NAME).read_text()
    mapped = datasets.load_dataset(str(hg), split="train").map(
        lambda r: {"conversations": [{"from": ROLES.get(m["from"], m["from"]), "value": m["value"]} for m in r["conversations"]]}
    )
    assert trl_input_ids(mapped, tiny_base, tmp_path / "t3") == ids


def test_reference_source_comes_from_corrected_else_raw_else_given(store_dir, tmp_path):
    corrected = pl.read_parquet(table(store_dir, "corrected_traces"))
    raw = pl.read_parquet(table(store_dir, "raw_traces"))
    cycle = ["given", "extracted", "joined", "majority", "self", None]

    # corrected_traces has the column (a null counts as given)
    values = [cycle[i % len(cycle)] for i in range(corrected.height)]
    with_col = tmp_path / "corrected_ref.parquet"
    corrected.with_columns(pl.Series("reference_source", values, pl.String)).write_parquet(with_col, row_group_size=5)
    rep = export(store_dir, tmp_path / "a", ExportTarget("parquet"), corrected=with_col, batch_size=4)
    got = pl.read_parquet(tmp_path / "a" / "data")
    assert got["reference_source"].to_list() == [v or "given" for v in values]
    expected = dict(pl.Series([v or "given" for v in values]).value_counts().iter_rows())
    assert rep.reference_sources == expected and card_of(tmp_path / "a")["dlcot"]["reference_sources"] == expected
    n_self = expected["self"]
    assert f"**{n_self:,} rows" in (tmp_path / "a" / CARD_NAME).read_text()  # the self-reference warning

    # only raw_traces has it: taken by id, in step with raw_traces
    by_id = {i: cycle[k % 5] for k, i in enumerate(raw["id"].to_list())}
    raw_col = tmp_path / "raw_ref.parquet"
    raw.with_columns(pl.Series("reference_source", [by_id[i] for i in raw["id"]])).write_parquet(raw_col, row_group_size=3)
    without = tmp_path / "corrected_without_ref.parquet"  # a corrected_traces written before the column existed
    corrected.drop("reference_source", strict=False).write_parquet(without)
    export(store_dir, tmp_path / "b", ExportTarget("jsonl"), corrected=without, raw=raw_col, batch_size=6)
    got = pl.read_ndjson(tmp_path / "b" / "data" / "train-00000-of-00001.jsonl")
    assert got["reference_source"].to_list() == [by_id[i] for i in got["id"]]
    assert "self" in set(got["reference_source"])


def test_an_empty_partition_exports_a_card_and_empty_data(store_dir, tmp_path):
    import datasets

    empty = tmp_path / "empty.parquet"
    pl.read_parquet(table(store_dir, "corrected_traces")).head(0).write_parquet(empty)
    hf = export(store_dir, tmp_path / "hf", ExportTarget("hf"), corrected=empty)
    assert hf.rows == 0 and datasets.load_from_disk(str(tmp_path / "hf")).num_rows == 0
    pq_rep = export(store_dir, tmp_path / "pq", ExportTarget("parquet"), corrected=empty)
    assert pl.read_parquet(tmp_path / "pq" / pq_rep.files[0]).height == 0
    assert card_of(tmp_path / "pq")["dlcot"]["rows"] == 0
    assert "This partition has no rows" in (tmp_path / "pq" / CARD_NAME).read_text()


def test_export_streams_bounded_batches(store_dir, tmp_path, monkeypatch):
    seen: list[int] = []
    real = export_writer.to_arrow

    def spy(batch, target):
        seen.append(batch.height)
        return real(batch, target)

    monkeypatch.setattr(export_writer, "to_arrow", spy)
    n = pq.ParquetFile(table(store_dir, "corrected_traces")).metadata.num_rows
    rep = export(store_dir, tmp_path / "s", ExportTarget("jsonl"), batch_size=4, shard_rows=10)
    assert max(seen) == 4 and sum(seen) == n == rep.rows and len(seen) == math.ceil(n / 4)
    assert rep.rows_per_s > 0 and rep.bytes == sum((tmp_path / "s" / f).stat().st_size for f in rep.files)


def test_reexport_replaces_only_the_files_of_the_previous_export(store_dir, tmp_path):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "data" / "keep.csv").write_text("mine too")
    first = export(store_dir, out, ExportTarget("parquet"), shard_rows=5)
    assert len([f for f in first.files if f.startswith("data/train-")]) > 2
    second = export(store_dir, out, ExportTarget("parquet"), shard_rows=10_000)
    assert files_in(out) == sorted([*second.files, "notes.txt", "data/keep.csv"])
    assert pl.read_parquet(out / "data" / "train-00000-of-00001.parquet").height == second.rows


def test_tables_out_of_step_fail_naming_the_row(store_dir, tmp_path):
    raw = pl.read_parquet(table(store_dir, "raw_traces"))
    kept_ids = pl.read_parquet(table(store_dir, "corrected_traces"), columns=["id"])["id"]
    gone = kept_ids[len(kept_ids) // 2]
    short = tmp_path / "raw_short.parquet"
    raw.filter(pl.col("id") != gone).write_parquet(short)
    with pytest.raises(ExportError, match="out of step") as err:
        export(store_dir, tmp_path / "x", ExportTarget("jsonl"), raw=short)
    assert repr(gone) in str(err.value)
    assert not (tmp_path / "x" / CARD_NAME).exists()  # nothing published
    with pytest.raises(ExportError, match="format 'csv'"):
        ExportTarget("csv")


def test_cli_exports_a_stored_partition(store_dir, tmp_path, capsys):
    import datasets

    out = tmp_path / "cli"
    rc = main(["export", "--teacher", TEACHER, "--format", "jsonl", "--style", "sharegpt", "--out", str(out),
               "--storage", str(store_dir)])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    n = pq.ParquetFile(table(store_dir, "corrected_traces")).metadata.num_rows
    assert report["rows"] == n and report["target"] == "sharegpt-jsonl" and report["rows_per_s"] > 0
    assert datasets.load_dataset(str(out), split="train").num_rows == n
    assert main(["export", "--teacher", "nobody", "--format", "hf", "--out", str(tmp_path / "n"),
                 "--storage", str(store_dir)]) == 2
    assert "no corrected_traces for teacher 'nobody'" in capsys.readouterr().err


def test_cli_reads_s3_storage_and_writes_s3(store_dir, tmp_path, s3, monkeypatch, capsys):
    import datasets

    monkeypatch.setenv("DLCOT_S3_ENDPOINT_URL", s3.endpoint)
    src_prefix, dst_prefix = s3.new_prefix("storage"), s3.new_prefix("sft")
    src = blob_store_from_url(s3.url(src_prefix), s3.client())
    for asset in ("raw_traces", "corrected_traces", "dropped_traces"):
        src.put_file(f"{asset}/{TEACHER}.parquet", table(store_dir, asset))
    rc = main(["export", "--teacher", TEACHER, "--format", "parquet", "--out", s3.url(dst_prefix),
               "--storage", s3.url(src_prefix), "--shard-rows", "10"])
    assert rc == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["uri"] == s3.url(dst_prefix)
    dst = blob_store_from_url(s3.url(dst_prefix), s3.client())
    assert dst.list_keys() == sorted(report["files"])
    local = tmp_path / "dl"
    for key in dst.list_keys():
        dst.get_file(key, local / key)
    ds = datasets.load_dataset(str(local), split="train")
    assert ds["id"] == pl.read_parquet(table(store_dir, "corrected_traces"), columns=["id"])["id"].to_list()
    assert card_of(local)["dlcot"]["sources"]  # raw_traces was read from S3 too


def test_sft_exports_asset_lineage_and_materialization(store_dir, tmp_path):
    from dlcot_dagster.defs.dlcot.assets import corrected_traces, pruned_solutions, segmented_traces
    from dlcot_dagster.defs.export.assets import sft_exports
    from dlcot_dagster.defs.ingest.assets import raw_traces
    from dlcot_dagster.defs.benchmarks import BenchmarksResource
    from dlcot_dagster.defs.decontam.assets import decontam_verdicts
    from dlcot_dagster.defs.decontam.resources import DecontamResource
    from dlcot_dagster.defs.io_managers import ParquetIOManager
    from dlcot_dagster.defs.partitions import teacher_partitions
    from dlcot_dagster.defs.dlcot.resources import DLCoTEngineResource
    from dlcot_dagster.defs.resources import BlobStoreResource, LandingZoneResource, TokenizerResource

    graph = defs.resolve_asset_graph()
    assert graph.get(SFT_EXPORTS).parent_keys == {CORRECTED_TRACES, RAW_TRACES, DROPPED_TRACES}
    assert graph.get(SFT_EXPORTS).partitions_def == teacher_partitions
    assert SFT_EXPORTS in defs.resolve_job_def(REPROCESS_JOB).asset_layer.executable_asset_keys

    blobs = tmp_path / "blobs"
    targets = [{"format": "hf", "style": "messages"}, {"format": "jsonl", "style": "sharegpt"}]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        result = dg.materialize(
            [raw_traces, decontam_verdicts, segmented_traces, pruned_solutions, corrected_traces, sft_exports], selection=[SFT_EXPORTS], partition_key=TEACHER,
            instance=instance,
            resources={"parquet_io_manager": ParquetIOManager(base_dir=str(store_dir)),
                       "blob_store": BlobStoreResource(url=str(blobs)), "tokenizer": TokenizerResource(),
                       # needed by the upstream definitions only (they are not run: selection is sft_exports)
                       "landing_zone": LandingZoneResource(root=str(tmp_path)), "dlcot_engine": DLCoTEngineResource(),
                       "benchmarks": BenchmarksResource(), "decontam": DecontamResource()},
            run_config={"ops": {"sft_exports": {"config": {"targets": targets, "shard_rows": 16}}}},
        )
        assert result.success
        check = result.get_asset_check_evaluations()[0]
        assert check.check_name == CHECK_EXPORT_COMPLETE and check.passed
        md = result.asset_materializations_for_node("sft_exports")[0].metadata
    n = pq.ParquetFile(table(store_dir, "corrected_traces")).metadata.num_rows
    assert md["dagster/row_count"].value == n and [e["rows"] for e in md["exports"].value] == [n, n]
    root = blobs / "exports" / TEACHER
    assert sorted(p.name for p in root.iterdir()) == ["messages-hf", "sharegpt-jsonl"]
    assert card_of(root / "messages-hf")["dlcot"]["tokenizer"] == "qwen2"
    assert md["uri_sharegpt-jsonl"].value == str(root / "sharegpt-jsonl")


def test_stored_tables_are_read_with_memory_of_one_row_group(tmp_path):
    """stream.iter_batches (exports, stages) holds about one row group of Arrow memory, not the bytes read so far."""
    import pyarrow as pa

    from dlcot_dagster.domain.stream import iter_batches

    path = tmp_path / "t.parquet"
    n, per_group = 4000, 100
    table = pa.table({"id": [str(i) for i in range(n)], "text": [os.urandom(500).hex() for _ in range(n)]})
    pq.write_table(table, path, row_group_size=per_group)  # 40 row groups of ~100 kB (incompressible text)
    size = path.stat().st_size
    base, peak, rows = pa.total_allocated_bytes(), 0, 0
    for batch in iter_batches(path, 64, columns=["id", "text"]):
        rows += batch.height
        peak = max(peak, pa.total_allocated_bytes() - base)
    assert rows == n
    assert peak < size / 8, (peak, size)  # a whole-file reader keeps ~size
