"""SFT in separate processes through ``accelerate launch``: multi-GPU DDP, FSDP or DeepSpeed ZeRO on a GPU node.

``train_sft_launched`` writes the training inputs into a work dir (``records.jsonl``: one conversation a line;
``config.json``: base model, output dir and the resolved ``SFTSettings``), runs

    python -m accelerate.commands.launch --num_processes N [--config_file F | --multi_gpu] [--mixed_precision P]
        --main_process_port PORT -m dlcot_dagster.domain.students.train_main --work-dir WORK

as a subprocess, streams its output line by line (to a callback and ``WORK/train.log``) and reads back the
``SFTResult`` that the rank-0 process writes to ``WORK/result.json``. A launch that fails (non-zero exit, or no
result) raises ``SFTLaunchError`` with the tail of the log.

Without a config file and with N > 1 processes the launcher passes ``--multi_gpu``: accelerate then starts the ranks
through torchrun (its ``--cpu`` flag starts a single process unless mpirun is used). On a machine without CUDA each
rank finds ``WORLD_SIZE`` > 1 and no GPU, so accelerate sets up ``MULTI_CPU`` (DDP over gloo): the same code path
trains on 2 CPU processes in the tests and on 8 GPUs (NCCL) on a GPU node. With a config file (``k8s/accelerate/``:
multi-GPU DDP, FSDP, DeepSpeed ZeRO-3) the file's ``distributed_type`` decides and ``--num_processes`` overrides
the file's count.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .sft import SFTResult, SFTSettings

LAUNCHERS = ("inprocess", "accelerate")
ENTRY_MODULE = "dlcot_dagster.domain.students.train_main"
RECORDS = "records.jsonl"
CONFIG = "config.json"
RESULT = "result.json"
LOG = "train.log"


class SFTLaunchError(RuntimeError):
    """``accelerate launch`` of the SFT failed; the message ends with the tail of its log."""


@dataclass
class LaunchSettings:
    launcher: str = "inprocess"  # inprocess | accelerate
    num_processes: int | None = None  # None: the visible GPUs, or 1
    accelerate_config: str | None = None  # an accelerate YAML (multi-GPU, FSDP, DeepSpeed ...)
    mixed_precision: str | None = None  # no | fp16 | bf16 | fp8 passed to accelerate launch; None: leave it
    main_process_port: int | None = None  # None: a free local port (two launches on one node must not collide)
    extra_args: tuple[str, ...] = ()  # more `accelerate launch` flags, passed as they are
    log_tail_lines: int = 60


def visible_gpus() -> int:
    try:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no torch, no GPUs
        return 0


def resolved_processes(launch: LaunchSettings) -> int:
    n = launch.num_processes if launch.num_processes is not None else (visible_gpus() or 1)
    if n < 1:
        raise ValueError(f"num_processes must be >= 1, got {n}")
    return n


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def resolve_config(path: str | os.PathLike) -> Path:
    """An accelerate YAML: as given (absolute, or relative to the working directory), else relative to the
    repository root (``k8s/accelerate/fsdp.yaml`` works from any directory of a checkout or the GPU image)."""
    p = Path(path).expanduser()
    if p.is_file():
        return p.resolve()
    root = Path(__file__).resolve().parents[3]  # <root>/dlcot_dagster/domain/students/launch.py
    if not p.is_absolute() and (root / p).is_file():
        return root / p
    raise FileNotFoundError(f"accelerate config {str(path)!r} not found (looked in {Path.cwd()} and {root})")


def launch_command(work_dir: str | os.PathLike, launch: LaunchSettings) -> list[str]:
    """The ``accelerate launch`` command line (argv) that trains on the inputs in ``work_dir``."""
    n = resolved_processes(launch)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(n), "--num_machines", "1"]
    if launch.accelerate_config:
        cmd += ["--config_file", str(resolve_config(launch.accelerate_config))]
    elif n > 1:
        cmd += ["--multi_gpu"]  # torchrun; MULTI_CPU (gloo) on a machine without CUDA
    if launch.mixed_precision:
        cmd += ["--mixed_precision", launch.mixed_precision]
    elif not launch.accelerate_config:
        cmd += ["--mixed_precision", "no"]  # the trainer's bf16 setting decides (it sets the accelerate env itself)
    if not launch.accelerate_config:
        cmd += ["--dynamo_backend", "no"]  # what accelerate assumes anyway, without its warning about defaults
    cmd += ["--main_process_port", str(launch.main_process_port or free_port())]
    cmd += list(launch.extra_args)
    cmd += ["-m", ENTRY_MODULE, "--work-dir", str(work_dir)]
    return cmd


def write_inputs(
    work_dir: str | os.PathLike,
    conversations: list[list[dict]],
    base_model: str | os.PathLike,
    output_dir: str | os.PathLike,
    settings: SFTSettings,
) -> Path:
    """``records.jsonl`` + ``config.json`` in ``work_dir`` (what ``train_main`` reads)."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    with open(work / RECORDS, "w", encoding="utf-8") as fh:
        for conv in conversations:
            fh.write(json.dumps(conv, ensure_ascii=False) + "\n")
    cfg = {"base_model": str(base_model), "output_dir": str(output_dir), "settings": asdict(settings)}
    (work / CONFIG).write_text(json.dumps(cfg, indent=2))
    return work


def read_inputs(work_dir: str | os.PathLike) -> tuple[list[list[dict]], str, str, SFTSettings]:
    work = Path(work_dir)
    with open(work / RECORDS, encoding="utf-8") as fh:
        convs = [json.loads(line) for line in fh.read().split("\n") if line.strip()]
    cfg = json.loads((work / CONFIG).read_text())
    return convs, cfg["base_model"], cfg["output_dir"], SFTSettings(**cfg["settings"])


def write_result(work_dir: str | os.PathLike, res: SFTResult) -> None:
    path = Path(work_dir) / RESULT
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(res), indent=2))
    tmp.replace(path)


def read_result(work_dir: str | os.PathLike) -> SFTResult:
    d = json.loads((Path(work_dir) / RESULT).read_text())
    d["losses"] = [tuple(x) for x in d.get("losses", [])]
    return SFTResult(**d)


def _tail(lines: deque[str]) -> str:
    return "\n".join(lines)


def train_sft_launched(
    conversations: list[list[dict]],
    base_model: str | os.PathLike,
    output_dir: str | os.PathLike,
    settings: SFTSettings | None = None,
    launch: LaunchSettings | None = None,
    *,
    work_dir: str | os.PathLike,
    on_line: Callable[[str], None] | None = None,
    timeout_s: float | None = None,
) -> SFTResult:
    """``train_sft`` in ``num_processes`` processes through ``accelerate launch``; the rank-0 result."""
    s = settings or SFTSettings()
    launch = launch or LaunchSettings(launcher="accelerate")
    work = write_inputs(work_dir, conversations, base_model, output_dir, s)
    (work / RESULT).unlink(missing_ok=True)
    cmd = launch_command(work, launch)
    # unbuffered lines; no progress bars (each redraw would be a log line of the step)
    quiet = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}
    env = {**quiet, **os.environ, "PYTHONUNBUFFERED": "1"}
    tail: deque[str] = deque(maxlen=launch.log_tail_lines)
    t0 = time.perf_counter()
    with open(work / LOG, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                bufsize=1, env=env, start_new_session=True)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                log.write(line + "\n")
                tail.append(line)
                if on_line is not None:
                    on_line(line)
                if timeout_s is not None and time.perf_counter() - t0 > timeout_s:
                    raise SFTLaunchError(f"accelerate launch ran past {timeout_s:.0f}s; last lines:\n{_tail(tail)}")
            rc = proc.wait()
        finally:
            if proc.poll() is None:  # an error above (or an interrupted step): end the launcher and its ranks
                import signal

                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SFTLaunchError(
            f"accelerate launch exited with code {rc} (command: {' '.join(cmd)}; full log: {work / LOG}); "
            f"last {len(tail)} lines:\n{_tail(tail)}"
        )
    if not (work / RESULT).is_file():
        raise SFTLaunchError(f"accelerate launch exited 0 but rank 0 wrote no {RESULT} (full log: {work / LOG}); "
                             f"last {len(tail)} lines:\n{_tail(tail)}")
    res = read_result(work)
    res.launcher = "accelerate"
    res.wall_seconds = wall
    return res


def run_sft(
    conversations: list[list[dict]],
    base_model: str | os.PathLike,
    output_dir: str | os.PathLike,
    settings: SFTSettings | None = None,
    launch: LaunchSettings | None = None,
    *,
    work_dir: str | os.PathLike | None = None,
    on_line: Callable[[str], None] | None = None,
) -> SFTResult:
    """In-process ``train_sft`` or ``train_sft_launched``, as ``launch.launcher`` says."""
    launch = launch or LaunchSettings()
    if launch.launcher == "inprocess":
        from .sft import train_sft

        return train_sft(conversations, base_model, output_dir, settings)
    if launch.launcher == "accelerate":
        if work_dir is None:
            work_dir = Path(output_dir).parent / "_launch"
        return train_sft_launched(conversations, base_model, output_dir, settings, launch, work_dir=work_dir, on_line=on_line)
    raise ValueError(f"unknown launcher {launch.launcher!r}; expected one of {LAUNCHERS}")
