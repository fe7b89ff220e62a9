"""Answer-checker plumbing: a memoizing, instrumented wrapper around any checker.

The engine only needs an object with ``compare(gold, pred) -> Verdict``
(``dlcot_dagster.domain.answers.AnswerChecker``). :class:`MemoChecker`
adds a per-instance memo (the same pair is asked many times within a trace:
segment labels, implicit answers, the final answer) and counts calls and
time, which the benchmark uses to report the share of time spent checking,
and counts verdicts that came from a comparison that ran out of time: such a
verdict ("cannot tell") depends on machine load, so a result that used one
is reproducible only up to that timeout (``DLCoTResult.checker_timeouts``).
"""

from __future__ import annotations

import time
from typing import Any


def default_checker() -> Any:
    from dlcot_dagster.domain.answers import AnswerChecker

    return AnswerChecker()


class MemoChecker:
    def __init__(self, inner: Any | None = None, max_entries: int = 200_000):
        self.inner = inner if inner is not None else default_checker()
        self.max_entries = max_entries
        self._memo: dict[tuple[str, str], Any] = {}
        self.calls = 0  # compare() calls received
        self.inner_calls = 0  # calls that reached the inner checker
        self.seconds = 0.0  # time spent inside the inner checker
        self.timeouts = 0  # verdicts used that came from a time-boxed comparison running out of time

    def compare(self, gold: str, pred: str) -> Any:
        self.calls += 1
        key = (gold, pred)
        hit = self._memo.get(key)
        if hit is not None:
            self._note(hit)
            return hit
        t0 = time.perf_counter()
        try:
            verdict = self.inner.compare(gold, pred)
        finally:
            self.seconds += time.perf_counter() - t0
            self.inner_calls += 1
        if len(self._memo) >= self.max_entries:
            self._memo.clear()
        self._memo[key] = verdict
        self._note(verdict)
        return verdict

    def _note(self, verdict: Any) -> None:
        if getattr(verdict, "equivalent", None) is None and "timeout" in str(getattr(verdict, "reason", "")):
            self.timeouts += 1

    def reset_stats(self) -> None:
        self.calls = self.inner_calls = self.timeouts = 0
        self.seconds = 0.0
