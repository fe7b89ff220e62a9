"""Benchmark decontamination without Dagster: normalization, matching, boilerplate, numbers, duplicates, and the
decontam drops flowing through the DLCoT stages with one row per stage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from dlcot_dagster.domain.decontam import (
    BenchmarkIndex,
    BenchmarkProblem,
    DecontamSettings,
    DecontamSpec,
    TraceDeduper,
    attach_evidence,
    decontam_frame,
    kept_overlaps,
    learn_spec,
    normalize_text,
    verdict_drops,
)
from dlcot_dagster.domain.decontam.normalize import numbers, tokens
from dlcot_dagster.domain.students.benchmarks import BenchmarkSpec

from .conftest import read_jsonl, shared_data_dir

PROBLEM = (
    "Let $ABC$ be a triangle with $AB=13$, $BC=14$ and $CA=15$. The incircle touches $\\overline{BC}$ at $D$. "
    "Find $\\frac{BD}{DC}$ and express your answer as a common fraction."
)


# ------------------------------------------------------------------ normalization


@pytest.mark.parametrize(
    "variant",
    [
        PROBLEM.replace(" ", "\n", 7),  # re-wrapped lines
        "  ".join(PROBLEM.split(" ")),  # other whitespace
        PROBLEM.replace("$AB=13$", "\\(AB = 13\\)").replace("$BC=14$", "\\(BC=14\\)"),  # \( \)
        PROBLEM.replace("$\\frac{BD}{DC}$", "\\[\\frac{BD}{DC}\\]"),  # \[ \]
        PROBLEM.replace("$\\frac{BD}{DC}$", "$$\\frac{BD}{DC}$$"),  # $$ $$
        PROBLEM.replace("$", ""),  # no delimiters at all
        PROBLEM.replace("\\frac", "\\dfrac"),
        PROBLEM.replace("\\frac", "\\tfrac"),
        PROBLEM.replace("\\frac{BD}{DC}", "BD/DC"),
        PROBLEM + "\nPlease reason step by step, and put your final answer within \\boxed{}.",
        "Return your final response within \\boxed{}. " + PROBLEM,
        "<|im_start|>user\n" + PROBLEM + "<|im_end|>\n<|im_start|>assistant\n",
        "<｜User｜>" + PROBLEM + "<｜Assistant｜><think>\n",
        "Problem 7: " + PROBLEM + "\nAnswer:",
        "### Problem\n" + PROBLEM + "\n\n### Solution\n",
        PROBLEM.replace("\\overline{BC}", "\\overline{\\text{BC}}").replace("$D$", "$\\mathrm{D}$"),
    ],
)
def test_normalization_removes_formatting_and_wrappers(variant):
    assert normalize_text(variant) == normalize_text(PROBLEM)


def test_normalization_details():
    n = normalize_text
    assert n("$x \\le 3$, $y\\geq 2$, $a \\neq b$") == n("x ≤ 3, y ≥ 2, a ≠ b") == "x < = 3 y > = 2 a ! = b"
    assert n("$3 \\times 4$") == n("$3\\cdot 4$") == n("3 × 4") == "3 * 4"
    assert n("$30^\\circ$") == n("30°") == "30 circ"
    assert n("$\\pi r^2$") == n("π r²") == "pi r 2"
    assert n("$80,000 and $1,\\!000,\\!000 and 24{,}000") == "80000 and 1000000 and 24000"
    assert n("27.0 and .5 and 0.50 and 007") == "27 and 0.5 and 0.5 and 7"
    # pairs and intervals keep their two numbers (not a thousands separator)
    assert n("$(10,100)$ and $[-500,500]$") == "10 100 and - 500 500"
    # nested fractions, short forms
    assert n("$\\frac{\\frac{1}{2}}{3}$") == n("(1/2)/3") == "1 / 2 / 3"
    assert n("$\\frac12$") == n("$\\frac{1}{2}$") == "1 / 2"
    # choices re-laid out
    assert n("$\\textbf{(A) }6\\qquad\\textbf{(B) }8\\qquad\\textbf{(C) }10$") == n("(A) 6\n(B) 8\n(C) 10") \
        == n("A. 6\nB. 8\nC. 10") == "a 6 b 8 c 10"
    # an Asymptote figure carries no problem text
    assert n("Find $x$. [asy] draw((0,0)--(1,1)); label(\"$5$\",(0,0)); [/asy]") == "find x"
    assert numbers(tokens("16 eggs, 3 and 4, then 16")) == {"16": 2, "3": 1, "4": 1}


def test_hostile_text_is_bounded():
    deep = "$" + "\\frac{" * 3000 + "1" + "}{2}" * 3000 + "$"
    assert len(tokens(deep)) > 0
    assert tokens("\\boxed{" * 5000) is not None
    assert tokens("") == [] and tokens("$$") == []


# ------------------------------------------------------------------ matching

BENCH = [
    BenchmarkProblem("bench", "b-0", PROBLEM),
    BenchmarkProblem("bench", "b-1", "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and "
                                     "bakes muffins for her friends every day with four. How many eggs are left?"),
    BenchmarkProblem("bench", "b-2", "Compute $\\dbinom{31}{28}$."),
    # three unrelated problems sharing one phrase: that phrase is boilerplate
    BenchmarkProblem("other", "o-0", "The probability that a fair coin shows heads twice in three tosses is $\\frac{m}{n}$, "
                                     "where $m$ and $n$ are relatively prime positive integers. Find $m+n$."),
    BenchmarkProblem("other", "o-1", "A bag has 4 red and 6 blue marbles; two are drawn. The chance both are red is "
                                     "$\\frac{m}{n}$, where $m$ and $n$ are relatively prime positive integers. Find $m+n$."),
    BenchmarkProblem("other", "o-2", "The area of the shaded region of the square is $\\frac{m}{n}$, where $m$ and $n$ "
                                     "are relatively prime positive integers. Find $m+n$."),
]


@pytest.fixture(scope="module")
def index():
    return BenchmarkIndex(BENCH, DecontamSettings())


def test_exact_and_wrapped_matches(index):
    m = index.match(PROBLEM.replace("\\frac", "\\dfrac").replace("$", ""))
    assert m.benchmark_id == "b-0" and m.kind == "exact" and m.score == 1.0
    assert m.evidence == [normalize_text(PROBLEM)]
    # a wrapper the normalizer does not know: the n-grams still cover the benchmark problem
    m = index.match("Think carefully, you are a genius mathematician. " + PROBLEM + " Show every step.")
    assert m.benchmark_id == "b-0" and m.kind == "ngram" and m.score == 1.0
    assert m.shared == m.distinctive and len(m.evidence) > 3 and all(len(e.split()) == 6 for e in m.evidence)
    assert m.evidence[0] == "let abc be a triangle with"  # in the order of the training problem, up to 8


def test_partial_overlap_needs_the_threshold(index):
    first = PROBLEM.split(". The incircle")[0] + "."  # the first sentence only: below half of the n-grams
    m = index.match(first + " Find the inradius of the triangle.")
    assert m is None
    assert index.match(PROBLEM.replace("express your answer as a common fraction", "give a fraction")).benchmark_id == "b-0"


def test_numbers_must_agree(index):
    changed = PROBLEM.replace("$AB=13$", "$AB=12$")
    assert index.match(changed) is None  # the same wording with another number is another problem
    assert index.match(PROBLEM.replace("$CA=15$", "$CA=15$ (all lengths in cm)")).benchmark_id == "b-0"
    ducks = BENCH[1].problem
    assert index.match(ducks).benchmark_id == "b-1"
    assert index.match(ducks.replace("16 eggs", "20 eggs")) is None
    # a repeated number must occur as often: 16 twice in the benchmark, once in the candidate
    idx = BenchmarkIndex([BenchmarkProblem("x", "x-0", "Find $16 + 16 \\cdot y$ when $y$ is the least prime above 16 and 7.")])
    assert idx.match("Find $16 + 16 y$ when $y$ is the least prime above 16 and 7.").benchmark_id == "x-0"
    assert idx.match("Find $16 + 17 y$ when $y$ is the least prime above 16 and 7.") is None


def test_short_problems_match_by_containment(index):
    m = index.match("Solve this quickly: Compute $\\binom{31}{28}$. Give only the number.")
    assert m.benchmark_id == "b-2" and m.kind == "contained"
    assert index.match("Compute $\\binom{31}{27}$.") is None


def test_boilerplate_is_learned_and_not_evidence(index):
    phrase_only = ("A spinner lands on red with probability $\\frac{m}{n}$, where $m$ and $n$ are relatively prime "
                   "positive integers. Find $m+n$.")
    assert index.match(phrase_only) is None
    boiler = [g for g, df in index.boilerplate_ngrams()]
    assert "and n are relatively prime positive" in boiler
    # with the cut-off above 3 documents the same phrase is distinctive, and it dominates a short problem
    loose = BenchmarkIndex(BENCH, DecontamSettings(boilerplate_min_df=4, threshold=0.3))
    assert loose.match(phrase_only) is not None


def test_corpus_boilerplate(index):
    corpus = [f"Widget {i} is placed on the shelf. How many widgets are on the shelf after step {i}?" for i in range(40)]
    bench = [BenchmarkProblem("w", "w-0", "Widget 7 is placed on the shelf. How many widgets are on the shelf after "
                                          "step 7 when the shelf held 3 widgets before?")]
    idx = BenchmarkIndex(bench, DecontamSettings(corpus_min_df=20, corpus_min_share=0.2))
    learned = idx.learn_corpus_boilerplate(corpus)
    assert "widgets are on the shelf after" in learned
    assert idx.with_corpus_boilerplate(learned).distinctive[0] < idx.distinctive[0]
    # forty copies of the benchmark problem itself count once: its n-grams never become boilerplate
    assert idx.learn_corpus_boilerplate([bench[0].problem] * 40) == []
    # learning travels as text: a fresh index (another process) applies it
    again = BenchmarkIndex(bench, idx.settings).with_corpus_boilerplate(learned)
    assert again.distinctive[0] == idx.with_corpus_boilerplate(learned).distinctive[0]


def test_problem_made_of_boilerplate_matches_by_containment():
    idx = BenchmarkIndex([BenchmarkProblem("b", "b-0", PROBLEM)])
    toks = tokens(PROBLEM)
    n = idx.settings.ngram
    every = idx.with_corpus_boilerplate([" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)])
    assert every.distinctive[0] == 0 and idx.distinctive[0] > 0
    m = every.match("Here is a task. " + PROBLEM + " Good luck.")
    assert m.kind == "contained" and m.benchmark_id == "b-0"
    assert every.match(PROBLEM.split(". The incircle")[0]) is None  # part of it is not enough any more


# ------------------------------------------------------------------ real data


def shared_specs(*names):
    return tuple(BenchmarkSpec(n, str(shared_data_dir() / "benchmarks" / f"{n}.jsonl")) for n in names)


@pytest.fixture(scope="module")
def real_spec(shared_data):
    return DecontamSpec(shared_specs("math500", "aime24", "aime25", "amc23", "gsm8k", "minerva_math", "olympiadbench"))


def test_the_20_math500_traces_are_caught(real_spec):
    index = real_spec.index()
    ids = {p.problem: p.id for p in index.problems}
    for r in read_jsonl(shared_data_dir() / "traces" / "math500_deepseek-r1.jsonl"):
        m = index.match(r["problem"])
        assert m is not None and m.benchmark == "math500" and m.benchmark_id == ids[r["problem"]]


def test_limo_boilerplate_hits_are_not_matches(real_spec):
    """291 LIMO problems: more than 60 share an 8-gram with AIME / MATH-500 / AMC (boilerplate phrasing such as
    'm and n are relatively prime positive integers'); none of them is a benchmark problem (checked by eye)."""
    index = real_spec.index()
    rows = read_jsonl(shared_data_dir() / "traces" / "limo_deepseek-r1-distill-qwen-32b.jsonl")
    spec = learn_spec(real_spec, [r["question"] for r in rows])
    learned = spec.index()
    assert [r["id"] for r in rows if index.match(r["question"]) is not None] == []
    assert [r["id"] for r in rows if learned.match(r["question"]) is not None] == []


def test_limo_true_overlaps_are_caught(real_spec):
    """Six LIMO problems are MATH-500 problems (five verbatim, one reworded: the unfair die)."""
    want = {85: "counting_and_probability/1003", 159: "intermediate_algebra/582", 211: "intermediate_algebra/2146",
            217: "intermediate_algebra/90", 289: "intermediate_algebra/1365", 451: "intermediate_algebra/1411"}
    index = real_spec.index()
    rows = {r["id"]: r["question"] for r in read_jsonl(shared_data_dir() / "traces" / "limo_official-solution.jsonl")}
    hits = {i: m.benchmark_id for i, q in rows.items() if (m := index.match(q)) is not None}
    assert hits == {i: f"math500-test/{p}.json" for i, p in want.items()}


# ------------------------------------------------------------------ duplicates, verdicts, the stages


def frame(rows):
    from dlcot_dagster.domain.schema import TRACE_SCHEMA

    base = {"teacher": "t", "reference_answer": "1", "final_response": None, "source_file": "f.jsonl",  # noqa: E501
            "layout": "plain", "thinking_closed": True, "problem_tokens": 1, "thinking_tokens": 1,
            "response_tokens": 0, "raw_tokens": 10_000}
    return pl.DataFrame([{**base, "source_line": i + 1, **r} for i, r in enumerate(rows)], schema=TRACE_SCHEMA)


def test_deduper_across_batches_with_bounded_memory(tmp_path):
    a = frame([{"id": "a", "problem": "P1", "thinking": "T1"}, {"id": "b", "problem": "P2", "thinking": "T1"},
               {"id": "c", "problem": "P1 ", "thinking": " T1"}])  # c == a (ends stripped)
    b = frame([{"id": "d", "problem": "P2", "thinking": "T1"}, {"id": "e", "problem": "P1", "thinking": "T2"},
               {"id": "f", "problem": "P1", "thinking": "T1"}])
    with TraceDeduper(tmp_path) as dedup:
        assert dedup.mark(a) == [None, None, "a"]
        assert dedup.mark(b) == ["b", None, "a"]
        assert dedup.duplicates == 3
        bytes_small = dedup.nbytes
        many = frame([{"id": f"x{i}", "problem": f"p{i}", "thinking": "t"} for i in range(20_000)])
        assert dedup.mark(many) == [None] * 20_000
        per_trace = (dedup.nbytes - bytes_small) / 20_000
        assert per_trace <= 100  # a 16-byte fingerprint and an 8-byte offset per slot, half to a quarter full
    assert not list(tmp_path.iterdir())  # the id file is removed


def test_verdicts_and_the_stages_carry_the_drops(real_spec, tmp_path):
    from dlcot_dagster.domain.answers import AnswerChecker
    from dlcot_dagster.domain.dlcot import RulesEngine
    from dlcot_dagster.domain.pipeline import (
        DROPPED_SCHEMA, correct_frame, dlcot_accounting_problems, prune_frame, segment_frame,
    )

    m500 = read_jsonl(shared_data_dir() / "benchmarks" / "math500.jsonl")[0]
    thinking = "We need 2 + 3. 2 + 3 = 5. So the answer is 5.\n\n**Final Answer**\n\\boxed{5}"
    raw = frame([
        {"id": "bench", "problem": m500["problem"] + "\nPlease reason step by step.", "thinking": thinking,
         "reference_answer": "5"},
        {"id": "ok", "problem": "What is 2 + 3?", "thinking": thinking, "reference_answer": "5"},
        {"id": "dup", "problem": "What is 2 + 3?", "thinking": thinking, "reference_answer": "5"},
    ])
    with TraceDeduper(tmp_path) as dedup:
        verdicts = decontam_frame(raw, real_spec, dedup.mark(raw))
    assert verdicts["status"].to_list() == ["dropped", "kept", "dropped"]
    assert verdicts["reason"].to_list() == ["benchmark_overlap:math500", None, "duplicate_trace"]
    assert verdicts["matched_id"].to_list() == [f"math500-{m500['unique_id']}", None, "ok"]
    assert verdicts["match_kind"].to_list()[0] in ("exact", "ngram")
    assert len(set(verdicts["problem_key"])) == 2  # ok and dup: one normalized problem
    engine = RulesEngine(checker=AnswerChecker())
    seg = segment_frame(raw, engine, drops=verdict_drops(verdicts))
    assert seg.height == 3 and seg["reason"].to_list() == ["benchmark_overlap:math500", None, "duplicate_trace"]
    pruned = prune_frame(raw, seg, engine)
    assert pruned["drop_stage"].to_list() == ["decontam", None, "decontam"]
    tables = correct_frame(raw, pruned, engine, None)
    dropped = attach_evidence(tables.dropped, verdicts)
    assert dropped.schema == pl.Schema(DROPPED_SCHEMA)
    assert tables.kept["id"].to_list() == ["ok"]
    assert not dlcot_accounting_problems(raw, tables.kept, dropped)
    rows = {r["id"]: r for r in dropped.iter_rows(named=True)}
    assert rows["bench"]["stage"] == "decontam" and rows["bench"]["benchmark"] == "math500"
    assert rows["bench"]["evidence"] and rows["dup"]["matched_id"] == "ok" and rows["dup"]["match_kind"] == "duplicate"
    # the kept-row re-check: clean here, the benchmark row when it is (wrongly) kept
    assert kept_overlaps(tables.kept.select("id", "problem"), real_spec) == []
    bad = kept_overlaps(raw.select("id", "problem"), real_spec)
    assert len(bad) == 1 and bad[0].startswith(f"bench: math500-{m500['unique_id']}")


def test_spec_is_picklable_and_cached(real_spec):
    import pickle

    spec = learn_spec(real_spec, ["m and n are relatively prime positive integers. Find m+n."] * 3)
    again = pickle.loads(pickle.dumps(spec))
    assert again == spec and again.index() is spec.index()
    assert len(spec.config_hash()) == 12 and spec.config_hash() != DecontamSpec(shared_specs("math500")).config_hash()
