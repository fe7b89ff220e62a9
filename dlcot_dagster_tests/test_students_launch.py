"""SFT through ``accelerate launch`` for real, on CPU: two ranks (torchrun, DDP over gloo) train the tiny random
Qwen2 on real corrected traces; rank 0 alone writes the result and the checkpoint, which loads and generates. A
failing launch (bad accelerate config, a rank that dies) raises ``SFTLaunchError`` with the tail of the log; the
``student_checkpoints`` asset trains through the launcher when its run config says ``launcher: accelerate``."""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path

import dagster as dg
import pytest

from dlcot_dagster.domain.students.launch import (
    LOG,
    LaunchSettings,
    SFTLaunchError,
    launch_command,
    resolve_config,
    run_sft,
    train_sft_launched,
)
from dlcot_dagster.domain.students.sft import SFTSettings, smoke_generate, tiny_model, training_messages

from .test_students_sft import dlcot_tables, shared_raw

REPO = Path(__file__).resolve().parent.parent
SETTINGS = SFTSettings(learning_rate=3e-3, max_steps=4, max_seq_len=192, per_device_train_batch_size=2,
                       gradient_accumulation_steps=1, lr_scheduler_type="constant", logging_steps=1)


@pytest.fixture(scope="module")
def tiny_base(smollm2_dir, tmp_path_factory):
    return tiny_model(smollm2_dir, tmp_path_factory.mktemp("tiny") / "base")


@pytest.fixture(scope="module")
def convs(tmp_path_factory):
    raw = shared_raw(tmp_path_factory.mktemp("landing"), n=16)
    return training_messages("dlcot", raw, dlcot_tables(raw))


def test_launch_command_and_config_defaults(monkeypatch):
    import dlcot_dagster.domain.students.launch as launch
    from dlcot_dagster.defs.students.assets import StudentSFTConfig

    cfg = StudentSFTConfig()
    assert (cfg.launcher, cfg.num_processes, cfg.accelerate_config, cfg.mixed_precision) == ("inprocess", None, None, None)
    with pytest.raises(ValueError, match="mixed_precision"):
        StudentSFTConfig(mixed_precision="fp4")

    cmd = launch_command("/w", LaunchSettings(launcher="accelerate", num_processes=2, main_process_port=29555))
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "2" and "--multi_gpu" in cmd  # torchrun; MULTI_CPU without CUDA
    assert cmd[cmd.index("--main_process_port") + 1] == "29555"
    assert cmd[-4:] == ["-m", "dlcot_dagster.domain.students.train_main", "--work-dir", "/w"]
    # a config file decides the distributed type; a relative path is found from the repository root too
    monkeypatch.chdir("/")
    cmd = launch_command("/w", LaunchSettings(launcher="accelerate", num_processes=8, accelerate_config="k8s/accelerate/fsdp.yaml"))
    assert cmd[cmd.index("--config_file") + 1] == str(REPO / "k8s/accelerate/fsdp.yaml") and "--multi_gpu" not in cmd
    # default ranks: the visible GPUs, or 1
    monkeypatch.setattr(launch, "visible_gpus", lambda: 4)
    assert launch_command("/w", LaunchSettings(launcher="accelerate"))[4] == "4"
    monkeypatch.setattr(launch, "visible_gpus", lambda: 0)
    cmd = launch_command("/w", LaunchSettings(launcher="accelerate"))
    assert cmd[4] == "1" and "--multi_gpu" not in cmd
    with pytest.raises(FileNotFoundError, match="no-such.yaml"):
        resolve_config("k8s/accelerate/no-such.yaml")
    with pytest.raises(ValueError, match="unknown launcher"):
        run_sft([], "m", "/o", launch=LaunchSettings(launcher="slurm"))


def test_shipped_accelerate_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {p.stem: load_config_from_file(str(p)).distributed_type.value for p in (REPO / "k8s" / "accelerate").glob("*.yaml")}
    assert kinds == {"multi-gpu": "MULTI_GPU", "fsdp": "FSDP", "deepspeed-zero3": "DEEPSPEED"}


def test_two_cpu_ranks_train_and_rank0_writes_once(convs, tiny_base, tmp_path):
    lines: list[str] = []
    t0 = time.perf_counter()
    res = train_sft_launched(convs, tiny_base, tmp_path / "ckpt", SETTINGS, LaunchSettings(launcher="accelerate", num_processes=2),
                             work_dir=tmp_path / "work", on_line=lines.append)
    wall = time.perf_counter() - t0
    assert res.launcher == "accelerate" and res.world_size == 2 and res.ranks == [0, 1]
    assert res.steps == 4 and [s for s, _ in res.losses] == [1, 2, 3, 4]
    assert all(math.isfinite(l) for _, l in res.losses) and res.final_loss < res.first_loss, res.losses
    assert res.train_tokens > 0 and res.examples == len(convs)
    log = (tmp_path / "work" / LOG).read_text()
    assert any("[train_main] rank 0 wrote the result" in l for l in lines)  # streamed while it ran
    assert "rank 0/2 (DistributedType.MULTI_CPU" in log and "rank 1/2 (DistributedType.MULTI_CPU" in log
    assert log.count("rank 0 wrote the result") == 1
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert "model.safetensors" in files and "tokenizer.json" in files
    assert "training_args.bin" not in files and "_trainer" not in files
    assert isinstance(smoke_generate(tmp_path / "ckpt", max_new_tokens=4), str)
    print(f"\naccelerate launch, 2 CPU ranks: {res.train_tokens} tokens in {res.seconds:.1f}s of training = "
          f"{res.tokens_per_s:.0f} tokens/s; launch wall {res.wall_seconds:.1f}s (test {wall:.1f}s)")


def test_bad_accelerate_config_fails_clearly(convs, tiny_base, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: NOT_A_TYPE\nnum_processes: 2\n")
    with pytest.raises(SFTLaunchError) as err:
        train_sft_launched(convs[:2], tiny_base, tmp_path / "ckpt", SETTINGS,
                           LaunchSettings(launcher="accelerate", num_processes=2, accelerate_config=str(bad)),
                           work_dir=tmp_path / "work")
    msg = str(err.value)
    assert "accelerate launch exited with code" in msg and "'NOT_A_TYPE' is not a valid DistributedType" in msg
    assert not (tmp_path / "ckpt").exists()


def test_a_failing_rank_fails_clearly(tmp_path):
    with pytest.raises(SFTLaunchError) as err:
        train_sft_launched([[{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]],
                           tmp_path / "no-such-model", tmp_path / "ckpt", SETTINGS,
                           LaunchSettings(launcher="accelerate", num_processes=1), work_dir=tmp_path / "work")
    assert "exited with code" in str(err.value) and "no-such-model" in str(err.value)


def test_student_checkpoints_through_accelerate(tmp_path, tiny_base):
    """The asset with ``launcher: accelerate`` (one rank: the launcher, entry point and result file end to end)."""
    from dlcot_dagster.defs.dlcot.resources import DLCoTEngineResource
    from dlcot_dagster.defs.io_managers import ParquetIOManager
    from dlcot_dagster.defs.partitions import teacher_partitions
    from dlcot_dagster.defs.resources import BlobStoreResource, LandingZoneResource, TokenizerResource
    from dlcot_dagster.defs.settings import SAMPLES_LANDING
    from dlcot_dagster.defs.students.assets import CHECK_CHECKPOINT_GENERATES, STUDENT_CHECKPOINTS, student_checkpoints

    from .test_students_dagster import TEACHER, UPSTREAM

    sft = {"base_model": str(tiny_base), "max_steps": 2, "max_seq_len": 128, "per_device_train_batch_size": 2,
           "gradient_accumulation_steps": 1, "learning_rate": 1e-3, "warmup_steps": 0.0, "limit": 4,
           "launcher": "accelerate", "num_processes": 1}
    res = {"landing_zone": LandingZoneResource(root=str(SAMPLES_LANDING)), "tokenizer": TokenizerResource(),
           "parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path / "store")), "dlcot_engine": DLCoTEngineResource(),
           "blob_store": BlobStoreResource(url=str(tmp_path / "blobs"))}
    with dg.instance_for_test() as instance, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        assert dg.materialize(UPSTREAM, partition_key=TEACHER, instance=instance, resources=res).success
        r = dg.materialize(
            [student_checkpoints, *UPSTREAM], selection=[STUDENT_CHECKPOINTS],
            partition_key=dg.MultiPartitionKey({"teacher": TEACHER, "variant": "dlcot"}),
            instance=instance, resources=res, run_config={"ops": {"student_checkpoints": {"config": sft}}},
        )
        assert r.success
        logged = [e.user_message for e in instance.all_logs(r.run_id)]
    assert any("[train_main] rank 0/1" in m for m in logged)  # the launch's output streamed into the step's log
    md = r.asset_materializations_for_node("student_checkpoints")[0].metadata
    assert md["launcher"].value == "accelerate" and md["world_size"].value == 1 and md["steps"].value == 2
    assert Path(md["uri"].value, "manifest.json").is_file()
    assert {c.check_name: c for c in r.get_asset_check_evaluations()}[CHECK_CHECKPOINT_GENERATES].passed
