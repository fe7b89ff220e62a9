"""The one list of evaluation benchmarks: ``benchmark_scores`` evaluates on it, decontamination guards against it.

Both read the ``benchmarks`` resource, so the problems a student is scored on and the problems its training data is
checked against cannot drift apart. Default (works on a laptop): every known benchmark file found in
``DLCOT_BENCHMARKS_DIR`` (``math500``, ``aime24``, ``aime25``, ``amc23``, ``gsm8k``, ``minerva_math``,
``olympiadbench`` as ``<name>.jsonl|.json|.parquet``), else the bundled ``demo_arithmetic`` sample. Per run::

    resources:
      benchmarks:
        config:
          benchmarks: [{name: math500, path: /data/benchmarks/math500.jsonl}, {name: gsm8k, path: ...}]
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from ..domain.students.benchmarks import KNOWN_FIELDS, BenchmarkSpec
from .settings import SAMPLES_BENCHMARKS

SUFFIXES = (".jsonl", ".json", ".parquet")


class BenchmarkConfig(dg.Config):
    name: str = Field(description="benchmark name; known names (gsm8k, math500, aime24, ...) need no field mapping")
    path: str = Field(description="JSONL / JSON / Parquet file")
    problem_field: str | None = None
    answer_field: str | None = None
    id_field: str | None = None
    answer_transform: str | None = Field(default=None, description="none | gsm8k (after ####) | first (list answer)")

    def spec(self) -> BenchmarkSpec:
        return BenchmarkSpec(self.name, self.path, self.problem_field, self.answer_field, self.id_field, self.answer_transform)


def default_benchmarks() -> list[BenchmarkConfig]:
    """The known benchmark files in ``DLCOT_BENCHMARKS_DIR``, else the bundled demo benchmark."""
    folder = os.environ.get("DLCOT_BENCHMARKS_DIR")
    found: list[BenchmarkConfig] = []
    if folder:
        for name in KNOWN_FIELDS:
            for suffix in SUFFIXES:
                p = Path(folder).expanduser() / f"{name}{suffix}"
                if p.is_file():
                    found.append(BenchmarkConfig(name=name, path=str(p)))
                    break
        if not found:
            raise ValueError(f"DLCOT_BENCHMARKS_DIR={folder!r} holds none of {sorted(KNOWN_FIELDS)} (.jsonl/.json/.parquet)")
        return found
    return [BenchmarkConfig(name="demo_arithmetic", path=str(SAMPLES_BENCHMARKS / "demo_arithmetic.jsonl"))]


class BenchmarksResource(dg.ConfigurableResource):
    """The evaluation benchmark files (field mappings of the usual files are built in: name + path suffice)."""

    benchmarks: list[BenchmarkConfig] = Field(
        default_factory=default_benchmarks,
        description="benchmark files: evaluated by benchmark_scores, guarded against by decontamination "
        "(default: the known files in DLCOT_BENCHMARKS_DIR, else the bundled demo benchmark)",
    )

    def specs(self) -> tuple[BenchmarkSpec, ...]:
        names = [b.name for b in self.benchmarks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"benchmarks: names must be unique, {dupes} listed more than once")
        return tuple(b.spec() for b in self.benchmarks)
