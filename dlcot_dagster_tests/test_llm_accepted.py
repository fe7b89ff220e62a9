"""The LLM steps' accepted path: replies the test controls, through the real HTTP client and the steps' parsing and
guards, and what an accepted reply changes in the output; then each guard rejecting a bad reply.

A real small model cannot be made to return a chosen reply, so the fake sits at the transport boundary only
(:class:`~.llm_support.ScriptedLLM`, an OpenAI-compatible endpoint on 127.0.0.1): the prompts, the JSON schemas,
the client (``backend: openai``), ``parse_reply``, the fidelity guards and the rules fallback are the real ones.
The record is the bundled ``lin-eq`` sample: a wrong intermediate step ("3x = 22 - 7 = 14") retracted, the answer
5, a check, an alternative check and a conclusion.
"""

from __future__ import annotations

import functools
import json

import dagster as dg
import polars as pl
import pytest

from dlcot_dagster.defs.dlcot.assets import corrected_traces, pruned_solutions, segmented_traces
from dlcot_dagster.defs.dlcot.resources import DLCoTEngineResource
from dlcot_dagster.defs.benchmarks import BenchmarksResource
from dlcot_dagster.defs.decontam.assets import decontam_verdicts
from dlcot_dagster.defs.decontam.resources import DecontamResource
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.io_managers import ParquetIOManager
from dlcot_dagster.defs.llm.resources import LLMConfig
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.resources import LandingZoneResource, TokenizerResource
from dlcot_dagster.defs.settings import SAMPLES_LANDING
from dlcot_dagster.domain.answers import AnswerChecker
from dlcot_dagster.domain.dlcot import RulesEngine
from dlcot_dagster.domain.llm import LLM_STEPS, build_llm_engine, llm_fallbacks, llm_report
from dlcot_dagster.domain.pipeline import correct_frame, prune_frame, segment_frame
from dlcot_dagster.domain.tokens import TokenCounter

from .llm_support import ScriptedLLM, between, sample_raw, strip_deletions



@functools.cache
def raw_frame() -> pl.DataFrame:
    """The lin-eq record as raw_traces holds it (built on first use, not at import: under `make mutate` the test
    modules are imported in a process that forks the test workers, and polars / tokenizers threads must not start
    there)."""
    return sample_raw().filter(pl.col("id") == "traces/lin-eq")


def text() -> str:
    return raw_frame()["thinking"][0]

WRONG_STEP = "3x = 22 - 7 = 14"
# the join the rules' deletions leave, and the smoothed wording the scripted rewrite puts there
ROUGH, SMOOTH = "Subtract 7 from both sides: . 22 - 7 is 15, not 14.", "Subtract 7 from both sides: 22 - 7 = 15."

SPLIT = [
    ("problem_understanding", "We need x with", "3x + 7 = 22."),
    ("solution", "Subtract 7 from both sides:", "So the answer is 5."),
    ("verification", "Let me check: 3 * 5", "So x = 5 again."),
    ("conclusion", "Therefore x = 5.", "Therefore x = 5."),
]


def good_reply(step: str, user: str):
    """What a faithful annotator model answers for this record, step by step."""
    if step == "segment":
        return {"parts": [{"kind": k, "first_words": a, "last_words": b} for k, a, b in SPLIT]}
    if step == "label":
        part = between(user)
        errors = [WRONG_STEP] if WRONG_STEP in part else []
        return {"reached_answer": "5", "label": "correct", "error_passages": errors}
    if step == "cluster":  # the check re-derives the same algebra: one method
        return {"groups": [{"method": "solve the linear equation", "members": [1, 2]}]}
    base = strip_deletions(between(user))
    return {"text": base.replace(ROUGH, SMOOTH)}


def run(reply, steps=LLM_STEPS, frame: pl.DataFrame | None = None):
    """segment -> prune -> correct with the LLM ``steps`` on the scripted endpoint; (tables, engine, requests)."""
    frame = raw_frame() if frame is None else frame
    with ScriptedLLM(reply) as srv:
        cfg = LLMConfig(backend="openai", base_url=srv.base_url, model="scripted", cache_url="", max_retries=0)
        engine = build_llm_engine(cfg.client(), "default", AnswerChecker(), steps=steps, step_config=cfg.step_config())
        seg = segment_frame(frame, engine)
        pruned = prune_frame(frame, seg, engine)
        out = correct_frame(frame, pruned, engine, TokenCounter())
        return (seg, pruned, out), engine, srv.requests


def segments(frame: pl.DataFrame) -> list[dict]:
    return json.loads(frame["segments"][0])


@pytest.fixture(scope="module")
def rules():
    engine = RulesEngine("default", AnswerChecker())
    raw = raw_frame()
    seg = segment_frame(raw, engine)
    pruned = prune_frame(raw, seg, engine)
    return seg, pruned, correct_frame(raw, pruned, engine, TokenCounter())


@pytest.fixture(scope="module")
def accepted():
    return run(good_reply)


def test_every_step_sends_real_prompts_and_accepts_the_reply(accepted):
    _, engine, requests = accepted
    assert [r["step"] for r in requests] == ["segment", "label", "label", "label", "cluster", "rewrite"]
    for r in requests:  # the real client: model, schema-constrained response format, the step's prompt
        assert r["body"]["model"] == "scripted" and r["body"]["response_format"]["type"] == "json_schema"
    assert text() in requests[0]["user"]
    assert {s: (st["records"], st["accepted"]) for s, st in llm_report(engine).items()} == {s: (1, 1) for s in LLM_STEPS}
    assert llm_fallbacks(engine) == {}


def test_accepted_split_replaces_the_rules_segments(accepted, rules):
    got = segments(accepted[0][0])
    starts = [text().index(a) for _, a, _ in SPLIT]
    assert [(s["kind"], s["start"], s["end"]) for s in got] == [
        (k, 0 if i == 0 else starts[i], starts[i + 1] if i + 1 < len(SPLIT) else len(text()))
        for i, (k, _, _) in enumerate(SPLIT)
    ]
    assert {s["cue"] for s in got} == {"llm"}
    # the rules saw a restatement where the model saw problem understanding, and split on their own cues
    rules_split = segments(rules[0])
    assert [s["kind"] for s in rules_split] == [
        "question_restatement", "solution", "verification", "verification", "conclusion"]
    assert "llm" not in {s["cue"] for s in rules_split}


def test_accepted_labels_carry_the_model_verdict_and_its_error_passage(accepted, rules):
    got = segments(accepted[0][1])
    labelled = [(s["kind"], s["label"], s["label_reason"]) for s in got if s["label"]]
    assert labelled == [("solution", "correct", "llm"), ("verification", "correct", "llm"), ("conclusion", "correct", "llm")]
    a = text().index(WRONG_STEP)
    assert got[1]["error_spans"] == [{"start": a, "end": a + len(WRONG_STEP), "reason": "llm_error_passage"}]
    assert not any(s.get("error_spans") for s in segments(rules[1]))
    # the rules call the first check incomplete (it substitutes back, no answer stated); the model calls it correct
    assert [s["label"] for s in segments(rules[1]) if s["kind"] == "verification"] == ["incomplete", "correct"]


def test_accepted_clusters_group_the_check_with_the_solution_and_prune_it(accepted, rules):
    got = segments(accepted[0][1])
    assert [(s["kind"], s["cluster"]) for s in got if s["kind"] in ("solution", "verification")] == [
        ("solution", 1), ("verification", 1)]
    assert got[2]["kept"] is False and got[2]["drop_reason"] == "redundant_repeat_of:1"
    # the rules see two checks: the re-check by the same algebra is pruned as redundant with the solution, the
    # guess-and-check (another method) is kept
    assert [(s["kind"], s["kept"], s["drop_reason"]) for s in segments(rules[1]) if s["kind"] in ("solution", "verification")] == [
        ("solution", True, None), ("verification", False, "redundant_repeat_of:1"), ("verification", True, None)]


def test_accepted_rewrite_is_the_output_with_its_edits_mapped_onto_the_original(accepted, rules):
    kept = accepted[0][2].kept.row(0, named=True)
    baseline = strip_deletions(between(accepted[2][-1]["user"]))
    assert ROUGH in baseline
    assert kept["corrected_thinking"] == baseline.replace(ROUGH, SMOOTH)
    edits = json.loads(kept["edits"])
    assert edits and {e["reason"] for e in edits} == {"llm_rewrite"}
    assert "".join(e["inserted"] for e in edits) in SMOOTH and all(e["removed"] in text() for e in edits)
    removed = json.loads(kept["removed_spans"])
    a = text().index(WRONG_STEP)
    assert {"start": a, "end": a + len(WRONG_STEP), "reason": "llm_error_passage"} in removed
    assert kept["answer_equivalent"] is True and kept["final_answer"] == "5"
    assert rules[2].kept["corrected_thinking"][0] != kept["corrected_thinking"]


def test_llm_mode_through_dagster_uses_the_accepted_replies(tmp_path):
    """engine: llm, backend: openai, against the scripted endpoint: the stages' metadata count every step as
    accepted and corrected_traces holds the scripted rewrite."""
    landing = tmp_path / "landing"
    (landing / "t").mkdir(parents=True)
    line = next(l for l in (SAMPLES_LANDING / "demo-r1-style" / "traces.jsonl").read_text().splitlines() if '"lin-eq"' in l)
    (landing / "t" / "traces.jsonl").write_text(line + "\n")
    with ScriptedLLM(good_reply) as srv, dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, ["t"])
        llm = LLMConfig(backend="openai", base_url=srv.base_url, model="scripted", cache_url="")
        result = dg.materialize(
            [raw_traces, decontam_verdicts, segmented_traces, pruned_solutions, corrected_traces], partition_key="t", instance=instance,
            resources={"landing_zone": LandingZoneResource(root=str(landing)), "tokenizer": TokenizerResource(),
                       "parquet_io_manager": ParquetIOManager(base_dir=str(tmp_path / "store")),
                       "dlcot_engine": DLCoTEngineResource(engine="llm", llm=llm),
                       "benchmarks": BenchmarksResource(), "decontam": DecontamResource()},
        )
        assert result.success and all(e.passed for e in result.get_asset_check_evaluations())
    for node, steps in (("segmented_traces", ["segment"]), ("pruned_solutions", ["label", "cluster"]),
                        ("corrected_traces", ["rewrite"])):
        md = result.asset_materializations_for_node(node)[0].metadata
        assert {s: st["accepted"] for s, st in md["llm_steps"].value.items()} == {s: 1 for s in steps}, node
        assert md["llm_fallback_count"].value == 0 and md["llm_fallback_rate"].value == 0.0
    kept = pl.read_parquet(tmp_path / "store" / "corrected_traces" / "t.parquet")
    assert SMOOTH in kept["corrected_thinking"][0] and ROUGH not in kept["corrected_thinking"][0]


# ------------------------------------------------------------------------------------------ rejected replies


def _replace_parts(parts):
    return {"parts": [{"kind": k, "first_words": a, "last_words": b} for k, a, b in parts]}


REJECTIONS = {
    # segment: quotes not in the text; a split that covers too little; kinds out of order; no solution part
    "segment:no_parts_placed": ("segment", lambda u: _replace_parts([("solution", "We integrate by parts", "and get 12.")])),
    "segment:low_coverage": ("segment", lambda u: _replace_parts([SPLIT[1]])),
    "segment:kind_order": ("segment", lambda u: _replace_parts(
        [SPLIT[0], ("verification", SPLIT[1][1], SPLIT[2][2]), ("solution", *SPLIT[3][1:])])),
    "segment:no_solution": ("segment", lambda u: _replace_parts([(SPLIT[0][0], SPLIT[0][1], SPLIT[3][2])])),
    "segment:unparseable": ("segment", lambda u: "{\"parts\": [{\"kind\": \"solution\""),
    # label: a quoted error passage that is not verbatim; a verdict the answer checker contradicts
    "label:error_span_not_verbatim": ("label", lambda u: {"reached_answer": "5", "label": "correct",
                                                          "error_passages": ["3x = 22 - 7 = 13"]}),
    "label:label_contradicts_checker": ("label", lambda u: {"reached_answer": "5", "label": "incorrect", "error_passages": []}),
    # cluster: a grouping that leaves a part out
    "cluster:cluster_invalid": ("cluster", lambda u: {"groups": [{"method": "algebra", "members": [1]}]}),
    # rewrite: the answer statement dropped; too many changes; nothing
    "rewrite:answer_lost": ("rewrite", lambda u: {"text": strip_deletions(between(u)).replace(ROUGH, SMOOTH).replace(
        "So the answer is 5.", "So we are done.")}),
    "rewrite:edit_distance": ("rewrite", lambda u: {"text": strip_deletions(between(u)) + " Also," + " and so on" * 12}),
    "rewrite:empty_output": ("rewrite", lambda u: {"text": "   "}),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_a_guard_rejects_a_bad_reply_and_the_rules_take_over(case, rules):
    """The steps before the bad one run on the LLM and are accepted; the bad reply falls back to the rules for
    this record, counted under its reason, and the output is the rules' result for that step."""
    step, bad = REJECTIONS[case]
    steps = LLM_STEPS[: LLM_STEPS.index(step) + 1]

    def reply(s, user):
        return bad(user) if s == step else good_reply(s, user)

    (seg, pruned, out), engine, _ = run(reply, steps)
    assert llm_fallbacks(engine) == {case: 1}
    assert {s: st["accepted"] for s, st in llm_report(engine).items()} == {s: int(s != step) for s in steps}
    if step == "segment":  # the rules' segments, exactly
        assert seg["segments"].to_list() == rules[0]["segments"].to_list()
    elif step == "label":
        assert not any(s.get("error_spans") or s.get("label_reason") == "llm" for s in segments(pruned))
    elif step == "cluster":
        body = [s for s in segments(pruned) if s["kind"] in ("solution", "verification")]
        assert [s["cluster"] for s in body] == [1, 2] and all(s["kept"] for s in body)
    else:  # the rules' rewrite of the same plan: no model edits or model error passages; the wrong step goes by
        # the rules' own error-state edit (the retraction "22 - 7 is 15, not 14" corrects it)
        kept = out.kept.row(0, named=True)
        edits = json.loads(kept["edits"])
        assert all(e["reason"] != "llm_rewrite" for e in edits)
        assert all(r["reason"] != "llm_error_passage" for r in json.loads(kept["removed_spans"]))
        assert SMOOTH not in kept["corrected_thinking"] and WRONG_STEP not in kept["corrected_thinking"]
        assert [e["reason"].split(":")[0] for e in edits if WRONG_STEP in e["removed"]] == ["error_state_corrected_at"]
