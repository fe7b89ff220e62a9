"""The decontamination step over batches of ``raw_traces``: one verdict row per raw row.

* :func:`learn_spec` learns the partition's corpus boilerplate from its first ``corpus_sample`` problems (one pass
  over the ``problem`` column) and returns the spec the workers build their index from;
* :class:`TraceDeduper` runs in the step process, which sees the batches in order: a trace whose problem and
  thinking equal an earlier one's is a duplicate. It keeps a 128-bit fingerprint per trace (``SeenIds``: 48-96
  bytes per trace) and the ids in an append-only file in the scratch folder, so memory does not grow with the
  corpus beyond the fingerprint set;
* :func:`decontam_frame` (in a worker) matches every row's problem against the benchmark index and writes the
  verdict: ``dropped`` with reason ``benchmark_overlap:<benchmark>`` (the benchmark problem id, how it matched, the
  share of its distinctive n-grams found, the shared n-grams or the normalized text as evidence), or
  ``duplicate_trace`` (the earlier trace's id), else ``kept``. An overlap wins over a duplicate;
* :func:`kept_overlaps` re-checks kept rows (the blocking check on ``corrected_traces``);
* :class:`DecontamReport` adds the batches up for the UI: rows and distinct benchmark problems hit per benchmark and
  a few training / benchmark pairs side by side (memory bounded by the benchmarks, not the corpus);
* :func:`problem_keys` / :func:`shared_problems`: the normalized-problem keys of a partition and what two teachers
  share (near-duplicate problems across teachers are reported, never dropped).

Nothing here imports dagster.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field, replace
from hashlib import blake2b
from itertools import islice
from pathlib import Path
from typing import Iterable

import numpy as np
import polars as pl

from ..seen_ids import SeenIds
from .index import text_key
from .normalize import tokens
from .spec import DecontamSpec

DECONTAM_STAGE = "decontam"
OVERLAP_REASON = "benchmark_overlap"
DUPLICATE_REASON = "duplicate_trace"

#: the evidence columns, shared by ``decontam_verdicts`` and ``dropped_traces``
EVIDENCE_SCHEMA = {
    "benchmark": pl.String(),  # the benchmark overlapped (null otherwise)
    "matched_id": pl.String(),  # the benchmark problem's id, or the earlier trace's id for a duplicate
    "match_kind": pl.String(),  # exact | contained | ngram | duplicate
    "match_score": pl.Float64(),  # share of the benchmark problem's distinctive n-grams found (1.0: exact, contained)
    "evidence": pl.List(pl.String()),  # shared n-grams, or the normalized problem text
}

DECONTAM_SCHEMA = {
    "id": pl.String(),
    "teacher": pl.String(),
    "status": pl.String(),  # kept | dropped
    "reason": pl.String(),  # null | benchmark_overlap:<benchmark> | duplicate_trace
    **EVIDENCE_SCHEMA,
    "problem_key": pl.String(),  # 16 hex digits of the normalized problem (cross-teacher report)
}


def is_decontam_reason(reason: str | None) -> bool:
    return bool(reason) and (reason == DUPLICATE_REASON or reason.startswith(OVERLAP_REASON + ":"))


def learn_spec(spec: DecontamSpec, problems: Iterable[str]) -> DecontamSpec:
    """``spec`` with the corpus boilerplate learned from the first ``corpus_sample`` of ``problems``."""
    if spec.corpus_sample <= 0 or not spec.benchmarks:
        return replace(spec, corpus_boilerplate=())
    learned = spec.base_index().learn_corpus_boilerplate(islice(problems, spec.corpus_sample))
    return replace(spec, corpus_boilerplate=tuple(learned))


# --------------------------------------------------------------------------------------------- duplicates


def trace_fingerprint(problem: str | None, thinking: str | None) -> str:
    """128-bit fingerprint of (problem, thinking), whitespace at the ends ignored."""
    h = blake2b(digest_size=16)
    h.update((problem or "").strip().encode("utf-8", "surrogatepass"))
    h.update(b"\x00")
    h.update((thinking or "").strip().encode("utf-8", "surrogatepass"))
    return h.hexdigest()


class TraceDeduper:
    """Marks traces whose problem and thinking equal an earlier one's, in the order the batches are offered.

    Memory: a :class:`~..seen_ids.SeenIds` fingerprint table (48-96 bytes per trace); the ids themselves go to an
    append-only file in ``scratch`` (length-prefixed UTF-8), read back only for the duplicates found."""

    def __init__(self, scratch: str | Path):
        Path(scratch).mkdir(parents=True, exist_ok=True)
        self._seen = SeenIds()
        self._path = Path(scratch) / f"trace-ids-{os.getpid()}-{id(self):x}.bin"
        self._fh = open(self._path, "w+b")
        self._offset = 0
        self.duplicates = 0

    @property
    def nbytes(self) -> int:
        return self._seen.nbytes

    def _id_at(self, offset: int) -> str:
        self._fh.flush()
        (n,) = struct.unpack("<I", os.pread(self._fh.fileno(), 4, offset))
        return os.pread(self._fh.fileno(), n, offset + 4).decode("utf-8", "surrogatepass")

    def mark(self, batch: pl.DataFrame) -> list[str | None]:
        """Per row: None, or the id of the earlier trace with the same problem and thinking."""
        out: list[str | None] = []
        buf = bytearray()
        pending: list[tuple[int, int]] = []  # (row, offset) of duplicates whose first copy is still in ``buf``
        ids = batch["id"].to_list()
        for j, (rid, problem, thinking) in enumerate(zip(ids, batch["problem"].to_list(), batch["thinking"].to_list())):
            first = self._seen.first_seen(trace_fingerprint(problem, thinking), "", self._offset + len(buf))
            if first is None:
                raw = rid.encode("utf-8", "surrogatepass")
                buf += struct.pack("<I", len(raw)) + raw
                out.append(None)
                continue
            self.duplicates += 1
            off = first[1]
            if off >= self._offset:  # first seen in this very batch
                pending.append((j, off))
                out.append(None)
            else:
                out.append(self._id_at(off))
        if pending:
            local = {}
            pos = 0
            while pos < len(buf):
                (n,) = struct.unpack_from("<I", buf, pos)
                local[self._offset + pos] = bytes(buf[pos + 4 : pos + 4 + n]).decode("utf-8", "surrogatepass")
                pos += 4 + n
            for j, off in pending:
                out[j] = local[off]
        self._fh.write(buf)
        self._offset += len(buf)
        return out

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self._path.unlink(missing_ok=True)

    def __enter__(self) -> "TraceDeduper":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------------------------- verdicts


def decontam_frame(
    raw: pl.DataFrame, spec: DecontamSpec, duplicates: list[str | None] | None = None, *, audit: bool = False
) -> pl.DataFrame:
    """One verdict per raw row, in order (``DECONTAM_SCHEMA``); a benchmark overlap wins over a duplicate.
    ``audit``: compute everything, drop nothing (the evidence columns are still filled)."""
    index = spec.index() if spec.benchmarks else None
    n = raw.height
    dups = duplicates if (duplicates is not None and spec.drop_duplicates) else [None] * n
    cols: dict[str, list] = {k: [None] * n for k in DECONTAM_SCHEMA}
    cols["id"], cols["teacher"] = raw["id"].to_list(), raw["teacher"].to_list()
    cols["status"] = ["kept"] * n
    for j, problem in enumerate(raw["problem"].to_list()):
        toks = tokens(problem or "")
        cols["problem_key"][j] = f"{text_key(toks):016x}"
        overlap = index.match_tokens(toks) if index is not None else None
        if overlap is not None:
            cols["benchmark"][j], cols["matched_id"][j] = overlap.benchmark, overlap.benchmark_id
            cols["match_kind"][j], cols["match_score"][j] = overlap.kind, round(float(overlap.score), 4)
            cols["evidence"][j] = list(overlap.evidence)
            if not audit:
                cols["status"][j], cols["reason"][j] = "dropped", f"{OVERLAP_REASON}:{overlap.benchmark}"
        elif dups[j] is not None:
            cols["matched_id"][j], cols["match_kind"][j], cols["match_score"][j] = dups[j], "duplicate", 1.0
            cols["evidence"][j] = []
            if not audit:
                cols["status"][j], cols["reason"][j] = "dropped", DUPLICATE_REASON
    return pl.DataFrame(cols, schema=DECONTAM_SCHEMA)


def verdict_drops(verdicts: pl.DataFrame | None) -> dict[str, str]:
    """id -> reason of the rows the step dropped."""
    if verdicts is None or verdicts.height == 0:
        return {}
    d = verdicts.filter(pl.col("status") == "dropped").select("id", "reason")
    return dict(d.iter_rows())


def attach_evidence(dropped: pl.DataFrame, verdicts: pl.DataFrame | None) -> pl.DataFrame:
    """Fill the evidence columns of ``dropped_traces`` rows dropped at decontamination from their verdicts."""
    if verdicts is None or dropped.height == 0:
        return dropped
    ev = verdicts.filter(pl.col("status") == "dropped").select("id", *EVIDENCE_SCHEMA)
    if ev.height == 0:
        return dropped
    cols = list(dropped.columns)
    base = dropped.drop(*[c for c in EVIDENCE_SCHEMA if c in dropped.columns])
    out = base.join(ev, on="id", how="left", maintain_order="left")
    return out.select(cols)


def kept_overlaps(kept: pl.DataFrame, spec: DecontamSpec, limit: int | None = None) -> list[str]:
    """``id: benchmark id (kind, score)`` of every kept row whose problem overlaps a listed benchmark."""
    if not spec.benchmarks or kept.height == 0:
        return []
    index = spec.index()
    bad = []
    for rid, problem in kept.select("id", "problem").iter_rows():
        m = index.match(problem or "")
        if m is not None:
            bad.append(f"{rid}: {m.benchmark_id} ({m.kind}, {m.score:.2f})")
            if limit is not None and len(bad) >= limit:
                break
    return bad


# --------------------------------------------------------------------------------------------- report


def _cut(text: str, n: int = 400) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass
class DecontamReport:
    """Adds up the verdicts of a partition, batch by batch."""

    max_pairs: int = 5
    rows: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    problems_hit: dict[str, set] = field(default_factory=dict)  # benchmark -> distinct benchmark problem ids
    kinds: dict[str, int] = field(default_factory=dict)  # match kind -> rows
    pairs: list[dict] = field(default_factory=list)

    def add(self, verdicts: pl.DataFrame, benchmark_problems: dict[str, str] | None = None,
            raw: pl.DataFrame | None = None) -> None:
        """One batch of verdicts; ``raw`` (its raw rows) gives the training side of the pairs, else fill
        ``pairs[i]["training"]`` later."""
        self.rows += verdicts.height
        d = verdicts.filter(pl.col("status") == "dropped")
        for reason, n in d.group_by("reason").len().iter_rows():
            self.dropped[reason] = self.dropped.get(reason, 0) + n
        hits = d.filter(pl.col("benchmark").is_not_null())
        for kind, n in hits.group_by("match_kind").len().iter_rows():
            self.kinds[kind] = self.kinds.get(kind, 0) + n
        for b, mid in hits.select("benchmark", "matched_id").iter_rows():
            self.problems_hit.setdefault(b, set()).add(mid)
        if len(self.pairs) < self.max_pairs and hits.height:
            problems = dict(raw.select("id", "problem").iter_rows()) if raw is not None else {}
            for v in hits.head(self.max_pairs - len(self.pairs)).iter_rows(named=True):
                self.pairs.append({
                    "id": v["id"], "training": problems.get(v["id"], ""), "benchmark_id": v["matched_id"],
                    "benchmark": (benchmark_problems or {}).get(v["matched_id"], ""), "kind": v["match_kind"],
                    "score": v["match_score"], "evidence": list(v["evidence"] or [])[:4],
                })

    def per_benchmark(self) -> dict[str, dict]:
        out = {}
        for reason, n in sorted(self.dropped.items()):
            if reason.startswith(OVERLAP_REASON + ":"):
                b = reason.split(":", 1)[1]
                out[b] = {"rows": n, "problems": len(self.problems_hit.get(b, ()))}
        return out

    def pairs_markdown(self) -> str:
        """A few training / benchmark problems side by side, with how they matched."""
        if not self.pairs:
            return "_(no benchmark overlap)_"

        def cell(text: str) -> str:
            return _cut(text).replace("|", "\\|")

        out = ["| training problem | benchmark problem | match |", "|---|---|---|"]
        for p in self.pairs:
            if p["kind"] == "ngram":
                how = "<br>".join(f"`{cell(e)}`" for e in p["evidence"][:3])
            else:
                how = "normalized texts equal" if p["kind"] == "exact" else "benchmark problem contained"
            out.append(f"| **{p['id']}**<br>{cell(p['training'])} | **{p['benchmark_id']}**<br>{cell(p['benchmark'])} "
                       f"| {p['kind']} {p['score']:.2f}<br>{how} |")
        return "\n".join(out)


def problem_keys(batches: Iterable[pl.DataFrame]) -> np.ndarray:
    """The distinct ``problem_key`` values of verdict batches, as a sorted uint64 array (8 bytes per problem)."""
    parts = [np.unique(np.array([int(k, 16) for k in b["problem_key"].to_list()], dtype=np.uint64)) for b in batches]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)


def shared_problems(mine: np.ndarray, others: dict[str, np.ndarray]) -> dict[str, int]:
    """Distinct normalized problems this partition shares with each other teacher (sorted uint64 key arrays)."""
    return {t: int(len(np.intersect1d(mine, k, assume_unique=True))) for t, k in sorted(others.items()) if len(k)}
