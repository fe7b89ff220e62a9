"""The DLCoT guards bite: every blocking check of ``segmented_traces`` and ``corrected_traces`` fails on bad data,
names the rows, and stops the assets downstream; the warning check warns below its floor without blocking.

Bad data comes from faults in the stages' own machinery, the kind these checks exist to catch: a segmenter that
loses the end of the thinking, an answer checker that agrees with everything (both plugged in through the
engine's step interfaces), a token count inflated after the cut, a ``max_seq_len`` the stage forgot to apply, rows
lost or left without a reason. The checks themselves run unchanged, through Dagster. ``probe`` stands for whatever
consumes ``corrected_traces`` (an SFT export, ``student_checkpoints``): it must not run after a failed check.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from dlcot_dagster.defs.constants import (
    CHECK_ANSWERS_VERIFIED,
    CHECK_DLCOT_ACCOUNTING,
    CHECK_MAX_SEQ_LEN,
    CHECK_NO_BENCHMARK_OVERLAP,
    CHECK_SEGMENT_COVERAGE,
    CHECK_TOKEN_REDUCTION,
    CHECK_TOKENS_NOT_INCREASED,
    CORRECTED_TRACES,
    DECONTAM_VERDICTS,
    DROPPED_TRACES,
    PRUNED_SOLUTIONS,
    SEGMENTED_TRACES,
)
from dlcot_dagster.defs.dlcot.assets import corrected_traces, pruned_solutions, segmented_traces
from dlcot_dagster.defs.decontam.assets import decontam_verdicts
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.settings import SAMPLES_LANDING
from dlcot_dagster.domain.answers import AnswerChecker
from dlcot_dagster.domain.answers.verdict import Verdict
from dlcot_dagster.domain.dlcot import RulesEngine
from dlcot_dagster.domain.dlcot.checking import MemoChecker
from dlcot_dagster.domain.dlcot.segment import RuleSegmenter
from dlcot_dagster.domain.pipeline import (
    correct_frame,
    coverage_problems,
    dlcot_accounting_problems,
    prune_frame,
    segment_frame,
)
from dlcot_dagster.domain.stream import EngineSpec, recheck_answers
from dlcot_dagster.domain.tokens import TokenCounter

from .conftest import stage_resources

TEACHER = "t"
SAMPLE = [json.loads(line) for line in (SAMPLES_LANDING / "demo-r1-style" / "traces.jsonl").read_text().splitlines() if line.strip()]
# a teacher that got it wrong: the rules drop it (no correct solution); an agreeable checker would keep it
WRONG = {
    "id": "wrong-sum",
    "problem": "What is 17 + 25?",
    "answer": "42",
    "response": "<think>\n17 + 25: 17 + 20 = 37, and 37 + 5 = 43. So the answer is 43.\n</think>\n\nThe sum is $\\boxed{43}$.",
}
WRONG_ID = f"traces/{WRONG['id']}"
CORRECTED_CHECKS = {CHECK_NO_BENCHMARK_OVERLAP, CHECK_ANSWERS_VERIFIED, CHECK_TOKENS_NOT_INCREASED, CHECK_MAX_SEQ_LEN, CHECK_DLCOT_ACCOUNTING,
                    CHECK_TOKEN_REDUCTION}


@dg.asset(key="probe", deps=[CORRECTED_TRACES], partitions_def=teacher_partitions)
def probe() -> dg.MaterializeResult:
    """A consumer of corrected_traces (an SFT export, a student): runs only when corrected_traces passed."""
    return dg.MaterializeResult()


ASSETS = [raw_traces, decontam_verdicts, segmented_traces, pruned_solutions, corrected_traces, probe]
DLCOT_KEYS = [DECONTAM_VERDICTS, SEGMENTED_TRACES, PRUNED_SOLUTIONS, CORRECTED_TRACES, DROPPED_TRACES,
              dg.AssetKey("probe")]


def _resources(landing: Path, store: Path) -> dict:
    return stage_resources(landing, store)  # one worker: the stage runs in the step process (faults reach it)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory) -> tuple[Path, Path]:
    """(landing, store) with raw_traces of the sample teacher + the wrong trace, materialized once."""
    root = tmp_path_factory.mktemp("dlcot_guards")
    landing = root / "landing"
    (landing / TEACHER).mkdir(parents=True)
    (landing / TEACHER / "traces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*SAMPLE, WRONG]))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        assert dg.materialize([raw_traces], partition_key=TEACHER, instance=instance,
                              resources=_resources(landing, root / "store")).success
    return landing, root / "store" / "raw_traces" / f"{TEACHER}.parquet"


def run_dlcot(ingested, store: Path, run_config: dict | None = None):
    """The DLCoT stages and the probe on the ingested partition (raw_traces is not re-run)."""
    landing, raw = ingested
    (store / "raw_traces").mkdir(parents=True)
    shutil.copy(raw, store / "raw_traces" / raw.name)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        return dg.materialize(
            ASSETS, selection=DLCOT_KEYS, partition_key=TEACHER, instance=instance, raise_on_error=False,
            resources=_resources(landing, store),
            run_config={"ops": {"corrected_traces": {"config": run_config}}} if run_config else None,
        )


def materialized(result) -> set[str]:
    return {e.event_specific_data.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def assert_blocked_at_corrected(result, failing: set[str]) -> dict:
    assert not result.success
    evals = {e.check_name: e for e in result.get_asset_check_evaluations() if e.check_name in CORRECTED_CHECKS}
    assert set(evals) == CORRECTED_CHECKS
    blocking_failed = {n for n, e in evals.items() if not e.passed and n != CHECK_TOKEN_REDUCTION}
    assert blocking_failed == failing, {n: e.metadata for n, e in evals.items()}
    assert {e.step_key for e in result.get_step_failure_events()} == {"corrected_traces"}
    assert "probe" not in materialized(result) and "corrected_traces" in materialized(result)
    return evals


@pytest.fixture(scope="module")
def clean(ingested, tmp_path_factory):
    """The control run: the same data through the unbroken stages passes every check and reaches the probe."""
    store = tmp_path_factory.mktemp("clean")
    result = run_dlcot(ingested, store)
    assert result.success
    kept = pl.read_parquet(store / "corrected_traces" / f"{TEACHER}.parquet")
    dropped = pl.read_parquet(store / "dropped_traces" / f"{TEACHER}.parquet")
    return result, kept, dropped


def test_control_run_passes_every_check_and_reaches_the_probe(clean):
    result, kept, dropped = clean
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert "probe" in materialized(result)
    assert kept.height == len(SAMPLE) and dropped["id"].to_list() == [WRONG_ID]


# ------------------------------------------------------------------------------------------ segmented_traces


class ShortSegmenter(RuleSegmenter):
    """A segmenter with an off-by-one: its last segment stops one character short of the thinking's end."""

    def segment(self, record):
        trace = super().segment(record)
        last = trace.segments[-1]
        return trace.model_copy(update={"segments": [*trace.segments[:-1], last.model_copy(update={"end": last.end - 1})]})


def test_coverage_blocks_a_segmenter_that_loses_characters(ingested, tmp_path, monkeypatch):
    def build_engine(spec):
        eng = RulesEngine(spec.policy, MemoChecker(AnswerChecker(timeout_s=spec.answer_timeout_s)))
        eng.segmenter = ShortSegmenter(eng.checker, eng.config.segmenter)
        return eng

    monkeypatch.setattr(EngineSpec, "build_engine", build_engine)
    result = run_dlcot(ingested, tmp_path)
    assert not result.success
    [ev] = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_SEGMENT_COVERAGE]
    assert not ev.passed
    raw = pl.read_parquet(ingested[1])
    want = [f"- {r['id']}: segments end at {len(r['thinking']) - 1} of {len(r['thinking'])} characters"
            for r in raw.iter_rows(named=True)]
    assert ev.metadata["problems"].value.splitlines() == want
    assert {e.step_key for e in result.get_step_failure_events()} == {"segmented_traces"}
    assert materialized(result) == {"decontam_verdicts", "segmented_traces"}  # pruned_solutions and after never ran


# ------------------------------------------------------------------------------------------ corrected_traces


class AgreeableChecker:
    """An answer checker that calls every pair equivalent (a misconfigured or broken checker)."""

    def compare(self, gold: str, pred: str) -> Verdict:
        return Verdict(True, "agreeable")


def test_answers_verified_blocks_an_engine_whose_checker_agrees_with_everything(ingested, tmp_path, monkeypatch):
    monkeypatch.setattr(EngineSpec, "build_engine", lambda spec: RulesEngine(spec.policy, MemoChecker(AgreeableChecker())))
    evals = assert_blocked_at_corrected(run_dlcot(ingested, tmp_path), {CHECK_ANSWERS_VERIFIED})
    md = evals[CHECK_ANSWERS_VERIFIED].metadata
    assert md["failures"].value == 1
    [failure] = md["examples"].value
    assert failure.startswith(f"{WRONG_ID}: ")  # the independent re-check names the kept wrong trace


def _corrupt_correct_frame(monkeypatch, fault):
    """Replace the corrected stage's frame function with one whose output ``fault`` corrupts."""
    import dlcot_dagster.domain.pipeline as pipeline

    real = pipeline.correct_frame

    def broken(*args, **kw):
        return fault(real, *args, **kw)

    monkeypatch.setattr(pipeline, "correct_frame", broken)


def test_tokens_not_increased_blocks_a_row_counted_longer_than_raw(ingested, clean, tmp_path, monkeypatch):
    victim = clean[1]["id"][1]

    def inflate(real, *a, **kw):
        t = real(*a, **kw)
        kept = t.kept.with_columns(
            corrected_tokens=pl.when(pl.col("id") == victim).then(pl.col("raw_tokens") + 1).otherwise("corrected_tokens")
        )
        return type(t)(kept, t.dropped, t.results)

    _corrupt_correct_frame(monkeypatch, inflate)
    evals = assert_blocked_at_corrected(run_dlcot(ingested, tmp_path), {CHECK_TOKENS_NOT_INCREASED})
    md = evals[CHECK_TOKENS_NOT_INCREASED].metadata
    assert md["rows_longer_than_raw"].value == 1 and md["examples"].value == [victim]


def test_max_seq_len_cut_drops_the_longest_row_and_the_check_passes(ingested, clean, tmp_path):
    """The control of the next test: with the cut applied, the longest sample is dropped, not kept."""
    kept = clean[1]
    longest = kept.sort("seq_tokens")[-1]
    result = run_dlcot(ingested, tmp_path, {"max_seq_len": longest["seq_tokens"][0] - 1})
    assert result.success
    dropped = pl.read_parquet(tmp_path / "dropped_traces" / f"{TEACHER}.parquet")
    assert dropped.filter(pl.col("reason") == "exceeds_max_seq_len")["id"].to_list() == longest["id"].to_list()


def test_max_seq_len_blocks_a_stage_that_forgot_the_cut(ingested, clean, tmp_path, monkeypatch):
    longest = clean[1].sort("seq_tokens")[-1].row(0, named=True)
    _corrupt_correct_frame(monkeypatch, lambda real, *a, **kw: real(*a, **{**kw, "max_seq_len": None}))
    evals = assert_blocked_at_corrected(
        run_dlcot(ingested, tmp_path, {"max_seq_len": longest["seq_tokens"] - 1}), {CHECK_MAX_SEQ_LEN}
    )
    md = evals[CHECK_MAX_SEQ_LEN].metadata
    assert (md["over"].value, md["longest"].value) == (1, longest["seq_tokens"])
    assert md["examples"].value == [f"{longest['id']}: {longest['seq_tokens']} tokens"]


def _lose_dropped(real, *a, **kw):
    t = real(*a, **kw)
    return type(t)(t.kept, t.dropped.filter(pl.col("id") != WRONG_ID), t.results)


def _blank_reason(real, *a, **kw):
    t = real(*a, **kw)
    return type(t)(t.kept, t.dropped.with_columns(reason=pl.lit(None, pl.String())), t.results)


def _keep_and_drop(real, *a, **kw):
    t = real(*a, **kw)
    again = t.kept.head(1).select("id", "teacher", "raw_tokens").with_columns(stage=pl.lit("correct"), reason=pl.lit("again"))
    return type(t)(t.kept, pl.concat([t.dropped, _like(again, t.dropped)]), t.results)


def _like(rows: pl.DataFrame, table: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with ``table``'s columns (the ones it lacks null), in its order."""
    return rows.with_columns(
        **{c: pl.lit(None, dtype) for c, dtype in table.schema.items() if c not in rows.columns}
    ).select(table.columns).cast(dict(table.schema))


@pytest.mark.parametrize(
    ("fault", "problems"),
    [
        (_lose_dropped, [f"kept 4 + dropped 0 != 5 raw rows", f"1 raw ids neither kept nor dropped, e.g. ['{WRONG_ID}']",
                         "kept 4 + dropped 0 != 5 raw rows"]),
        (_blank_reason, [f"1 dropped rows without a reason, e.g. ['{WRONG_ID}']",
                         f"1 dropped rows without a reason, e.g. ['{WRONG_ID}']"]),
        (_keep_and_drop, ["kept 4 + dropped 2 != 5 raw rows", "1 ids both kept and dropped, e.g. ['traces/sq-sum']",
                          "kept 4 + dropped 2 != 5 raw rows"]),
    ],
    ids=["lost", "no_reason", "kept_and_dropped"],
)
def test_accounting_blocks_lost_duplicated_or_unexplained_rows(ingested, tmp_path, monkeypatch, fault, problems):
    """The batch accounting (by id) and the table totals both report; each problem names the rows."""
    _corrupt_correct_frame(monkeypatch, fault)
    evals = assert_blocked_at_corrected(run_dlcot(ingested, tmp_path), {CHECK_DLCOT_ACCOUNTING})
    assert evals[CHECK_DLCOT_ACCOUNTING].metadata["problems"].value.splitlines() == [f"- {p}" for p in problems]


# ------------------------------------------------------------------------------------------ the warning check


def test_median_reduction_warns_below_its_floor_without_blocking(ingested, clean, tmp_path):
    result, kept, _ = clean
    median = float((1 - kept["corrected_tokens"] / kept["raw_tokens"]).median())
    [ok] = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_TOKEN_REDUCTION]
    assert 0.05 <= median < 1 and ok.passed and ok.metadata["median_reduction"].value == pytest.approx(median)

    result = run_dlcot(ingested, tmp_path, {"min_median_reduction": median + 1e-6})  # just above: warns
    assert result.success and "probe" in materialized(result)  # a warning blocks nothing
    [warn] = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_TOKEN_REDUCTION]
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    assert warn.metadata["floor"].value == pytest.approx(median + 1e-6)


def test_median_reduction_floor_is_inclusive(ingested, clean, tmp_path):
    kept = clean[1]
    median = float((1 - kept["corrected_tokens"] / kept["raw_tokens"]).median())
    result = run_dlcot(ingested, tmp_path, {"min_median_reduction": median})
    [ev] = [e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_TOKEN_REDUCTION]
    assert result.success and ev.passed


# ------------------------------------------------------------------------------------------ the functions


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """raw -> segmented -> corrected tables of the same records, through the domain functions (no Dagster)."""
    from dlcot_dagster.domain.ingest import ingest_path

    folder = tmp_path_factory.mktemp("frames") / TEACHER
    folder.mkdir()
    (folder / "traces.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*SAMPLE, WRONG]))
    raw = ingest_path(folder, TEACHER, TokenCounter()).traces
    engine = RulesEngine("default", AnswerChecker())
    seg = segment_frame(raw, engine)
    pruned = prune_frame(raw, seg, engine)
    return raw, seg, correct_frame(raw, pruned, engine, TokenCounter())


def _with_segments(seg: pl.DataFrame, rid: str, edit) -> pl.DataFrame:
    blobs = [json.dumps(edit(json.loads(b))) if i == rid else b for i, b in zip(seg["id"], seg["segments"])]
    return seg.with_columns(segments=pl.Series(blobs))


def test_coverage_problems_name_gaps_overlaps_and_short_ends(frames):
    raw, seg, _ = frames
    assert coverage_problems(raw, seg) == []
    rid = raw["id"][0]
    n = len(raw["thinking"][0])

    def gap(s):
        s[1]["start"] += 1
        return s

    def overlap(s):
        s[1]["start"] -= 1
        return s

    def backwards(s):
        s[0]["end"] = s[0]["start"] - 1
        return s

    def short(s):
        s[-1]["end"] -= 2
        return s

    def late_start(s):
        s[0]["start"] = 1
        return s

    first_end = json.loads(seg["segments"][0])[0]["end"]
    assert coverage_problems(raw, _with_segments(seg, rid, gap)) == [f"{rid}: segment 1 starts at {first_end + 1}, expected {first_end}"]
    assert coverage_problems(raw, _with_segments(seg, rid, overlap)) == [f"{rid}: segment 1 starts at {first_end - 1}, expected {first_end}"]
    assert coverage_problems(raw, _with_segments(seg, rid, backwards)) == [f"{rid}: segment 0 starts at 0, expected 0"]
    assert coverage_problems(raw, _with_segments(seg, rid, short)) == [f"{rid}: segments end at {n - 2} of {n} characters"]
    assert coverage_problems(raw, _with_segments(seg, rid, late_start)) == [f"{rid}: segment 0 starts at 1, expected 0"]
    # no segments at all for a live record: nothing covers the thinking
    assert coverage_problems(raw, _with_segments(seg, rid, lambda s: [])) == [f"{rid}: segments end at 0 of {n} characters"]
    # a record dropped at segmentation (timeout) has no segments and is not checked
    timed_out = seg.with_columns(
        segments=pl.when(pl.col("id") == rid).then(pl.lit("[]")).otherwise("segments"),
        status=pl.when(pl.col("id") == rid).then(pl.lit("dropped")).otherwise("status"),
    )
    assert coverage_problems(raw, timed_out) == []


def test_coverage_problems_stop_at_the_limit(frames):
    raw, seg, _ = frames
    bad = seg
    for rid in raw["id"]:
        bad = _with_segments(bad, rid, lambda s: s[:-1])
    assert len(coverage_problems(raw, bad)) == raw.height
    assert [p.split(":")[0] for p in coverage_problems(raw, bad, limit=2)] == raw["id"].to_list()[:2]


def test_dlcot_accounting_problems_name_the_ids(frames):
    raw, _, t = frames
    kept, dropped = t.kept, t.dropped
    assert dlcot_accounting_problems(raw, kept, dropped) == []
    k0 = kept["id"][0]
    assert dlcot_accounting_problems(raw, kept.slice(1), dropped) == [
        f"kept {kept.height - 1} + dropped {dropped.height} != {raw.height} raw rows",
        f"1 raw ids neither kept nor dropped, e.g. ['{k0}']",
    ]
    stray = dropped.with_columns(id=pl.lit("nobody"))
    assert dlcot_accounting_problems(raw, kept, stray) == [
        f"1 raw ids neither kept nor dropped, e.g. ['{WRONG_ID}']",
        "1 ids not in raw_traces, e.g. ['nobody']",
    ]
    twice = pl.concat([dropped, dropped.with_columns(id=pl.lit(k0))])
    assert dlcot_accounting_problems(raw, kept, twice) == [
        f"kept {kept.height} + dropped 2 != {raw.height} raw rows",
        f"1 ids both kept and dropped, e.g. ['{k0}']",
    ]
    assert dlcot_accounting_problems(raw, kept, dropped.with_columns(reason=pl.lit(""))) == [
        f"1 dropped rows without a reason, e.g. ['{WRONG_ID}']"
    ]


def test_recheck_answers_names_kept_rows_whose_text_is_wrong(frames):
    _, _, t = frames
    kept = t.kept
    assert recheck_answers(kept, 2.0) == []
    victim = kept["id"][0]
    wrong = kept.with_columns(final_text=pl.when(pl.col("id") == victim).then(pl.lit("So it is $\\boxed{7}$.")).otherwise("final_text"))
    [bad] = recheck_answers(wrong, 2.0)
    ref = kept.filter(pl.col("id") == victim)["reference_answer"][0]
    verdict = AnswerChecker(use_cache=False).compare(ref, "7")
    assert verdict.equivalent is False and bad == f"{victim}: {verdict.reason}"  # the checker's own reason
    missing = kept.with_columns(final_text=pl.when(pl.col("id") == victim).then(pl.lit("")).otherwise("final_text"))
    assert recheck_answers(missing, 2.0) == [f"{victim}: no final answer"]


def test_correct_frame_drops_a_sample_its_final_answer_makes_longer_than_raw(tmp_path):
    """A trace with no final response gets a built answer line: here that makes it longer than the raw trace, so
    the stage drops it (longer_than_raw) instead of keeping a sample that the blocking check would then reject."""
    from dlcot_dagster.domain.ingest import ingest_path

    folder = tmp_path / TEACHER
    folder.mkdir()
    rec = {"id": "terse", "problem": "What is 17 + 25?", "answer": "42", "response": "<think>\n17 + 25 = 42. So the answer is 42.\n</think>"}
    (folder / "t.jsonl").write_text(json.dumps(rec) + "\n")
    counter = TokenCounter()
    raw = ingest_path(folder, TEACHER, counter).traces
    engine = RulesEngine("default", AnswerChecker())
    out = correct_frame(raw, prune_frame(raw, segment_frame(raw, engine), engine), engine, counter)
    assert out.kept.height == 0
    assert out.dropped.select("id", "stage", "reason").rows() == [("t/terse", "correct", "longer_than_raw")]
    [res] = out.results  # the engine itself kept it: only the token comparison drops it
    assert res.status.value == "kept" and res.final_answer_source == "built"
    assert sum(counter.count([res.corrected_thinking, res.final_text])) > raw["raw_tokens"][0]


# ------------------------------------------------------------------------------------------ the engine's own guards


class _FaultyRewriter:
    """A rewriter (the step interface an LLM rewrite plugs into) whose result ``fault`` corrupts."""

    def __init__(self, fault):
        from dlcot_dagster.domain.dlcot.correct import RuleRewriter

        self.inner, self.fault = RuleRewriter(), fault

    def rewrite(self, trace, policy):
        return self.fault(self.inner.rewrite(trace, policy), trace)


def _cut_answer_statement(rw, trace):
    """Keeps the text but drops the protected answer statement from the kept spans."""
    from dlcot_dagster.domain.dlcot.types import Span

    a, b = rw.protected[-1]
    kept = []
    for s in rw.kept_spans:
        if s.start < b and a < s.end:  # split the kept span around the answer statement
            kept += [Span(start=s.start, end=a)] if s.start < a else []
            kept += [Span(start=b, end=s.end)] if b < s.end else []
        else:
            kept.append(s)
    return dataclasses.replace(rw, kept_spans=kept)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (_cut_answer_statement, "answer_statement_removed"),
        (lambda rw, trace: dataclasses.replace(rw, corrected_thinking="  \n"), "empty_or_longer_output"),
        (lambda rw, trace: dataclasses.replace(rw, corrected_thinking=trace.record.thinking + " More."), "empty_or_longer_output"),
    ],
    ids=["answer_cut", "empty", "longer"],
)
def test_engine_drops_a_rewrite_that_breaks_its_invariants(frames, fault, reason):
    """The engine's last line: whatever a rewriter returns, a sample whose answer statement was cut, or whose
    corrected thinking is empty or longer than the original, is dropped with the reason, never kept."""
    raw, seg, clean = frames
    engine = RulesEngine("default", AnswerChecker())
    engine.rewriter = _FaultyRewriter(fault)
    out = correct_frame(raw, prune_frame(raw, seg, engine), engine, TokenCounter())
    assert out.kept.height == 0
    want = {i: reason for i in clean.kept["id"]} | dict(zip(clean.dropped["id"], clean.dropped["reason"]))
    assert dict(zip(out.dropped["id"], out.dropped["reason"])) == want


def _tiled(n: int, segs: list[dict] | None = None, status: list | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """n synthetic 4-character thinkings and their segments (by default one segment tiling each)."""
    raw = pl.DataFrame({"id": [f"r{i:02d}" for i in range(n)], "thinking": ["abcd"] * n})
    blob = json.dumps(segs if segs is not None else [{"idx": 0, "start": 0, "end": 4}])
    seg = pl.DataFrame({"id": raw["id"], "segments": [blob] * n, "status": status or [None] * n},
                       schema_overrides={"status": pl.String()})
    return raw, seg


def test_coverage_problems_boundaries_and_limits():
    # a zero-length segment does not break a tiling
    raw, seg = _tiled(1, [{"idx": 0, "start": 0, "end": 0}, {"idx": 1, "start": 0, "end": 4}])
    assert coverage_problems(raw, seg) == []
    # twelve broken traces: ten reported by default, in order
    raw, seg = _tiled(12, [{"idx": 0, "start": 0, "end": 3}])
    assert [p.split(":")[0] for p in coverage_problems(raw, seg)] == [f"r{i:02d}" for i in range(10)]
    # a timed-out trace is skipped, and the ones after it are still checked
    status = ["dropped"] + [None] * 11
    seg = seg.with_columns(status=pl.Series(status, dtype=pl.String()))
    assert [p.split(":")[0] for p in coverage_problems(raw, seg, limit=3)] == ["r01", "r02", "r03"]
    # tables out of step are an error naming the stage's table
    with pytest.raises(ValueError, match="^segmented_traces is out of step with raw_traces"):
        coverage_problems(raw, seg.head(11))


def test_dlcot_accounting_problems_give_three_examples_of_each(frames):
    raw, _, t = frames
    kept, dropped = t.kept, t.dropped
    as_dropped = kept.select("id", "teacher", "raw_tokens").with_columns(stage=pl.lit("correct"), reason=pl.lit("x"))
    as_dropped = _like(as_dropped, dropped)
    lost = dlcot_accounting_problems(raw, kept.head(0), dropped)
    assert lost[1] == f"{kept.height} raw ids neither kept nor dropped, e.g. {sorted(kept['id'])[:3]}"
    both = dlcot_accounting_problems(raw, kept, pl.concat([dropped, as_dropped]))
    assert both[1] == f"{kept.height} ids both kept and dropped, e.g. {sorted(kept['id'])[:3]}"
    stray = kept.with_columns(id=pl.format("x{}", pl.col("id")))
    assert dlcot_accounting_problems(raw, stray, dropped)[-1] == (
        f"{kept.height} ids not in raw_traces, e.g. {sorted(stray['id'])[:3]}")
    blank = pl.concat([dropped, as_dropped]).with_columns(reason=pl.lit(None, pl.String()))
    assert dlcot_accounting_problems(raw, kept.head(0), blank)[-1] == (
        f"{raw.height} dropped rows without a reason, e.g. {sorted(raw['id'])[:3]}")
