"""Answer equivalence (first version: exact fast path + math-verify)."""

from __future__ import annotations

import threading

from .verdict import Verdict

__all__ = ["Verdict", "AnswerChecker", "compare"]


class AnswerChecker:
    def __init__(self, timeout_s: float = 2.0, cache_size: int = 65536, use_cache: bool = True) -> None:
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self.use_cache = use_cache

    def compare(self, gold: str, pred: str) -> Verdict:
        g, p = " ".join(gold.split()), " ".join(pred.split())
        if g and g == p:
            return Verdict(True, "fast:string")
        if threading.current_thread() is not threading.main_thread():
            return Verdict(None, "math_verify:not_main_thread")
        from math_verify import parse, verify

        t = max(1, int(round(self.timeout_s)))
        gp = parse(f"${g}$" if "$" not in g else g, parsing_timeout=t)
        pp = parse(f"${p}$" if "$" not in p else p, parsing_timeout=t)
        if not gp or not pp:
            return Verdict(None, "math_verify:unparsed")
        return Verdict(bool(verify(gp, pp, timeout_seconds=t)), "math_verify")


_DEFAULT: AnswerChecker | None = None


def compare(gold: str, pred: str) -> Verdict:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = AnswerChecker()
    return _DEFAULT.compare(gold, pred)
