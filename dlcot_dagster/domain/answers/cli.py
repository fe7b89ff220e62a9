"""``dlcot answers compare --input FILE.jsonl``: compare gold/pred pairs.

Each input line is a JSON object with string fields ``gold`` and ``pred``
(other fields are ignored).  One JSON object is written per non-blank input
line, in input order::

    {"line": 3, "equivalent": true, "reason": "fast:number"}

``equivalent`` is ``true``, ``false`` or ``null`` (cannot tell).  A line that
is not valid JSON, is not an object, or lacks ``gold``/``pred`` (or has a
non-string one) gives ``equivalent: null`` with a reason naming the line
number and the field; it never stops the run.  Lines are split on ``\\n``
only (records may contain U+2028/U+2029).

Exit code: 0 when every line was read, 1 when some line was malformed, 2 when
the input file cannot be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TextIO

from .verify import AnswerChecker

__all__ = ["compare_file", "compare_lines"]


def _emit(out: TextIO, line_no: int, equivalent: bool | None, reason: str) -> None:
    out.write(json.dumps({"line": line_no, "equivalent": equivalent, "reason": reason}, ensure_ascii=False) + "\n")


def compare_lines(raw: bytes, out: TextIO, checker: AnswerChecker | None = None) -> int:
    """Compare every line of ``raw`` (JSONL bytes); return the number of
    malformed lines."""
    checker = checker or AnswerChecker()
    bad = 0
    for line_no, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            bad += 1
            _emit(out, line_no, None, f"line {line_no}: not UTF-8 ({exc.reason} at byte {exc.start})")
            continue
        except json.JSONDecodeError as exc:
            bad += 1
            _emit(out, line_no, None, f"line {line_no}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            bad += 1
            _emit(out, line_no, None, f"line {line_no}: expected a JSON object, got {type(obj).__name__}")
            continue
        problem = None
        for field in ("gold", "pred"):
            if field not in obj:
                problem = f"line {line_no}: missing field '{field}'"
                break
            value = obj[field]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                obj[field] = str(value)
            elif not isinstance(value, str):
                problem = f"line {line_no}: field '{field}' must be a string, got {type(value).__name__}"
                break
        if problem is not None:
            bad += 1
            _emit(out, line_no, None, problem)
            continue
        try:
            verdict = checker.compare(obj["gold"], obj["pred"])
        except Exception as exc:  # the checker should not raise; never crash the run
            bad += 1
            _emit(out, line_no, None, f"line {line_no}: checker error {type(exc).__name__}")
            continue
        _emit(out, line_no, verdict.equivalent, verdict.reason)
    return bad


def compare_file(input_path: str | Path, out: TextIO) -> int:
    """Run the comparison over a JSONL file and write JSONL verdicts to ``out``;
    returns the process exit code."""
    path = Path(input_path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        out.write(json.dumps({"line": None, "equivalent": None, "reason": f"cannot read {path}: {exc.strerror}"}) + "\n")
        return 2
    bad = compare_lines(raw, out)
    out.flush()
    return 1 if bad else 0
