"""``compare_file`` behind ``dlcot answers compare --input FILE.jsonl``."""

from __future__ import annotations

import io
import json

from dlcot_dagster.domain.answers.cli import compare_file


def _run(tmp_path, content: bytes) -> tuple[int, list[dict]]:
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(content)
    out = io.StringIO()
    code = compare_file(path, out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_good_bad_and_missing_lines(tmp_path):
    lines = [
        json.dumps({"gold": "25", "pred": "025", "id": "a"}),            # 1 equivalent
        json.dumps({"gold": "\\frac{1}{2}", "pred": "0.3"}),              # 2 not equivalent
        "{this is not json",                                              # 3 bad JSON
        json.dumps({"gold": "5"}),                                        # 4 missing pred
        json.dumps({"pred": "5"}),                                        # 5 missing gold
        "",                                                               # 6 blank: skipped
        json.dumps(["gold", "pred"]),                                     # 7 not an object
        json.dumps({"gold": "5", "pred": None}),                          # 8 wrong type
        json.dumps({"gold": "5", "pred": "\\frac{1}{0}"}),                # 9 cannot tell
        json.dumps({"gold": 12, "pred": "12.0"}),                         # 10 number accepted
        json.dumps({"gold": "x", "pred": "y\u2028z"}),                    # 11 U+2028 inside a record
    ]
    code, rows = _run(tmp_path, "\n".join(lines).encode("utf-8") + b"\n")
    assert code == 1  # some lines were malformed
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5, 7, 8, 9, 10, 11]
    by_line = {r["line"]: r for r in rows}
    assert by_line[1]["equivalent"] is True
    assert by_line[2]["equivalent"] is False
    assert by_line[3]["equivalent"] is None and "line 3" in by_line[3]["reason"] and "JSON" in by_line[3]["reason"]
    assert by_line[4]["equivalent"] is None and "line 4" in by_line[4]["reason"] and "'pred'" in by_line[4]["reason"]
    assert by_line[5]["equivalent"] is None and "line 5" in by_line[5]["reason"] and "'gold'" in by_line[5]["reason"]
    assert by_line[7]["equivalent"] is None and "object" in by_line[7]["reason"]
    assert by_line[8]["equivalent"] is None and "'pred'" in by_line[8]["reason"]
    assert by_line[9]["equivalent"] is None and by_line[9]["reason"]
    assert by_line[10]["equivalent"] is True
    assert by_line[11]["equivalent"] in (False, None)
    for r in rows:
        assert set(r) == {"line", "equivalent", "reason"}


def test_all_good_exits_zero(tmp_path):
    content = b'{"gold": "B", "pred": "(B)"}\n{"gold": "1, -2", "pred": "-2, 1"}'  # no trailing newline
    code, rows = _run(tmp_path, content)
    assert code == 0
    assert [r["equivalent"] for r in rows] == [True, True]


def test_not_utf8_line(tmp_path):
    code, rows = _run(tmp_path, b'{"gold": "1", "pred": "1"}\n\xff\xfe\n')
    assert code == 1
    assert rows[0]["equivalent"] is True
    assert rows[1]["equivalent"] is None and "line 2" in rows[1]["reason"]


def test_missing_file(tmp_path):
    out = io.StringIO()
    code = compare_file(tmp_path / "nope.jsonl", out)
    assert code == 2
    assert json.loads(out.getvalue())["equivalent"] is None
