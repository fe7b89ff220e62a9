"""The ingestion guards bite: each blocking check of ``raw_traces`` fails on bad data, names the rows, and stops
``segmented_traces`` downstream; the accounting and expectation functions fail on bad tables.

The bad data comes in the ways a real run could produce it: a teacher folder whose ``dlcot_source.yaml`` names a
broken tokenizer file, and faults injected into the step's own machinery (the duplicate-id index, the normalizer,
the tokenizing task), which is what these checks exist to catch. The checks themselves run unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import dagster as dg
import great_expectations  # noqa: F401  (imported at collection: `make mutate` workers fork after it is loaded)
import polars as pl
import pytest

from dlcot_dagster.defs.constants import (
    CHECK_REFERENCE_SOURCES,
    CHECK_SELF_REFERENCE_SHARE,
    CHECK_ACCOUNTING,
    CHECK_NON_EMPTY_TEXT,
    CHECK_TOKEN_BOUNDS,
    CHECK_UNIQUE_IDS,
    RAW_TRACES,
    SEGMENTED_TRACES,
)
from dlcot_dagster.defs.decontam.assets import decontam_verdicts
from dlcot_dagster.defs.dlcot.assets import segmented_traces
from dlcot_dagster.defs.ingest.assets import raw_traces
from dlcot_dagster.defs.partitions import teacher_partitions
from dlcot_dagster.defs.settings import SAMPLES_LANDING
from dlcot_dagster.domain.ingest import FileStats, accounting_problems
from dlcot_dagster.domain.quality import validate_raw_traces

from .conftest import stage_resources

TEACHER = "t"
SAMPLE = [json.loads(line) for line in (SAMPLES_LANDING / "demo-r1-style" / "traces.jsonl").read_text().splitlines() if line.strip()]
ALL_CHECKS = {CHECK_ACCOUNTING, CHECK_REFERENCE_SOURCES, CHECK_SELF_REFERENCE_SHARE, CHECK_UNIQUE_IDS, CHECK_NON_EMPTY_TEXT,
              CHECK_TOKEN_BOUNDS}


def landing_with(tmp_path: Path, records: list[dict], spec: str | None = None) -> Path:
    root = tmp_path / "landing"
    (root / TEACHER).mkdir(parents=True)
    (root / TEACHER / "dump.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if spec is not None:
        (root / TEACHER / "dlcot_source.yaml").write_text(spec)
    return root


def ingest_then_segment(landing: Path, store: Path):
    """raw_traces -> segmented_traces for one partition, in one run (workers=1: everything in the step process)."""
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(teacher_partitions.name, [TEACHER])
        return dg.materialize(
            [raw_traces, decontam_verdicts, segmented_traces],
            partition_key=TEACHER,
            instance=instance,
            raise_on_error=False,
            run_config={"ops": {"raw_traces": {"config": {"workers": 1}}}},
            resources=stage_resources(landing, store),
        )


def assert_blocked(result, failing: set[str]) -> dict:
    """The run failed at raw_traces' blocking checks ``failing`` (the others passed), and segmented_traces was
    never materialized. Returns the check evaluations by name."""
    assert not result.success
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evals) == ALL_CHECKS
    assert {n for n, e in evals.items() if not e.passed} == failing, {n: e.metadata for n, e in evals.items()}
    failed_steps = {e.step_key for e in result.get_step_failure_events()}
    assert failed_steps == {"raw_traces"}, failed_steps
    assert result.asset_materializations_for_node("segmented_traces") == []
    assert SEGMENTED_TRACES not in {m.asset_key for m in result.get_asset_materialization_events()
                                    for m in [m.event_specific_data.materialization]}
    return evals


def test_clean_sample_passes_and_flows_downstream(tmp_path):
    """The control: the same records, unbroken, pass every check and reach segmented_traces."""
    result = ingest_then_segment(landing_with(tmp_path, SAMPLE), tmp_path / "store")
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert len(result.asset_materializations_for_node("segmented_traces")) == 1


def _blank_tokenizer(path: Path) -> Path:
    """A tokenizer.json whose normalizer deletes every character: every text counts 0 tokens."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tok.normalizer = normalizers.Replace(Regex(r"[\s\S]"), "")
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(path))
    return path


def test_token_bounds_blocks_a_teacher_with_a_broken_tokenizer(tmp_path):
    tok = _blank_tokenizer(tmp_path / "blank-tokenizer.json")
    landing = landing_with(tmp_path, SAMPLE, spec=f"tokenizer: {tok}\n")
    evals = assert_blocked(ingest_then_segment(landing, tmp_path / "store"), {CHECK_TOKEN_BOUNDS})
    md = evals[CHECK_TOKEN_BOUNDS].metadata
    assert md["unexpected_count"].value == len(SAMPLE)
    assert md["rows"].value == [f"dump.jsonl:{i + 1} id=dump/{r['id']}" for i, r in enumerate(SAMPLE)]


def test_unique_ids_blocks_duplicates_the_id_index_missed(tmp_path, monkeypatch):
    """A fault in the duplicate-id index (it forgets every id): a repeated record gets into the table."""
    from dlcot_dagster.domain.seen_ids import SeenIds

    monkeypatch.setattr(SeenIds, "first_seen", lambda self, rid, file, line: None)
    records = SAMPLE + [dict(SAMPLE[1], problem="the same id again")]
    evals = assert_blocked(ingest_then_segment(landing_with(tmp_path, records), tmp_path / "store"), {CHECK_UNIQUE_IDS})
    rows = evals[CHECK_UNIQUE_IDS].metadata["rows"].value
    dup = f"dump/{SAMPLE[1]['id']}"
    assert rows == [f"dump.jsonl:2 id={dup}", f"dump.jsonl:{len(records)} id={dup}"]


def test_non_empty_text_blocks_a_normalizer_that_loses_the_reference(tmp_path, monkeypatch):
    """A reference-resolution regression that returns a blank (given) reference answer for one record."""
    from dlcot_dagster.domain.ingest.references import Resolver

    real = Resolver.inline

    def lossy(self, row):
        got = real(self, row)
        return got if row.raw_id != SAMPLE[2]["id"] else ("  ", got[1])

    monkeypatch.setattr(Resolver, "inline", lossy)
    # both guards see it: the expectation (a blank field) and the reference-source check (an empty reference)
    evals = assert_blocked(ingest_then_segment(landing_with(tmp_path, SAMPLE), tmp_path / "store"),
                           {CHECK_NON_EMPTY_TEXT, CHECK_REFERENCE_SOURCES})
    assert evals[CHECK_NON_EMPTY_TEXT].metadata["rows"].value == [f"dump.jsonl:3 id=dump/{SAMPLE[2]['id']}"]
    assert evals[CHECK_REFERENCE_SOURCES].metadata["examples"].value[0].startswith(f"dump/{SAMPLE[2]['id']} (dump.jsonl:3)")


def test_accounting_blocks_a_batch_that_lost_a_record(tmp_path, monkeypatch):
    """A fault in the tokenizing task: the last record of the batch is neither kept nor rejected."""
    import dlcot_dagster.domain.stream as stream

    real = stream.tokenize_task

    def lossy(st, batch):
        kept, rejected = real(st, batch)
        return kept.head(kept.height - 1), rejected

    monkeypatch.setattr(stream, "tokenize_task", lossy)
    evals = assert_blocked(ingest_then_segment(landing_with(tmp_path, SAMPLE), tmp_path / "store"), {CHECK_ACCOUNTING})
    md = evals[CHECK_ACCOUNTING].metadata
    assert (md["records_read"].value, md["kept"].value, md["rejected"].value) == (len(SAMPLE), len(SAMPLE) - 1, 0)
    assert f"dump.jsonl: {len(SAMPLE)} records read but {len(SAMPLE) - 1} in kept + rejects" in md["problems"].value


# ------------------------------------------------------------------------------------------ the functions


def _where(rows: list[tuple[str, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"source_file": pl.String(), "source_line": pl.Int64()}, orient="row")


def test_accounting_problems_name_each_fault():
    files = [FileStats("a.jsonl", records=3), FileStats("b.jsonl", records=1)]
    good_t, good_r = _where([("a.jsonl", 1), ("a.jsonl", 2)]), _where([("a.jsonl", 3), ("b.jsonl", 1)])
    assert accounting_problems(good_t, good_r, files) == []
    # a record in both tables
    twice = accounting_problems(_where([("a.jsonl", 1), ("a.jsonl", 2), ("a.jsonl", 3)]), good_r, files)
    assert twice == [
        "a.jsonl:3 appears 2 times across the kept and rejects tables",
        "a.jsonl:3 has a row-level outcome and 1 other(s)",
    ]
    # a record lost
    lost = accounting_problems(_where([("a.jsonl", 1)]), good_r, files)
    assert lost == ["a.jsonl: 3 records read but 2 in kept + rejects", "kept 1 + rejected 2 cover 3 records != 4 records read"]
    # rows of a file that was never read, with the totals still matching
    stray = accounting_problems(good_t, _where([("a.jsonl", 3), ("c.jsonl", 1)]), files)
    assert stray == ["b.jsonl: 1 records read but 0 in kept + rejects", "c.jsonl: 1 rows in the tables but the file was not read"]
    # a file read but absent from the stats: the totals catch it even when every per-file count is right
    assert accounting_problems(good_t, good_r, files[:1]) == [
        "b.jsonl: 1 rows in the tables but the file was not read",
        "kept 2 + rejected 2 cover 4 records != 3 records read",
    ]


def _narrow(**cols) -> pl.DataFrame:
    base = {
        "id": ["a", "b", "c"],
        "problem": ["p", "p", "p"],
        "thinking": ["t", "t", "t"],
        "reference_answer": ["1", "2", "3"],
        "raw_tokens": [5, 6, 7],
        "source_file": ["f.jsonl"] * 3,
        "source_line": [1, 2, 3],
    }
    return pl.DataFrame({**base, **cols})


@pytest.mark.parametrize(
    ("cols", "key", "rows", "examples"),
    [
        ({"id": ["a", "a", "c"]}, "unique_ids", ["f.jsonl:1 id=a", "f.jsonl:2 id=a"], ["a", "a"]),
        ({"id": ["a", None, "c"]}, "unique_ids", ["f.jsonl:2 id=null"], [None]),
        ({"problem": ["p", " \n", "p"]}, "non_empty_text", ["f.jsonl:2 id=b"], [""]),
        ({"thinking": ["t", "t", ""]}, "non_empty_text", ["f.jsonl:3 id=c"], [""]),
        ({"reference_answer": [None, "2", "3"]}, "non_empty_text", ["f.jsonl:1 id=a"], [""]),
        ({"raw_tokens": [0, 6, 7]}, "token_bounds", ["f.jsonl:1 id=a"], [0]),
        ({"raw_tokens": [5, 6, 11]}, "token_bounds", ["f.jsonl:3 id=c"], [11]),
    ],
)
def test_expectations_fail_on_bad_rows_and_name_them(cols, key, rows, examples):
    out = validate_raw_traces(_narrow(**cols), max_raw_tokens=10)
    o = out[key]
    assert (o.name, o.success, o.unexpected_count, o.rows) == (key, False, len(examples), rows)
    assert [None if x != x else x for x in o.examples] == examples  # pandas: a null id is NaN
    for k, ok in out.items():
        if k != key:
            assert (ok.name, ok.success, ok.unexpected_count, ok.rows, ok.examples) == (k, True, 0, [], [])


def test_expectations_cap_their_examples_and_rows():
    """Ten example values, twenty named rows, however many rows fail (here 26, half on each text column)."""
    n = 26
    frame = _narrow(
        id=[f"r{i:02d}" for i in range(n)], problem=[""] * 13 + ["p"] * 13, thinking=["t"] * 13 + [""] * 13,
        reference_answer=["1"] * n, raw_tokens=[5] * n, source_file=["f.jsonl"] * n, source_line=list(range(1, n + 1)),
    )
    o = validate_raw_traces(frame, max_raw_tokens=10)["non_empty_text"]
    assert o.unexpected_count == n and o.examples == [""] * 10
    assert o.rows == [f"f.jsonl:{i + 1} id=r{i:02d}" for i in range(20)]


def test_expectations_name_rows_by_id_without_location_columns():
    o = validate_raw_traces(_narrow(id=["a", "b", "b"]).drop("source_file", "source_line"), max_raw_tokens=10)
    assert o["unique_ids"].rows == ["id=b"]


def test_token_ceiling_is_inclusive_like_ingestion():
    """Ingestion rejects a record only above max_raw_tokens, so one of exactly the ceiling passes the check."""
    assert validate_raw_traces(_narrow(raw_tokens=[1, 6, 10]), max_raw_tokens=10)["token_bounds"].success
    out = validate_raw_traces(_narrow(), max_raw_tokens=6)["token_bounds"]
    assert not out.success and out.rows == ["f.jsonl:3 id=c"]


def test_accounting_problems_list_at_most_ten_duplicates():
    lines = [("a.jsonl", i) for i in range(1, 13)]
    problems = accounting_problems(_where(lines), _where(lines), [FileStats("a.jsonl", records=12)])
    dups = [p for p in problems if "appears 2 times" in p]
    assert len(dups) == 10 and len(set(dups)) == 10
    # each duplicated line is also a row-level outcome beside another one: ten of those, in line order
    assert problems[10:] == [f"a.jsonl:{i} has a row-level outcome and 1 other(s)" for i in range(1, 11)]


def _where_gen(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"teacher": pl.String(), "source_file": pl.String(), "source_line": pl.Int64(),
                                      "generation": pl.Int64()}, orient="row")


def test_accounting_problems_per_generation_and_teacher():
    """One outcome per (teacher, file, line, generation): several generations of a row, or several teachers of
    one row, are not duplicates; the same generation twice is, and so is a row-level reject beside a trace of
    the same row. Problems come in file and line order, naming the generation and the teacher."""
    files = [FileStats("a.jsonl", records=3), FileStats("b.jsonl", records=2)]
    traces = _where_gen([("t1", "b.jsonl", 2, 1), ("t1", "a.jsonl", 1, 0), ("t1", "a.jsonl", 1, 1),
                         ("t2", "a.jsonl", 1, 0), ("t1", "a.jsonl", 2, 0), ("t1", "b.jsonl", 1, 0)])
    rejects = _where_gen([("t1", "b.jsonl", 2, 1), ("t1", "a.jsonl", 2, None), ("t1", "a.jsonl", 3, None),
                          ("t1", "a.jsonl", 1, 1)])
    assert accounting_problems(traces, rejects, files) == [
        "a.jsonl:1 generation 1 appears 2 times across the kept and rejects tables (t1)",
        "b.jsonl:2 generation 1 appears 2 times across the kept and rejects tables (t1)",
        "a.jsonl:2 has a row-level outcome and 1 other(s) (t1)",
    ]
    # the same rows, each outcome once: generations and teachers side by side are fine
    clean_t = _where_gen([("t1", "a.jsonl", 1, 0), ("t1", "a.jsonl", 1, 1), ("t2", "a.jsonl", 1, 0),
                          ("t1", "b.jsonl", 1, 0), ("t1", "b.jsonl", 2, 1)])
    clean_r = _where_gen([("t1", "a.jsonl", 2, None), ("t1", "a.jsonl", 3, None), ("t1", "b.jsonl", 2, 0)])
    assert accounting_problems(clean_t, clean_r, files) == []
