"""Per-record time budgets: nestable deadlines on one SIGALRM timer.

Every trace is untrusted model output, so each record's work (normalization
at ingestion, each DLCoT stage) runs under a time budget; a record that
overruns becomes a reject / drop with reason ``timeout`` and the others go on.

How it works
------------
* **Main thread** (where SIGALRM can be used): every :func:`deadline` pushes an
  entry on one module-level stack and (re)arms a single ``ITIMER_REAL`` timer
  for the *earliest* pending expiry.  The handler looks at the whole stack and
  raises the exception of the **outermost** entry that has expired, so an
  inner deadline (the answer checker's 2 s box,
  :func:`dlcot_dagster.domain.answers.runner.alarm_deadline`) can neither cancel
  nor outlive an outer one (the record budget): when both have passed, the
  record's :class:`RecordTimeout` is what surfaces, not the checker's
  ``DeadlineExceeded``.  Leaving a deadline re-arms the timer for what is left
  of the enclosing ones; leaving the last one restores whatever SIGALRM handler
  and timer were there before.  Entries that have fired are never fired again
  while the stack unwinds.
* **Other threads** (no SIGALRM there): the deadline is *cooperative*.  Nothing
  interrupts the work; :func:`check` raises once the budget has passed, and a
  deadline left after its expiry raises on exit, so an overrunning record is
  still reported as ``timeout``, only late.  Worker processes of a process pool
  run their tasks in their own main thread, so the alarm works there.

The exceptions raised are :class:`BaseException` subclasses on purpose:
``except Exception`` blocks in the code under a budget (sympy, math-verify,
our own fallbacks) cannot swallow them.

Nothing here imports dagster.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator

__all__ = [
    "DEFAULT_RECORD_BUDGET_S",
    "RecordTimeout",
    "TIMEOUT_REASON",
    "can_use_alarm",
    "check",
    "deadline",
    "paused",
    "record_budget",
]

#: default per-record time budget in seconds (``None`` or ``0`` switch the budget off)
DEFAULT_RECORD_BUDGET_S: float | None = 10.0
#: the reject / drop reason of a record that ran past its budget
TIMEOUT_REASON = "timeout"


class RecordTimeout(BaseException):
    """A record ran past its time budget (a BaseException, so ``except Exception`` cannot swallow it)."""

    def __init__(self, seconds: float | None = None):
        super().__init__(f"record ran past its {seconds:g} s budget" if seconds else "record ran past its budget")
        self.seconds = seconds


def can_use_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@dataclass(eq=False)
class _Entry:
    expires: float
    make: Callable[[], BaseException]
    fired: bool = False
    paused: int = 0  # > 0 while inside paused(): its clock is stopped


# main thread: the alarm stack, outermost first, and what was there before the first entry
_stack: list[_Entry] = []
_saved: tuple | None = None  # (handler, (delay, interval), monotonic time when saved)
# other threads: cooperative stacks
_local = threading.local()

_HAS_SIGMASK = hasattr(signal, "pthread_sigmask")


def _block():
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM}) if _HAS_SIGMASK else None


def _unblock(mask) -> None:
    if _HAS_SIGMASK and mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def _arm() -> None:
    pending = [e.expires for e in _stack if not e.fired and not e.paused]
    if pending:
        signal.setitimer(signal.ITIMER_REAL, max(0.001, min(pending) - time.monotonic()))
    else:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _on_alarm(signum, frame) -> None:  # noqa: ARG001
    now = time.monotonic()
    for i, e in enumerate(_stack):  # outermost first: an expired outer deadline wins
        if not e.fired and not e.paused and e.expires <= now:
            for inner in _stack[i:]:  # it and everything nested in it unwind together
                inner.fired = True
            _arm()  # the enclosing deadlines still count
            raise e.make()
    _arm()  # early or spurious wake-up: sleep again until the next expiry


def _reset_after_fork() -> None:
    global _saved
    _stack.clear()
    _saved = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


@contextmanager
def _alarm(seconds: float, make: Callable[[], BaseException]) -> Iterator[None]:
    global _saved
    entry = _Entry(time.monotonic() + max(0.001, seconds), make)
    depth = len(_stack)
    mask = _block()
    try:
        if depth == 0:
            _saved = (signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL), time.monotonic())
            signal.signal(signal.SIGALRM, _on_alarm)
        _stack.append(entry)
        _arm()
        _unblock(mask)
        mask = None
        yield
    finally:
        entry.fired = True  # first: it must not fire while it is being taken down
        if mask is None:
            mask = _block()
        try:
            del _stack[depth:]  # also drops an inner entry whose own clean-up was cut short
            if _stack:
                _arm()
            else:
                signal.setitimer(signal.ITIMER_REAL, 0)
                saved, _saved = _saved, None
                if saved is not None:
                    handler, (delay, interval), t0 = saved
                    signal.signal(signal.SIGALRM, handler if handler is not None else signal.SIG_DFL)
                    if delay > 0:
                        signal.setitimer(signal.ITIMER_REAL, max(0.001, delay - (time.monotonic() - t0)), interval)
        finally:
            _unblock(mask)


def _coop_stack() -> list[_Entry]:
    st = getattr(_local, "stack", None)
    if st is None:
        st = _local.stack = []
    return st


@contextmanager
def _cooperative(seconds: float, make: Callable[[], BaseException]) -> Iterator[None]:
    st = _coop_stack()
    entry = _Entry(time.monotonic() + max(0.001, seconds), make)
    depth = len(st)
    st.append(entry)
    try:
        yield
    finally:
        del st[depth:]
    # reached only when the body finished normally: a record that overran is still a timeout
    if not entry.fired and time.monotonic() >= entry.expires:
        entry.fired = True
        raise make()


def deadline(seconds: float, exc: type[BaseException] | Callable[[], BaseException]) -> ContextManager[None]:
    """Raise ``exc()`` if the block runs longer than ``seconds``; nestable.

    In the main thread a SIGALRM interrupts the block (see the module
    docstring for nesting); in any other thread the deadline is cooperative:
    :func:`check` raises once it has passed, and so does leaving the block.
    """
    if can_use_alarm():
        return _alarm(seconds, exc)
    return _cooperative(seconds, exc)


def check() -> None:
    """Cooperative check point: raise the exception of the outermost expired deadline.

    Only needed off the main thread (the alarm interrupts by itself there);
    cheap enough for a loop.
    """
    if can_use_alarm():
        return
    now = time.monotonic()
    for i, e in enumerate(getattr(_local, "stack", None) or ()):
        if not e.fired and e.expires <= now:
            for inner in _local.stack[i:]:
                inner.fired = True
            raise e.make()


def record_budget(seconds: float | None) -> ContextManager[None]:
    """The per-record budget: :class:`RecordTimeout` after ``seconds``; ``None`` or ``<= 0`` switch it off."""
    if not seconds or seconds <= 0:
        return nullcontext()
    return deadline(seconds, lambda: RecordTimeout(seconds))


@contextmanager
def paused() -> Iterator[None]:
    """Stop the clocks of the enclosing main-thread deadlines while the block runs.

    For one-off per-process costs that no record should be charged for (e.g.
    importing and warming up math-verify inside the first record that needs
    it).  Off the main thread, or with no deadline active, it does nothing.
    """
    if not _stack or not can_use_alarm():
        yield
        return
    mask = _block()
    try:
        held = list(_stack)
        for e in held:
            e.paused += 1
        t0 = time.monotonic()
        _arm()  # deadlines entered inside the block still run
    finally:
        _unblock(mask)
    try:
        yield
    finally:
        mask = _block()
        try:
            dt = time.monotonic() - t0
            for e in held:
                e.paused -= 1
                e.expires += dt
            if _stack:
                _arm()
        finally:
            _unblock(mask)
