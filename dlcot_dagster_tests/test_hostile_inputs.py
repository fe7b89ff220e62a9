"""Hostile inputs, end to end: every record ends in a verdict (kept) or a reject / drop with a reason.

Every trace is untrusted model output. Each case below is written into a JSONL dump in one of the
layouts the readers accept, ingested with the real token counter (``ingest_files``), then run through
``segment_frame`` -> ``prune_frame`` -> ``correct_frame`` with a ``RulesEngine``. The tests assert the
accounting (every input record accounted for exactly once, at ingestion and after DLCoT), the reason
each case ends with, and a wall-clock bound: an autouse fixture arms an outer alarm deadline, so a
hang fails the test instead of stalling the suite (``pytest-timeout`` is not installed).

The per-record time budget (``record_budget_s``, :mod:`dlcot_dagster.domain.budget`) is proven with an
engineered slow record: one engine step is wrapped to loop forever for one id; that record becomes a
``timeout`` drop (or reject) and its neighbours come out exactly as without it.
"""

from __future__ import annotations

import json
import signal
import tempfile
import threading
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlcot_dagster.domain import budget as budget_mod
from dlcot_dagster.domain.ingest import core as ingest_mod
from dlcot_dagster.domain.answers import AnswerChecker
from dlcot_dagster.domain.answers.runner import DeadlineExceeded, alarm_deadline
from dlcot_dagster.domain.budget import RecordTimeout, deadline, paused, record_budget
from dlcot_dagster.domain.dlcot import RulesEngine
from dlcot_dagster.domain.ingest import accounting_problems, ingest_files
from dlcot_dagster.domain.pipeline import (
    coverage_problems,
    correct_frame,
    dlcot_accounting_problems,
    prune_frame,
    segment_frame,
)


# ---------------------------------------------------------------------------------------------- harness


class Hang(BaseException):
    """The test's own wall-clock limit ran out (a hang)."""


#: wall-clock limit of one test; the slowest test here takes a few seconds
TEST_LIMIT_S = 90.0


def own_alarm(fn):
    """For a test that installs its own SIGALRM handler: no wall-clock alarm around it."""
    fn.own_alarm = True
    return fn


@pytest.fixture(autouse=True)
def wall_clock(request):
    """Outer alarm deadline around every test: a hang raises ``Hang`` instead of stalling the run."""
    t0 = time.monotonic()
    if getattr(request.function, "own_alarm", False):
        yield
    else:
        with deadline(TEST_LIMIT_S, Hang):
            yield
    assert time.monotonic() - t0 < TEST_LIMIT_S
    # nothing of the budget machinery is left armed after a test
    assert budget_mod._stack == [] and signal.getitimer(signal.ITIMER_REAL)[0] == 0


@pytest.fixture(scope="module")
def engine():
    return RulesEngine("default", AnswerChecker(timeout_s=2.0))


def line(obj) -> bytes:
    if isinstance(obj, bytes):
        return obj
    try:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only the \uXXXX escape can carry it
        return json.dumps(obj).encode("ascii")


def write_jsonl(path: Path, records: list) -> Path:
    path.write_bytes(b"\n".join(line(r) for r in records) + b"\n")
    return path


def run_all(files, counter, engine, *, max_raw_tokens="default", budget_s=10.0, max_seq_len=32_768):
    """Ingest + the three DLCoT stages with every accounting check; returns the tables."""
    kw = {} if max_raw_tokens == "default" else {"max_raw_tokens": max_raw_tokens}
    ing = ingest_files(files, "hostile", None, counter, record_budget_s=budget_s, **kw)
    assert accounting_problems(ing.traces, ing.rejects, ing.files) == []
    assert ing.rejects.filter(pl.col("reason").is_null() | (pl.col("detail") == "")).height == 0
    raw = ing.traces
    seg = segment_frame(raw, engine, record_budget_s=budget_s)
    assert seg.height == raw.height and seg["id"].to_list() == raw["id"].to_list()
    assert coverage_problems(raw, seg) == []
    pru = prune_frame(raw, seg, engine, record_budget_s=budget_s)
    assert pru["id"].to_list() == raw["id"].to_list()
    assert pru.filter(pl.col("status") == "dropped")["reason"].null_count() == 0
    tables = correct_frame(raw, pru, engine, counter, max_seq_len=max_seq_len, record_budget_s=budget_s)
    assert dlcot_accounting_problems(raw, tables.kept, tables.dropped) == []
    return ing, seg, pru, tables


def outcomes(ing, tables) -> dict[str, tuple]:
    """Record id (or ``file:line`` for a reject without one) -> ('rejected', reason) / ('kept',) / ('dropped', stage, reason)."""
    out: dict[str, tuple] = {}
    for r in ing.rejects.iter_rows(named=True):
        key = f"{r['source_file']}:{r['source_line']}"
        assert key not in out
        out[key] = ("rejected", r["reason"])
    line_of = {r["id"]: f"{r['source_file']}:{r['source_line']}" for r in ing.traces.iter_rows(named=True)}
    for rid in tables.kept["id"].to_list():
        assert line_of[rid] not in out
        out[line_of[rid]] = ("kept",)
    for r in tables.dropped.iter_rows(named=True):
        assert line_of[r["id"]] not in out and r["reason"]
        out[line_of[r["id"]]] = ("dropped", r["stage"], r["reason"])
    return out


# ---------------------------------------------------------------------------------------------- corpus


def rec(rid, response, answer="2", problem="What is 1 + 1?", **kw):
    return {"id": rid, "problem": problem, "answer": answer, "response": response, **kw}


OK = "<think>1 + 1 = 2. So the answer is 2.</think>The answer is $\\boxed{2}$."
DEEP = 5000

#: (name, JSONL record or raw line bytes, accepted outcomes). An outcome is ('kept',), ('rejected', reason)
#: or ('dropped', stage, reason).
CORPUS: list[tuple[str, object, set[tuple]]] = [
    ("ok", rec("ok", OK), {("kept",)}),
    # a 1 MB line: over the raw-token ceiling at ingestion (the engine path is tested below without it)
    ("one_mb_line", rec("one_mb_line", "<think>" + "x = 1 + 1 = 2. " * 70_000 + "</think>\\boxed{2}"),
     {("rejected", "too_many_tokens")}),
    # deeply nested \boxed{ braces, balanced and not
    ("nested_boxed", rec("nested_boxed", "<think>So the answer is " + "\\boxed{" * DEEP + "2" + "}" * DEEP + ".</think>"),
     {("dropped", "correct", "longer_than_raw"), ("dropped", "prune", "no_correct_solution"),
      ("dropped", "correct", "final_answer_unverified")}),
    ("unclosed_boxed", rec("unclosed_boxed", "<think>So the answer is " + "\\boxed{" * DEEP + "2</think>\\boxed{" + "{" * 3000),
     {("dropped", "prune", "no_correct_solution"), ("dropped", "prune", "no_answer_found")}),
    ("nested_boxed_answer", rec("nested_boxed_answer", OK, answer="\\boxed{" * 60 + "2" + "}" * 60),
     {("kept",), ("dropped", "prune", "no_correct_solution")}),
    # unbalanced think tags
    ("think_close_first", rec("think_close_first", "</think><think><think>So the answer is 2.</think></think><think>\\boxed{2}"),
     {("kept",)}),
    # never closed: no final response, so the built "The final answer is $\boxed{2}$." outweighs the short thinking
    ("think_never_closed", rec("think_never_closed", "<think>1 + 1 = 2. So the answer is 2. Wait, let me"),
     {("kept",), ("dropped", "correct", "longer_than_raw")}),
    ("think_only_tags", rec("think_only_tags", "<think></think><think></think>"), {("rejected", "empty_field")}),
    ("think_nested", rec("think_nested", "<think>a <think>b <think>So the answer is 2.</think> c</think>\\boxed{2}"),
     {("kept",)}),
    ("bot_eot_mixed", rec("bot_eot_mixed", "<|end_of_thought|><think>So the answer is 2.<|begin_of_thought|></think>"),
     {("kept",), ("dropped", "prune", "no_answer_found")}),
    # NUL characters (JSON-escaped: valid JSON, the text carries U+0000)
    ("nul_chars", rec("nul_chars", "<think>\u0000 1 + 1 = 2.\u0000 So the answer is 2\u0000.</think>\\boxed{2\u0000}",
                      problem="What\u0000?"), {("kept",), ("dropped", "correct", "final_answer_unverified")}),
    # invalid UTF-8 / unencodable text inside an otherwise fine file
    ("latin1_bytes", b'{"id": "latin1_bytes", "problem": "caf\xe9", "answer": "2", "response": "x"}',
     {("rejected", "undecodable_bytes")}),
    ("overlong_utf8", b'{"id": "overlong_utf8", "problem": "q\xc0\xaf", "answer": "2", "response": "x"}',
     {("rejected", "undecodable_bytes")}),
    ("raw_nul_byte", b'{"id": "raw_nul_byte", "problem": "q\x00", "answer": "2", "response": "x"}',
     {("rejected", "malformed_json")}),
    ("lone_surrogate", b'{"id": "lone_surrogate", "problem": "q", "answer": "2", "response": "<think>the answer is \\ud800 2</think>"}',
     {("rejected", "undecodable_bytes")}),
    ("surrogate_id", b'{"id": "s\\udfff", "problem": "q", "answer": "2", "response": "<think>the answer is 2</think>"}',
     {("rejected", "undecodable_bytes")}),
    ("huge_int_literal", b'{"id": "huge_int_literal", "problem": "q", "answer": ' + b"9" * 5000 + b', "response": "x"}',
     {("rejected", "malformed_json")}),
    ("json_too_deep", b'{"id": "json_too_deep", "response": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     {("rejected", "malformed_json")}),
    # 10k repetitions of "Wait,"
    ("wait_10k", rec("wait_10k", "<think>1 + 1 = 2. " + "Wait, " * 10_000 + "So the answer is 2.</think>\\boxed{2}"),
     {("kept",)}),
    ("wait_10k_no_answer", rec("wait_10k_no_answer", "<think>" + "Wait, " * 10_000 + "</think>"),
     {("dropped", "prune", "no_answer_found")}),
    # answers that would make sympy compute forever: refused or decided cheaply, never run
    ("tower_vs_other", rec("tower_vs_other", "<think>So the answer is \\boxed{9^{9^{9^{8}}}}.</think>", answer="9^{9^{9^{9}}}"),
     {("dropped", "prune", "no_correct_solution")}),
    ("tower_identical", rec("tower_identical", "<think>So the answer is \\boxed{9^{9^{9^{9}}}}.</think>\\boxed{9^{9^{9^{9}}}}",
                            answer="9^{9^{9^{9}}}"), {("kept",)}),
    ("tower_vs_number", rec("tower_vs_number", "<think>So the answer is \\boxed{9^{9^{9^{9}}}}.</think>", answer="387420489"),
     {("dropped", "prune", "no_correct_solution")}),
    ("frac_1_0", rec("frac_1_0", "<think>So the answer is \\boxed{\\frac{1}{0}}.</think>", answer="2"),
     {("dropped", "prune", "no_correct_solution")}),
    ("frac_1_0_gold", rec("frac_1_0_gold", OK, answer="\\frac{1}{0}"), {("dropped", "prune", "no_correct_solution")}),
    ("factorials", rec("factorials", "<think>So the answer is \\boxed{10!!!!!!}.</think>", answer="3628800"),
     {("dropped", "prune", "no_correct_solution")}),
    ("factorial_gold", rec("factorial_gold", "<think>So the answer is \\boxed{3628800}.</think>", answer="10!!!!!!"),
     {("dropped", "prune", "no_correct_solution")}),
    ("huge_factorial", rec("huge_factorial", "<think>So the answer is \\boxed{100000!}.</think>", answer="2"),
     {("dropped", "prune", "no_correct_solution")}),
    # LaTeX macros that expand forever: we never expand macros, they are compared as text
    ("def_recursion", rec("def_recursion", "<think>\\def\\a{\\a\\a}\\a So the answer is \\boxed{\\def\\a{\\a\\a}\\a}.</think>"
                          "\\boxed{\\newcommand{\\b}{\\b\\b}\\b}", answer="2"), {("dropped", "prune", "no_correct_solution")}),
    ("newcommand_gold", rec("newcommand_gold", OK, answer="\\newcommand{\\b}{\\b\\b}\\b"),
     {("dropped", "prune", "no_correct_solution")}),
    ("def_identical", rec("def_identical", "<think>So the answer is \\boxed{\\def\\a{\\a\\a}\\a}.</think>",
                          answer="\\def\\a{\\a\\a}\\a"), {("kept",), ("dropped", "correct", "longer_than_raw")}),
    # no answer at all
    ("no_answer", rec("no_answer", "<think>I have no idea. Let me think. Hmm.</think>"),
     {("dropped", "prune", "no_answer_found")}),
    ("no_answer_plain", rec("no_answer_plain", "Hmm, hard."), {("dropped", "prune", "no_answer_found")}),
    # empty / non-mathematical reference answers
    ("ref_empty", rec("ref_empty", OK, answer=""), {("rejected", "empty_field")}),
    ("ref_blank", rec("ref_blank", OK, answer="   \n"), {("rejected", "empty_field")}),
    ("ref_null", rec("ref_null", OK, answer=None), {("rejected", "missing_field")}),
    ("ref_see_figure", rec("ref_see_figure", OK, answer="see figure"), {("dropped", "prune", "no_correct_solution")}),
    ("ref_na", rec("ref_na", OK, answer="N/A"), {("dropped", "prune", "no_correct_solution")}),
    ("ref_na_matching", rec("ref_na_matching", "<think>So the answer is N/A.</think>\\boxed{N/A}", answer="N/A"),
     {("kept",), ("dropped", "prune", "no_correct_solution")}),
    ("ref_list", rec("ref_list", OK, answer=["see figure", {"x": 1}]), {("rejected", "wrong_type")}),
    ("ref_nan", b'{"id": "ref_nan", "problem": "q", "answer": NaN, "response": "<think>So the answer is 2.</think>"}',
     {("dropped", "prune", "no_correct_solution")}),
    # odd shapes of the record itself
    ("id_is_list", rec(["x"], OK), {("rejected", "wrong_type")}),
    ("not_an_object", b'"just a string"', {("rejected", "not_an_object")}),
    ("messages_garbage", {"id": "messages_garbage", "messages": [{"role": "assistant", "content": {"a": 1}}], "answer": "2"},
     {("rejected", "wrong_type")}),
    ("messages_no_user", {"id": "messages_no_user", "messages": [{"role": "assistant", "content": OK}], "answer": "2"},
     {("rejected", "missing_field")}),
]


def test_hostile_corpus_end_to_end(tmp_path, token_counter, engine):
    names = [c[0] for c in CORPUS]
    assert len(set(names)) == len(names)
    # the good record first, then 9 KB of padding records, so the raw NUL line is past the binary sniff
    pad = [rec(f"pad{i}", OK) for i in range(60)]
    f = write_jsonl(tmp_path / "hostile.jsonl", pad + [c[1] for c in CORPUS])
    assert len(b"\n".join(line(r) for r in pad)) > 8192
    # whole files: a NUL byte in the head, invalid UTF-8 all over, both rejected as one unit naming the file
    nul = tmp_path / "nul_head.jsonl"
    nul.write_bytes(line(rec("n1", OK)) + b"\n" + b'{"id": "n2", "problem": "\x00"}\n')
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(bytes(range(128, 256)) * 100)
    files = [(f, "hostile.jsonl"), (nul, "nul_head.jsonl"), (bad, "latin1.jsonl")]

    t0 = time.monotonic()
    ing, seg, pru, tables = run_all(files, token_counter, engine)
    elapsed = time.monotonic() - t0
    got = outcomes(ing, tables)

    assert len(got) == len(pad) + len(CORPUS) + 2  # every record accounted for exactly once
    for i in range(len(pad)):
        assert got[f"hostile.jsonl:{i + 1}"] == ("kept",)
    wrong = {}
    for i, (name, _record, accepted) in enumerate(CORPUS):
        outcome = got[f"hostile.jsonl:{len(pad) + i + 1}"]
        if outcome not in accepted:
            wrong[name] = outcome
    assert wrong == {}
    assert got["nul_head.jsonl:0"] == ("rejected", "unreadable_file")
    assert got["latin1.jsonl:0"] == ("rejected", "unreadable_file")
    # rejects name file, line and (where there is one) the field at fault
    rej = {r["source_line"]: r for r in ing.rejects.filter(pl.col("source_file") == "hostile.jsonl").iter_rows(named=True)}
    by_name = {name: rej.get(len(pad) + i + 1) for i, (name, *_rest) in enumerate(CORPUS)}
    assert by_name["lone_surrogate"]["field"] == "thinking"
    assert by_name["surrogate_id"]["field"] == "id"
    assert by_name["ref_empty"]["field"] == "answer"
    assert by_name["latin1_bytes"]["detail"].startswith("invalid UTF-8")
    assert "4300 digits" in by_name["huge_int_literal"]["detail"]
    # kept records are whole SFT samples whose answer was verified
    kept = tables.kept
    assert kept["answer_equivalent"].all() and kept["messages"].list.len().min() == 2
    assert elapsed < 60, f"the hostile corpus took {elapsed:.1f}s"


def test_one_megabyte_traces_through_the_engine(tmp_path, token_counter, engine):
    """Without the raw-token ceiling, 1 MB traces reach every DLCoT step and still end in a verdict or a drop."""
    mb = 1_000_000
    f = write_jsonl(
        tmp_path / "big.jsonl",
        [
            rec("wait", "<think>" + "Wait, " * (mb // 6) + "so the answer is 2.</think>\\boxed{2}"),
            rec("braces", "<think>" + "{" * (mb // 2) + "}" * (mb // 2) + "</think>"),
            rec("boxes", "<think>" + "\\boxed{" * (mb // 7) + "</think>\\boxed{2}"),
            rec("backslashes", "<think>" + "\\" * mb + "</think>"),
            rec("ok", OK),
        ],
    )
    t0 = time.monotonic()
    ing, _seg, _pru, tables = run_all([(f, "big.jsonl")], token_counter, engine, max_raw_tokens=None, max_seq_len=None)
    assert ing.traces.height == 5
    got = {r: o for r, o in outcomes(ing, tables).items()}
    assert got["big.jsonl:5"] == ("kept",)
    assert got["big.jsonl:1"] == ("kept",)
    for k in ("big.jsonl:2", "big.jsonl:4"):  # no answer anywhere
        assert got[k] in {("dropped", "prune", "no_answer_found"), ("dropped", "prune", "timeout")}
    # unclosed boxes in the thinking; the final response's \boxed{2} is the trace's answer (the rules give the
    # thinking the answer of the final response it leads to), so it may be kept
    assert got["big.jsonl:3"] in {("kept",), ("dropped", "prune", "no_answer_found"), ("dropped", "prune", "timeout")}
    assert time.monotonic() - t0 < 60


# ---------------------------------------------------------------------------------------------- the record budget


#: the record budget of the slow-record tests: far above what a normal record takes, even on a loaded machine
SLOW_BUDGET_S = 1.0


class _Slow:
    """Wraps one engine step: loops forever (sleeping in small steps) for one record id."""

    def __init__(self, inner, method: str, slow_id: str, swallow: bool = False):
        self.inner, self.method, self.slow_id, self.swallow = inner, method, slow_id, swallow
        self.calls = 0

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name != self.method:
            return attr

        def wrapped(first, *args):
            rid = getattr(getattr(first, "record", first), "id", None)
            if rid == self.slow_id:
                self.calls += 1
                while True:
                    try:
                        time.sleep(0.01)
                    except Exception:  # an `except Exception` in slow code must not swallow the budget
                        if not self.swallow:
                            raise
            return attr(first, *args)

        return wrapped


def _budget_records():
    return [
        rec("a", OK),
        rec("slow", "<think>1 + 1 = 2. So the answer is 2.\n\nWait, let me verify: 2 - 1 = 1. Yes.</think>\\boxed{2}"),
        rec("b", "<think>So the answer is 3.\n\nWait, no: 1 + 1 = 2. So the answer is 2.</think>\\boxed{2}"),
        rec("c", "<think>No idea.</think>"),
    ]


@pytest.mark.parametrize(
    "step,method,stage",
    [
        ("segmenter", "segment", "segment"),
        ("labeler", "label", "prune"),
        ("clusterer", "cluster", "prune"),
        ("pruner", "prune", "prune"),
        ("rewriter", "rewrite", "correct"),
    ],
)
def test_slow_record_times_out_and_neighbours_are_untouched(tmp_path, token_counter, step, method, stage):
    f = write_jsonl(tmp_path / "d.jsonl", _budget_records())
    files = [(f, "d.jsonl")]
    baseline = outcomes(*_pick(run_all(files, token_counter, RulesEngine("default"), budget_s=SLOW_BUDGET_S)))

    eng = RulesEngine("default")
    slow = _Slow(getattr(eng, step), method, "d/slow", swallow=True)
    setattr(eng, step, slow)
    t0 = time.monotonic()
    ing, seg, pru, tables = run_all(files, token_counter, eng, budget_s=SLOW_BUDGET_S)
    assert time.monotonic() - t0 < 20
    assert slow.calls == 1  # the timed-out record is not retried by a later stage
    got = outcomes(ing, tables)
    assert got["d.jsonl:2"] == ("dropped", stage, "timeout")
    assert {k: v for k, v in got.items() if k != "d.jsonl:2"} == {k: v for k, v in baseline.items() if k != "d.jsonl:2"}
    assert baseline["d.jsonl:1"] == ("kept",)
    if stage == "segment":
        row = seg.filter(pl.col("id") == "d/slow").row(0, named=True)
        assert (row["status"], row["reason"], row["segments"]) == ("dropped", "timeout", "[]")
    if stage in ("segment", "prune"):
        row = pru.filter(pl.col("id") == "d/slow").row(0, named=True)
        assert (row["status"], row["reason"], row["drop_stage"]) == ("dropped", "timeout", stage)


def _pick(result):
    ing, _seg, _pru, tables = result
    return ing, tables


def test_budget_outlives_the_inner_answer_checker_alarm(tmp_path, token_counter):
    """A record stuck inside the checker's own (longer) alarm deadline still ends as ``timeout`` at the
    record budget: the inner alarm neither cancels the outer one nor turns it into a checker verdict."""

    class StuckChecker:
        def __init__(self):
            self.inner = AnswerChecker(timeout_s=2.0)

        def compare(self, gold, pred):
            if pred == "7":  # the slow record's answer
                try:
                    with alarm_deadline(30.0):
                        while True:
                            time.sleep(0.01)
                except DeadlineExceeded:
                    pytest.fail("the inner deadline surfaced instead of the record budget")
            return self.inner.compare(gold, pred)

    recs = [rec("a", OK), rec("slow", "<think>So the answer is 7.</think>", answer="7"), rec("b", OK)]
    f = write_jsonl(tmp_path / "d.jsonl", recs)
    t0 = time.monotonic()
    eng = RulesEngine("default", StuckChecker())
    ing, _seg, _pru, tables = run_all([(f, "d.jsonl")], token_counter, eng, budget_s=SLOW_BUDGET_S)
    assert time.monotonic() - t0 < 10
    got = outcomes(ing, tables)
    assert got == {"d.jsonl:1": ("kept",), "d.jsonl:2": ("dropped", "prune", "timeout"), "d.jsonl:3": ("kept",)}


def test_ingest_budget_rejects_a_slow_record_naming_file_line_and_field(tmp_path, monkeypatch):
    real = ingest_mod.analyze_row  # the per-record parsing that runs under the budget

    def slow_normalize(obj, spec):
        if isinstance(obj, dict) and obj.get("id") == "slow":
            while True:
                time.sleep(0.01)
        return real(obj, spec)

    monkeypatch.setattr(ingest_mod, "analyze_row", slow_normalize)
    recs = [rec("a", OK), rec("slow", OK + "x" * 5000), rec("b", OK)]
    f = write_jsonl(tmp_path / "d.jsonl", recs)
    t0 = time.monotonic()
    ing = ingest_files([(f, "d.jsonl")], "t", None, None, record_budget_s=0.3)
    assert time.monotonic() - t0 < 5
    assert ing.traces["id"].to_list() == ["d/a", "d/b"]
    (r,) = ing.rejects.iter_rows(named=True)
    assert (r["source_file"], r["source_line"], r["reason"], r["field"], r["record_id"]) == (
        "d.jsonl", 2, "timeout", "response", "slow"
    )
    assert "0.3 s budget" in r["detail"]
    assert accounting_problems(ing.traces, ing.rejects, ing.files) == []


def test_budget_off_lets_a_slow_record_finish(tmp_path, token_counter):
    """``record_budget_s=None`` (or 0) switches the budget off: a record slower than a small budget is kept."""
    eng = RulesEngine("default")

    class Sleepy:
        def __init__(self, inner):
            self.inner = inner

        def segment(self, record):
            if record.id == "d/a":
                time.sleep(0.3)
            return self.inner.segment(record)

    eng.segmenter = Sleepy(eng.segmenter)
    f = write_jsonl(tmp_path / "d.jsonl", [rec("a", OK)])
    for off in (None, 0):
        ing, _s, _p, tables = run_all([(f, "d.jsonl")], token_counter, eng, budget_s=off)
        assert tables.kept["id"].to_list() == ["d/a"]
    ing, _s, _p, tables = run_all([(f, "d.jsonl")], token_counter, eng, budget_s=0.1)
    assert tables.dropped.select("stage", "reason").rows() == [("segment", "timeout")]


def test_off_the_main_thread_the_budget_is_cooperative(tmp_path, token_counter):
    """No SIGALRM in a worker thread: the step is not interrupted, but a record that overran is still ``timeout``."""
    eng = RulesEngine("default")

    class Sleepy:
        def __init__(self, inner):
            self.inner = inner

        def segment(self, record):
            if record.id == "d/slow":
                time.sleep(1.0)
            return self.inner.segment(record)

    eng.segmenter = Sleepy(eng.segmenter)
    f = write_jsonl(tmp_path / "d.jsonl", [rec("a", OK), rec("slow", OK), rec("b", OK)])
    box: dict = {}

    def work():
        try:
            box["result"] = run_all([(f, "d.jsonl")], token_counter, eng, budget_s=0.5)
        except BaseException as exc:  # report it to the main thread
            box["error"] = exc

    t = threading.Thread(target=work)
    t.start()
    t.join(60)
    assert not t.is_alive() and "error" not in box, box.get("error")
    ing, _s, _p, tables = box["result"]
    assert outcomes(ing, tables) == {
        "d.jsonl:1": ("kept",),
        "d.jsonl:2": ("dropped", "segment", "timeout"),
        "d.jsonl:3": ("kept",),
    }


# ---------------------------------------------------------------------------------------------- the deadline helper


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_outer_budget_wins_over_an_armed_inner_deadline():
    t0 = time.monotonic()
    with pytest.raises(RecordTimeout):
        with record_budget(0.2):
            try:
                with alarm_deadline(5.0):
                    _spin(3.0)
            except DeadlineExceeded:
                pytest.fail("inner deadline surfaced")
    assert time.monotonic() - t0 < 1.0


def test_inner_deadline_fires_first_and_the_outer_keeps_counting():
    t0 = time.monotonic()
    inner_at = None
    with pytest.raises(RecordTimeout):
        with record_budget(0.6):
            try:
                with alarm_deadline(0.1):
                    _spin(3.0)
            except DeadlineExceeded:
                inner_at = time.monotonic() - t0
            _spin(3.0)
    assert inner_at is not None and inner_at < 0.5
    assert 0.5 < time.monotonic() - t0 < 1.5


def test_both_expired_at_once_the_outer_surfaces():
    with pytest.raises(RecordTimeout):
        with record_budget(0.05):
            with alarm_deadline(0.05):
                time.sleep(0.3)


@own_alarm
def test_deadlines_restore_a_previous_handler_and_timer():
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.4)
        with record_budget(5.0):
            with alarm_deadline(2.0):
                pass
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
        time.sleep(0.6)
        assert fired == [1]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_paused_stops_the_record_clock():
    with record_budget(0.3):
        with paused():
            time.sleep(0.5)  # a per-process warm-up is not charged to the record
        _spin(0.1)
    with pytest.raises(RecordTimeout):
        with record_budget(0.2):
            with paused():
                pass
            _spin(1.0)


def test_many_nested_deadlines_leave_no_state_behind():
    base = list(budget_mod._stack)  # the test's own wall-clock deadline
    outer = inner = 0
    for i in range(100):
        try:
            with record_budget(0.005 + (i % 7) * 0.003):
                for j in range(30):
                    try:
                        with alarm_deadline(0.0005 if j % 3 == 0 else 0.05):
                            _spin(0.001)
                    except DeadlineExceeded:
                        inner += 1
        except RecordTimeout:
            outer += 1
        assert budget_mod._stack == base
    assert outer > 0 and inner > 0


# ---------------------------------------------------------------------------------------------- property


TOKENS = [
    "\\boxed{", "{", "}", "\\", "\\\\", "<think>", "</think>", "<|begin_of_thought|>", "<|end_of_thought|>",
    "<|begin_of_solution|>", "Wait, ", "Wait,", "Alternatively, ", "Let me verify: ", "So the answer is ", "2", "42",
    "**Final Answer**", "#### ", "$", "$$", "\\frac{1}{0}", "9^{9^{9^{9}}}", "10!!!!!!", "\\def\\a{\\a\\a}\\a",
    "\\newcommand{\\b}{\\b\\b}\\b", "\n", "\n\n", " ", "\u0000", "\u2028", "\ud800", "é", "∞", "\\left(", "\\right)", "^", "_",
]
texts = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=12)), max_size=30).map("".join)
answers = st.one_of(
    st.sampled_from(["2", "42", "", "N/A", "see figure", "\\frac{1}{0}", "9^{9^{9^{9}}}", "10!!!!!!", "\\boxed{", "}"]),
    texts,
)


@st.composite
def records(draw, i):
    layout = draw(st.sampled_from(["response", "fields", "messages"]))
    base = {"id": f"r{i}", "problem": draw(st.sampled_from(["What is 1 + 1?", "", "q"])), "answer": draw(answers)}
    if layout == "response":
        base["response"] = draw(texts)
    elif layout == "fields":
        base["reasoning"] = draw(texts)
        base["solution"] = draw(st.one_of(st.none(), texts))
    else:
        base.pop("problem")
        base["messages"] = [{"role": "user", "content": draw(texts)}, {"role": "assistant", "content": draw(texts)}]
    return base


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_records_end_in_a_verdict_or_a_reason(data, token_counter, engine):
    recs = [data.draw(records(i)) for i in range(data.draw(st.integers(1, 4)))]
    with tempfile.TemporaryDirectory() as d:
        f = write_jsonl(Path(d) / "p.jsonl", recs)
        t0 = time.monotonic()
        ing, _seg, _pru, tables = run_all([(f, "p.jsonl")], token_counter, engine, budget_s=10.0)
        assert time.monotonic() - t0 < 30
    got = outcomes(ing, tables)
    assert sorted(got) == [f"p.jsonl:{i + 1}" for i in range(len(recs))]
    for outcome in got.values():
        assert outcome == ("kept",) or (outcome[-1] and isinstance(outcome[-1], str))


# ---------------------------------------------------------------------------------------------- the new text scanners

ADVERSARIAL = [
    "1234567890" * 8 + "! = 7",  # digits cut before the "=": the first expression reader backtracked for minutes
    "1" * 5000 + "x = 5",
    "12 " * 2000 + "! = 7",
    "a+" * 3000 + "= 3",
    "\\frac{1}{2}" * 800 + "= 3",
    "x < " * 1500 + "3",
    "(A) 1 " * 2000,
    "So option " + "A " * 3000 + "is correct.",
    "= " * 4000 + "5",
    "the sum of " * 1500 + "14.",
    ("Wait, " * 2000) + "so the answer is 42.",
]


@pytest.mark.parametrize("k", range(len(ADVERSARIAL)))
def test_text_scanners_stay_linear_on_adversarial_text(k):
    """Every scanner added for the first answer, the checks, method evidence, error states and sets of reals runs
    in well under a second per call on text built to make a regex backtrack."""
    from dlcot_dagster.domain.answers.sets import compare_sets
    from dlcot_dagster.domain.dlcot.answers_in_text import candidate_value, locate_answers
    from dlcot_dagster.domain.dlcot.choices import choice_commitments, parse_choices
    from dlcot_dagster.domain.dlcot.error_states import statements
    from dlcot_dagster.domain.dlcot.method import check_type, evidence
    from dlcot_dagster.domain.dlcot.policy import SegmenterConfig

    text = ADVERSARIAL[k]
    calls = [
        lambda: statements(text),
        lambda: evidence(text),
        lambda: check_type(text),
        lambda: candidate_value(text[-600:]),
        lambda: parse_choices(text),
        lambda: choice_commitments(text, ("A", "B", "C", "D")),
        lambda: compare_sets("(3, \\infty)", text[:400]),
        lambda: locate_answers(text, "What is x? Choices:\nA) 3\nB) 5", "B", None, SegmenterConfig()),
    ]
    for call in calls:
        c0 = time.process_time()
        call()
        assert time.process_time() - c0 < 2.0, (k, call)
