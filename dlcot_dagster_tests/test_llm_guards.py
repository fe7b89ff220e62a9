"""Fidelity guards of the LLM steps, on the bundled sample traces (no model needed)."""

from __future__ import annotations

import json
import random

import pytest

from dlcot_dagster.defs.settings import SAMPLES_LANDING
from dlcot_dagster.domain.dlcot import RulesEngine
from dlcot_dagster.domain.dlcot.correct import apply_edits
from dlcot_dagster.domain.dlcot.types import SegmentKind
from dlcot_dagster.domain.llm.cache import LocalDirCache, cache_key
from dlcot_dagster.domain.llm.guards import anchor_split, edit_distance_chars, edits_for, exact_spans, find_quote
from dlcot_dagster.domain.llm.prompts import LabelReply, SplitReply, schema_of


def _thinkings() -> list[str]:
    rows = [json.loads(line) for line in (SAMPLES_LANDING / "demo-r1-style" / "traces.jsonl").read_text().splitlines() if line.strip()]
    return [r["response"].split("<think>")[1].split("</think>")[0] for r in rows]


THINK = _thinkings()[1]  # "We need x with 3x + 7 = 22. ... Therefore x = 5."


def test_quotes_are_found_exactly_or_modulo_whitespace():
    a = find_quote(THINK, "Subtract 7 from both sides")
    assert a is not None and THINK[a[0] : a[1]] == "Subtract 7 from both sides"
    b = find_quote(THINK, "“So the answer is   5.”")  # typographic quotes and extra spaces from a model
    assert b is not None and THINK[b[0] : b[1]] == "So the answer is 5."
    assert find_quote(THINK, "So the answer is 6.") is None


def _parts_of(text: str, bounds: list[tuple[str, int, int]]) -> list[tuple[str, str, str]]:
    return [(k, text[s : min(e, s + 25)], text[max(s, e - 20) : e]) for k, s, e in bounds]


def test_a_faithful_split_tiles_the_text():
    i = THINK.index("Wait, that's wrong")
    j = THINK.index("So the answer is 5.") + len("So the answer is 5.")
    k = THINK.index("Let me check")
    m = THINK.index("Therefore x = 5.")
    bounds = [("problem_understanding", 1, i - 2), ("solution", i, j), ("verification", k, m - 2), ("conclusion", m, len(THINK) - 1)]
    split = anchor_split(THINK, _parts_of(THINK, bounds))
    assert split.reason is None and split.coverage >= 0.9
    assert split.spans[0][1] == 0 and split.spans[-1][2] == len(THINK)
    assert all(a[2] == b[1] for a, b in zip(split.spans, split.spans[1:]))  # contiguous
    assert [k for k, _, _ in split.spans] == [SegmentKind.PROBLEM_UNDERSTANDING, SegmentKind.SOLUTION,
                                              SegmentKind.VERIFICATION, SegmentKind.CONCLUSION]


def test_unfaithful_splits_are_rejected():
    # quotes that are not in the text: nothing placed
    assert anchor_split(THINK, [("solution", "we compute the integral", "and get 12")]).reason == "no_parts_placed"
    # a split that only covers the beginning
    short = anchor_split(THINK, _parts_of(THINK, [("solution", 1, 120)]))
    assert short.reason == "low_coverage" and short.coverage < 0.9
    # kinds out of order
    half = len(THINK) // 2
    bad = anchor_split(THINK, _parts_of(THINK, [("verification", 1, half), ("solution", half + 1, len(THINK) - 1)]))
    assert bad.reason == "kind_order"
    nosol = anchor_split(THINK, _parts_of(THINK, [("problem_understanding", 1, len(THINK) - 1)]))
    assert nosol.reason == "no_solution"


def test_error_passages_must_be_verbatim():
    part = THINK
    assert exact_spans(part, ["3x = 22 - 7 = 14", ""]) == [(part.index("3x = 22 - 7 = 14"), part.index("3x = 22 - 7 = 14") + 16)]
    assert exact_spans(part, ["3x = 22 - 7 = 14", "x = 14 / 3"]) is None


@pytest.mark.parametrize("seed", range(20))
def test_rewrite_edits_map_back_onto_the_original(seed):
    rng = random.Random(seed)
    text = "\n\n".join(_thinkings())
    # kept pieces with gaps, as a pruning plan leaves them
    cuts = sorted(rng.sample(range(1, len(text) - 1), 8))
    pieces = [(cuts[i], cuts[i + 1]) for i in range(0, 8, 2)]
    base = "".join(text[a:b] for a, b in pieces)
    out = list(base)
    for _ in range(rng.randint(0, 6)):  # small word-level changes, as a model smoothing joins makes them
        p = rng.randrange(len(out))
        out[p : p + rng.randint(0, 5)] = list(rng.choice(["", "So ", "Then", ", ", "x"]))
    out = "".join(out)
    edits = edits_for(text, pieces, out)
    assert edits is not None and apply_edits(text, pieces, edits) == out
    assert all(any(a <= e.pos <= b for a, b in pieces) for e in edits)  # every edit inside a kept span


def test_edit_distance_counts_changed_characters():
    base = "So 3x = 15 and x = 5. So the answer is 5."
    assert edit_distance_chars(base, base)[0] == 0
    assert 0 < edit_distance_chars(base, base.replace("So the", "Thus the"))[0] <= 6
    assert edit_distance_chars(base, "Completely different text here.")[0] > 20


def test_reply_schemas_are_self_contained_and_bounded():
    s = schema_of(SplitReply, max_items={"parts": 3})
    assert "$defs" not in json.dumps(s) and "$ref" not in json.dumps(s)
    assert s["properties"]["parts"]["maxItems"] == 3
    lab = schema_of(LabelReply)
    assert set(lab["properties"]["label"]["enum"]) == {"correct", "incorrect", "incomplete"}


def test_rules_engine_output_has_no_error_spans_field():
    """The optional Segment.error_spans is omitted when empty: rule-engine output is byte-identical."""
    res = RulesEngine().run({"id": "x", "problem": "1+1?", "reference_answer": "2", "thinking": "1+1 = 2. So the answer is 2."})
    assert "error_spans" not in res.to_json()


def test_local_cache_round_trip(tmp_path):
    c = LocalDirCache(tmp_path / "c")
    k = cache_key("m", [{"role": "user", "content": "hi"}], None, {"max_tokens": 4})
    assert c.get(k) is None
    c.put(k, '{"text": "x"}')
    assert LocalDirCache(tmp_path / "c").get(k) == '{"text": "x"}' and len(c) == 1
    assert k != cache_key("m", [{"role": "user", "content": "hi"}], None, {"max_tokens": 5})
