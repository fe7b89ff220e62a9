"""Hand-annotation helper for the DLCoT labelled set (dlcot_dagster_tests/fixtures/dlcot_annotations.jsonl).

    python bench/annotate.py pick [--round 2|3|4]      # the traces chosen for annotation (deterministic)
    python bench/annotate.py show FILE ID [--from I] [--to J]   # problem, reference and numbered sentences
    python bench/annotate.py add ANNOT.json [--out F]  # sentence-level annotation -> offsets, validated, appended

FILE is relative to ../shared/data/traces (e.g. sat_deepseek-r1.json, sky-t1-students/X.jsonl); ID is the
ingested id (``<file stem>/<record id>``). ``show`` prints the thinking as ingested, one sentence per line:
``[i @offset] text`` (newlines shown as ⏎). ``add`` takes a sentence-level annotation::

    {"file": "...", "id": "...",
     "first_answer": {"sentence": 41, "quote": "the answer is 5"} | null,
     "checks": [{"start_sentence": 42, "type": "recompute", "redundant": true}, ...],
     "conclusion_start_sentence": 97 | null,
     "notes": "..."}

and writes offsets: the first answer ends where ``quote`` ends inside its sentence; a check runs from its start
sentence to the next check (or the conclusion, or the end of the thinking). The split (tune/test) is fixed by
the id's hash, not by the annotator.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dlcot_dagster.domain.dlcot.annotations import (  # noqa: E402
    Annotation,
    annotation_sentences,
    load_annotations,
    sha256,
    validate,
)
from dlcot_dagster.domain.dlcot.testing import read_trace_file, traces_dir  # noqa: E402

FIXTURE = REPO / "dlcot_dagster_tests" / "fixtures" / "dlcot_annotations.jsonl"

# how many traces of each source, and the longest thinking (chars) we ask a person to annotate
PLAN = [
    ("sat_deepseek-r1.json", 10, 12000),
    ("math500_deepseek-r1.jsonl", 6, 14000),
    ("math500_deepseek-r1-distill-llama-8b.jsonl", 2, 14000),
    ("math500_deepseek-r1-distill-qwen-7b.jsonl", 2, 14000),
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 10, 14000),
    ("aime2024_gemini-2.0-flash-thinking.jsonl", 8, 16000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 4, 12000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__minerva_math.jsonl", 2, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__amc23.jsonl", 2, 14000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__aime24.jsonl", 2, 14000),
]


# round 2 (a second, larger sample, drawn after the rules were tuned on round 1): more of the R1 / R1-distill traces
# the pruning targets name, and Sky-T1 students the first round did not touch; traces annotated in an earlier
# round or in the first-answer fixtures are skipped
PLAN_2 = [
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 8, 14000),
    ("math500_deepseek-r1.jsonl", 6, 14000),
    ("math500_deepseek-r1-distill-llama-8b.jsonl", 4, 14000),
    ("math500_deepseek-r1-distill-qwen-7b.jsonl", 4, 14000),
    ("aime2024_gemini-2.0-flash-thinking.jsonl", 4, 16000),
    ("sat_deepseek-r1.json", 2, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__amc23.jsonl", 2, 12000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__aime24.jsonl", 2, 14000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__minerva_math.jsonl", 2, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-32B-ckpts__aime24.jsonl", 2, 14000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__amc23.jsonl", 2, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 2, 12000),
]
# round 3 (drawn after the rules were tuned on round-2 tune traces): a smaller fresh sample of the same mix
PLAN_3 = [
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 5, 14000),
    ("math500_deepseek-r1.jsonl", 3, 14000),
    ("math500_deepseek-r1-distill-llama-8b.jsonl", 2, 14000),
    ("math500_deepseek-r1-distill-qwen-7b.jsonl", 2, 14000),
    ("aime2024_gemini-2.0-flash-thinking.jsonl", 2, 16000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__minerva_math.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 2, 12000),
]
# round 4 (drawn after engine 0.3.7, before any rule was tuned on it): SAT traces whose first answers were marked in
# dlcot_first_answers_sat.jsonl but whose checks nobody had annotated (the issue measures verification on SAT), and a
# fresh sample of the R1 / R1-distill / Gemini / Sky-T1 mix; the SAT traces' first answers were tuned on, so they are
# tune traces whatever their id hash says (REUSE_FIRST_ANSWERS)
PLAN_4 = [
    ("sat_deepseek-r1.json", 8, 12000),
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 6, 14000),
    ("math500_deepseek-r1.jsonl", 3, 14000),
    ("math500_deepseek-r1-distill-llama-8b.jsonl", 2, 14000),
    ("math500_deepseek-r1-distill-qwen-7b.jsonl", 2, 14000),
    ("aime2024_gemini-2.0-flash-thinking.jsonl", 3, 16000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__minerva_math.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-32B-ckpts__aime24.jsonl", 1, 14000),
]
# round 5 (drawn after engine 0.3.9, before any rule was tuned on it): a fresh sample of the mix, weighted to the
# R1 / R1-distill traces the pruning targets name and to the Sky-T1 files whose first answers were the weakest
PLAN_5 = [
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 7, 14000),
    ("math500_deepseek-r1.jsonl", 2, 14000),
    ("math500_deepseek-r1-distill-llama-8b.jsonl", 2, 14000),
    ("math500_deepseek-r1-distill-qwen-7b.jsonl", 2, 14000),
    ("aime2024_gemini-2.0-flash-thinking.jsonl", 3, 16000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 2, 12000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__minerva_math.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-32B-ckpts__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__aime24.jsonl", 1, 14000),
]
# round 6 (drawn after engine 0.3.14, before any rule was tuned on it): the 20 SAT traces whose checks nobody had
# annotated yet (the issue measures verification on all 38; their first answers were tuned on, so they are tune traces,
# but their checks are new material), and a fresh sample of the R1 / R1-distill / Gemini / Sky-T1 mix
PLAN_6 = [
    ("sat_deepseek-r1.json", 20, 16000),
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 4, 14000),
    ("math500_deepseek-r1.jsonl", 1, 15000),
    ("math500_deepseek-r1-distill-llama-8b.jsonl", 2, 15000),
    ("math500_deepseek-r1-distill-qwen-7b.jsonl", 2, 14000),
    ("aime2024_gemini-2.0-flash-thinking.jsonl", 2, 16000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__minerva_math.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__aime24.jsonl", 1, 14000),
]
# round 7 (drawn after engine 0.3.15, before any rule was tuned on it): no SAT trace is left, so a fresh sample of the
# R1-distill / Gemini / Sky-T1 traces, where the first answer was weakest on the held-out traces so far
PLAN_7 = [
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 8, 12000),
    ("math500_deepseek-r1-distill-qwen-7b.jsonl", 2, 13000),
    ("aime2024_gemini-2.0-flash-thinking.jsonl", 3, 16000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 2, 10000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__minerva_math.jsonl", 2, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__minerva_math.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__amc23.jsonl", 2, 10000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__amc23.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__amc23.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-correct-5K-32B-ckpts__aime24.jsonl", 1, 12000),
]
# round 8 (drawn after engine 0.3.20, whose rules were found on four held-out misses, before any rule was tuned on it):
# a fresh held-out measure of the mix (the MATH-500 R1 / R1-distill traces short enough to annotate are all taken),
# annotated by annotators who had not seen the engine's output on these traces
PLAN_8 = [
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 3, 10000),
    ("aime2024_gemini-2.0-flash-thinking.jsonl", 2, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 2, 8000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__minerva_math.jsonl", 1, 8000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__amc23.jsonl", 1, 9000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__amc23.jsonl", 1, 9000),
]
# round 9 (drawn after engine 0.3.22): every MATH-500 R1 / R1-distill and Gemini trace of a readable length had been
# annotated, so one long trace of each (18-28 K characters), and Sky-T1 files with few annotations so far
PLAN_9 = [
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 3, 12000),
    ("math500_deepseek-r1.jsonl", 1, 30000),
    ("math500_deepseek-r1-distill-llama-8b.jsonl", 1, 20000),
    ("aime2024_gemini-2.0-flash-thinking.jsonl", 1, 18500),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__aime24.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__amc23.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__aime24.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__minerva_math.jsonl", 1, 8000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 1, 8000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__aime24.jsonl", 1, 12000),
]
# round 10 (drawn after engine 0.3.25, before any rule was tuned on it): the last readable Gemini and MATH-500
# R1-distill-Llama-8B traces, LIMO R1-distill (the pruning target) and Sky-T1 files with few annotations so far
PLAN_10 = [
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 4, 12000),
    ("aime2024_gemini-2.0-flash-thinking.jsonl", 1, 22000),
    ("math500_deepseek-r1-distill-llama-8b.jsonl", 1, 22000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__amc23.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-32B-ckpts__aime24.jsonl", 1, 20000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__amc23.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__minerva_math.jsonl", 1, 8000),
]
# round 11 (drawn after engine 0.3.26, whose rules were found on three of round 10's test misses, before any rule was
# tuned on it): a clean held-out measure again, weighted to LIMO R1-distill (the pruning target)
PLAN_11 = [
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 5, 12000),
    ("aime2024_gemini-2.0-flash-thinking.jsonl", 1, 30000),
    ("math500_deepseek-r1-distill-llama-8b.jsonl", 1, 30000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__minerva_math.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__aime24.jsonl", 1, 14000),
]
# round 12 (drawn after engine 0.3.28, before any rule was tuned on it): no Gemini or MATH-500 trace of a readable
# length is left, so LIMO R1-distill (the pruning target) and Sky-T1 files
PLAN_12 = [
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 6, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__minerva_math.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__minerva_math.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__amc23.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__amc23.jsonl", 1, 10000),
]
# round 13 (drawn after engine 0.3.29, before any rule was tuned on it): LIMO R1-distill again and Sky-T1 files with
# few annotations so far
PLAN_13 = [
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 6, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-32B-ckpts__aime24.jsonl", 1, 20000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__minerva_math.jsonl", 1, 10000),
]
# rounds 14-18: LIMO R1-distill (the pruning target), two Sky-T1 MATH-500 and both Sky-T1 Minerva files, then four
# more Sky-T1 files that change from round to round
_LIMO_SKY_MIX = [
    ("limo_deepseek-r1-distill-qwen-32b.jsonl", 8, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__math500.jsonl", 2, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__minerva_math.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__minerva_math.jsonl", 1, 10000),
]
# round 14 (drawn after engine 0.3.30, before any rule was tuned on it): 16 traces
PLAN_14 = _LIMO_SKY_MIX + [
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__amc23.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__amc23.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__amc23.jsonl", 1, 12000),
]
# round 15 (drawn after engine 0.3.31, before any rule was tuned on it): the same mix as round 14
PLAN_15 = _LIMO_SKY_MIX + [
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__amc23.jsonl", 1, 12000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__amc23.jsonl", 1, 12000),
]
# round 16 (drawn after engine 0.3.32, before any rule was tuned on it): the same mix again, other Sky-T1 files first
PLAN_16 = _LIMO_SKY_MIX + [
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__amc23.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__amc23.jsonl", 1, 10000),
    ("sky-t1-students/Sky-T1-math-correct-5K-32B-ckpts__aime24.jsonl", 1, 20000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__amc23.jsonl", 1, 12000),
]
# round 17 (drawn after engine 0.3.34, before any rule was tuned on it): the same mix, Sky-T1 files not drawn in 16
PLAN_17 = _LIMO_SKY_MIX + [
    ("sky-t1-students/Sky-T1-math-correct-5K-14B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-14B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-wrong-5K-27B__aime24.jsonl", 1, 14000),
    ("sky-t1-students/Sky-T1-math-correct-5K-27B__amc23.jsonl", 1, 12000),
]
# round 18 (drawn after engine 0.3.35, before any rule was tuned on it): round 16's mix and files again (a round's
# draw is seeded by its number and skips every trace of an earlier round)
PLAN_18 = list(PLAN_16)
# round 19 (drawn after engine 0.3.35 with round 18, before any rule was tuned on either): round 17's mix and files
PLAN_19 = list(PLAN_17)
PLANS = {1: PLAN, 2: PLAN_2, 3: PLAN_3, 4: PLAN_4, 5: PLAN_5, 6: PLAN_6, 7: PLAN_7, 8: PLAN_8, 9: PLAN_9, 10: PLAN_10,
         11: PLAN_11, 12: PLAN_12, 13: PLAN_13, 14: PLAN_14, 15: PLAN_15, 16: PLAN_16, 17: PLAN_17, 18: PLAN_18,
         19: PLAN_19}
# rounds that may draw a trace whose first answer alone was marked in a first-answer fixture, and from which files
# (None: any)
REUSE_FIRST_ANSWERS: dict[int, frozenset[str] | None] = {4: None, 6: frozenset({"sat_deepseek-r1.json"})}
FIXTURES = [FIXTURE, FIXTURE.with_name("dlcot_first_answers_sat.jsonl"), FIXTURE.with_name("dlcot_first_answers_sweep.jsonl")]


def split_of(trace_id: str) -> str:
    """tune or test by the id's hash; a trace whose first answer was marked (and tuned on) in a first-answer fixture
    is a tune trace."""
    if trace_id in first_answer_fixture_ids():
        return "tune"
    return "test" if int(hashlib.sha1(trace_id.encode()).hexdigest(), 16) % 5 < 2 else "tune"


@functools.lru_cache(maxsize=1)
def first_answer_fixture_ids() -> frozenset[str]:
    return frozenset(a.id for f in FIXTURES[1:] if f.exists() for a in load_annotations(f))


_cache: dict[str, list] = {}


def records(file: str):
    if file not in _cache:
        _cache[file] = read_trace_file(traces_dir() / file)
    return _cache[file]


def record(file: str, rid: str):
    for r in records(file):
        if r.id == rid:
            return r
    raise SystemExit(f"{file}: no record with id {rid!r}")


def _reuses_first_answers(round_: int, file: str) -> bool:
    if round_ not in REUSE_FIRST_ANSWERS:
        return False
    files = REUSE_FIRST_ANSWERS[round_]
    return files is None or file in files


def pick(round_: int = 1) -> list[tuple[str, str]]:
    out = []
    # traces of earlier rounds (and of the first-answer fixtures) are skipped; a round's own traces are not, so its pick
    # stays the same after it has been annotated
    annotated = {a.id for f in FIXTURES[:1] if round_ > 1 and f.exists() for a in load_annotations(f) if a.round < round_}
    marked = {a.id for f in FIXTURES[1:] if round_ > 1 and f.exists() for a in load_annotations(f)}
    for file, n, max_chars in PLANS[round_]:
        done = annotated if _reuses_first_answers(round_, file) else annotated | marked
        recs = [r for r in records(file) if 500 < len(r.thinking) <= max_chars and r.reference_answer.strip()
                and r.id not in done]
        rng = random.Random(f"dlcot-annotations:{file}" + ("" if round_ == 1 else f":round{round_}"))
        rng.shuffle(recs)
        out += [(file, r.id) for r in recs[:n]]
    return out


# the second pass: traces already in the set, annotated again by annotators who never saw the first annotation, to measure
# how far two annotators agree on check boundaries and on redundant vs distinct (a ceiling for the engine's scores);
# (file name part, how many), drawn among annotated traces of at most 12,000 chars with at least two checks; the
# result goes to dlcot_checks_second.jsonl beside FIXTURE (`add ... --out`), read by bench/bench_segmentation.py
SECOND_PLAN = [("sat_deepseek-r1", 3), ("limo_deepseek-r1-distill", 4), ("math500_deepseek-r1", 3),
               ("aime2024_gemini", 2), ("Sky-T1-math", 4)]


def pick_second() -> list[tuple[str, str]]:
    anns = sorted(load_annotations(FIXTURE), key=lambda a: (a.file, a.id))
    out = []
    for part, n in SECOND_PLAN:
        cands = [a for a in anns if part in a.file and len(a.checks) >= 2
                 and len(record(a.file, a.id).thinking) <= 12000]
        rng = random.Random(f"dlcot-annotations:second:{part}")
        rng.shuffle(cands)
        out += [(a.file, a.id) for a in cands[:n]]
    return out


def show(file: str, rid: str, lo: int, hi: int | None) -> None:
    r = record(file, rid)
    print(f"# {file} :: {rid}   split={split_of(rid)}   chars={len(r.thinking)}   closed={r.thinking_closed}")
    print(f"## PROBLEM\n{r.problem}\n## REFERENCE ANSWER\n{r.reference_answer}")
    if r.final_response:
        fr = r.final_response.strip()
        print(f"## FINAL RESPONSE (after the thinking; {len(fr)} chars)\n{fr[:600]}{' …' if len(fr) > 600 else ''}")
    spans = annotation_sentences(r.thinking)
    print(f"## THINKING: {len(spans)} sentences")
    for i, (a, b) in enumerate(spans):
        if i < lo or (hi is not None and i >= hi):
            continue
        t = r.thinking[a:b].replace("\n", "⏎")
        print(f"[{i} @{a}] {t}")


def convert(d: dict) -> dict:
    file, rid = d["file"], d["id"]
    r = record(file, rid)
    text = r.thinking
    spans = annotation_sentences(text)
    n = len(text)

    def sent(i: int) -> tuple[int, int]:
        if not 0 <= i < len(spans):
            raise SystemExit(f"{rid}: sentence {i} out of range (0..{len(spans) - 1})")
        return spans[i]

    fa = None
    if d.get("first_answer"):
        i = int(d["first_answer"]["sentence"])
        q = d["first_answer"]["quote"]
        a, b = sent(i)
        k = text.find(q, a, b)
        if k < 0:
            raise SystemExit(f"{rid}: first-answer quote {q!r} not in sentence {i}: {text[a:b]!r}")
        fa = {"sentence": i, "offset": k + len(q), "quote": q}
    concl = d.get("conclusion_start_sentence")
    concl_off = sent(int(concl))[0] if concl is not None else None
    checks = []
    raw_checks = sorted(d.get("checks") or [], key=lambda c: int(c["start_sentence"]))
    for k, c in enumerate(raw_checks):
        i = int(c["start_sentence"])
        start = sent(i)[0]
        if k + 1 < len(raw_checks):
            end = sent(int(raw_checks[k + 1]["start_sentence"]))[0]
        else:
            end = concl_off if concl_off is not None and concl_off > start else n
        quote = text[start:end].strip()[:40]
        checks.append({
            "start": start,
            "end": end,
            "start_sentence": i,
            "type": c["type"],
            "redundant": bool(c["redundant"]),
            "quote": quote,
        })
    return {
        "file": file,
        "id": rid,
        "split": split_of(rid),
        "thinking_sha256": sha256(text),
        "n_sentences": len(spans),
        "first_answer": fa,
        "checks": checks,
        "conclusion_start": concl_off,
        "notes": d.get("notes", ""),
        **({"round": int(d["round"])} if d.get("round", 1) != 1 else {}),
    }


def add(path: Path, out: Path) -> None:
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    items = raw if isinstance(raw, list) else [raw]
    existing = []
    if out.exists():
        existing = [json.loads(x) for x in out.read_text(encoding="utf-8").split("\n") if x.strip()]
    for d in items:
        ann = convert(d)
        probs = validate(Annotation.from_dict(ann), record(ann["file"], ann["id"]).thinking)
        if probs:
            raise SystemExit(f"{ann['id']}: " + "; ".join(probs))
        existing = [e for e in existing if not (e["file"] == ann["file"] and e["id"] == ann["id"])]
        existing.append(ann)
        print(f"ok {ann['id']}: first answer at {ann['first_answer'] and ann['first_answer']['offset']}, "
              f"{len(ann['checks'])} checks, split={ann['split']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in existing), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    pk = sub.add_parser("pick")
    pk.add_argument("--round", type=int, default=1, choices=tuple(PLANS))
    sub.add_parser("pick-second")
    s = sub.add_parser("show")
    s.add_argument("file")
    s.add_argument("id")
    s.add_argument("--from", dest="lo", type=int, default=0)
    s.add_argument("--to", dest="hi", type=int, default=None)
    a = sub.add_parser("add")
    a.add_argument("annotation")
    a.add_argument("--out", type=Path, default=FIXTURE)
    args = ap.parse_args()
    if args.cmd == "pick":
        for file, rid in pick(args.round):
            r = record(file, rid)
            print(f"{file}\t{rid}\t{len(r.thinking)}\t{split_of(rid)}")
    elif args.cmd == "pick-second":
        for file, rid in pick_second():
            r = record(file, rid)
            print(f"{file}\t{rid}\t{len(r.thinking)}\t{split_of(rid)}")
    elif args.cmd == "show":
        show(args.file, args.id, args.lo, args.hi)
    else:
        add(Path(args.annotation), args.out)


if __name__ == "__main__":
    main()
