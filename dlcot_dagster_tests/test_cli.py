"""The `dlcot` console command: inspect without Dagster, and the end-to-end demo."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from dlcot_dagster.cli import main
from dlcot_dagster.defs.settings import SAMPLES_LANDING

from .conftest import REPO_ROOT, read_jsonl, shared_data_dir


def run_inspect(args, capsys) -> list[dict]:
    assert main(["inspect", *args]) == 0
    return [json.loads(l) for l in capsys.readouterr().out.splitlines()]


def test_inspect_sample_folder_one_object_per_record(capsys):
    out = run_inspect([str(SAMPLES_LANDING / "demo-sky-style"), "--teacher", "sky"], capsys)
    assert len(out) == 6  # six records in the dump, in input order
    assert [o["source_line"] for o in out] == [1, 2, 3, 4, 5, 6]
    # record 3 is truncated before any answer: ingested (flagged) but dropped by DLCoT
    assert [o["status"] for o in out] == ["kept", "kept", "dropped", "rejected", "rejected", "rejected"]
    assert [o["reason"] for o in out[2:]] == ["no_answer_found", "malformed_json", "duplicate_id", "empty_field"]
    assert all(o["reason"] is None for o in out[:2]) and all(o["raw_tokens"] > 0 for o in out[:3])
    assert [o["thinking_closed"] for o in out[:3]] == [True, True, False]
    assert all(o["teacher"] == "sky" for o in out)
    assert "thinking" not in out[0]


def test_inspect_real_file_with_text(capsys, shared_data):
    path = shared_data_dir() / "traces" / "math500_deepseek-r1.jsonl"
    raw = read_jsonl(path)
    out = run_inspect([str(path), "--teacher", "r1", "--with-text"], capsys)
    assert len(out) == len(raw)
    for o, r in zip(out, raw):
        # kept, unless the model never reached the reference (math500_0018 answers 56 for 28; it states
        # "A = 28°, C = 28°" only as angles of a triangle it then rejects)
        assert o["status"] == "kept" or (not r["is_correct"] and o["reason"] == "no_correct_solution"), o
        assert o["problem"] == r["problem"] and o["reference_answer"] == r["ground_truth"].strip()
        assert o["thinking"] == r["reasoning_trace"]


def test_inspect_missing_path(capsys, tmp_path):
    assert main(["inspect", str(tmp_path / "nope.jsonl"), "--teacher", "x"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_demo_end_to_end(tmp_path):
    env = dict(os.environ)
    for k in ("DAGSTER_HOME", "DLCOT_STORAGE_DIR", "DLCOT_LANDING_DIR"):
        env.pop(k, None)
    home = tmp_path / "home"
    proc = subprocess.run(
        [sys.executable, "-m", "dlcot_dagster.cli", "demo", "--home", str(home)],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200, env=env,  # slow, shared CI machines
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "[3/3]" in out and "FAILED" not in out and "skipped" not in out
    for teacher in ("demo-gemini-style", "demo-r1-style", "demo-sky-style"):
        assert teacher in out.split("per-teacher summary")[1]
        assert (home / "storage" / "raw_traces" / f"{teacher}.parquet").is_file()
    sky_line = next(l for l in out.splitlines() if l.startswith("demo-sky-style"))
    assert sky_line.split()[1:4] == ["6", "3", "3"]  # read, kept, rejects
    assert pl.read_parquet(home / "storage" / "raw_trace_rejects" / "demo-sky-style.parquet").height == 3
    assert (home / "dagster.yaml").is_file()
    # the student stage ran for every teacher x variant, and the scores for every teacher
    assert out.count("[student ") == 6 and out.count("[scores ") == 3
    students = out.split("students (tiny demo settings")[1]
    rows = [l.split() for l in students.splitlines() if l.startswith("demo-") and len(l.split()) == 5]
    assert len(rows) == 6
    for teacher, variant, steps, first, final in rows:
        assert variant in ("dlcot", "raw") and int(steps) == 3 and float(final) > 0
    assert students.count("| demo_arithmetic |") == 3
    # a clean terminal: progress lines and the summary only; library output is in the log under the home
    assert proc.stderr == "", proc.stderr[-3000:]
    assert len(out.splitlines()) < 70, out
    logs = list((home / "logs").glob("demo-*.log"))
    assert len(logs) == 1 and str(logs[0]) in out
    assert "Loading weights" in logs[0].read_text(errors="replace")  # what used to flood the terminal
    # the SFT datasets of every teacher, with their cards
    exports = out.split("SFT datasets")[1]
    for teacher in ("demo-gemini-style", "demo-r1-style", "demo-sky-style"):
        assert teacher in exports
        for name in ("messages-parquet", "messages-hf", "sharegpt-jsonl"):
            assert (home / "storage" / "_blobs" / "exports" / teacher / name / "README.md").is_file()


QUIET_CHILD = r"""
import logging, os, subprocess, sys, warnings
from dlcot_dagster.console import Step, libraries_to_log

print("before", flush=True)
with libraries_to_log(sys.argv[1]) as console:
    print("library print")
    logging.getLogger("lib").warning("library warning")
    warnings.warn("library deprecation", DeprecationWarning, stacklevel=1)
    os.write(2, b"C-level stderr\n")
    os.write(1, b"C-level stdout\n")
    subprocess.run([sys.executable, "-c", "import sys; print('child out'); print('child err', file=sys.stderr)"])
    with Step(console, "[1/1] step") as step:
        step.done(True, "(run abc)")
    console.print("summary line")
print("after", flush=True)
"""


def test_library_output_goes_to_the_log_and_progress_to_the_terminal(tmp_path):
    log = tmp_path / "home" / "logs" / "demo.log"
    proc = subprocess.run([sys.executable, "-W", "always", "-c", QUIET_CHILD, str(log)], capture_output=True,
                          text=True, timeout=120, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "before" and lines[-1] == "after" and "summary line" in lines
    assert any(l.startswith("[1/1] step ... ok in ") and l.endswith("(run abc)") for l in lines)
    assert len(lines) == 4 and proc.stderr == ""
    text = log.read_text()
    for expected in ("library print", "library warning", "library deprecation", "C-level stderr", "C-level stdout",
                     "child out", "child err"):
        assert expected in text, expected
