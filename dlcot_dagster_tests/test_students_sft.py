"""SFT of a student (TRL SFTTrainer) on real corrected traces: the loss falls, the checkpoint loads and generates."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from dlcot_dagster.domain.answers import AnswerChecker
from dlcot_dagster.domain.dlcot import RulesEngine
from dlcot_dagster.domain.pipeline import correct_frame, prune_frame, segment_frame
from dlcot_dagster.domain.students.sft import (
    SFTSettings,
    dir_hash,
    fetch_checkpoint,
    prompt_completion_rows,
    read_manifest,
    smoke_generate,
    store_checkpoint,
    tiny_model,
    train_sft,
    training_messages,
)
from dlcot_dagster.domain.storage import LocalBlobStore, S3BlobStore

from .conftest import shared_data_dir


def shared_raw(tmp_path, name: str = "math500_deepseek-r1.jsonl", teacher: str = "r1", n: int = 24) -> pl.DataFrame:
    """raw_traces rows of a shared trace file (linked, never copied), ingested as the raw_traces asset does."""
    from dlcot_dagster.domain.ingest import iter_outcomes, list_data_files, load_spec
    from dlcot_dagster.domain.ingest.schema import TraceRecord, traces_frame
    from dlcot_dagster.domain.tokens import TokenCounter

    folder = tmp_path / teacher
    folder.mkdir(parents=True)
    os.symlink(shared_data_dir() / "traces" / name, folder / name)
    files = [(p, p.relative_to(folder).as_posix()) for p in list_data_files(folder)]
    outcomes = iter_outcomes(files, teacher, load_spec(folder), TokenCounter("qwen2"))
    return traces_frame([o for o in outcomes if isinstance(o, TraceRecord)]).head(n)


def dlcot_tables(raw: pl.DataFrame):
    """corrected_traces of ``raw`` through the domain pipeline (rules engine, default policy)."""
    from dlcot_dagster.domain.tokens import TokenCounter

    engine = RulesEngine("default", AnswerChecker())
    seg = segment_frame(raw, engine)
    pruned = prune_frame(raw, seg, engine)
    return correct_frame(raw, pruned, engine, TokenCounter("qwen2")).kept


@pytest.fixture(scope="module")
def r1_tables(tmp_path_factory):
    raw = shared_raw(tmp_path_factory.mktemp("landing"))
    kept = dlcot_tables(raw)
    assert kept.height > 0
    return raw, kept


@pytest.fixture(scope="module")
def tiny_base(smollm2_dir, tmp_path_factory):
    return tiny_model(smollm2_dir, tmp_path_factory.mktemp("tiny") / "base")


def test_variants_build_the_same_layout(r1_tables):
    raw, kept = r1_tables
    dl = training_messages("dlcot", raw, kept)
    rw = training_messages("raw", raw, kept)
    assert len(dl) == kept.height and len(rw) == raw.height
    for conv in dl + rw:
        assert [m["role"] for m in conv][-1] == "assistant"
        assert conv[-1]["content"].lstrip().startswith("<think>") and "</think>" in conv[-1]["content"]
    rows = prompt_completion_rows(dl)
    assert all(r["completion"][0]["role"] == "assistant" and r["prompt"][-1]["role"] == "user" for r in rows)
    with pytest.raises(ValueError):
        training_messages("other", raw, kept)


def test_sft_lowers_loss_and_checkpoint_loads(r1_tables, tiny_base, tmp_path, s3):
    raw, kept = r1_tables
    convs = training_messages("dlcot", raw, kept)
    settings = SFTSettings(learning_rate=3e-3, max_steps=10, max_seq_len=256, per_device_train_batch_size=2,
                           gradient_accumulation_steps=1, lr_scheduler_type="constant", logging_steps=1)
    res = train_sft(convs, tiny_base, tmp_path / "ckpt", settings)
    assert res.steps == 10 and len(res.losses) == 10
    first = sum(l for _, l in res.losses[:3]) / 3
    last = sum(l for _, l in res.losses[-3:]) / 3
    assert last < first, res.losses
    assert res.train_tokens > 0
    print(f"\nSFT tiny qwen2: {res.train_tokens} tokens in {res.seconds:.1f}s = {res.tokens_per_s:.0f} tokens/s")

    # stored and fetched back, from a local folder and from S3 (SeaweedFS on loopback): the FETCHED copy carries
    # the trained checkpoint's hash, and it loads and generates
    h = dir_hash(res.output_dir)
    stores = {"local": LocalBlobStore(tmp_path / "blobs"), "s3": S3BlobStore.from_url(s3.url(s3.new_prefix("sft")), s3.client())}
    for name, store in stores.items():
        uri = store_checkpoint(store, "students/r1/dlcot", res.output_dir, {"content_hash": h, "base_model": str(tiny_base)})
        assert read_manifest(store, "students/r1/dlcot")["content_hash"] == h
        fetched = fetch_checkpoint(store, "students/r1/dlcot", tmp_path / f"dl-{name}")
        assert fetched.resolve() != Path(res.output_dir).resolve()
        if name == "local":
            assert str(fetched) == uri  # a local store is read in place
        else:
            assert fetched == tmp_path / "dl-s3" and uri.startswith("s3://")  # downloaded
        files = read_manifest(store, "students/r1/dlcot")["files"]
        assert dir_hash(fetched, files) == h, name
        # a local store's folder also holds the manifest; a download holds the listed files only
        extra = {"manifest.json"} if name == "local" else set()
        assert {p.relative_to(fetched).as_posix() for p in fetched.rglob("*") if p.is_file()} == set(files) | extra
        assert isinstance(smoke_generate(fetched, max_new_tokens=4), str)
    # a byte changed in the stored copy changes the fetched copy's hash: the comparison can fail
    weights = next(Path(stores["local"].uri("students/r1/dlcot")).glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-1] + bytes([weights.read_bytes()[-1] ^ 1]))
    files = read_manifest(stores["local"], "students/r1/dlcot")["files"]
    assert dir_hash(fetch_checkpoint(stores["local"], "students/r1/dlcot", tmp_path / "dl-again"), files) != h


def test_completion_only_loss_masks_the_prompt(r1_tables, tiny_base, tmp_path):
    """TRL masks the user turn: the completion mask covers the assistant turn only."""
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    raw, kept = r1_tables
    rows = prompt_completion_rows(training_messages("dlcot", raw, kept))[:2]
    tok = AutoTokenizer.from_pretrained(str(tiny_base))
    tr = SFTTrainer(model=str(tiny_base), args=SFTConfig(output_dir=str(tmp_path), max_length=4096, report_to="none",
                                                         use_cpu=True, completion_only_loss=True),
                    train_dataset=Dataset.from_list(rows), processing_class=tok)
    ex = tr.train_dataset[0]
    # TRL 1.16 stores the mask as labels (-100 = no loss); older versions as completion_mask
    mask = ex["completion_mask"] if "completion_mask" in ex else [int(l != -100) for l in ex["labels"]]
    assert 0 < sum(mask) < len(mask)
    first = mask.index(1)
    assert sum(mask[:first]) == 0 and "<think>" in tok.decode(ex["input_ids"][first:first + 20])
