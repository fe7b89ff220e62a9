"""A picklable recipe for the decontamination step: the benchmark files, the matcher settings, what to drop.

Worker processes rebuild the :class:`~.index.BenchmarkIndex` from a :class:`DecontamSpec` once (cached per process,
keyed by the files' paths, sizes and mtimes and the settings), so the step process never ships the index itself.
The corpus boilerplate learned for a partition travels inside the spec as n-gram text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..students.benchmarks import BenchmarkSpec, load_benchmark
from .index import BenchmarkIndex, BenchmarkProblem, DecontamSettings

DEFAULT_CORPUS_SAMPLE = 10_000


@dataclass(frozen=True)
class DecontamSpec:
    benchmarks: tuple[BenchmarkSpec, ...] = ()
    settings: DecontamSettings = field(default_factory=DecontamSettings)
    drop_duplicates: bool = True  # drop a trace with the same problem and thinking as an earlier one
    corpus_sample: int = DEFAULT_CORPUS_SAMPLE  # first N problems of a partition to learn its boilerplate (0 = off)
    corpus_boilerplate: tuple[str, ...] = ()  # learned n-grams (text; set by the step, see learn_corpus_boilerplate)

    def file_signature(self) -> tuple:
        out = []
        for b in self.benchmarks:
            p = Path(b.path).expanduser()
            try:
                st = p.stat()
                out.append((str(p), st.st_size, st.st_mtime_ns))
            except OSError:
                out.append((str(p), None, None))
        return tuple(out)

    def base_index(self) -> BenchmarkIndex:
        """The index of the listed benchmarks (benchmark boilerplate only), cached in this process."""
        key = (self.benchmarks, self.file_signature(), self.settings)
        idx = _CACHE.get(key)
        if idx is None:
            _CACHE.clear()  # one spec per process at a time: keep memory flat
            idx = _CACHE[key] = BenchmarkIndex(load_problems(self.benchmarks), self.settings)
        return idx

    def index(self) -> BenchmarkIndex:
        """The index with this partition's learned corpus boilerplate."""
        base = self.base_index()
        if not self.corpus_boilerplate:
            return base
        key = ("corpus", self.corpus_boilerplate)
        idx = _CORPUS_CACHE.get(key)
        if idx is None or idx[0] is not base:
            _CORPUS_CACHE.clear()
            idx = _CORPUS_CACHE[key] = (base, base.with_corpus_boilerplate(self.corpus_boilerplate))
        return idx[1]

    def config_hash(self) -> str:
        """Benchmarks (paths and content signature) and settings: changes when what decontamination checks changes."""
        blob = json.dumps(
            {"benchmarks": [asdict(b) for b in self.benchmarks], "files": [list(x[1:]) for x in self.file_signature()],
             "settings": asdict(self.settings), "drop_duplicates": self.drop_duplicates,
             "corpus_sample": self.corpus_sample},
            sort_keys=True, default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


_CACHE: dict = {}
_CORPUS_CACHE: dict = {}


def load_problems(specs: tuple[BenchmarkSpec, ...] | list[BenchmarkSpec]) -> list[BenchmarkProblem]:
    """Every problem of every listed benchmark file, with its benchmark name and id (``<name>-<id>``)."""
    out: list[BenchmarkProblem] = []
    for spec in specs:
        p = Path(spec.path).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"benchmark {spec.name!r}: no file at {p}")
        df = load_benchmark(spec)
        out += [BenchmarkProblem(r["benchmark"], r["id"], r["problem"]) for r in df.select("benchmark", "id", "problem").iter_rows(named=True)]
    return out
