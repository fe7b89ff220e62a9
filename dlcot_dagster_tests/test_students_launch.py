"""SFT through ``accelerate launch`` for real, on CPU: the ``student_checkpoints`` asset with ``launcher:
accelerate`` and two ranks (torchrun, DDP over gloo) trains the tiny random Qwen2 on the demo teacher's corrected
traces; both ranks run, rank 0 alone writes the result and the checkpoint, which loads and generates. A failing
launch (bad accelerate config, a rank that dies) raises ``SFTLaunchError`` with the tail of the log."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path

import dagster as dg
import pytest

from dlcot_dagster.domain.students.launch import (
    LaunchSettings,
    SFTLaunchError,
    launch_command,
    resolve_config,
    run_sft,
    train_sft_launched,
)
from dlcot_dagster.domain.students.sft import SFTSettings, tiny_model

REPO = Path(__file__).resolve().parent.parent
SETTINGS = SFTSettings(learning_rate=3e-3, max_steps=4, max_seq_len=192, per_device_train_batch_size=2,
                       gradient_accumulation_steps=1, lr_scheduler_type="constant", logging_steps=1)


@pytest.fixture(scope="module")
def tiny_base(smollm2_dir, tmp_path_factory):
    return tiny_model(smollm2_dir, tmp_path_factory.mktemp("tiny") / "base")


CONVS = [[{"role": "user", "content": f"What is {i} + {i}?"}, {"role": "assistant", "content": f"{2 * i}"}] for i in range(4)]


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


def test_bad_accelerate_config_fails_clearly(tiny_base, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: NOT_A_TYPE\nnum_processes: 2\n")
    with pytest.raises(SFTLaunchError) as err:
        train_sft_launched(CONVS, tiny_base, tmp_path / "ckpt", SETTINGS,
                           LaunchSettings(launcher="accelerate", num_processes=2, accelerate_config=str(bad)),
                           work_dir=tmp_path / "work")
    msg = str(err.value)
    assert "accelerate launch exited with code" in msg and "'NOT_A_TYPE' is not a valid DistributedType" in msg
    assert not (tmp_path / "ckpt").exists()


def test_a_failing_rank_fails_clearly(tmp_path):
    with pytest.raises(SFTLaunchError) as err:
        train_sft_launched(CONVS, tmp_path / "no-such-model", tmp_path / "ckpt", SETTINGS,
                           LaunchSettings(launcher="accelerate", num_processes=1), work_dir=tmp_path / "work")
    assert "exited with code" in str(err.value) and "no-such-model" in str(err.value)


def test_student_checkpoints_on_two_cpu_ranks(tmp_path, tiny_base):
    """The asset with ``launcher: accelerate``, 2 ranks (torchrun, DDP over gloo): both ranks train on the demo
    teacher's corrected traces, rank 0 alone writes the result and the checkpoint, which loads and generates."""
    from dlcot_dagster.defs.benchmarks import BenchmarksResource
    from dlcot_dagster.defs.decontam.resources import DecontamResource
    from dlcot_dagster.defs.dlcot.resources import DLCoTEngineResource
    from dlcot_dagster.defs.io_managers import ParquetIOManager
    from dlcot_dagster.defs.partitions import teacher_partitions
    from dlcot_dagster.defs.resources import BlobStoreResource, LandingZoneResource, TokenizerResource
    from dlcot_dagster.defs.settings import SAMPLES_LANDING
    from dlcot_dagster.defs.students.assets import CHECK_CHECKPOINT_GENERATES, STUDENT_CHECKPOINTS, student_checkpoints

    from .test_students_dagster import TEACHER, UPSTREAM

    sft = {"base_model": str(tiny_base), "max_steps": 4, "max_seq_len": 192, "per_device_train_batch_size": 2,
           "gradient_accumulation_steps": 1, "learning_rate": 3e-3, "warmup_steps": 0.0, "lr_scheduler_type": "constant",
           "launcher": "accelerate", "num_processes": 2}
    res = {"landing_zone": LandingZoneResource(root=str(SAMPLES_LANDING)), "tokenizer": TokenizerResource(),
           "parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path / "store")), "dlcot_engine": DLCoTEngineResource(),
           "blob_store": BlobStoreResource(url=str(tmp_path / "blobs")), "benchmarks": BenchmarksResource(),
           "decontam": DecontamResource()}
    with dg.instance_for_test() as instance, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        assert dg.materialize(UPSTREAM, partition_key=TEACHER, instance=instance, resources=res).success
        t0 = time.perf_counter()
        r = dg.materialize(
            [student_checkpoints, *UPSTREAM], selection=[STUDENT_CHECKPOINTS],
            partition_key=dg.MultiPartitionKey({"teacher": TEACHER, "variant": "dlcot"}),
            instance=instance, resources=res, run_config={"ops": {"student_checkpoints": {"config": sft}}},
        )
        step_s = time.perf_counter() - t0
        assert r.success
        logged = [e.user_message for e in instance.all_logs(r.run_id)]
    md = r.asset_materializations_for_node("student_checkpoints")[0].metadata
    assert md["launcher"].value == "accelerate" and md["world_size"].value == 2 and md["steps"].value == 4
    assert math.isfinite(md["final_loss"].value) and md["final_loss"].value < md["first_loss"].value
    manifest = json.loads(Path(md["uri"].value, "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["ranks"] == [0, 1] and len(manifest["losses"]) == 4
    assert "model.safetensors" in manifest["files"] and "training_args.bin" not in manifest["files"]
    assert not any(f.startswith("_trainer") for f in manifest["files"])
    # the ranks' output streamed into the step's log: both ranks ran, rank 0 alone wrote the result
    assert any("rank 0/2 (DistributedType.MULTI_CPU" in m for m in logged)
    assert any("rank 1/2 (DistributedType.MULTI_CPU" in m for m in logged)
    assert sum("rank 0 wrote the result" in m for m in logged) == 1
    assert {c.check_name: c for c in r.get_asset_check_evaluations()}[CHECK_CHECKPOINT_GENERATES].passed  # loads, generates
    print(f"\nstudent_checkpoints, accelerate launch, 2 CPU ranks: {md['train_tokens'].value} tokens, "
          f"{md['tokens_per_s'].value} tokens/s in training; step {step_s:.1f}s")
