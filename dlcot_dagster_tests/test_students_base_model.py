"""benchmark_scores with ``include_base_model``: the untuned base model is evaluated as a reference (rows with
variant ``base``), named by the students' manifest unless ``base_model`` is set.

Everything is real: the stored student is a tiny random Qwen2 (loaded by transformers for the smoke generation and
served by its own vLLM engine, started once for the module), the base model is the bundled SmolLM2-135M on the session's vLLM engine (the step
borrows it and leaves it running), and the base rows are checked against a direct greedy evaluation of that
engine. No stub: nothing here needs a fault that real vLLM cannot show.
"""

from __future__ import annotations

import json
import warnings

import dagster as dg
import polars as pl
import pytest

from dlcot_dagster.defs.benchmarks import BenchmarksResource
from dlcot_dagster.defs.io_managers import ParquetIOManager
from dlcot_dagster.defs.llm.resources import LLMConfig, LLMResource
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import BlobStoreResource
from dlcot_dagster.defs.students.assets import CHECK_PROBLEM_COUNTS, CHECK_SCORES_IN_RANGE, benchmark_scores, checkpoint_prefix
from dlcot_dagster.domain.answers import AnswerChecker
from dlcot_dagster.domain.llm import Sampling, VLLMOfflineClient, get_vllm_engine
from dlcot_dagster.domain.storage import LocalBlobStore
from dlcot_dagster.domain.students.benchmarks import BenchmarkSpec, load_benchmark
from dlcot_dagster.domain.students.evaluate import evaluate_problems
from dlcot_dagster.domain.students.sft import dir_hash, store_checkpoint, tiny_model

from .conftest import shared_data_dir

pytestmark = pytest.mark.slow

TEACHER = "t1"
MAX_TOKENS = 12
LIMIT = 2


@pytest.fixture(scope="module")
def student(smollm2_dir, tmp_path_factory):
    """A stored 'dlcot' student (a tiny random Qwen2) whose manifest names the bundled SmolLM2 as its base."""
    root = tmp_path_factory.mktemp("students")
    folder = tiny_model(smollm2_dir, root / "ckpt")
    store = LocalBlobStore(root / "blobs")
    prefix = f"{checkpoint_prefix(TEACHER, 'dlcot')}/tiny"
    store_checkpoint(store, prefix, folder, {"content_hash": dir_hash(folder), "base_model": "smollm2"})
    store.put_bytes(f"{checkpoint_prefix(TEACHER, 'dlcot')}/latest.json", json.dumps({"prefix": prefix}).encode())
    return root / "blobs", dir_hash(folder)


@pytest.fixture(scope="module")
def student_engine(vllm_engine, small_llm, student):
    """The student's vLLM engine, started once for the module: every materialization borrows it (and so leaves
    it running), instead of starting and releasing its own."""
    from dlcot_dagster.domain.students.engines import release_engine

    blobs, _ = student
    args = LLMConfig(**{**small_llm, "model": str(blobs / checkpoint_prefix(TEACHER, "dlcot") / "tiny")}).engine_args()
    engine = get_vllm_engine(args)
    yield engine
    release_engine(args)


def _run(tmp_path, blobs, small_llm, ev: dict):
    llm = LLMResource(**small_llm, cache_url="")  # the session engine's settings: the base model reuses it
    gsm8k = str(shared_data_dir() / "benchmarks" / "gsm8k.jsonl")
    config = {"limit": LIMIT, "max_tokens": MAX_TOKENS,
              "variants": ["dlcot"], **ev}
    with dg.instance_for_test() as instance, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        r = dg.materialize(
            [benchmark_scores], partition_key=TEACHER, instance=instance,
            resources={"parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path / "store")),
                       "blob_store": BlobStoreResource(url=str(blobs)), "llm": llm,
                       "benchmarks": BenchmarksResource(benchmarks=[{"name": "gsm8k", "path": gsm8k}])},
            run_config={"ops": {"benchmark_scores": {"config": config}}},
        )
    assert r.success
    checks = {c.check_name: c for c in r.get_asset_check_evaluations()}
    assert checks[CHECK_SCORES_IN_RANGE].passed and checks[CHECK_PROBLEM_COUNTS].passed
    records = pl.read_parquet(tmp_path / "store" / "benchmark_scores" / f"{TEACHER}.parquet")
    return r, records


def _direct(small_llm) -> list[str]:
    """The session engine's own greedy answers to the same prompts (what the base rows must hold)."""
    problems = load_benchmark(BenchmarkSpec("gsm8k", str(shared_data_dir() / "benchmarks" / "gsm8k.jsonl")), LIMIT)
    client = VLLMOfflineClient(LLMConfig(**small_llm).engine_args())
    records, _ = evaluate_problems(client, problems, sampling=Sampling(temperature=0.0, max_tokens=MAX_TOKENS, seed=0),
                                   checker=AnswerChecker())
    return records["response"].to_list()


def test_base_model_is_evaluated_as_a_reference(vllm_engine, student_engine, small_llm, student, tmp_path):
    engine, _ = vllm_engine
    blobs, student_hash = student
    r, records = _run(tmp_path, blobs, small_llm, {"include_base_model": True})
    assert sorted(set(records["variant"])) == ["base", "dlcot"] and records.height == 2 * LIMIT
    base = records.filter(pl.col("variant") == "base")
    dl = records.filter(pl.col("variant") == "dlcot")
    assert set(base["checkpoint_hash"]) == {"base:smollm2"} and set(dl["checkpoint_hash"]) == {student_hash}
    # the base rows are SmolLM2's answers (the manifest's base model), not the student's
    assert base["response"].to_list() == _direct(small_llm)
    assert base["response"].to_list() != dl["response"].to_list()
    assert (base["output_tokens"] > 0).all() and (dl["output_tokens"] > 0).all()
    md = r.asset_materializations_for_node("benchmark_scores")[0].metadata
    assert md["checkpoints"].value == {"dlcot": student_hash, "base": "base:smollm2"} and "base" in md["raw_vs_dlcot"].value
    table = json.loads((blobs / "scores" / TEACHER / "per_benchmark.json").read_text())
    assert {(t["variant"], t["problems"]) for t in table} == {("dlcot", LIMIT), ("base", LIMIT)}
    # the step borrowed the session's engine: it is still the process-wide engine for those settings
    assert get_vllm_engine(LLMConfig(**small_llm).engine_args()) is engine
    args = LLMConfig(**{**small_llm, "model": str(blobs / checkpoint_prefix(TEACHER, "dlcot") / "tiny")}).engine_args()
    assert get_vllm_engine(args) is student_engine


def test_base_model_is_off_by_default_and_can_be_named(vllm_engine, student_engine, small_llm, student, tmp_path):
    blobs, _ = student
    _, records = _run(tmp_path / "a", blobs, small_llm, {})
    assert set(records["variant"]) == {"dlcot"} and records.height == LIMIT
    named = str(small_llm["model"])  # a folder, named explicitly instead of the manifest's "smollm2"
    _, records = _run(tmp_path / "b", blobs, small_llm, {"include_base_model": True, "base_model": named, "variants": []})
    assert set(records["variant"]) == {"base"}
    assert set(records["checkpoint_hash"]) == {f"base:{named}"} and records["response"].to_list() == _direct(small_llm)
