"""Public long-CoT dataset layouts ingest with no spec: one fixture per dataset (fields and nesting as in the
dataset cards and loaders, content invented; see fixtures/layouts/README.md), the traps, one trace per
generation, teacher column groups, every reference source, no_thinking, and bad input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from dlcot_dagster.domain.ingest import accounting_problems, ingest_files, ingest_folder, ingest_path, iter_outcomes
from dlcot_dagster.domain.ingest import readers
from dlcot_dagster.domain.ingest.references import MajorityVotes, majority_answer
from dlcot_dagster.domain.ingest.schema import REJECT_SCHEMA, TRACE_SCHEMA, RejectRecord, TraceRecord
from dlcot_dagster.domain.ingest.sources import SourceSpec
from dlcot_dagster.domain.stream import BatchRunner, EngineSpec, ParquetSink, stream_ingest

FIX = Path(__file__).parent / "fixtures" / "layouts"


def ingest(name: str, spec: SourceSpec | None = None, counter=None):
    r = ingest_path(FIX / name, "t", counter, spec)
    assert accounting_problems(r.traces, r.rejects, r.files) == []
    return r


def rows(r) -> dict[str, dict]:
    return {row["id"]: row for row in r.traces.iter_rows(named=True)}


def sources(r) -> Counter:
    return Counter(r.traces["reference_source"].to_list())


#: fixture -> (traces, rejects, source formats, reference sources)
EXPECTED = {
    "openr1_math.parquet": (5, 0, {"openr1"}, {"given": 5}),
    "openthoughts_114k.jsonl": (3, 0, {"chat"}, {"majority": 2, "self": 1}),
    "openthoughts_114k_metadata.parquet": (2, 0, {"fields"}, {"extracted": 1, "self": 1}),
    "openthoughts3.parquet": (3, 0, {"chat"}, {"majority": 2, "self": 1}),
    "bespoke_stratos_17k.jsonl": (2, 0, {"chat"}, {"self": 2}),
    "light_r1_sft.json": (4, 0, {"chat"}, {"majority": 3, "self": 1}),
    "mixture_of_thoughts.parquet": (2, 0, {"chat"}, {"self": 2}),
    "nemotron_post_training.jsonl": (2, 1, {"nemotron"}, {"self": 2}),
    "openmathreasoning.parquet": (2, 0, {"response"}, {"given": 2}),
    "deepmath_103k.parquet": (5, 1, {"numbered_generations"}, {"given": 5}),
    "s1k.parquet": (2, 0, {"fields"}, {"extracted": 2}),
    "s1k_1_1.parquet": (4, 0, {"teacher_groups"}, {"extracted": 4}),
    "am_deepseek_r1_distilled.jsonl": (2, 0, {"chat"}, {"given": 1, "self": 1}),
    "am_thinking_v1_distilled.jsonl": (2, 0, {"chat"}, {"given": 2}),
    "limo.jsonl": (2, 0, {"response"}, {"given": 2}),
    "sharegpt.jsonl": (2, 0, {"chat"}, {"self": 2}),
}


def test_every_dataset_has_a_fixture():
    on_disk = {p.name for p in FIX.iterdir() if p.suffix in (".jsonl", ".json", ".parquet") and not p.name.startswith("trap_")}
    assert on_disk == set(EXPECTED)
    # JSONL, a JSON list file and Parquet all occur
    assert {Path(n).suffix for n in EXPECTED} == {".jsonl", ".json", ".parquet"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dataset_layout_ingests_with_no_spec(name, token_counter):
    n_traces, n_rejects, formats, refs = EXPECTED[name]
    r = ingest(name, counter=token_counter)
    assert (r.traces.height, r.rejects.height) == (n_traces, n_rejects), r.rejects.to_dicts()
    assert set(r.traces["source_format"]) == formats
    assert dict(sources(r)) == refs
    # every trace has a problem, a thinking without markers and a reference; tokens are counted
    for row in r.traces.iter_rows(named=True):
        assert row["problem"].strip() and row["reference_answer"].strip()
        for marker in ("<think>", "</think>", "<|begin_of_thought|>", "<|end_of_thought|>", "<answer>"):
            assert marker not in row["thinking"], (name, row["id"], marker)
        assert "<answer>" not in (row["final_response"] or "") and "<|end_of_solution|>" not in (row["final_response"] or "")
        assert row["raw_tokens"] > 0 and row["problem_tokens"] > 0
        assert "Let me read the problem again" in row["thinking"]  # the trace itself, not a prompt or a copy


def test_openr1_one_trace_per_generation_with_its_flags():
    r = ingest("openr1_math.parquet")
    got = rows(r)
    assert sorted(got) == [f"openr1_math/4c1e0a52-000{i}#{k}" for i, n in ((1, 2), (2, 3)) for k in range(n)]
    a0, a1 = got["openr1_math/4c1e0a52-0001#0"], got["openr1_math/4c1e0a52-0001#1"]
    assert (a0["generation"], a1["generation"]) == (0, 1)
    assert (a0["source_label"], a1["source_label"]) == (True, False)  # correctness_math_verify per generation
    assert a1["final_response"].endswith("$\\boxed{54}$.") and a1["reference_answer"] == "56"
    b = [got[f"openr1_math/4c1e0a52-0002#{k}"] for k in range(3)]
    assert [x["finish_reason"] for x in b] == ["stop", "length", "stop"]
    assert [x["reasoning_complete"] for x in b] == [True, False, True]
    assert [x["thinking_closed"] for x in b] == [True, False, True]  # the truncated one is flagged, not dropped
    assert {x["source_line"] for x in b} == {2}


def test_numbered_generation_columns_and_a_bad_one(token_counter):
    r = ingest("deepmath_103k.parquet", counter=token_counter)
    assert sorted(rows(r)) == ["deepmath_103k/L1#0", "deepmath_103k/L1#1", "deepmath_103k/L1#2",
                               "deepmath_103k/L2#0", "deepmath_103k/L2#2"]
    (rej,) = r.rejects.iter_rows(named=True)
    assert (rej["source_file"], rej["source_line"], rej["generation"], rej["reason"], rej["field"]) == (
        "deepmath_103k.parquet", 2, 1, "empty_field", "r1_solution_2")
    assert rej["record_id"] == "deepmath_103k/L2#1"
    # a </think> with no opening tag: the thinking is everything before it
    for row in r.traces.iter_rows(named=True):
        assert row["thinking_closed"] and row["thinking"].startswith("Let me read") and "\\boxed" in row["final_response"]


def test_teacher_column_groups_split_into_teachers():
    r = ingest("s1k_1_1.parquet")
    assert Counter(r.traces["teacher"]) == {"t:deepseek": 2, "t:gemini": 2}
    assert r.traces.filter(pl.col("teacher") == "t:gemini")["source_label"].to_list() == [True, True]  # "Yes"
    assert r.traces.filter(pl.col("teacher") == "t:deepseek")["source_label"].to_list() == [False, False]  # "No"
    ds = r.traces.filter(pl.col("teacher") == "t:deepseek")["thinking"].to_list()
    assert all("First try: the result is 0" in t for t in ds)  # each teacher's own column
    # the landing zone asks for one teacher at a time (partition <folder>:<group>)
    g = ingest("s1k_1_1.parquet", SourceSpec(group="gemini"))
    assert set(g.traces["teacher"]) == {"t"} and g.traces.height == 2
    assert not any("First try" in t for t in g.traces["thinking"])
    # the spec maps column groups to teachers explicitly
    spec = SourceSpec(teachers={"r1": {"thinking": "deepseek_thinking_trajectory", "response": "deepseek_attempt",
                                       "label": "deepseek_grade"}}, group="r1")
    e = ingest("s1k_1_1.parquet", spec)
    assert e.traces["thinking"].to_list() == ds and e.traces["source_label"].to_list() == [False, False]
    missing = ingest("s1k_1_1.parquet", SourceSpec(group="claude"))
    assert missing.traces.height == 0 and set(missing.rejects["reason"]) == {"missing_field"}


def test_trap_system_prompts_that_quote_the_tags():
    sg = ingest("sharegpt.jsonl")
    ot = ingest("openthoughts_114k.jsonl")
    for r in (sg, ot):
        for row in r.traces.iter_rows(named=True):
            assert row["thinking"].startswith("Let me read the problem again")
            assert "reasoning here" not in row["thinking"] and "systematic long thinking" not in row["thinking"]
            assert "helpful assistant" not in row["problem"] and "systematic long thinking" not in row["problem"]


def test_trap_close_tag_only_and_answer_tags():
    got = rows(ingest("trap_close_only.jsonl"))
    c1, c2 = got["trap_close_only/c1"], got["trap_close_only/c2"]
    assert c1["thinking"].startswith("Let me read") and c1["thinking_closed"] and c1["layout"] == "think_tags"
    assert c2["final_response"].startswith("The computation") and c2["final_response"].endswith("$\\boxed{42}$.")
    am = ingest("am_deepseek_r1_distilled.jsonl")
    assert all(not f.startswith("<answer>") and f.endswith("$.") for f in am.traces["final_response"])


def test_trap_reasoning_on_and_off_in_one_file():
    for name in ("trap_reasoning_on_off.jsonl", "nemotron_post_training.jsonl"):
        r = ingest(name)
        rej = {x["source_line"]: x for x in r.rejects.iter_rows(named=True)}
        assert all(x["reason"] == "no_thinking" for x in rej.values())
        assert r.traces.height + len(rej) == r.records_read
    r = ingest("trap_reasoning_on_off.jsonl")
    assert r.traces["id"].to_list() == ["trap_reasoning_on_off/on"]
    rej = {x["record_id"]: x for x in r.rejects.iter_rows(named=True)}
    assert "reasoning is off" in rej["off"]["detail"] and rej["off"]["field"] == "messages"
    assert "no marker" in rej["plain"]["detail"]  # a chat answer with no thinking markers: short CoT
    nem = ingest("nemotron_post_training.jsonl")
    assert nem.rejects["source_line"].to_list() == [2] and nem.rejects["field"].to_list() == ["output"]
    # the v1 prompt given as Llama-3 template text: its user part is the problem
    assert rows(nem)["nemotron_post_training/L3"]["problem"] == "What is 2^10?"


def test_trap_python_repr_and_nested_references():
    got = rows(ingest("trap_python_repr.jsonl"))
    assert (got["trap_python_repr/r1"]["reference_answer"], got["trap_python_repr/r1"]["reference_source"]) == ("1024", "given")
    # a repr that is not a literal is never evaluated: no reference there, the trace's own answer instead
    assert (got["trap_python_repr/r2"]["reference_answer"], got["trap_python_repr/r2"]["reference_source"]) == ("63", "self")
    assert (got["trap_python_repr/r3"]["reference_answer"], got["trap_python_repr/r3"]["reference_source"]) == ("12", "given")
    am = rows(ingest("am_thinking_v1_distilled.jsonl"))
    assert [am[k]["reference_answer"] for k in sorted(am)] == ["42", "1024"]  # nested per-turn info dicts


def test_json_list_file_streamed_element_by_element(monkeypatch):
    whole = ingest("light_r1_sft.json")
    monkeypatch.setattr(readers, "STREAM_JSON_ABOVE", 0)
    monkeypatch.setattr(readers, "_JSON_CHUNK", 64)  # many refills: elements cut by the window's end
    streamed = ingest("light_r1_sft.json")
    assert streamed.traces.drop("problem_tokens", "thinking_tokens", "response_tokens", "raw_tokens").equals(
        whole.traces.drop("problem_tokens", "thinking_tokens", "response_tokens", "raw_tokens"))


def test_broken_json_list_element_is_one_reject(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "STREAM_JSON_ABOVE", 0)
    good = json.loads((FIX / "light_r1_sft.json").read_text())[:2]
    text = json.dumps(good)[:-1] + ', {"conversations": [}, ' + json.dumps(good[0]) + "]"
    (tmp_path / "bad.json").write_text(text)
    r = ingest_path(tmp_path / "bad.json", "t", None)
    assert r.traces["source_line"].to_list() == [1, 2]
    (rej,) = r.rejects.iter_rows(named=True)
    assert (rej["source_file"], rej["source_line"], rej["reason"]) == ("bad.json", 3, "malformed_json")
    assert accounting_problems(r.traces, r.rejects, r.files) == []


# --------------------------------------------------------------------------------------------- references


def write_jsonl(path: Path, recs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def resp(answer: str, body: str = "Some reasoning.") -> str:
    return f"<think>{body} So the answer is {answer}.</think>The answer is $\\boxed{{{answer}}}$."


def test_given_beats_extracted_beats_joined(tmp_path):
    (tmp_path / "problems.jsonl").write_text(
        json.dumps({"unique_id": "p/1", "problem": "What is 6 * 7?", "answer": "42"}) + "\n"
        + json.dumps({"unique_id": "p/2", "problem": "What is 9 + 10?", "answer": "19"}) + "\n"
    )
    (tmp_path / "dlcot_source.yaml").write_text("problems:\n  path: problems.jsonl\n  name: math500\n")
    write_jsonl(tmp_path / "d.jsonl", [
        {"id": "a", "problem": "What is 6 * 7?", "answer": "41", "response": resp("42")},  # given wins
        {"id": "b", "problem": "What is 6 * 7?", "solution_text": "x", "reference_solution": "so $\\boxed{40}$",
         "response": resp("42")},  # extracted
        {"id": "p/2", "problem": "Unrelated wording", "response": resp("19")},  # joined by id
        {"id": "d", "problem": "  what is 6 *  7? ", "response": resp("42")},  # joined by normalized problem text
        {"id": "e", "problem": "What is 1 + 1?", "response": resp("2")},  # nothing: self
    ])
    r = ingest_folder(tmp_path, "t", None)
    got = {row["id"]: (row["reference_answer"], row["reference_source"]) for row in r.traces.iter_rows(named=True)}
    assert got == {"d/a": ("41", "given"), "d/b": ("40", "extracted"), "d/p/2": ("19", "joined"),
                   "d/d": ("42", "joined"), "d/e": ("2", "self")}
    assert r.records_read == 5  # the problems file is reference data, not traces


def test_majority_within_a_row_and_across_rows_by_the_answer_checker(tmp_path):
    write_jsonl(tmp_path / "g.jsonl", [
        # within a row: 3 generations, two agree (0.5 and 1/2 are equivalent for the answer checker)
        {"uid": "r1", "question": "Half of one?", "generations": [resp("0.5"), resp("\\frac{1}{2}"), resp("3")]},
        # across rows: the same problem (other spacing / case), one generation each
        {"uid": "r2", "question": "What is 3 + 4?", "generations": [resp("7")]},
        {"uid": "r3", "question": "what is 3 +  4?", "generations": [resp("7")]},
        {"uid": "r4", "question": "What is 3 + 4?", "generations": [resp("8")]},
        # a tie: no majority, each keeps its own answer
        {"uid": "r5", "question": "Tie?", "generations": [resp("1"), resp("2")]},
    ])
    r = ingest_path(tmp_path / "g.jsonl", "t", None)
    got = {row["id"]: (row["reference_answer"], row["reference_source"]) for row in r.traces.iter_rows(named=True)}
    assert got["g/r1#0"] == got["g/r1#1"] == got["g/r1#2"] == ("0.5", "majority")
    assert got["g/r2#0"] == got["g/r3#0"] == got["g/r4#0"] == ("7", "majority")
    assert (got["g/r5#0"], got["g/r5#1"]) == (("1", "self"), ("2", "self"))
    # k is configurable: with k = 4 no problem has enough generations
    r4 = ingest_path(tmp_path / "g.jsonl", "t", None, SourceSpec(majority_k=4))
    assert set(r4.traces["reference_source"]) == {"self"}


def test_majority_answer_rules():
    from dlcot_dagster.domain.answers import AnswerChecker

    c = AnswerChecker()
    assert majority_answer(["2", "2", "3"], c) == "2"
    assert majority_answer(["2", "3"], c) is None  # tie
    assert majority_answer(["2"], c) is None  # one vote is no majority
    assert majority_answer(["1/2", "0.5", "1", "1"], c) is None  # two groups of two
    votes = MajorityVotes(k=2)
    for a, kind in (("5", "boxed"), ("5", "last_line"), ("6", "boxed")):
        votes.add(1, a, kind)
    assert votes.winners(c) == {1: None}  # a last line is not a vote: 5 vs 6


def test_require_reference_rejects_self_only_rows(tmp_path):
    spec = SourceSpec(require_reference=True)
    r = ingest("openthoughts_114k.jsonl", spec)
    assert sources(r) == {"majority": 2}
    (rej,) = r.rejects.iter_rows(named=True)
    assert (rej["source_line"], rej["reason"], rej["field"]) == (3, "no_reference", "reference_answer")
    assert "require_reference" in rej["detail"]
    # a trace with no final answer and no other reference is rejected whatever the option
    write_jsonl(tmp_path / "n.jsonl", [{"id": 1, "problem": "q", "response": "<think>...?</think>"}])
    n = ingest_path(tmp_path / "n.jsonl", "t", None)
    assert n.rejects["reason"].to_list() == ["no_reference"]


def test_present_but_empty_answer_field_is_still_a_broken_record(tmp_path):
    write_jsonl(tmp_path / "e.jsonl", [
        {"id": 1, "problem": "q", "answer": "", "response": resp("2")},
        {"id": 2, "problem": "q", "answer": None, "response": resp("2")},
    ])
    r = ingest_path(tmp_path / "e.jsonl", "t", None)
    assert r.rejects.select("reason", "field").rows() == [("empty_field", "answer"), ("missing_field", "reference_answer")]


def test_stream_ingest_resolves_in_a_second_pass_like_ingest_path(tmp_path):
    """The raw_traces step's path: parse, tokens on the runner, majority / self after the partition is read."""
    for spec in (SourceSpec(), SourceSpec(require_reference=True)):
        files = [(FIX / "openthoughts_114k.jsonl", "openthoughts_114k.jsonl"), (FIX / "openr1_math.parquet", "openr1_math.parquet")]
        direct = ingest_files(files, "t", spec, None)
        out = tmp_path / str(spec.require_reference)
        with BatchRunner(EngineSpec(), 1) as runner:
            traces = ParquetSink(out / "raw.parquet", TRACE_SCHEMA)
            rejects = ParquetSink(out / "rej.parquet", REJECT_SCHEMA)
            with traces, rejects:
                stats = stream_ingest(files, "t", spec, runner, traces, rejects, batch_size=2)
                t, j = traces.commit(), rejects.commit()
        streamed, rej = pl.read_parquet(t.path), pl.read_parquet(j.path)
        assert sorted(streamed.select("id", "reference_answer", "reference_source").rows()) == sorted(
            direct.traces.select("id", "reference_answer", "reference_source").rows())
        assert sorted(rej["reason"].to_list()) == sorted(direct.rejects["reason"].to_list())
        assert accounting_problems(streamed, rej, stats) == []
        assert sum(s.kept for s in stats) == streamed.height and sum(s.rejected for s in stats) == rej.height
        assert not list(out.glob("*.pass1"))  # the first pass's file is gone


# --------------------------------------------------------------------------------------------- bad input


def test_bad_generation_is_one_reject_naming_file_line_generation_and_field(tmp_path):
    write_jsonl(tmp_path / "b.jsonl", [
        {"uuid": "u1", "problem": "q", "answer": "2", "generations": [resp("2"), {"nothing": 1}, None, "no tags at all"]},
        {"uuid": "u2", "problem": "", "answer": "2", "generations": [resp("2"), resp("2")]},  # row-level: one reject
    ])
    r = ingest_path(tmp_path / "b.jsonl", "t", None)
    assert r.traces["id"].to_list() == ["b/u1#0"]
    rej = {(x["source_line"], x["generation"]): x for x in r.rejects.iter_rows(named=True)}
    assert set(rej) == {(1, 1), (1, 2), (1, 3), (2, None)}  # one reject per unusable generation, one per bad row
    assert rej[(1, 1)]["reason"] == "wrong_type" and rej[(1, 1)]["field"] == "generations[1]"
    assert rej[(1, 2)]["reason"] == "empty_field" and rej[(1, 2)]["field"] == "generations[2]"
    assert rej[(1, 3)]["reason"] == "no_thinking" and rej[(1, 3)]["field"] == "generations[3]"
    assert rej[(2, None)]["reason"] == "empty_field" and rej[(2, None)]["field"] == "problem"
    assert all(x["source_file"] == "b.jsonl" for x in rej.values())
    assert "b.jsonl:1" in RejectRecord(**{**rej[(1, 1)], "reason": "wrong_type"}).message()
    assert accounting_problems(r.traces, r.rejects, r.files) == []


def test_accounting_catches_a_generation_twice_and_a_record_missing():
    r = ingest("openr1_math.parquet")
    twice = pl.concat([r.traces, r.traces.head(1)])
    assert any("appears 2 times" in p for p in accounting_problems(twice, r.rejects, r.files))
    missing = r.traces.filter(pl.col("source_line") != 2)
    assert any("2 records read but 1" in p for p in accounting_problems(missing, r.rejects, r.files))
    rowlevel = pl.DataFrame([{"teacher": "t", "source_file": "openr1_math.parquet", "source_line": 1, "generation": None}])
    assert any("row-level outcome" in p for p in accounting_problems(r.traces, rowlevel, r.files))


def test_iter_outcomes_unresolved_mode_leaves_the_reference_open():
    outs = list(iter_outcomes([(FIX / "bespoke_stratos_17k.jsonl", "b.jsonl")], "t", None, None, resolve=False))
    assert all(isinstance(o, TraceRecord) and o.reference_source is None and o.reference_answer == "" for o in outs)


def test_inspect_prints_the_resolved_reference_and_its_source(capsys):
    from dlcot_dagster.cli import main

    assert main(["inspect", str(FIX / "openthoughts_114k.jsonl"), "--teacher", "ot"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["source_line"] for o in out] == [1, 2, 3]  # input order, though majority/self resolve last
    assert [(o["reference_answer"], o["reference_source"]) for o in out] == [
        ("56", "majority"), ("56", "majority"), ("1024", "self")]
    assert main(["inspect", str(FIX / "openr1_math.parquet"), "--teacher", "r1"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(o["id"], o["generation"], o["reference_source"], o["source_label"]) for o in out[:2]] == [
        ("openr1_math/4c1e0a52-0001#0", 0, "given", True), ("openr1_math/4c1e0a52-0001#1", 1, "given", False)]


def test_inspect_a_multi_teacher_dump_reports_each_teacher(capsys):
    from dlcot_dagster.cli import main

    assert main(["inspect", str(FIX / "s1k_1_1.parquet"), "--teacher", "s1k"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(o["teacher"], o["id"]) for o in out] == [
        ("s1k:deepseek", "s1k_1_1/L1"), ("s1k:gemini", "s1k_1_1/L1"), ("s1k:deepseek", "s1k_1_1/L2"), ("s1k:gemini", "s1k_1_1/L2")]
    assert [o["source_label"] for o in out] == [False, True, False, True]
    assert all(o["reference_source"] == "extracted" for o in out)


def test_chat_turns_pick_the_user_turn_that_the_answer_answers(tmp_path):
    write_jsonl(tmp_path / "m.jsonl", [
        {"id": "multi", "answer": "4", "messages": [
            {"role": "user", "content": "first question"}, {"role": "assistant", "content": resp("1")},
            {"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": resp("4")}]},
        {"id": "prompt", "answer": "4", "output": resp("4"), "reasoning": "on", "input": [
            {"role": "user", "content": "first question"}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "What is 2 + 2?"}]},
    ])
    got = rows(ingest_path(tmp_path / "m.jsonl", "t", None))
    assert got["m/multi"]["problem"] == got["m/prompt"]["problem"] == "What is 2 + 2?"
    assert got["m/multi"]["thinking"].endswith("So the answer is 4.")


def test_streamed_json_list_element_over_the_cap_is_one_reject(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "STREAM_JSON_ABOVE", 0)
    monkeypatch.setattr(readers, "_JSON_CHUNK", 64)
    monkeypatch.setattr(readers, "MAX_JSON_ELEMENT_CHARS", 500)  # the cap that bounds memory on a broken list
    good = json.loads((FIX / "light_r1_sft.json").read_text())[:1]
    huge = {"conversations": [{"from": "user", "value": "x" * 5000}]}
    (tmp_path / "big.json").write_text(json.dumps(good + [huge, good[0]]))
    r = ingest_path(tmp_path / "big.json", "t", None)
    assert r.traces["source_line"].to_list() == [1]
    (rej,) = r.rejects.iter_rows(named=True)
    assert (rej["source_line"], rej["reason"]) == (2, "malformed_json") and "element 2" in rej["detail"]
    assert accounting_problems(r.traces, r.rejects, r.files) == []
