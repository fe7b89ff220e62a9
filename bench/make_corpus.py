"""Benchmark corpora of N traces built from the real trace files in ../shared/data/traces.

The ~2.8k source records (every JSONL / JSON-list / Parquet file under the traces folder) are replicated with fresh
ids until N records are written: replica k of all sources, then replica k+1. Inside a replica the sources are
interleaved in proportion to their sizes (record j of a file of n records sorts at (j + 0.5) / n), so every prefix of
the corpus has about the mix of the whole (a run stopped early with ``bench_scale.py --limit-seconds`` sees a
representative sample) and consecutive records come from different files.

Ids: each record's id field is the one ingestion picks (``sources.ID_FIELDS``, first present: ``id``, ``idx``,
``item_id``, ``Question ID`` ... in the shared files) and is rewritten to ``"<source stem>:<original id>:r<k>"``,
so ids are unique across sources and replicas while duplicates *inside* a source file (if any) stay duplicates.
Records with no usable id are copied as they are (ingestion gives them a line-based id). Lines of a JSONL source
that are not valid JSON are copied byte for byte (they stay ``malformed_json`` rejects). JSON-list and Parquet
sources become JSONL lines of the same record objects.

Output: ``corpus-00000.jsonl``, ... of at most ``--per-file`` records each, plus ``manifest.json`` (records,
bytes, sources, replicas), in a scratch directory (default ``/tmp/dlcot-corpus/<N>``; never the repository).
Writing streams: memory is bounded by the source set (~35 MB), not by N. ``--check`` ingests the result (parse
only, no tokens) and compares kept + rejected with N and the reject reasons with those of the sources.

    python bench/make_corpus.py 10000 [100000 1000000] [--out /tmp/dlcot-corpus] [--per-file 50000] [--check]
    python bench/make_corpus.py 100000 --layout openr1      # /tmp/dlcot-corpus/openr1-100000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_OUT = Path(os.environ.get("DLCOT_CORPUS_DIR") or "/tmp/dlcot-corpus")
PER_FILE = 50_000
_SENTINEL = "\x00DLCOT-ID\x00"


def source_files() -> list[Path]:
    from dlcot_dagster.domain.dlcot.testing import trace_files

    return trace_files()


class Template:
    """One source record, serialized once; ``render(k)`` is its line for replica ``k``."""

    __slots__ = ("head", "tail", "orig", "raw")

    def __init__(self, stem: str, obj=None, raw: bytes | None = None):
        self.raw = raw
        self.head = self.tail = self.orig = None
        if raw is not None:
            return
        from dlcot_dagster.domain.ingest.sources import ID_FIELDS, find_field

        name, value = find_field(obj, None, ID_FIELDS) if isinstance(obj, dict) else (None, None)
        if name is None or isinstance(value, (dict, list)):
            self.raw = (json.dumps(obj, ensure_ascii=False, default=str) + "\n").encode()
            return
        obj = dict(obj)
        obj[name] = _SENTINEL
        text = json.dumps(obj, ensure_ascii=False, default=str)
        marker = json.dumps(_SENTINEL, ensure_ascii=False)
        i = text.index(marker)
        self.head = text[:i].encode()
        self.tail = (text[i + len(marker):] + "\n").encode()
        self.orig = f"{stem}:{value}"

    def render(self, k: int) -> bytes:
        if self.raw is not None:
            return self.raw
        return self.head + json.dumps(f"{self.orig}:r{k}", ensure_ascii=False).encode() + self.tail


def load_templates(files: list[Path]) -> tuple[list[Template], dict]:
    """Every source record as a template, interleaved by relative position; per-source counts."""
    from dlcot_dagster.domain.ingest.readers import JSONL_SUFFIXES, iter_units

    keyed: list[tuple[float, int, Template]] = []
    sources = {}
    for fi, path in enumerate(files):
        stem = path.stem
        items: list[Template] = []
        skipped = 0
        if path.suffix.lower() in JSONL_SUFFIXES:
            with open(path, "rb") as fh:
                for raw in fh:
                    line = raw.rstrip(b"\n").rstrip(b"\r")
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line.decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                        items.append(Template(stem, raw=line + b"\n"))
                        continue
                    items.append(Template(stem, obj))
        else:
            for unit in iter_units(path):
                if unit.error is not None:  # a whole-file error cannot be replicated as a line
                    skipped += 1
                    continue
                items.append(Template(stem, unit.obj))
        n = len(items)
        sources[path.name] = {"records": n, "skipped_units": skipped}
        keyed += [((j + 0.5) / n, fi, t) for j, t in enumerate(items)]
    keyed.sort(key=lambda x: (x[0], x[1]))
    return [t for _, _, t in keyed], sources


OPENR1_MAX_GENERATIONS = 4  # OpenR1-Math-220k keeps two to four generations per problem


def load_openr1_templates(files: list[Path]) -> tuple[list[Template], dict]:
    """The shared traces regrouped in the open-r1/OpenR1-Math-220k layout: one row per problem (traces with the
    same normalized problem text, at most four per row), its traces as ``generations`` (``<think>`` thinking
    ``</think>`` answer; an unclosed thinking stays unclosed), per-generation ``correctness_math_verify`` /
    ``is_reasoning_complete`` / ``finish_reasons``, the first generation copied into ``messages``, the reference
    as ``answer``, ``uuid`` the id. Records (rows) hold ~2 traces each."""
    from collections import defaultdict

    from dlcot_dagster.domain.ingest import iter_outcomes, named_files
    from dlcot_dagster.domain.ingest.references import problem_key
    from dlcot_dagster.domain.ingest.schema import TraceRecord

    groups: dict[int, list] = defaultdict(list)
    for p in files:
        for o in iter_outcomes(named_files(p), "corpus", None, None, max_raw_tokens=None):
            if isinstance(o, TraceRecord):
                groups[problem_key(o.problem)].append(o)
    templates: list[Template] = []
    traces = 0
    for key, group in groups.items():
        for c in range(0, len(group), OPENR1_MAX_GENERATIONS):
            chunk = group[c : c + OPENR1_MAX_GENERATIONS]
            gens = []
            for o in chunk:
                text = f"<think>\n{o.thinking}"
                if o.thinking_closed:
                    text += "\n</think>" + (f"\n\n{o.final_response}" if o.final_response else "")
                gens.append(text)
            labels = [bool(o.source_label) for o in chunk]
            first = chunk[0]
            row = {
                "problem": first.problem,
                "solution": f"Hence the answer is $\\boxed{{{first.reference_answer}}}$.",
                "answer": first.reference_answer,
                "problem_type": "Algebra",
                "question_type": "math-word-problem",
                "source": "shared-traces",
                "uuid": f"{key:016x}-{c // OPENR1_MAX_GENERATIONS}",
                "is_reasoning_complete": [o.thinking_closed for o in chunk],
                "generations": gens,
                "correctness_math_verify": labels,
                "correctness_llama": None,
                "finish_reasons": ["stop" if o.thinking_closed else "length" for o in chunk],
                "correctness_count": sum(labels),
                "messages": [{"content": first.problem, "role": "user"}, {"content": gens[0], "role": "assistant"}],
            }
            templates.append(Template("openr1", row))
            traces += len(chunk)
    return templates, {"openr1-regrouped": {"records": len(templates), "traces": traces, "skipped_units": 0}}


def make_corpus(
    n: int, out: Path, per_file: int = PER_FILE, files: list[Path] | None = None, force: bool = False,
    layout: str = "shared",
) -> dict:
    """Write ``n`` records to ``out`` (replaced if it exists); returns the manifest. ``layout="openr1"``: rows in
    the OpenR1-Math layout (several generations per record), see :func:`load_openr1_templates`."""
    out = Path(out)
    manifest_path = out / "manifest.json"
    if manifest_path.is_file() and not force:
        m = json.loads(manifest_path.read_text())
        if m.get("records") == n and m.get("per_file") == per_file and m.get("layout", "shared") == layout:
            return m
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    loader = load_openr1_templates if layout == "openr1" else load_templates
    templates, sources = loader(files or source_files())
    if not templates:
        raise SystemExit("no source records found (is ../shared/data/traces there?)")
    written = nbytes = 0
    fh = None
    fileno = 0
    k = 0
    while written < n:
        for t in templates:
            if written >= n:
                break
            if fh is None or written % per_file == 0:
                if fh is not None:
                    fh.close()
                fh = open(out / f"corpus-{fileno:05d}.jsonl", "wb", buffering=1 << 20)
                fileno += 1
            line = t.render(k)
            fh.write(line)
            nbytes += len(line)
            written += 1
        k += 1
    if fh is not None:
        fh.close()
    per_record = 1.0
    if layout == "openr1":
        src = sources["openr1-regrouped"]
        per_record = src["traces"] / src["records"]
    manifest = {
        "records": n,
        "layout": layout,
        "traces_per_record": round(per_record, 4),
        "bytes": nbytes,
        "files": fileno,
        "per_file": per_file,
        "replicas": k,
        "source_records": len(templates),
        "sources": sources,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def corpus_files(out: Path) -> list[tuple[Path, str]]:
    from dlcot_dagster.domain.ingest import named_files

    return [(p, name) for p, name in named_files(Path(out)) if p.name != "manifest.json"]


def check(out: Path, n: int) -> list[str]:
    """Parse-only ingestion of the corpus: kept + rejected == n, no duplicate ids, and per source replica the
    same reject reasons as the source files (scaled by the number of replicas)."""
    from dlcot_dagster.domain.ingest import iter_outcomes, named_files
    from dlcot_dagster.domain.ingest.schema import RejectRecord

    problems = []
    src = Counter()
    src_n = 0
    for p in source_files():
        for o in iter_outcomes(named_files(p), "check", None, None, max_raw_tokens=None):
            src_n += 1
            if isinstance(o, RejectRecord):
                src[str(getattr(o.reason, "value", o.reason))] += 1
    got = Counter()
    kept = total = 0
    for o in iter_outcomes(corpus_files(out), "check", None, None, max_raw_tokens=None):
        total += 1
        if isinstance(o, RejectRecord):
            got[str(getattr(o.reason, "value", o.reason))] += 1
        else:
            kept += 1
    rejected = sum(got.values())
    if total != n or kept + rejected != n:
        problems.append(f"read {total} records, kept {kept} + rejected {rejected}, expected {n}")
    if got.get("duplicate_id"):
        problems.append(f"{got['duplicate_id']} duplicate_id rejects")
    if set(got) - set(src):
        problems.append(f"reject reasons {sorted(set(got) - set(src))} do not occur in the sources")
    if n % src_n == 0:  # whole replicas: exact counts
        want = Counter({r: c * (n // src_n) for r, c in src.items()})
        if got != want:
            problems.append(f"rejects {dict(got)} != sources x {n // src_n} {dict(want)}")
    print(json.dumps({"check": str(out), "records": total, "kept": kept, "rejected": rejected, "reasons": dict(got),
                      "source_records": src_n, "source_reasons": dict(src)}))
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sizes", nargs="+", type=int)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="parent scratch directory (one sub-folder per size)")
    ap.add_argument("--per-file", type=int, default=PER_FILE)
    ap.add_argument("--force", action="store_true", help="rebuild even if a matching corpus exists")
    ap.add_argument("--check", action="store_true", help="ingest the result and compare reject reasons")
    ap.add_argument("--layout", choices=["shared", "openr1"], default="shared",
                    help="shared: the source records as they are; openr1: regrouped as OpenR1-Math rows")
    args = ap.parse_args()
    if REPO in args.out.resolve().parents or args.out.resolve() == REPO:
        raise SystemExit(f"refusing to write a corpus inside the repository ({args.out})")
    bad = []
    for n in args.sizes:
        name = str(n) if args.layout == "shared" else f"{args.layout}-{n}"
        m = make_corpus(n, args.out / name, args.per_file, force=args.force, layout=args.layout)
        print(json.dumps({k: v for k, v in m.items() if k != "sources"} | {"dir": str(args.out / name)}))
        if args.check and args.layout == "shared":
            bad += check(args.out / str(n), n)
    for p in bad:
        print("PROBLEM:", p)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
