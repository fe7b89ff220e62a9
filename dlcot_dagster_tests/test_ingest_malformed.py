"""Bad input never crashes ingestion: every unusable record lands in the rejects with its reason."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from dlcot_dagster.domain.ingest import accounting_problems, ingest_folder, ingest_path
from dlcot_dagster.domain.ingest.normalize import split_thinking
from dlcot_dagster.domain.ingest.schema import Layout
from dlcot_dagster.domain.ingest.sources import SourceSpec


def rec(i, **kw):
    base = {"id": i, "problem": f"What is {i}+{i}?", "answer": str(2 * i), "response": f"<think>{i}+{i}={2*i}</think>{2*i}"}
    base.update(kw)
    return base


def write_jsonl(path: Path, lines: list) -> Path:
    path.write_bytes(b"\n".join(l if isinstance(l, bytes) else json.dumps(l).encode() for l in lines) + b"\n")
    return path


def by_line(result):
    return {r["source_line"]: r for r in result.rejects.iter_rows(named=True)}


def test_mixed_bad_jsonl(tmp_path):
    f = write_jsonl(
        tmp_path / "dump.jsonl",
        [
            rec(1),
            b'{"id": 2, "problem": "broken',  # line 2: malformed
            rec(3, problem=None) | {"problem": None},  # line 3: no problem
            rec(4, response="<think>   </think>"),  # line 4: empty thinking
            rec(1),  # line 5: duplicate id
            b"",  # line 6: blank, not a record
            b"[1, 2, 3]",  # line 7: not an object
            b'{"id": 8, "problem": "caf\xe9", "answer": "1", "response": "x"}',  # line 8: latin-1 byte
            rec(9, answer="  "),  # line 9: empty reference
            rec(10, response={"nested": True}),  # line 10: wrong type
        ],
    )
    r = ingest_path(f, "t", None)
    rej = by_line(r)
    assert r.traces["source_line"].to_list() == [1]
    assert {k: v["reason"] for k, v in rej.items()} == {
        2: "malformed_json",
        3: "missing_field",
        4: "empty_field",
        5: "duplicate_id",
        7: "not_an_object",
        8: "undecodable_bytes",
        9: "empty_field",
        10: "wrong_type",
    }
    assert rej[9]["field"] == "answer" and rej[4]["field"] == "thinking" and rej[10]["field"] == "response"
    assert "dump.jsonl:1" in rej[5]["detail"]
    assert rej[5]["record_id"] == "dump/1"
    assert r.records_read == 9  # the blank line is not a record
    assert accounting_problems(r.traces, r.rejects, r.files) == []
    # every reject names the file
    assert set(r.rejects["source_file"]) == {"dump.jsonl"}


def test_empty_and_binary_and_not_json_files_are_named(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blank.jsonl").write_bytes(b"\n\n  \n")
    (tmp_path / "binary.jsonl").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "notjson.json").write_text("this is { not json")
    (tmp_path / "empty_list.json").write_text("[]")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 garbage")
    write_jsonl(tmp_path / "good.jsonl", [rec(1), rec(2)])
    r = ingest_folder(tmp_path, "t", None)
    whole = {row["source_file"]: row for row in r.rejects.iter_rows(named=True) if row["source_line"] == 0}
    assert {k: v["reason"] for k, v in whole.items()} == {
        "empty.jsonl": "empty_file",
        "blank.jsonl": "empty_file",
        "binary.jsonl": "unreadable_file",
        "notjson.json": "unreadable_file",
        "empty_list.json": "empty_file",
        "bad.parquet": "unreadable_file",
    }
    assert "binary" in whole["binary.jsonl"]["detail"]
    assert r.traces.height == 2
    assert accounting_problems(r.traces, r.rejects, r.files) == []


def test_json_list_parquet_and_messages_layouts(tmp_path):
    (tmp_path / "list.json").write_text(
        json.dumps([rec(1), "not a record", {"id": 3, "question": "q", "gold_answer": "7", "reasoning": "think", "solution": "7"}])
    )
    pl.DataFrame(
        {
            "uid": ["m1", "m2"],
            "messages": [
                [{"role": "user", "content": "What is 2+3?", "reasoning_content": None}, {"role": "assistant", "content": "<think>2+3=5</think>The answer is 5.", "reasoning_content": None}],
                [{"role": "user", "content": "What is 1+1?", "reasoning_content": None}, {"role": "assistant", "content": "2", "reasoning_content": "1+1=2"}],
            ],
            "answer": ["5", "2"],
        },
        schema={
            "uid": pl.String,
            "messages": pl.List(pl.Struct({"role": pl.String, "content": pl.String, "reasoning_content": pl.String})),
            "answer": pl.String,
        },
    ).write_parquet(tmp_path / "chat.parquet")
    r = ingest_folder(tmp_path, "t", None)
    rows = {row["id"]: row for row in r.traces.iter_rows(named=True)}
    assert set(rows) == {"list/1", "list/3", "chat/m1", "chat/m2"}
    assert rows["chat/m1"]["problem"] == "What is 2+3?" and rows["chat/m1"]["thinking"] == "2+3=5"
    assert rows["chat/m1"]["final_response"] == "The answer is 5." and rows["chat/m1"]["layout"] == Layout.MESSAGES.value
    assert rows["chat/m2"]["thinking"] == "1+1=2"
    assert rows["list/3"]["layout"] == Layout.SEPARATE_FIELDS.value and rows["list/3"]["final_response"] == "7"
    assert by_line(r)[2]["reason"] == "not_an_object"


def test_source_spec_from_yaml_maps_custom_fields(tmp_path):
    (tmp_path / "dlcot_source.yaml").write_text("problem: Q\nreference_answer: A\nresponse: out\nid: key\nid_scope: teacher\n")
    write_jsonl(tmp_path / "a.jsonl", [{"key": "k1", "Q": "q?", "A": "1", "out": "<think>t</think>1"}])
    write_jsonl(tmp_path / "b.jsonl", [{"key": "k1", "Q": "q?", "A": "1", "out": "<think>t</think>1"}, {"key": "k2", "Q": "q?", "A": "2"}])
    r = ingest_folder(tmp_path, "t", None)
    assert r.traces["id"].to_list() == ["k1"]  # teacher scope: b.jsonl's k1 is a duplicate
    rej = {(row["source_file"], row["source_line"]): row for row in r.rejects.iter_rows(named=True)}
    assert rej[("b.jsonl", 1)]["reason"] == "duplicate_id"
    assert rej[("b.jsonl", 2)]["reason"] == "missing_field" and rej[("b.jsonl", 2)]["field"] == "out"


def test_invalid_spec_is_a_clear_error(tmp_path):
    (tmp_path / "dlcot_source.yaml").write_text("problme: Q\n")
    with pytest.raises(ValueError, match="(?s)dlcot_source.yaml.*problme"):
        ingest_folder(tmp_path, "t", None)
    assert SourceSpec.from_yaml  # the classmethod is the public loader


def test_token_ceiling_rejects_with_reason(tmp_path, token_counter):
    f = write_jsonl(tmp_path / "d.jsonl", [rec(1), rec(2, response="<think>" + "word " * 500 + "</think>x")])
    r = ingest_path(f, "t", token_counter, max_raw_tokens=100)
    assert r.traces["source_line"].to_list() == [1]
    assert r.rejects.row(0, named=True)["reason"] == "too_many_tokens"
    assert accounting_problems(r.traces, r.rejects, r.files) == []
    assert r.files[0].kept == 1 and r.files[0].rejected == 1


@pytest.mark.parametrize(
    "text,thinking,final,closed,layout",
    [
        ("<think>a</think>b", "a", "b", True, Layout.THINK_TAGS),
        ("a</think>b", "a", "b", True, Layout.THINK_TAGS),
        ("<think>a never ends", "a never ends", None, False, Layout.THINK_TAGS),
        ("<|begin_of_thought|>x<|end_of_thought|><|begin_of_solution|>y<|end_of_solution|>", "x", "y", True, Layout.BEGIN_OF_THOUGHT),
        ("<|begin_of_thought|>x loops", "x loops", None, False, Layout.BEGIN_OF_THOUGHT),
        ("work\n\n**Final Answer**\n\\boxed{3}", "work", "**Final Answer**\n\\boxed{3}", True, Layout.FINAL_ANSWER_TAIL),
        ("just text", "just text", None, True, Layout.PLAIN),
    ],
)
def test_split_thinking(text, thinking, final, closed, layout):
    s = split_thinking(text)
    assert (s.thinking, s.final_response, s.closed, s.layout) == (thinking, final, closed, layout)
