"""DLCoT rule-engine benchmark over every real trace file in ../shared/data/traces, on one core.

Each policy (default, first_correct_only, none) runs in its own child process pinned to one core, with a fresh
answer checker (warmed up with one comparison outside the timed region, so sympy/math-verify imports are not
counted; their global caches start cold in every child):

* throughput of segment → label → cluster → prune → correct (traces/s, MB/s), the time per step, and the
  share of the time spent inside the answer checker (every ``compare`` call is timed);
* per teacher (trace file): kept share, median token reduction of the thinking on kept samples
  (1 - corrected/raw, Qwen2 tokens when ``dlcot_dagster.domain.tokens`` is available, else characters),
  and the answer preservation rate on kept samples (must be 100 %).

    python bench/bench_dlcot.py [--policies default,first_correct_only,none] [--limit N] [--only SUBSTR]
    python bench/bench_dlcot.py --policies default --baseline 262848f   # old vs this engine, side by side
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# --baseline runs the same measurement against another checkout of the package (its tree comes first on the path)
CODE = Path(os.environ.get("DLCOT_BENCH_CODE") or REPO)
sys.path.insert(0, str(CODE))


class Timed:
    """Forwarding proxy that accumulates the time spent in one method of a pipeline step."""

    def __init__(self, inner, method: str):
        self.inner = inner
        self.method = method
        self.seconds = 0.0

    def __getattr__(self, name):
        fn = getattr(self.inner, name)
        if name != self.method:
            return fn

        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


def load(only: str, limit: int | None):
    from dlcot_dagster.domain.dlcot.testing import read_trace_file, trace_files

    out = []
    for p in trace_files():
        if only and only not in p.name:
            continue
        recs = read_trace_file(p)
        out.append((p.stem, recs[:limit] if limit else recs))
    return out


def token_counter():
    try:
        from dlcot_dagster.domain.tokens import TokenCounter

        tc = TokenCounter()
        tc.count(["warm up"])
        return tc, "tokens"
    except Exception as exc:  # no tokenizer available: fall back to characters
        print(f"(tokenizer unavailable: {exc!r}; reporting characters)")
        return None, "chars"


def run_policy(policy: str, data, counter):
    from dlcot_dagster.domain.answers import AnswerChecker
    from dlcot_dagster.domain.dlcot import MemoChecker, RulesEngine, SampleStatus

    inner = AnswerChecker()
    inner.compare("1/2", "0.5")  # warm-up: imports, parser tables
    # "1/2" vs "0.5" is settled before math-verify: warm its parser too (about 0.8 s of imports and ANTLR tables
    # that the first symbolic pair would otherwise pay inside the timed region)
    from dlcot_dagster.domain.answers import symbolic

    symbolic.warm_up()
    checker = MemoChecker(inner)
    engine = RulesEngine(policy, checker)
    steps = {
        "segment": Timed(engine.segmenter, "segment"),
        "label": Timed(engine.labeler, "label"),
        "cluster": Timed(engine.clusterer, "cluster"),
        "prune": Timed(engine.pruner, "prune"),
        "rewrite": Timed(engine.rewriter, "rewrite"),
    }
    engine.segmenter, engine.labeler, engine.clusterer = steps["segment"], steps["label"], steps["cluster"]
    engine.pruner, engine.rewriter = steps["prune"], steps["rewrite"]

    results = []
    n = nchars = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    for teacher, recs in data:
        for r in recs:
            results.append((teacher, r, engine.run(r)))
            n += 1
            nchars += len(r.thinking)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0

    print(f"\n=== policy {policy}: {n} traces, {nchars / 1e6:.1f} M chars of thinking")
    print(f"throughput: {n / wall:.1f} traces/s, {nchars / 1e6 / wall:.2f} M chars/s on one core ({wall:.1f} s); "
          f"{n / cpu:.1f} traces per CPU-second ({cpu:.1f} CPU-s: other jobs on the core do not count)")
    print(
        f"answer checking: {checker.seconds:.1f} s = {100 * checker.seconds / wall:.0f} % of the time "
        f"({checker.calls} compare calls, {checker.inner_calls} reached the checker, "
        f"{checker.seconds / max(1, checker.inner_calls) * 1000:.1f} ms each)"
    )
    other = wall - sum(s.seconds for s in steps.values())
    print("per step (incl. checker calls made inside it): " + ", ".join(
        f"{k} {v.seconds:.1f}s" for k, v in steps.items()) + f", final answer + result {other:.1f}s")
    without = wall - checker.seconds
    print(f"without the checker: {n / without:.1f} traces/s")

    # per-teacher reduction and preservation (token counting outside the timed region)
    kept = [(t, r, res) for t, r, res in results if res.status is SampleStatus.KEPT]
    if counter is not None:
        raw = counter.count([r.thinking for _, r, _ in kept])
        cor = counter.count([res.corrected_thinking for _, _, res in kept])
    else:
        raw = [len(r.thinking) for _, r, _ in kept]
        cor = [len(res.corrected_thinking) for _, _, res in kept]
    per: dict = defaultdict(lambda: {"n": 0, "kept": 0, "red": [], "ok": 0, "raw": 0, "cor": 0})
    for t, _, _ in results:
        per[t]["n"] += 1
    for (t, _, res), a, b in zip(kept, raw, cor):
        d = per[t]
        d["kept"] += 1
        d["red"].append(1 - b / a if a else 0.0)
        d["ok"] += res.answer_equivalent is True
        d["raw"] += a
        d["cor"] += b
    return dict(per), n, wall, checker.seconds, cpu


def child(policy: str, only: str, limit: int | None, no_tokens: bool) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    data = load(only, limit)
    counter, _unit = (None, "chars") if no_tokens else token_counter()
    per, n, wall, chk, cpu = run_policy(policy, data, counter)
    print("@@RESULT@@" + json.dumps({"per": per, "n": n, "wall": wall, "chk": chk, "cpu": cpu}))


def baseline_tree(rev: str) -> Path:
    """A detached worktree of ``rev`` under the temp dir (created once), to time the old engine side by side."""
    import tempfile

    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", rev], capture_output=True, text=True,
                         check=True).stdout.strip()
    tree = Path(tempfile.gettempdir()) / f"dlcot-bench-{sha}"
    if not (tree / "dlcot_dagster").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), sha], check=True,
                       capture_output=True)
    return tree


def run_child(policy: str, args, unit: str, code: Path | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", policy, "--only", args.only]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    if args.no_tokens or unit == "chars":
        cmd += ["--no-tokens"]
    env = None
    if code is not None:
        from dlcot_dagster.domain.dlcot.testing import shared_dir

        # the other checkout finds ../shared relative to itself: point it at ours
        env = dict(os.environ, DLCOT_BENCH_CODE=str(code), DLCOT_SHARED_DIR=str(shared_dir()))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    out = [ln for ln in proc.stdout.splitlines() if not ln.startswith("@@RESULT@@")]
    res = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@"))[10:])
    res["out"] = "\n".join(out)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", default="default,first_correct_only,none")
    ap.add_argument("--limit", type=int, default=None, help="at most N traces per file")
    ap.add_argument("--only", default="", help="only files whose name contains this")
    ap.add_argument("--no-tokens", action="store_true", help="report characters instead of tokens")
    ap.add_argument("--baseline", default=None,
                    help="a git revision: time its engine in the same run (alternating, --rounds each) and print "
                         "the ratio of traces per CPU-second")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each engine with --baseline")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.only, args.limit, args.no_tokens)
        return

    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    data = load(args.only, args.limit)
    unit = "chars" if args.no_tokens else ("tokens" if token_counter()[0] is not None else "chars")
    from dlcot_dagster.domain.dlcot import ENGINE_VERSION, engine_code_version

    print(f"engine {ENGINE_VERSION} ({engine_code_version()}), {sum(len(r) for _, r in data)} traces "
          f"in {len(data)} files; reduction unit: {unit}")
    if args.baseline:
        old = baseline_tree(args.baseline)
        policy = args.policies.split(",")[0]
        rates: dict[str, list[float]] = {"baseline": [], "this tree": []}
        for _ in range(args.rounds):
            for name, code in (("baseline", old), ("this tree", None)):
                res = run_child(policy, args, unit, code)
                rates[name].append(res["n"] / res["cpu"])
                print(f"{name:10s} ({args.baseline if code else 'working tree'}): {res['n'] / res['cpu']:.1f} "
                      f"traces per CPU-second ({res['n'] / res['wall']:.1f} traces/s wall)")
        b, t = max(rates["baseline"]), max(rates["this tree"])
        if not b or not t:
            raise SystemExit("a run measured no traces: is ../shared/data/traces there?")
        print(f"\nbest of {args.rounds}: baseline {b:.1f}, this tree {t:.1f} traces per CPU-second: "
              f"this tree runs at {t / b:.2f}x the baseline ({100 * (1 - t / b):+.0f} % slower)")
        return
    summary = {}
    for policy in args.policies.split(","):
        res = run_child(policy, args, unit)
        print(res["out"])
        per, n, wall, chk = res["per"], res["n"], res["wall"], res["chk"]
        summary[policy] = (n, wall, chk)
        print(f"\n{'teacher (file)':48s} {'n':>5s} {'kept':>6s} {'median red.':>11s} {'total red.':>10s} {'answers kept':>12s}")
        all_red, all_ok, all_kept = [], 0, 0
        for t, d in per.items():
            med = statistics.median(d["red"]) if d["red"] else float("nan")
            tot = 1 - d["cor"] / d["raw"] if d["raw"] else float("nan")
            pres = d["ok"] / d["kept"] if d["kept"] else float("nan")
            print(f"{t[:48]:48s} {d['n']:5d} {d['kept'] / d['n']:6.0%} {med:11.1%} {tot:10.1%} {pres:12.0%}")
            all_red += d["red"]
            all_ok += d["ok"]
            all_kept += d["kept"]
        print(f"{'ALL':48s} {n:5d} {all_kept / n:6.0%} {statistics.median(all_red) if all_red else float('nan'):11.1%}"
              f" {'':>10s} {all_ok / all_kept if all_kept else float('nan'):12.0%}")
        if all_kept and all_ok != all_kept:
            print(f"!! answer preservation below 100 % under {policy}: {all_kept - all_ok} kept samples")
    print("\nsummary: " + "; ".join(
        f"{p}: {n / w:.1f} traces/s, checker {100 * c / w:.0f} %" for p, (n, w, c) in summary.items()))


if __name__ == "__main__":
    main()
