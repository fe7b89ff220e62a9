"""Every real trace file in ../shared/data/traces ingests, with every record accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlcot_dagster.domain.ingest import accounting_problems, ingest_path
from dlcot_dagster.domain.ingest.schema import Layout

from .conftest import read_jsonl, shared_data_dir, trace_files

FILES = trace_files()


def _raw_records(path: Path) -> list:
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    return read_jsonl(path)


def _non_blank_lines(path: Path) -> list[int]:
    return [i for i, line in enumerate(path.read_bytes().split(b"\n"), start=1) if line.strip()]


def test_shared_trace_files_present(shared_data):
    assert len(FILES) >= 20, f"expected the shared trace files, found {len(FILES)} under {shared_data_dir()}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_trace_file_ingests_with_right_record_count(path: Path, token_counter, shared_data):
    raw = _raw_records(path)
    result = ingest_path(path, "t", token_counter)
    assert result.records_read == len(raw), f"{path.name}: read {result.records_read} records, file has {len(raw)}"
    assert result.traces.height + result.rejects.height == len(raw)
    assert accounting_problems(result.traces, result.rejects, result.files) == []
    assert result.traces["id"].n_unique() == result.traces.height

    # every reject must be a record that really is broken, and say why
    for rej in result.rejects.iter_rows(named=True):
        idx = rej["source_line"] - 1
        if path.suffix == ".jsonl":
            idx = _non_blank_lines(path).index(rej["source_line"])
        rec = raw[idx]
        why = f"{path.name}:{rej['source_line']} rejected for {rej['reason']} on field {rej['field']}: {rej['detail']}"
        if rej["reason"] == "empty_field":
            assert str(rec[rej["field"]]).strip() == "", why + " but the field is not empty"
        elif rej["reason"] == "missing_field":
            assert rej["field"] not in rec, why + " but the field is present"
        else:
            pytest.fail("unexpected reject in real data: " + why)

    # token counts are real: positive for every kept row and consistent
    assert (result.traces["raw_tokens"] > 0).all()
    assert (
        result.traces["raw_tokens"] == result.traces["thinking_tokens"] + result.traces["response_tokens"]
    ).all()


def test_known_broken_record_is_the_only_reject(token_counter, shared_data):
    """Across all shared traces exactly one record is unusable: Sky-T1 27B math500 line 98 has an empty `gt`."""
    rejects = []
    for path in FILES:
        r = ingest_path(path, "t", token_counter)
        rejects += [(path.name, row["source_line"], row["reason"], row["field"]) for row in r.rejects.iter_rows(named=True)]
    assert rejects == [("Sky-T1-math-correct-5K-27B__math500.jsonl", 98, "empty_field", "gt")]


SKY = [p for p in FILES if "sky-t1" in str(p)]


@pytest.mark.parametrize("path", SKY, ids=lambda p: p.name)
def test_sky_t1_unclosed_thought_blocks_are_flagged_not_dropped(path: Path, shared_data):
    raw = read_jsonl(path)
    result = ingest_path(path, "sky", None)
    rows = {r["source_line"]: r for r in result.traces.iter_rows(named=True)}
    lines = _non_blank_lines(path)
    flagged = 0
    for line, rec in zip(lines, raw):
        if line not in rows:
            continue
        text = rec["code"][0]
        row = rows[line]
        if "<|begin_of_thought|>" in text:
            assert row["layout"] == Layout.BEGIN_OF_THOUGHT.value
            assert row["thinking_closed"] == ("<|end_of_thought|>" in text), f"{path.name}:{line}"
            flagged += not row["thinking_closed"]
            assert "<|begin_of_thought|>" not in row["thinking"]
            assert "<|end_of_thought|>" not in row["thinking"]
    unclosed_in_file = sum(
        1 for rec in raw if "<|begin_of_thought|>" in rec["code"][0] and "<|end_of_thought|>" not in rec["code"][0]
    )
    assert flagged == unclosed_in_file
    # kept + rejected == every line: the unclosed ones are kept, not dropped
    assert result.records_read == len(raw)


def test_layouts_detected_per_source(token_counter, shared_data):
    t = shared_data_dir() / "traces"
    expect = {
        "aime2024_gemini-2.0-flash-thinking.jsonl": Layout.SEPARATE_FIELDS,
        "limo_deepseek-r1-distill-qwen-32b.jsonl": Layout.FINAL_ANSWER_TAIL,
        "sat_deepseek-r1.json": Layout.THINK_TAGS,
        "math500_deepseek-r1.jsonl": Layout.SEPARATE_FIELDS,
    }
    for name, layout in expect.items():
        r = ingest_path(t / name, "t", None)
        assert set(r.traces["layout"].to_list()) == {layout.value}, name
    # think-tag splitting: SAT responses put reasoning before </think> and the answer after
    sat = json.loads((t / "sat_deepseek-r1.json").read_text())
    r = ingest_path(t / "sat_deepseek-r1.json", "t", None)
    for rec, row in zip(sat, r.traces.iter_rows(named=True)):
        before, _, after = rec["deepseek-reasoner (response)"].partition("</think>")
        assert row["thinking"] == before.strip("\n")
        assert row["final_response"] == (after.strip() or None)
        assert row["reference_answer"] == rec["Correct Answer"].strip()
    # the LIMO thinking ends before its **Final Answer** tail, which becomes the final response
    limo = ingest_path(t / "limo_deepseek-r1-distill-qwen-32b.jsonl", "t", None)
    assert all("**Final Answer**" not in x for x in limo.traces["thinking"].to_list())
    assert all(x.startswith("**Final Answer**") for x in limo.traces["final_response"].to_list())


def test_truncated_distill_trace_without_close_tag_is_flagged(shared_data):
    """math500 R1-distill-Qwen-7B has one response that never closes </think> (empty reasoning_trace)."""
    path = shared_data_dir() / "traces" / "math500_deepseek-r1-distill-qwen-7b.jsonl"
    raw = read_jsonl(path)
    r = ingest_path(path, "t", None)
    expected_unclosed = sum(1 for rec in raw if not rec["reasoning_trace"] and "</think>" not in rec["full_response"])
    assert expected_unclosed >= 1
    assert int((~r.traces["thinking_closed"]).sum()) == expected_unclosed
