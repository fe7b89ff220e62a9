"""Hostile inputs finish quickly; threads and processes give the same verdicts
as the main thread."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dlcot_dagster.domain.answers import AnswerChecker, compare
from dlcot_dagster.domain.answers.guard import hostile_reason
from dlcot_dagster.domain.answers.runner import WorkerPool

BOUND_S = 10.0  # generous: a correctness bound, not a benchmark

HOSTILE = {
    "power tower": ("5", "9^{9^{9^{9}}}"),
    "power tower as gold": ("9^{9^{9^{9}}}", "5"),
    "nested factorial": ("5", "10!!!!!!"),
    "division by zero": ("5", "\\frac{1}{0}"),
    "division by zero both": ("\\frac{1}{0}", "\\frac{2}{0}"),
    "1 MB of digits": ("5", "1" * 1_000_000),
    "1 MB expression": ("5", "x+" * 500_000 + "x"),
    "10k nested unterminated boxed": ("5", "\\boxed{" * 10_000),
    "10k nested parentheses": ("5", "(" * 10_000 + "5" + ")" * 10_000),
    "huge power": ("5", "2^{10000000}"),
    "huge factorial": ("5", "100000!"),
    "parenthesised power tower": ("5", "(9^9)^{(9^9)}"),
    "expression tower in prose": ("5", "the answer is 9**9**9**9"),
    "deep sqrt": ("2", "\\sqrt{" * 300 + "2" + "}" * 300),
    "1 MB of boxes": ("5", "\\boxed{5}" * 120_000),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_inputs_finish_with_a_verdict(name):
    gold, pred = HOSTILE[name]
    checker = AnswerChecker(timeout_s=2.0, use_cache=False)
    t0 = time.perf_counter()
    v = checker.compare(gold, pred)
    dt = time.perf_counter() - t0
    assert dt < BOUND_S, (name, dt, v)
    assert v.equivalent in (True, False, None) and v.reason
    if name != "1 MB of boxes":  # every box says 5: that one is a real answer
        assert v.equivalent is not True, (name, v)


@pytest.mark.parametrize(
    "name",
    ["power tower", "nested factorial", "division by zero", "1 MB of digits", "10k nested parentheses", "huge power"],
)
def test_hostile_inputs_are_cannot_tell(name):
    gold, pred = HOSTILE[name]
    assert compare(gold, pred).equivalent is None


def test_guard_reasons():
    assert hostile_reason("9^{9^{9^{9}}}") == "power_tower"
    assert hostile_reason("10!!!!!!") == "nested_factorial"
    assert hostile_reason("2^{10000000}") == "huge_power"
    assert hostile_reason("(" * 100 + ")" * 100) == "too_deeply_nested"
    assert hostile_reason("1" * 10_000) is not None
    assert hostile_reason("2^{10} + 3!") is None
    assert hostile_reason("\\frac{x^2+1}{\\sqrt{3}}") is None


def test_timeout_is_enforced_in_main_thread_and_in_worker():
    """A pair that passes the guard but makes sympy work too long is cut at
    the deadline, in-process (alarm) and in a worker subprocess (kill)."""
    gold, pred = "5", "(9^9)^{(9^9)}"
    for isolation in ("auto", "subprocess"):
        checker = AnswerChecker(timeout_s=1.0, use_cache=False, isolation=isolation)
        t0 = time.perf_counter()
        v = checker.compare(gold, pred)
        dt = time.perf_counter() - t0
        assert v.equivalent is None and "timeout" in v.reason, (isolation, v)
        assert dt < 1.0 + 6.0, (isolation, dt)


def test_soft_deadline_inside_worker_keeps_it_alive():
    pool = WorkerPool(size=1)
    try:
        eq, reason = pool.run("\\boxed{(9^9)^{(9^9)}}", "\\boxed{5}", 0.5)
        assert eq is None and "timeout" in reason
        eq, reason = pool.run("\\boxed{\\binom{5}{2}}", "\\boxed{10}", 5.0)
        assert eq is True, reason
        assert (pool.spawned, pool.killed) == (1, 0)
    finally:
        pool.close()


def test_unresponsive_worker_is_killed_and_respawned():
    """A worker that does not answer (here: stopped with SIGSTOP, as if stuck
    in C code where no signal handler runs) is killed at the hard deadline and
    a fresh one serves the next request."""
    pool = WorkerPool(size=1)
    try:
        assert pool.run("\\boxed{1}", "\\boxed{1}", 5.0)[0] is True
        (worker,) = pool._idle
        os.kill(worker.proc.pid, signal.SIGSTOP)
        t0 = time.perf_counter()
        eq, reason = pool.run("\\boxed{\\binom{5}{2}}", "\\boxed{10}", 0.5)
        dt = time.perf_counter() - t0
        assert eq is None and "timeout" in reason
        assert dt < 0.5 + 1.0 + 1.0
        assert worker.proc.poll() is not None  # gone
        eq, reason = pool.run("\\boxed{\\binom{5}{2}}", "\\boxed{10}", 5.0)
        assert eq is True, reason
        assert (pool.spawned, pool.killed) == (2, 1)
    finally:
        pool.close()


# ------------------------------------------------------------------ threads / processes
# pairs chosen so that part of them needs math-verify (not decided by the fast path)
PAIRS = [
    ("25", "025"),
    ("\\frac{1}{2}", "0.5"),
    ("x^2+2x+1", "(x+1)^2"),
    ("B", "(C)"),
    ("\\log_2 8", "3"),
    ("|x-1|", "|1-x|"),
    ("\\binom{x}{2}", "x(x-1)/2"),
    ("\\lfloor 2.5 \\rfloor", "2"),
    ("\\sum_{k=1}^{3} k", "6"),
    ("x \\in [-2,7]", "-2 \\le x \\le 7"),
    ("\\{1\\pm\\sqrt{5},-2\\}", "\\{-2, 1+\\sqrt5, 1-\\sqrt5\\}"),
    ("|x|", "x"),
    ("5", "9^{9^{9^{9}}}"),
    ("\\frac{1}{0}", "1"),
]


def _main_thread_verdicts() -> list:
    checker = AnswerChecker(use_cache=False)
    return [checker.compare(g, p) for g, p in PAIRS]


def test_pairs_exercise_math_verify():
    reasons = [v.reason for v in _main_thread_verdicts()]
    assert sum(r.startswith("math_verify") for r in reasons) >= 4, reasons


def test_threads_match_main_thread():
    expected = _main_thread_verdicts()
    checker = AnswerChecker(use_cache=True)
    seen_threads = set()

    def run(pair):
        seen_threads.add(threading.current_thread().name)
        return checker.compare(*pair)

    with ThreadPoolExecutor(max_workers=4) as ex:
        got = list(ex.map(run, PAIRS * 3))
    assert threading.main_thread().name not in seen_threads
    assert [v.equivalent for v in got] == [v.equivalent for v in expected] * 3
    # math-verify pairs ran in worker subprocesses, not in-process
    assert any(v.reason.startswith("math_verify") for v in got)


def _compare_default(pair):
    return compare(*pair).equivalent


def _compare_with(args):
    checker, pair = args
    return checker.compare(*pair).equivalent


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_pool_matches_main_thread(method):
    expected = [v.equivalent for v in _main_thread_verdicts()]
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(2) as pool:
        got_default = pool.map(_compare_default, PAIRS)
        sub = AnswerChecker(timeout_s=2.0, isolation="subprocess")
        got_pickled = pool.map(_compare_with, [(sub, p) for p in PAIRS])
    assert got_default == expected
    assert got_pickled == expected
