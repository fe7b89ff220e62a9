"""Entry point of every rank under ``accelerate launch`` (see ``launch.py``): ``-m dlcot_dagster.domain.students.train_main --work-dir W``.

Reads ``W/records.jsonl`` and ``W/config.json``, runs ``train_sft`` (every rank; the trainer does DDP / FSDP /
DeepSpeed), and on the main process only writes ``W/result.json``.
"""

from __future__ import annotations

import argparse
import sys


def say(msg: str) -> None:
    """One write per line: the ranks share the launcher's stdout, and print's separate newline would interleave."""
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work-dir", required=True)
    args = ap.parse_args(argv)

    import torch
    import torch.distributed as dist
    from accelerate import PartialState

    from .launch import read_inputs, write_result
    from .sft import train_sft

    convs, base_model, output_dir, settings = read_inputs(args.work_dir)
    # the same (singleton) state the trainer's Accelerator sets up: cpu=True where there is no GPU, as the trainer's
    # use_cpu, so that torchrun's WORLD_SIZE > 1 makes it MULTI_CPU (gloo) and not a single process
    state = PartialState(cpu=not torch.cuda.is_available())
    say(f"[train_main] rank {state.process_index}/{state.num_processes} ({state.distributed_type}, {state.device}): "
        f"{len(convs)} conversations")
    res = train_sft(convs, base_model, output_dir, settings)
    if state.is_main_process:
        write_result(args.work_dir, res)
        say(f"[train_main] rank 0 wrote the result: {res.steps} steps, final loss {res.final_loss}")
    state.wait_for_everyone()
    if dist.is_available() and dist.is_initialized():  # a clean exit, no "process group was not destroyed" warning
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
