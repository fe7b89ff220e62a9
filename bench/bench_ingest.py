"""Ingestion throughput over every real trace file in ../shared/data/traces, on one core.

Prints records/s and MB/s for full ingestion (parse + normalize + Qwen2 token counts), for ingestion without
token counting, and for tokenizer-only encoding of the same texts, side by side in one run, with the peak RSS of
each (every mode runs in its own child process pinned to one core, repeated; medians are reported).

    python bench/bench_ingest.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DLCOT_SHARED_DIR") or REPO.parent / "shared") / "data" / "traces"


def files() -> list[Path]:
    return sorted(p for p in SHARED.rglob("*") if p.suffix in (".jsonl", ".json"))


def child(mode: str) -> dict:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    from dlcot_dagster.domain.ingest import ingest_path
    from dlcot_dagster.domain.tokens import TokenCounter

    counter = TokenCounter()  # built/cached outside the timed region
    counter.count(["warm up"])
    paths = files()
    nbytes = sum(p.stat().st_size for p in paths)
    records = 0
    t0 = time.perf_counter()
    if mode == "tokenize_only":
        texts = []
        for p in paths:
            r = ingest_path(p, "bench", None)
            texts += r.traces["problem"].to_list() + r.traces["thinking"].to_list() + [
                x for x in r.traces["final_response"].to_list() if x
            ]
            records += r.records_read
        t0 = time.perf_counter()
        tokens = sum(counter.count(texts))
    else:
        tokens = 0
        for p in paths:
            r = ingest_path(p, "bench", counter if mode == "full" else None)
            records += r.records_read
            if r.traces.height:
                tokens += int(r.traces["raw_tokens"].sum() + r.traces["problem_tokens"].sum())
    secs = time.perf_counter() - t0
    return {
        "mode": mode,
        "records": records,
        "bytes": nbytes,
        "seconds": secs,
        "tokens": tokens,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", RAYON_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    modes = ["full", "no_tokens", "tokenize_only"]
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(args.repeats):
        for m in modes:  # interleaved, so machine noise hits every mode alike
            out = subprocess.run(
                [sys.executable, __file__, "--child", m], capture_output=True, text=True, env=env, check=True
            ).stdout
            runs[m].append(json.loads(out.strip().splitlines()[-1]))
    first = runs["full"][0]
    print(f"data: {len(files())} files, {first['records']} records, {first['bytes'] / 1e6:.1f} MB ({SHARED})")
    print(f"machine: {os.cpu_count()} cores, pinned to 1; median of {args.repeats} interleaved runs\n")
    print(f"{'mode':<16}{'seconds':>9}{'records/s':>11}{'MB/s':>8}{'tokens/s':>11}{'peak RSS MB':>13}")
    med = {}
    for m in modes:
        secs = statistics.median(r["seconds"] for r in runs[m])
        med[m] = secs
        r0 = runs[m][0]
        print(
            f"{m:<16}{secs:>9.2f}{r0['records'] / secs:>11.0f}{r0['bytes'] / 1e6 / secs:>8.1f}"
            f"{(r0['tokens'] / secs if r0['tokens'] else 0):>11.0f}{max(r['peak_rss_mb'] for r in runs[m]):>13.0f}"
        )
    print(f"\nfull ingestion / tokenizer-only time: {med['full'] / med['tokenize_only']:.2f}x")
    print(f"tokenizer share of full ingestion:    {med['tokenize_only'] / med['full']:.0%}")


if __name__ == "__main__":
    main()
