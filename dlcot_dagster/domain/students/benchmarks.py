"""Benchmark problem sets from JSONL / JSON / Parquet files with a field mapping.

A :class:`BenchmarkSpec` names the file and which fields hold the id, the problem and the reference answer, plus
an answer ``transform``: ``gsm8k`` keeps what follows ``####``, ``first`` takes the first element of a list answer
(OlympiadBench ``final_answer``), ``none`` keeps the field. :data:`KNOWN_FIELDS` holds the mappings of the usual
files (MATH-500, AIME24/25, AMC23, GSM8K, Minerva, OlympiadBench) keyed by name, so a spec may give just
``name`` + ``path``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

#: name -> (problem field, answer field, id field or None, answer transform)
KNOWN_FIELDS: dict[str, tuple[str, str, str | None, str]] = {
    "math500": ("problem", "answer", "unique_id", "none"),
    "aime24": ("prompt", "answer", None, "none"),
    "aime25": ("prompt", "answer", None, "none"),
    "amc23": ("problem", "answer", "id", "none"),
    "gsm8k": ("question", "answer", "idx", "gsm8k"),
    "minerva_math": ("question", "answer", None, "none"),
    "olympiadbench": ("question", "final_answer", "id", "first"),
}

DEFAULT_TEMPLATE = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."
_BOX_HINT = re.compile(r"\\boxed\{\}")


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    path: str
    problem_field: str | None = None
    answer_field: str | None = None
    id_field: str | None = None
    answer_transform: str | None = None  # none | gsm8k | first

    def fields(self) -> tuple[str, str, str | None, str]:
        known = KNOWN_FIELDS.get(self.name, ("problem", "answer", "id", "none"))
        return (
            self.problem_field or known[0],
            self.answer_field or known[1],
            self.id_field if self.id_field is not None else known[2],
            self.answer_transform or known[3],
        )


def _read_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pl.read_parquet(path).to_dicts()
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, list) else data.get("data", [])
    return [json.loads(line) for line in path.read_bytes().split(b"\n") if line.strip()]


def _answer(value, transform: str) -> str:
    if transform == "gsm8k":
        text = str(value)
        return text.split("####")[-1].strip().replace(",", "") if "####" in text else text.strip()
    if transform == "first":
        if isinstance(value, str) and value.startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                import ast

                value = ast.literal_eval(value)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value) if len(value) > 1 else str(value[0]) if value else ""
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def iter_reference_rows(spec: BenchmarkSpec, path: str | Path | None = None):
    """``(raw id or None, problem, reference answer)`` per row of a problems file, with the spec's field mapping
    (ingestion joins these to traces that carry no reference). Rows without the problem or answer field are
    skipped."""
    pf, af, idf, transform = spec.fields()
    for r in _read_rows(Path(path or spec.path).expanduser()):
        if not isinstance(r, dict) or r.get(pf) is None or r.get(af) is None:
            continue
        rid = r.get(idf) if idf else None
        yield (None if rid is None else str(rid)), str(r[pf]), _answer(r[af], transform)


def file_row_count(spec: BenchmarkSpec) -> int:
    return len(_read_rows(Path(spec.path).expanduser()))


def load_benchmark(spec: BenchmarkSpec, limit: int | None = None) -> pl.DataFrame:
    """``benchmark, id, problem, reference_answer`` rows, the first ``limit`` of the file (all when None)."""
    pf, af, idf, transform = spec.fields()
    rows = _read_rows(Path(spec.path).expanduser())
    if limit is not None:
        rows = rows[: max(0, limit)]
    out = []
    for i, r in enumerate(rows):
        if pf not in r or af not in r:
            raise KeyError(f"{spec.name}: row {i} of {spec.path} lacks {pf!r} or {af!r} (has {sorted(r)})")
        out.append(
            {
                "benchmark": spec.name,
                "id": f"{spec.name}-{r[idf] if idf and r.get(idf) is not None else i}",
                "problem": str(r[pf]),
                "reference_answer": _answer(r[af], transform),
            }
        )
    schema = {"benchmark": pl.String(), "id": pl.String(), "problem": pl.String(), "reference_answer": pl.String()}
    return pl.DataFrame(out, schema=schema)


def render_prompt(problem: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The user turn; a problem that already asks for ``\\boxed{}`` (AIME files) is used as is."""
    if _BOX_HINT.search(problem):
        return problem
    return template.replace("{problem}", problem).replace("{{}}", "{}")
