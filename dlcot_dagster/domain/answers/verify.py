"""Answer equivalence: cheap exact checks in front of math-verify, an LRU
cache behind it, a hard time box around it.

Order of work in :meth:`AnswerChecker.compare`:

1. cache lookup (key: the exact ``(gold, pred)`` strings);
2. :func:`.sides.prepare` both sides (extract final answers from responses);
3. :func:`.fastpath.fast_compare`: normalised string equality, exact
   rational numbers, choice letters, plain words, lists/sets/tuples/
   intervals/matrices of those;
4. :func:`.guard.hostile_reason` refuses hopeless inputs (cannot tell);
5. math-verify ``parse`` + ``verify`` (``LatexExtractionConfig`` and
   ``ExprExtractionConfig``) under a deadline of ``timeout_s``
   (:mod:`.runner`).

The result is a :class:`Verdict`; ``equivalent=None`` means cannot tell.
"""

from __future__ import annotations

import threading
from typing import Literal

from .cache import CacheInfo, LRUCache
from .fastpath import fast_compare
from .guard import hostile_reason
from .numeric import parse_number
from .prose import fraction_words, is_words_only, prose_core
from .runner import can_use_alarm, default_pool, run_inprocess
from .sides import prepare
from .verdict import Verdict

__all__ = ["Verdict", "AnswerChecker", "compare", "default_checker"]

Isolation = Literal["auto", "subprocess"]


class AnswerChecker:
    """Compare a predicted answer with a reference answer.

    ``timeout_s`` bounds the math-verify stage of one comparison (the fast
    paths in front of it are bounded by input caps and never need it).
    ``isolation`` (keyword-only, an addition to the agreed signature):
    ``"auto"`` runs math-verify in-process under a SIGALRM deadline when
    called from the main thread and in a killable worker subprocess from any
    other thread; ``"subprocess"`` always uses the worker (a hard kill also
    covers work that a signal cannot interrupt, at ~1 ms IPC per call and a
    worker start-up of a few seconds).

    Thread-safe.  Picklable: the cache and any worker handles are not pickled,
    a copy starts with an empty cache.
    """

    def __init__(
        self,
        timeout_s: float = 2.0,
        cache_size: int = 65536,
        use_cache: bool = True,
        *,
        isolation: Isolation = "auto",
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if isolation not in ("auto", "subprocess"):
            raise ValueError(f"unknown isolation {isolation!r}")
        self.timeout_s = float(timeout_s)
        self.cache_size = int(cache_size)
        self.use_cache = bool(use_cache)
        self.isolation = isolation
        self._cache: LRUCache[Verdict] = LRUCache(self.cache_size if self.use_cache else 0)

    # pickling: configuration only
    def __getstate__(self) -> dict:
        return {
            "timeout_s": self.timeout_s,
            "cache_size": self.cache_size,
            "use_cache": self.use_cache,
            "isolation": self.isolation,
        }

    def __setstate__(self, state: dict) -> None:
        self.__init__(  # type: ignore[misc]
            state["timeout_s"], state["cache_size"], state["use_cache"], isolation=state["isolation"]
        )

    def __repr__(self) -> str:
        return (
            f"AnswerChecker(timeout_s={self.timeout_s}, cache_size={self.cache_size}, "
            f"use_cache={self.use_cache}, isolation={self.isolation!r})"
        )

    def cache_info(self) -> CacheInfo:
        """``CacheInfo(hits, misses, maxsize, currsize)``."""
        return self._cache.info()

    def cache_clear(self) -> None:
        self._cache.clear()

    def compare(self, gold: str, pred: str) -> Verdict:
        if not isinstance(gold, str) or not isinstance(pred, str):
            return Verdict(None, "invalid_input:not_a_string")
        if not self.use_cache:
            return self._compare(gold, pred)
        key = (gold, pred)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        verdict = self._compare(gold, pred)
        self._cache.put(key, verdict)
        return verdict

    # ------------------------------------------------------------------
    def _compare(self, gold: str, pred: str) -> Verdict:
        g = prepare(gold)
        p = prepare(pred)
        if g.empty:
            return Verdict(None, "empty_gold")
        if p.empty:
            # nothing predicted against a real reference: not the answer (an empty answer is never equivalent)
            return Verdict(False, "empty_pred")
        if gold.strip() == pred.strip() or g.answer == p.answer:
            return Verdict(True, "fast:identical")
        if g.too_long or p.too_long:
            return Verdict(None, "refused:too_long")
        fast = fast_compare(g.answer, p.answer)
        if fast is not None:
            if fast.equivalent is not False or (g.clean and p.clean):
                return fast
        # an answer wrapped in words ("written as 6 - 5i", "56.0 g of CO consumed", "option B"): its value, when
        # that is the reference; words alone ("Calculating") against a number are not it (see .prose)
        core = prose_core(p.answer)
        if core is not None:
            again = fast_compare(g.answer, core)
            if again is not None and again.equivalent:
                return Verdict(True, "fast:prose_core")
        said = fraction_words(p.answer)  # "one half", "two thirds"
        if said is not None:
            again = fast_compare(g.answer, said)
            if again is not None:
                return Verdict(again.equivalent, "fast:fraction_words")
        if (g.clean and p.clean and is_words_only(p.answer) and parse_number(p.answer) is None
                and parse_number(g.answer) is not None):
            return Verdict(False, "fast:words_vs_number")
        for side in (g.mv, p.mv):
            why = hostile_reason(side)
            if why is not None:
                return Verdict(None, f"refused:{why}")
        equivalent, reason = self._symbolic(g.mv, p.mv)
        return Verdict(equivalent, reason)

    def _symbolic(self, gold: str, pred: str) -> tuple[bool | None, str]:
        memo = self.use_cache
        if self.isolation == "auto" and can_use_alarm():
            return run_inprocess(gold, pred, self.timeout_s, memo)
        return default_pool().run(gold, pred, self.timeout_s, memo)


_DEFAULT: AnswerChecker | None = None
_DEFAULT_LOCK = threading.Lock()


def default_checker() -> AnswerChecker:
    """The module-level checker used by :func:`compare` (one per process)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = AnswerChecker()
    return _DEFAULT


def compare(gold: str, pred: str) -> Verdict:
    """Compare with the module-level default :class:`AnswerChecker`."""
    return default_checker().compare(gold, pred)
