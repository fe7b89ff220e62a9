"""Ingestion throughput per trace: a corpus in the OpenR1-Math layout against today's, side by side in one run.

Three runs of the raw_traces step alone (``bench_scale.py --child ingest``: parse, ids, tokens on the pool,
Parquet out), each in its own child process, in one invocation, alternating over ``--rounds``:

* ``baseline``: the code of ``--baseline`` (a git ref, default: the merge base with ``main``), exported with
  ``git archive`` into a scratch folder, on today's corpus (``make_corpus.py N``: the shared traces, one trace per
  record);
* ``new/shared``: this checkout on the same corpus (no regression on the old layouts);
* ``new/openr1``: this checkout on ``make_corpus.py N --layout openr1`` (the same traces regrouped as OpenR1-Math
  rows: ~2 generations per record, per-generation flags, a ``messages`` copy of the first generation).

Per-trace throughput = (kept + rejected traces) / wall seconds, and per CPU-second of the child and its pool
(the fairer figure when other jobs share the cores). The summary prints the ratios against the baseline; the
target is openr1 >= 0.9 x baseline per trace. Corpora live in ``--corpus-dir`` (default /tmp/dlcot-corpus), never
in the repository.

    python bench/bench_layouts.py [--records 100000] [--workers 2] [--rounds 1] [--limit-seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

DEFAULT_CORPUS_DIR = Path(os.environ.get("DLCOT_CORPUS_DIR") or "/tmp/dlcot-corpus")


def export_baseline(ref: str, dest: Path) -> str:
    """``git archive`` of ``ref`` (code and bench scripts) into ``dest``; returns the commit."""
    commit = subprocess.check_output(["git", "rev-parse", ref], cwd=REPO, text=True).strip()
    marker = dest / ".commit"
    if marker.is_file() and marker.read_text() == commit:
        return commit
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", commit, "dlcot_dagster", "bench"], cwd=REPO, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    archive.wait()
    marker.write_text(commit)
    return commit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000, help="records per corpus (OpenR1: rows of ~2 traces)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=512, help="the raw_traces default")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--limit-seconds", type=float, default=None, help="stop reading input after S s (partial runs)")
    ap.add_argument("--baseline", default=None, help="git ref of today's code (default: merge-base HEAD main)")
    ap.add_argument("--corpus-dir", type=Path, default=DEFAULT_CORPUS_DIR)
    ap.add_argument("--scratch", default=None)
    a = ap.parse_args()
    if REPO in a.corpus_dir.resolve().parents:
        raise SystemExit("refusing to write corpora inside the repository")

    from bench_scale import loadavg, run_child
    from make_corpus import make_corpus

    ref = a.baseline or subprocess.check_output(["git", "merge-base", "HEAD", "main"], cwd=REPO, text=True).strip()
    base_dir = Path(tempfile.gettempdir()) / "dlcot-baseline"
    commit = export_baseline(ref, base_dir)
    shared = a.corpus_dir / str(a.records)
    openr1 = a.corpus_dir / f"openr1-{a.records}"
    for path, layout in ((shared, "shared"), (openr1, "openr1")):
        m = make_corpus(a.records, path, layout=layout)
        print(json.dumps({"corpus": str(path), "layout": layout, "records": m["records"], "bytes": m["bytes"],
                          "traces_per_record": m.get("traces_per_record", 1.0)}), flush=True)
    print(json.dumps({"baseline": commit, "head": subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=REPO, text=True).strip(),
                      "cpus": sorted(os.sched_getaffinity(0)), "loadavg": os.getloadavg()}), flush=True)

    common = ["--workers-n", str(a.workers), "--batch-size", str(a.batch_size)]
    common += ["--limit-seconds", str(a.limit_seconds)] if a.limit_seconds else []
    common += ["--scratch", a.scratch] if a.scratch else []
    plan = [
        ("baseline", base_dir / "bench" / "bench_scale.py", shared),
        ("new/shared", REPO / "bench" / "bench_scale.py", shared),
        ("new/openr1", REPO / "bench" / "bench_scale.py", openr1),
    ]
    results: dict[str, list[dict]] = {name: [] for name, _s, _c in plan}
    for rnd in range(a.rounds):
        order = plan if rnd % 2 == 0 else list(reversed(plan))
        for name, script, corpus in order:
            la = loadavg()
            d = run_child(["--child", "ingest", "--corpus", str(corpus), *common], script=script)
            traces = d["kept"] + d["rejected"]
            d.update(run=name, round=rnd, traces=traces, traces_per_wall_s=traces / d["wall_s"],
                     traces_per_cpu_s=traces / d["cpu_s"] if d["cpu_s"] else 0.0, loadavg=[round(la, 2), round(loadavg(), 2)])
            results[name].append(d)
            print(json.dumps({"run": {k: d[k] for k in (
                "run", "round", "rows_in", "traces", "kept", "rejected", "partial", "wall_s", "cpu_s",
                "traces_per_wall_s", "traces_per_cpu_s", "rss_max_mb", "rss_sum_peak_mb", "loadavg")}}), flush=True)

    def best(name: str, key: str) -> float:
        return max(r[key] for r in results[name])

    print()
    print(f"{'run':<12} {'round':>5} {'records':>8} {'traces':>8} {'wall s':>7} {'traces/s':>9} {'traces/CPU-s':>13}")
    for name in results:
        for r in results[name]:
            print(f"{name:<12} {r['round']:>5} {r['rows_in']:>8} {r['traces']:>8} {r['wall_s']:>7.1f} "
                  f"{r['traces_per_wall_s']:>9.1f} {r['traces_per_cpu_s']:>13.1f}")
    b_wall, b_cpu = best("baseline", "traces_per_wall_s"), best("baseline", "traces_per_cpu_s")
    print(f"\nbest of {a.rounds} round(s), per trace, vs baseline:")
    for name in results:
        w, c = best(name, "traces_per_wall_s"), best(name, "traces_per_cpu_s")
        print(f"{name:<12} {w:>8.1f} traces/s ({w / b_wall:.3f}x)   {c:>7.1f} traces/CPU-s ({c / b_cpu:.3f}x)")
    ratio = best("new/openr1", "traces_per_cpu_s") / b_cpu
    print(json.dumps({"derived": {"metric": "openr1_vs_baseline_traces_per_cpu_s", "value": round(ratio, 3),
                                  "target": ">= 0.9", "met": ratio >= 0.9,
                                  "wall_ratio": round(best("new/openr1", "traces_per_wall_s") / b_wall, 3)}}))


if __name__ == "__main__":
    main()
