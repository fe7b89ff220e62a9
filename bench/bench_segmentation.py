"""Segmentation and redundancy quality against the hand-annotated labelled set.

Reads dlcot_dagster_tests/fixtures/dlcot_annotations.jsonl (offsets into real traces of ../shared/data/traces),
runs the rules engine (``default`` policy unless --policy) on each annotated trace and reports, per split
(tune: what the rules were tuned on; test: held out) and overall:

* first-answer boundary error in sentences (share within 2 sentences, median error, traces where one side has
  no first answer);
* check-boundary precision / recall / F1 (a predicted verification segment start matches an annotated check start
  within 1 sentence, one to one);
* traces with annotated checks that get at least one verification segment, how many sentences after the annotated
  first answer the first one starts (median), and the share of the sentences inside annotated checks that lie
  inside predicted verification segments;
* redundancy precision / recall (an annotated check is predicted redundant when the verification segment that
  overlaps it most is dropped as ``redundant_repeat_of:*``).

It also reports the first answer alone on dlcot_first_answers_sat.jsonl: the SAT DeepSeek-R1 traces the full set
leaves out (28 before round 4, 20 after it, none since round 6 annotated the last 20 in full), first answers only, marked while the multiple-choice rules were tuned on
them (a tune figure), and on all 38 SAT traces together; where round 4 annotated one of them in full, how far the
two annotators' first answers lie apart; and on dlcot_first_answers_sweep.jsonl: 6 R1-distill / Sky-T1 traces outside the set,
marked in a sweep for the count, unit and asked-variable forms (a tune figure too).

It also reports, on dlcot_checks_second.jsonl (traces of the set annotated a second time, blind to the first), the
second annotator scored against the first as the engine is (a ceiling for its figures), the engine against each, and
how often the two give the checks they both mark the same redundant / distinct label (Cohen's kappa).

    python bench/bench_segmentation.py [--policy default] [--split test] [--per-trace] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dlcot_dagster.domain.dlcot import RulesEngine  # noqa: E402
from dlcot_dagster.domain.dlcot.annotations import (  # noqa: E402
    annotation_as_segments,
    cohen_kappa,
    load_annotations,
    matched_check_labels,
    score_trace,
    summarize,
    validate,
)
from dlcot_dagster.domain.dlcot.testing import read_trace_file, traces_dir  # noqa: E402

FIXTURE = REPO / "dlcot_dagster_tests" / "fixtures" / "dlcot_annotations.jsonl"
# first answers only, of the SAT R1 traces the full set leaves out (marked while the multiple-choice rules were tuned
# on them: a tune set, reported apart)
FIRST_ANSWERS = REPO / "dlcot_dagster_tests" / "fixtures" / "dlcot_first_answers_sat.jsonl"
# first answers only, found in a sweep over unlabelled R1-distill / Sky-T1 traces (tune material, reported apart)
SWEEP = REPO / "dlcot_dagster_tests" / "fixtures" / "dlcot_first_answers_sweep.jsonl"
# a second, blind annotation of traces already in the set: how far two annotators agree (bench/annotate.py pick-second)
SECOND = REPO / "dlcot_dagster_tests" / "fixtures" / "dlcot_checks_second.jsonl"


def evaluate(policy: str = "default", fixture: Path = FIXTURE, engine: RulesEngine | None = None):
    anns = load_annotations(fixture)
    engine = engine or RulesEngine(policy)
    by_file: dict[str, dict] = {}
    scores = []
    for ann in anns:
        if ann.file not in by_file:
            by_file[ann.file] = {r.id: r for r in read_trace_file(traces_dir() / ann.file)}
        rec = by_file[ann.file][ann.id]
        probs = validate(ann, rec.thinking)
        if probs:
            raise SystemExit(f"{ann.file} {ann.id}: {'; '.join(probs)}")
        trace = engine.analyze(rec)
        scores.append((score_trace(ann, rec.thinking, trace.segments), trace))
    return scores


def first_answer_agreement(a: list, b: list) -> dict[str, int | None]:
    """Sentence gap between two annotators' first answers of the same trace (None when only one marked one)."""
    other = {x.id: x for x in b}
    gaps: dict[str, int | None] = {}
    for x in a:
        y = other.get(x.id)
        if y is None:
            continue
        fx, fy = x.first_answer, y.first_answer
        gaps[x.id] = abs(fx["sentence"] - fy["sentence"]) if fx and fy else (0 if fx is fy is None else None)
    return gaps


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def fmt(s: dict) -> str:
    med = s["first_answer_median_error"]
    return (
        f"traces {s['traces']:3d} | first answer within 2 sent. {100 * s['first_answer_ok_share']:5.1f} % "
        f"(median err {med if med is not None else '-'}, one side missing {s['first_answer_missing']}) | "
        f"check bounds P {s['check_boundary_precision']:.2f} R {s['check_boundary_recall']:.2f} "
        f"F1 {s['check_boundary_f1']:.2f} | verification where checks "
        f"{s['traces_with_checks_and_predicted_verification']}/{s['traces_with_checks']} "
        f"(starting a median {_num(s['verification_gap_median'])} sent. after the first answer), checking sentences inside "
        f"{100 * s['check_sentences_in_verification_share']:.0f} % | "
        f"redundancy P {s['redundancy_precision']:.2f} R {s['redundancy_recall']:.2f} "
        f"(tp {s['redundancy_counts']['tp']} fp {s['redundancy_counts']['fp']} fn {s['redundancy_counts']['fn']})"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policy", default="default")
    ap.add_argument("--split", default=None, help="only this split (tune/test)")
    ap.add_argument("--per-trace", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    scored = evaluate(args.policy)
    groups: dict[str, list] = defaultdict(list)
    for sc, _tr in scored:
        if args.split and sc.split != args.split:
            continue
        groups[sc.split].append(sc)
        groups["all"].append(sc)
        groups[f"round {sc.round}"].append(sc)
        groups[f"round {sc.round} {sc.split}"].append(sc)
        groups["source:" + sc.file.split("/")[-1].split("_")[0].split("-")[0]].append(sc)
    out = {}
    for name in sorted(groups, key=lambda g: (g.startswith("source:"), g.startswith("round"), g)):
        s = summarize(groups[name])
        out[name] = s
        print(f"{name:16s} {fmt(s)}")
    if args.per_trace:
        for sc, _tr in scored:
            print(
                f"  {sc.split:4s} {sc.id:60s} fa_err={sc.first_answer_error} missing={sc.first_answer_missing} "
                f"checks tp/fp/fn={sc.check_tp}/{sc.check_fp}/{sc.check_fn} red tp/fp/fn={sc.red_tp}/{sc.red_fp}/{sc.red_fn}"
            )
    # the SAT traces round 4 annotated in full also carry a first answer of their own in FIRST_ANSWERS (another
    # annotator, earlier): the full annotation counts for "SAT all 38", the pair measures how far two people agree
    full_ids = {sc.id: sc for sc, _tr in scored}
    fa_only = evaluate(args.policy, FIRST_ANSWERS)
    extra = summarize(sc for sc, _tr in fa_only if sc.id not in full_ids)
    sat = summarize([sc for sc, _tr in fa_only if sc.id not in full_ids]
                    + [sc for sc, _tr in scored if sc.file.startswith("sat_")])
    sweep = summarize(sc for sc, _tr in evaluate(args.policy, SWEEP))
    out["first_answers_sat"] = extra
    out["first_answers_sat_all"] = sat
    out["first_answers_sweep"] = sweep
    for name, s in ((f"SAT +{extra['traces']} (tune)", extra), ("SAT all 38", sat), ("sweep (tune)", sweep)):
        if not s["traces"]:  # since round 6 every SAT trace is annotated in full
            continue
        med = s["first_answer_median_error"]
        print(f"{name:16s} traces {s['traces']:3d} | first answer within 2 sent. {100 * s['first_answer_ok_share']:5.1f} % "
              f"(median err {med if med is not None else '-'}, one side missing {s['first_answer_missing']}) | "
              "first answers only")
    pairs = first_answer_agreement(load_annotations(FIXTURE), load_annotations(FIRST_ANSWERS))
    if pairs:
        ok = sum(d is not None and d <= 2 for d in pairs.values())
        out["annotator_agreement"] = {"pairs": len(pairs), "within_2": ok, "sentence_gaps": pairs}
        print(f"two annotators  traces {len(pairs):3d} | first answers within 2 sentences of each other: {ok}/{len(pairs)} "
              f"(gaps {sorted(d if d is not None else -1 for d in pairs.values())}; -1: one marked none)")
    if SECOND.exists():
        out["second_annotator"] = second_annotator(scored)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


def second_annotator(scored: list) -> dict:
    """The traces annotated twice: the second annotator scored against the first exactly as the engine is (a ceiling
    for the engine's figures), the engine against each, and how often the two annotators give a check they both mark
    (starts within 1 sentence) the same redundant / distinct label."""
    firsts = {a.id: a for a in load_annotations(FIXTURE)}
    engine_segments = {sc.id: tr.segments for sc, tr in scored}
    seconds = [b for b in load_annotations(SECOND) if b.id in firsts]
    texts = {}
    for b in seconds:
        if b.file not in texts:
            texts[b.file] = {r.id: r.thinking for r in read_trace_file(traces_dir() / b.file)}
    rows: dict[str, list] = {"annotator 2 vs 1": [], "engine vs 1": [], "engine vs 2": []}
    labels = []
    for b in seconds:
        a, text = firsts[b.id], texts[b.file][b.id]
        probs = validate(b, text)
        if probs:
            raise SystemExit(f"{SECOND.name} {b.file} {b.id}: {'; '.join(probs)}")
        rows["annotator 2 vs 1"].append(score_trace(a, text, annotation_as_segments(b, text)))
        rows["engine vs 1"].append(score_trace(a, text, engine_segments[b.id]))
        rows["engine vs 2"].append(score_trace(b, text, engine_segments[b.id]))
        labels += matched_check_labels(a, b, text)
    out = {}
    for name, scores in rows.items():
        s = summarize(scores)
        out[name] = s
        print(f"{name:16s} {fmt(s)}")
    kappa = cohen_kappa(labels)
    same = sum(x == y for x, y in labels)
    out["redundancy_label_agreement"] = {"checks": len(labels), "same": same, "kappa": kappa}
    print(f"two annotators  checks both mark {len(labels):3d} | same redundant/distinct label {same}/{len(labels)} "
          f"({100 * same / max(1, len(labels)):.0f} %), Cohen's kappa {kappa if kappa is None else round(kappa, 2)}")
    return out


if __name__ == "__main__":
    main()
