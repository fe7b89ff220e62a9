"""The hand-annotated labelled set: it still matches the shared traces, and the engine keeps its measured quality.

``fixtures/dlcot_annotations.jsonl`` holds 235 real traces annotated by hand in nine rounds (48; then 38 drawn after the
rules were tuned on the first; then 20 drawn after they were tuned on round 2's tune traces; then 27, 8 of them SAT
traces whose checks nobody had marked; then 22 drawn after engine 0.3.9; then 35 after engine 0.3.14, 20 of them the
last SAT traces without checks; then 23 after engine 0.3.15; then 10 after 0.3.20; then 12 after 0.3.22; see
``fixtures/ANNOTATION_GUIDE.md``):
where the first answer is reached, the boundaries of every check, and whether each check is a redundant re-check
or a distinct method. The traces are read from ``../shared/data/traces``; the fixture holds offsets and short
anchor quotes only. The floors below sit a little under what ``bench/bench_segmentation.py`` measured on the
held-out ``test`` half (the rules were tuned on ``tune``), so a change that makes the engine worse on real traces
fails here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from dlcot_dagster.domain.dlcot import RulesEngine
from dlcot_dagster.domain.dlcot.annotations import (
    Annotation,
    annotation_as_segments,
    annotation_sentences,
    cohen_kappa,
    load_annotations,
    matched_check_labels,
    score_trace,
    summarize,
    validate,
)
from dlcot_dagster.domain.dlcot.testing import read_trace_file

from .conftest import shared_data_dir

FIXTURE = Path(__file__).parent / "fixtures" / "dlcot_annotations.jsonl"
FIRST_ANSWERS = Path(__file__).parent / "fixtures" / "dlcot_first_answers_sat.jsonl"
SECOND = Path(__file__).parent / "fixtures" / "dlcot_checks_second.jsonl"


@pytest.fixture(scope="module")
def annotated(shared_data):
    anns = load_annotations(FIXTURE)
    files: dict[str, dict] = {}
    out = []
    for ann in anns:
        if ann.file not in files:
            files[ann.file] = {r.id: r for r in read_trace_file(shared_data_dir() / "traces" / ann.file)}
        out.append((ann, files[ann.file][ann.id]))
    return out


@pytest.fixture(scope="module")
def scored(annotated):
    engine = RulesEngine("default")
    return [(ann, score_trace(ann, rec.thinking, engine.analyze(rec).segments)) for ann, rec in annotated]


def test_the_labelled_set_is_large_mixed_and_split(annotated):
    anns = [a for a, _ in annotated]
    assert len(anns) >= 40
    sources = Counter(a.file.split("/")[-1].split("_")[0].split("-")[0] for a in anns)
    # R1 (MATH-500, SAT), R1-distill (LIMO, MATH-500), Gemini and Sky-T1 are all there
    assert {"sat", "math500", "limo", "aime2024", "Sky"} <= set(sources), sources
    splits = Counter(a.split for a in anns)
    assert splits["tune"] >= 20 and splits["test"] >= 15
    checks = [c for a in anns for c in a.checks]
    assert len(checks) >= 150 and 0.3 < sum(c["redundant"] for c in checks) / len(checks) < 0.8


def test_the_second_round_is_new_material(annotated):
    """Round 2 was drawn after round 1 had been tuned on: no trace twice, both splits, every source family."""
    anns = [a for a, _ in annotated]
    second = [a for a in anns if a.round == 2]
    assert len(second) >= 38
    assert len({(a.file, a.id) for a in anns}) == len(anns)
    assert Counter(a.split for a in second)["test"] >= 10
    assert {"math500", "limo", "aime2024", "Sky"} <= {a.file.split("/")[-1].split("_")[0].split("-")[0] for a in second}


def test_the_third_round_is_new_material(annotated):
    anns = [a for a, _ in annotated]
    third = [a for a in anns if a.round == 3]
    assert len(third) >= 20 and Counter(a.split for a in third)["test"] >= 8
    earlier = {(a.file, a.id) for a in anns if a.round < 3}
    assert not {(a.file, a.id) for a in third} & earlier


def test_the_fourth_round_is_new_material(annotated):
    """Round 4: no trace of an earlier round; its SAT traces had first answers marked (and tuned on) in
    dlcot_first_answers_sat.jsonl, so they are tune traces whatever their id hash says."""
    anns = [a for a, _ in annotated]
    fourth = [a for a in anns if a.round == 4]
    assert len(fourth) >= 27 and Counter(a.split for a in fourth)["test"] >= 5
    assert not {(a.file, a.id) for a in fourth} & {(a.file, a.id) for a in anns if a.round < 4}
    sat_first = {a.id for a in load_annotations(FIRST_ANSWERS)}
    sat4 = [a for a in fourth if a.file.startswith("sat_")]
    assert len(sat4) >= 8 and all(a.id in sat_first and a.split == "tune" for a in sat4)


# rounds drawn fresh after an engine version (5: 0.3.9; 7: 0.3.15; 8: 0.3.20, whose rules were found on held-out
# misses; 9: 0.3.22; 10: 0.3.25; 11: 0.3.26, whose rules were found on round 10's held-out misses; 12: 0.3.28): (round,
# at least this many traces, at least this many of them test)
FRESH_ROUNDS = [(5, 22, 8), (7, 23, 10), (8, 10, 4), (9, 12, 4), (10, 12, 8), (11, 12, 3), (12, 12, 5), (13, 12, 5),
                (14, 16, 5), (15, 16, 5), (16, 16, 5), (17, 15, 5),
                (18, 16, 4), (19, 15, 3)]


@pytest.mark.parametrize("round_, n_min, test_min", FRESH_ROUNDS)
def test_a_fresh_round_is_new_material(annotated, round_, n_min, test_min):
    """No trace of an earlier round or of a first-answer fixture, both splits."""
    anns = [a for a, _ in annotated]
    fresh = [a for a in anns if a.round == round_]
    assert len(fresh) >= n_min and Counter(a.split for a in fresh)["test"] >= test_min
    assert not {(a.file, a.id) for a in fresh} & {(a.file, a.id) for a in anns if a.round < round_}
    assert not {a.id for a in fresh} & {a.id for a in load_annotations(FIRST_ANSWERS)}


def test_the_sixth_round_is_new_material(annotated):
    """Round 6 (drawn after engine 0.3.14): the 20 SAT traces whose checks nobody had marked, so that all 38 are
    annotated in full, and 15 traces of the mix that no fixture held."""
    anns = [a for a, _ in annotated]
    sixth = [a for a in anns if a.round == 6]
    assert len(sixth) >= 35
    assert not {(a.file, a.id) for a in sixth} & {(a.file, a.id) for a in anns if a.round < 6}
    mix = [a for a in sixth if not a.file.startswith("sat_")]
    assert len(mix) >= 15 and not {a.id for a in mix} & {a.id for a in load_annotations(FIRST_ANSWERS)}
    assert len({a.id for a in anns if a.file.startswith("sat_")}) == 38


def test_the_ninth_round_holds_every_teacher_family(annotated):
    """Round 9 takes the last readable MATH-500 R1 and Gemini traces, beside LIMO R1-distill and Sky-T1 ones."""
    files = {a.file for a, _ in annotated if a.round == 9}
    assert {"math500_deepseek-r1.jsonl", "aime2024_gemini-2.0-flash-thinking.jsonl"} <= files
    assert any(f.startswith("sky-t1-students/") for f in files) and any(f.startswith("limo_") for f in files)


def test_verification_on_the_sat_traces(scored):
    """The issue's SAT measurements, against the 38 SAT traces annotated in full (10 in round 1, 8 in round 4, the
    other 20 in round 6): it found no verification in 17 of 38 traces, the first one a median 16 sentences after the
    first answer, and fewer than half of the checking sentences inside. Measured: 18 of 18, 1 sentence, 97 % on the
    first 18 (engine 0.3.8); 20 of 20, 2 sentences, 99 % on round 6's 20 before any rule was tuned on them (engine
    0.3.14); 38 of 38, 2 sentences, 98 % in all."""
    sat = summarize(s for a, s in scored if a.file.startswith("sat_"))
    assert sat["traces_with_checks"] >= 36
    assert sat["traces_with_checks_and_predicted_verification"] == sat["traces_with_checks"], sat
    assert sat["verification_gap_median"] is not None and sat["verification_gap_median"] <= 3, sat
    assert sat["check_sentences_in_verification_share"] >= 0.9, sat


def test_every_annotation_matches_its_trace(annotated):
    problems = {a.id: validate(a, rec.thinking) for a, rec in annotated}
    assert not {k: v for k, v in problems.items() if v}


def test_annotations_are_sentence_aligned(annotated):
    for ann, rec in annotated:
        starts = {a for a, _ in annotation_sentences(rec.thinking)}
        for c in ann.checks:
            assert c["start"] in starts, (ann.id, c)


def test_engine_quality_on_the_held_out_half(scored):
    test = summarize(s for a, s in scored if a.split == "test")
    assert test["traces"] >= 15
    assert test["first_answer_ok_share"] >= 0.7, test
    assert test["check_boundary_f1"] >= 0.5, test
    assert test["redundancy_precision"] >= 0.6 and test["redundancy_recall"] >= 0.6, test
    # a verification segment in every trace where the annotators saw checks after the first answer, and the
    # sentences they marked as checking inside verification segments
    # (rounds 2 and 3, drawn later and held out, have 4 test traces with checks that get none, each a first answer
    # missed or found late: 39 of 43 in all)
    assert test["traces_with_checks_and_predicted_verification"] >= 0.88 * test["traces_with_checks"], test
    first = summarize(s for a, s in scored if a.split == "test" and a.round == 1)
    assert first["traces_with_checks_and_predicted_verification"] == first["traces_with_checks"], first
    # 0.91 on the rounds 1-4 test traces; round 5's 9 test traces, annotated after engine 0.3.9, measured 0.82 on
    # it, which brings the whole held-out half to 0.896
    assert test["check_sentences_in_verification_share"] >= 0.87, test


def test_engine_quality_on_the_whole_set(scored):
    every = summarize(s for _, s in scored)
    assert every["first_answer_ok_share"] >= 0.8, every
    assert every["check_boundary_f1"] >= 0.55, every
    assert every["redundancy_precision"] >= 0.6 and every["redundancy_recall"] >= 0.6, every


def test_scoring_counts_what_it_should(annotated):
    """The scorer itself: a prediction equal to the annotation scores perfectly, a shifted one does not."""
    from dlcot_dagster.domain.dlcot.types import AnswerSpan, Segment, SegmentKind

    ann, rec = next((a, r) for a, r in annotated if len(a.checks) >= 2 and a.first_answer)
    fa = ann.first_answer["offset"]
    segs = [Segment(idx=0, kind=SegmentKind.SOLUTION, start=0, end=ann.checks[0]["start"],
                    answer=AnswerSpan(text="x", start=fa - 1, end=fa, kind="implicit"))]
    for k, c in enumerate(ann.checks):
        segs.append(Segment(idx=k + 1, kind=SegmentKind.VERIFICATION, start=c["start"], end=c["end"],
                            kept=not c["redundant"], cluster=0 if c["redundant"] else k + 1,
                            drop_reason="redundant_repeat_of:0" if c["redundant"] else None))
    perfect = score_trace(ann, rec.thinking, segs)
    assert perfect.first_answer_error == 0 and perfect.check_fp == perfect.check_fn == 0
    assert perfect.red_fp == perfect.red_fn == 0
    assert perfect.check_sentences > 0 and perfect.check_sentences_covered == perfect.check_sentences
    # no verification at all: no checking sentence is covered
    bare = score_trace(ann, rec.thinking, segs[:1])
    assert bare.check_sentences == perfect.check_sentences and bare.check_sentences_covered == 0
    # the gap from the annotated first answer to the first verification segment: small when it starts at the first
    # annotated check, none without verification
    spans = annotation_sentences(rec.thinking)
    fa_sent = next(i for i, (a, b) in enumerate(spans) if a < fa <= b)
    first_check = next(i for i, (a, _b) in enumerate(spans) if a == ann.checks[0]["start"])
    assert perfect.verification_gap == first_check - fa_sent >= 0 and bare.verification_gap is None
    shifted = [s.model_copy(update={"start": min(len(rec.thinking) - 1, s.start + 400)}) for s in segs]
    worse = score_trace(ann, rec.thinking, shifted)
    assert worse.check_tp < perfect.check_tp or worse.first_answer_error != 0


def test_an_annotation_scored_as_a_prediction(annotated):
    """A second annotator is scored exactly as the engine is: an annotation read as segments scores perfectly against
    itself, and flipping one check's label or moving the first answer shows in the scores and in kappa."""
    ann, rec = next((a, r) for a, r in annotated if len(a.checks) >= 3 and a.first_answer
                    and any(c["redundant"] for c in a.checks) and not all(c["redundant"] for c in a.checks))
    text = rec.thinking
    same = score_trace(ann, text, annotation_as_segments(ann, text))
    assert same.first_answer_error == 0 and same.check_fp == same.check_fn == 0
    assert same.red_fp == same.red_fn == 0 and same.red_tp == sum(c["redundant"] for c in ann.checks)
    assert same.check_sentences_covered == same.check_sentences > 0
    labels = matched_check_labels(ann, ann, text)
    assert len(labels) == len(ann.checks) and cohen_kappa(labels) == 1.0

    d = dict(ann.raw)
    flipped = [dict(c) for c in ann.checks]
    k = next(i for i, c in enumerate(flipped) if c["redundant"])
    flipped[k]["redundant"] = False
    spans = annotation_sentences(text)
    early = spans[max(0, ann.first_answer["sentence"] - 6)]
    other = Annotation.from_dict({**d, "checks": flipped,
                                  "first_answer": {**ann.first_answer, "offset": early[1]}})
    got = score_trace(ann, text, annotation_as_segments(other, text))
    assert got.red_fn == 1 and got.red_fp == 0 and got.check_fp == got.check_fn == 0
    assert got.first_answer_error >= 4
    labels = matched_check_labels(ann, other, text)
    assert labels.count((True, False)) == 1 and cohen_kappa(labels) < 1.0
    # kappa: chance-corrected (two raters who always say "redundant" agree fully but tell nothing)
    assert cohen_kappa([(True, True), (False, False), (True, False), (True, True)]) == pytest.approx(0.5)
    assert cohen_kappa([]) is None and cohen_kappa([(True, True)] * 3) is None


def test_the_second_annotation_matches_its_traces(annotated):
    """The blind second pass (bench/annotate.py pick-second) covers traces of the set, matches their text, and its
    agreement with the first annotation is measurable: most checks both mark get the same label."""
    if not SECOND.exists():
        pytest.skip("no second annotation yet")
    by_id = {a.id: (a, r) for a, r in annotated}
    seconds = load_annotations(SECOND)
    assert len(seconds) >= 12 and len({b.file for b in seconds}) >= 5
    labels = []
    for b in seconds:
        a, rec = by_id[b.id]
        assert validate(b, rec.thinking) == [], b.id
        assert b.split == a.split and b.thinking_sha256 == a.thinking_sha256
        labels += matched_check_labels(a, b, rec.thinking)
    assert len(labels) >= 20
    assert sum(x == y for x, y in labels) / len(labels) >= 0.6


def test_first_answers_of_every_sat_trace(shared_data, annotated):
    """The 28 SAT DeepSeek-R1 traces the full set leaves out carry first answers only (marked while the
    multiple-choice rules were tuned on them, so this is a regression floor, not a held-out figure): with the 10 of
    the full set, every SAT trace of the shared data. bb17cef found 14 of the 28 within 2 sentences. Rounds 4 and 6
    annotated all 28 in full as well, by other annotators who did not see these marks: the two first answers lie
    within 2 sentences of each other in 27 of 28."""
    anns = load_annotations(FIRST_ANSWERS)
    recs = {r.id: r for r in read_trace_file(shared_data_dir() / "traces" / "sat_deepseek-r1.json")}
    assert len(anns) == 28 and {a.id for a in anns} | {a.id for a, _ in annotated} >= set(recs)
    engine = RulesEngine("default")
    scores = []
    for ann in anns:
        rec = recs[ann.id]
        assert not validate(ann, rec.thinking), ann.id
        assert ann.split == "tune" and not ann.checks
        scores.append(score_trace(ann, rec.thinking, engine.analyze(rec).segments))
    got = summarize(scores)
    assert got["first_answer_missing"] == 0 and got["first_answer_ok_share"] >= 0.85, got


SWEEP = Path(__file__).parent / "fixtures" / "dlcot_first_answers_sweep.jsonl"


def test_first_answers_found_in_the_sweep_over_unlabelled_traces(shared_data, annotated):
    """First answers marked in a sweep over R1-distill and Sky-T1 traces outside the labelled set, where the count
    ("196 has 9 positive divisors"), unit ("So, h = 5 centimeters") and asked-variable forms were missed (a regression
    floor on tune material, not a held-out figure)."""
    anns = load_annotations(SWEEP)
    assert len(anns) >= 6 and not {a.id for a in anns} & {a.id for a, _ in annotated}
    engine = RulesEngine("default")
    recs: dict[str, dict] = {}
    scores = []
    for ann in anns:
        if ann.file not in recs:
            recs[ann.file] = {r.id: r for r in read_trace_file(shared_data_dir() / "traces" / ann.file)}
        rec = recs[ann.file][ann.id]
        assert not validate(ann, rec.thinking), ann.id
        scores.append(score_trace(ann, rec.thinking, engine.analyze(rec).segments))
    got = summarize(scores)
    assert got["first_answer_missing"] == 0 and got["first_answer_ok_share"] >= 0.85, got
