"""benchmark_scores with ``include_base_model``: the untuned base model is evaluated as a reference (rows with
variant ``base``), named by the students' manifest unless ``base_model`` is set. Evaluation is stubbed (a fixed
reply per problem; the stub records which model each client serves), so no engine runs."""

from __future__ import annotations

import json
import warnings

import dagster as dg
import polars as pl

from dlcot_dagster.defs.benchmarks import BenchmarksResource
from dlcot_dagster.defs.io_managers import ParquetIOManager
from dlcot_dagster.defs.llm.resources import LLMResource
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import BlobStoreResource
from dlcot_dagster.defs.students.assets import CHECK_PROBLEM_COUNTS, benchmark_scores, checkpoint_prefix
from dlcot_dagster.domain.storage import LocalBlobStore
from dlcot_dagster.domain.students.sft import store_checkpoint

from .conftest import shared_data_dir

TEACHER = "t1"


def _run(tmp_path, monkeypatch, ev: dict):
    import dlcot_dagster.defs.students.assets as students
    from dlcot_dagster.domain.llm import ChatReply
    from dlcot_dagster.domain.students.evaluate import evaluate_problems as real_eval

    store = LocalBlobStore(tmp_path / "blobs")
    for variant in ("dlcot", "raw"):  # two stored "checkpoints" (their files are never loaded: smoke_generate is stubbed)
        folder = tmp_path / "ckpt" / variant
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"variant": variant}))
        prefix = f"{checkpoint_prefix(TEACHER, variant)}/abc{variant}"
        store_checkpoint(store, prefix, folder, {"content_hash": f"hash-{variant}", "base_model": "org/student-base"})
        store.put_bytes(f"{checkpoint_prefix(TEACHER, variant)}/latest.json", json.dumps({"prefix": prefix}).encode())

    served: list[str] = []

    class StubClient:
        def __init__(self, model):
            self.model_id, self.stats = model, None

        def chat_batch(self, requests, on_reply=None):
            return [ChatReply(text="\\boxed{18}", finish_reason="stop", completion_tokens=3) for _ in requests]

    def stub_eval(client, problems, **kw):
        served.append(client.model_id)
        return real_eval(StubClient(client.model_id), problems, **kw)

    monkeypatch.setattr(students, "smoke_generate", lambda *a, **kw: "ok")
    monkeypatch.setattr(students, "evaluate_problems", stub_eval)
    llm = LLMResource(backend="openai", base_url="http://127.0.0.1:9/v1", model="unused", cache_url="")
    gsm8k = str(shared_data_dir() / "benchmarks" / "gsm8k.jsonl")
    with dg.instance_for_test() as instance, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        r = dg.materialize(
            [benchmark_scores], partition_key=TEACHER, instance=instance,
            resources={"parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path / "store")),
                       "blob_store": BlobStoreResource(url=str(tmp_path / "blobs")), "llm": llm,
                       "benchmarks": BenchmarksResource(benchmarks=[{"name": "gsm8k", "path": gsm8k}])},
            run_config={"ops": {"benchmark_scores": {"config": {"limit": 2, **ev}}}},
        )
    assert r.success
    records = pl.read_parquet(tmp_path / "store" / "benchmark_scores" / f"{TEACHER}.parquet")
    return r, records, served


def test_base_model_is_evaluated_as_a_reference(tmp_path, monkeypatch):
    r, records, served = _run(tmp_path, monkeypatch, {"include_base_model": True})
    assert sorted(set(records["variant"])) == ["base", "dlcot", "raw"] and records.height == 6
    base = records.filter(pl.col("variant") == "base")
    assert set(base["checkpoint_hash"]) == {"base:org/student-base"} and base["correct"].to_list() == [True, False]
    assert served[-1] == "org/student-base" and len(served) == 3  # the manifest's base model, after both students
    md = r.asset_materializations_for_node("benchmark_scores")[0].metadata
    assert md["checkpoints"].value["base"] == "base:org/student-base" and "base" in md["raw_vs_dlcot"].value
    assert {c.check_name: c for c in r.get_asset_check_evaluations()}[CHECK_PROBLEM_COUNTS].passed
    table = json.loads((tmp_path / "blobs" / "scores" / TEACHER / "per_benchmark.json").read_text())
    assert {(t["variant"], t["problems"]) for t in table} == {("dlcot", 2), ("raw", 2), ("base", 2)}


def test_base_model_is_off_by_default_and_can_be_named(tmp_path, monkeypatch):
    _, records, served = _run(tmp_path / "a", monkeypatch, {})
    assert sorted(set(records["variant"])) == ["dlcot", "raw"] and len(served) == 2
    _, records, served = _run(tmp_path / "b", monkeypatch, {"include_base_model": True, "base_model": "other/base"})
    assert served[-1] == "other/base" and set(records.filter(pl.col("variant") == "base")["checkpoint_hash"]) == {"base:other/base"}
