"""Mutation testing of the guards (``make mutate``): do the tests notice when a guard stops guarding?

Two tiers, both configured in ``mutation.toml`` at the repository root:

``always_pass``
    Each entry turns one guard into "always pass" in a scratch copy of the working tree (a blocking check's
    ``passed=`` becomes ``True``, a problems function returns ``[]``, a rejecting branch never fires) and runs
    the entry's tests there. The mutant must be *killed*: at least one test fails. Deterministic, one mutant per
    guard; this is the issue-15 experiment, kept as a habit.

``mutmut``
    `mutmut <https://github.com/boxed/mutmut>`_ 3 (the ``mutate`` extra) generates every small mutant of the
    named functions of one module (operators, constants, conditions, return values, ...) and runs, per mutant,
    only the entry's focused tests that reach the function. Each entry runs in its own work folder
    ``.mutmut/<name>/`` (links to the package and the tests plus a generated ``pyproject.toml``, since mutmut
    reads one test selection per project), in mutmut's fork-server mode (the test stack is not fork-safe after
    it has run: polars / tokenizers thread pools).

Usage::

    python scripts/mutate.py                       # both tiers, every entry not marked slow
    python scripts/mutate.py always-pass [NAME...]  # only the first tier (or the named entries)
    python scripts/mutate.py mutmut [NAME...] [--all] [--max-children 2]

Prints a table per tier and writes ``.mutmut/report.md`` (surviving mutmut mutants with their diffs). Exit
status 1 when an always-pass mutant survives; mutmut survivors are reported, not fatal (some are equivalent
mutants: see the README section "Mutation testing").
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "mutation.toml"
WORK = ROOT / ".mutmut"
PY = sys.executable

# small and deterministic: the tests run on 2 cores next to other jobs
ENV = {
    "HF_HUB_OFFLINE": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "TOKENIZERS_PARALLELISM": "false",
    "POLARS_MAX_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
}


def load_config() -> dict:
    return tomllib.loads(CONFIG.read_text())


def shared_dir() -> str:
    return os.environ.get("DLCOT_SHARED_DIR") or str((ROOT.parent / "shared").resolve())


def run_env(pythonpath: Path) -> dict:
    env = {**os.environ, **ENV, "DLCOT_SHARED_DIR": shared_dir(), "PYTHONPATH": str(pythonpath)}
    env.pop("MUTANT_UNDER_TEST", None)
    return env


# ------------------------------------------------------------------------------------------ always pass


def _function_node(tree: ast.Module, qualname: str) -> ast.FunctionDef:
    parts = qualname.split(".")
    body = tree.body
    node = None
    for part in parts:
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part), None)
        if node is None:
            raise SystemExit(f"mutation.toml: no {qualname!r}")
        body = node.body
    assert isinstance(node, ast.FunctionDef), qualname
    return node


def _check_passed_node(tree: ast.Module, check: str) -> ast.expr:
    """The ``passed=`` value of the one ``AssetCheckResult(check_name=<check>, ...)`` call in the module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "AssetCheckResult":
            kw = {k.arg: k.value for k in node.keywords}
            name = kw.get("check_name")
            if isinstance(name, ast.Name) and name.id == check and "passed" in kw:
                found.append(kw["passed"])
    if len(found) != 1:
        raise SystemExit(f"mutation.toml: {len(found)} AssetCheckResult(check_name={check}) calls, expected 1")
    return found[0]


def _replace_span(src: str, node: ast.AST, text: str) -> str:
    lines = src.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    a = starts[node.lineno - 1] + node.col_offset
    b = starts[node.end_lineno - 1] + node.end_col_offset
    return src[:a] + text + src[b:]


def always_pass_source(src: str, entry: dict) -> str:
    """The module source with the entry's guard turned into "always pass"."""
    tree = ast.parse(src)
    if "check" in entry:
        return _replace_span(src, _check_passed_node(tree, entry["check"]), "True")
    if "function" in entry:
        fn = _function_node(tree, entry["function"])
        first = fn.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            first = fn.body[1] if len(fn.body) > 1 else first  # after the docstring
        lines = src.splitlines(keepends=True)
        indent = " " * first.col_offset
        lines.insert(first.lineno - 1, f"{indent}return {entry['returns']}  # mutant: always pass\n")
        return "".join(lines)
    find, repl = entry["find"], entry["replace"]
    if src.count(find) != 1:
        raise SystemExit(f"mutation.toml: {entry['name']}: find text occurs {src.count(find)} times, expected 1")
    return src.replace(find, repl)


def scratch_copy() -> Path:
    """A copy of the working tree as git sees it (tracked + untracked, not ignored) under a temp folder."""
    dest = Path(tempfile.mkdtemp(prefix="dlcot-always-pass-"))
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for f in filter(None, files):
        src = ROOT / f.decode()
        if src.is_file():
            (dest / f.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f.decode())
    return dest


def run_always_pass(entries: list[dict], names: list[str], include_slow: bool) -> list[dict]:
    if names:
        chosen = [e for e in entries if e["name"] in names]
    else:
        chosen = [e for e in entries if include_slow or not e.get("slow")]
    scratch = scratch_copy()
    results = []
    try:
        for e in chosen:
            path = scratch / e["path"]
            original = path.read_text()
            path.write_text(always_pass_source(original, e))
            t0 = time.perf_counter()
            cmd = [PY, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header", *e["tests"]]
            proc = subprocess.run(cmd, cwd=scratch, env=run_env(scratch), capture_output=True, text=True)
            path.write_text(original)
            secs = time.perf_counter() - t0
            status = {0: "SURVIVED", 1: "killed"}.get(proc.returncode, f"error (pytest exit {proc.returncode})")
            failed = [ln.split(" ", 1)[1].split(" - ")[0] for ln in proc.stdout.splitlines() if ln.startswith(("FAILED ", "ERROR "))]
            results.append({"name": e["name"], "status": status, "seconds": round(secs, 1), "by": failed[:1]})
            print(f"  {e['name']:<40} {status:<9} {secs:6.1f}s  {failed[0] if failed else ''}", flush=True)
            if status.startswith("error"):
                print(proc.stdout[-3000:] + proc.stderr[-2000:])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return results


# ------------------------------------------------------------------------------------------ mutmut


def mangled(module: str, function: str) -> str:
    """mutmut 3's mutant-name glob of a function or ``Class.method`` of ``module``."""
    if "." in function:
        cls, meth = function.split(".", 1)
        return f"{module}.x\u01c1{cls}\u01c1{meth}__mutmut_*"
    return f"{module}.x_{function}__mutmut_*"


def module_of(path: str) -> str:
    return path[:-3].replace("/", ".")


def prepare_workdir(entry: dict) -> Path:
    work = WORK / entry["name"]
    if work.exists():
        shutil.rmtree(work)  # mutmut never refreshes copies of unmutated files: start fresh every run
    work.mkdir(parents=True)
    for link in ("dlcot_dagster", "dlcot_dagster_tests"):
        (work / link).symlink_to(ROOT / link)
    paths = entry["paths"] if "paths" in entry else [entry["path"]]
    pytest_ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    lines = [
        "[tool.mutmut]",
        'source_paths = ["dlcot_dagster"]',
        f"only_mutate = {json.dumps(paths)}",
        'also_copy = ["dlcot_dagster_tests"]',
        # fork-server mode: workers fork from a process that has only collected the tests, never run them
        'process_isolation = "forkserver"',
        'forkserver_warmup = "collect"',
        # generous: a test run loads Dagster, polars and great-expectations, and the cores are shared
        f"timeout_constant = {float(entry.get('timeout_s', 60))}",
        "timeout_multiplier = 5.0",
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "--no-header"]',
        f"pytest_add_cli_args_test_selection = {json.dumps(entry['tests'])}",
        "use_git_change_detection = false",
        "",
        "[tool.pytest.ini_options]",
        f"testpaths = {json.dumps(pytest_ini.get('testpaths', []))}",
        f"markers = {json.dumps(pytest_ini.get('markers', []))}",
        "",
    ]
    (work / "pyproject.toml").write_text("\n".join(lines))
    return work


def mutmut_results(work: Path, entry: dict) -> dict[str, dict[str, str]]:
    """{function: {mutant name: status}} from mutmut's .meta files."""
    from mutmut.stats import status_by_exit_code

    out: dict[str, dict[str, str]] = {}
    paths = entry["paths"] if "paths" in entry else [entry["path"]]
    for path in paths:
        meta = work / "mutants" / f"{path}.meta"
        if not meta.is_file():
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for fn in entry["functions"]:
            prefix = mangled(module_of(path), fn)[: -len("*")]
            for name, code in codes.items():
                if name.startswith(prefix):
                    out.setdefault(fn, {})[name] = status_by_exit_code[code]
    return out


def run_mutmut(entries: list[dict], names: list[str], include_slow: bool, max_children: int) -> list[dict]:
    if names:
        chosen = [e for e in entries if e["name"] in names]
    else:
        chosen = [e for e in entries if include_slow or not e.get("slow")]
    mutmut = Path(PY).parent / "mutmut"
    if not mutmut.is_file():
        raise SystemExit("mutmut is not installed: pip install -e '.[mutate]'")
    report = []
    for e in chosen:
        work = prepare_workdir(e)
        paths = e["paths"] if "paths" in e else [e["path"]]
        globs = [mangled(module_of(p), fn) for p in paths for fn in e["functions"]]
        t0 = time.perf_counter()
        print(f"\n[{e['name']}] mutmut over {', '.join(paths)}: {', '.join(e['functions'])}", flush=True)
        with open(work / "mutmut.log", "wb") as log:
            proc = subprocess.run([str(mutmut), "run", "--max-children", str(max_children), *globs], cwd=work,
                                  env=run_env(work), stdout=log, stderr=subprocess.STDOUT)
        secs = time.perf_counter() - t0
        res = mutmut_results(work, e)
        if proc.returncode != 0 or not res:
            tail = (work / "mutmut.log").read_bytes()[-3000:].decode(errors="replace")
            print(f"  mutmut exited {proc.returncode}; see {work / 'mutmut.log'}\n{tail}")
        for fn, by_name in res.items():
            c = Counter(by_name.values())
            survivors = sorted((n for n, s in by_name.items() if s != "killed"), key=lambda n: int(n.rsplit("_", 1)[1]))
            report.append({"entry": e["name"], "function": fn, "total": len(by_name), "killed": c["killed"],
                           "other": {k: v for k, v in c.items() if k != "killed"}, "survivors": survivors,
                           "work": str(work), "seconds": round(secs, 1)})
            print(f"  {fn:<38} {c['killed']:>4}/{len(by_name):<4} killed  {dict(c)}", flush=True)
        print(f"  ({secs:.0f} s)", flush=True)
    return report


def write_report(always: list[dict], mm: list[dict]) -> Path:
    WORK.mkdir(exist_ok=True)
    out = ["# Mutation testing of the guards", ""]
    if always:
        out += ["## Always pass", "", "| guard | result | seconds | killed by |", "|---|---|---|---|"]
        out += [f"| {r['name']} | {r['status']} | {r['seconds']} | {' '.join(r['by'])} |" for r in always]
        out.append("")
    if mm:
        mutmut = str(Path(PY).parent / "mutmut")
        out += ["## mutmut", "", "| entry | function | killed / total | not killed |", "|---|---|---|---|"]
        out += [f"| {r['entry']} | {r['function']} | {r['killed']} / {r['total']} | {r['other'] or ''} |" for r in mm]
        out += ["", "### Mutants not killed", ""]
        for r in mm:
            for name in r["survivors"]:
                diff = subprocess.run([mutmut, "show", name], cwd=r["work"], capture_output=True, text=True).stdout
                out += [f"```diff\n{diff.strip()}\n```", ""]
    path = WORK / "report.md"
    path.write_text("\n".join(out))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tier", nargs="?", choices=["all", "always-pass", "mutmut"], default="all")
    ap.add_argument("names", nargs="*", help="only these entries of mutation.toml")
    ap.add_argument("--all", action="store_true", help="also the entries marked slow")
    ap.add_argument("--max-children", type=int, default=2, help="mutmut workers (default 2)")
    args = ap.parse_args(argv)
    cfg = load_config()
    t0 = time.perf_counter()
    always, mm = [], []
    if args.tier in ("all", "always-pass"):
        print("always-pass mutants (each must be killed):", flush=True)
        always = run_always_pass(cfg["always_pass"], args.names, args.all)
    if args.tier in ("all", "mutmut"):
        mm = run_mutmut(cfg["mutmut"], args.names, args.all, args.max_children)
    path = write_report(always, mm)
    survived = [r["name"] for r in always if r["status"] != "killed"]
    total = time.perf_counter() - t0
    if always:
        print(f"\nalways-pass: {len(always) - len(survived)}/{len(always)} killed" + (f"; NOT killed: {survived}" if survived else ""))
    if mm:
        k, n = sum(r["killed"] for r in mm), sum(r["total"] for r in mm)
        print(f"mutmut: {k}/{n} killed; survivors with diffs in {path}")
    print(f"total {total / 60:.1f} min")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
