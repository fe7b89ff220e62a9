"""Time-boxed execution of the math-verify stage.

math-verify times out with ``signal.alarm``, which only works in the main
thread.  We therefore switch its timeouts off and bound time ourselves:

* main thread: one ``setitimer`` alarm around parse + verify that raises a
  ``BaseException`` subclass (so no ``except Exception`` inside sympy or
  math-verify can swallow it); it nests inside an enclosing per-record
  budget (:mod:`dlcot_dagster.domain.budget`), which keeps counting and wins
  when it expires first;
* any other thread (or ``isolation="subprocess"``): a small pool of
  persistent worker subprocesses (``python -m
  dlcot_dagster.domain.answers._worker``), fed one JSON line per pair.  The
  parent waits with ``select`` until a hard deadline; a worker that overruns
  is killed (SIGKILL) and respawned on the next request.  Inside the worker
  the same alarm runs as a soft deadline, and its address space is capped.

Only the rare pairs that the fast path cannot decide come here.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

from ..budget import deadline as _budget_deadline
from ..budget import paused
from .symbolic import is_warm, mv_compare, warm_up

__all__ = [
    "DeadlineExceeded",
    "alarm_deadline",
    "can_use_alarm",
    "run_inprocess",
    "WorkerPool",
    "default_pool",
]

#: extra time the parent gives a worker beyond the soft deadline
HARD_GRACE_S = 1.0
#: how long a fresh worker may take to import sympy/math-verify
STARTUP_TIMEOUT_S = 120.0


class DeadlineExceeded(BaseException):
    """Raised by the alarm handler; a BaseException on purpose."""


def can_use_alarm() -> bool:
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )


def alarm_deadline(seconds: float):
    """Raise :class:`DeadlineExceeded` in the main thread after ``seconds``.

    One entry on the shared, nestable alarm stack of :mod:`dlcot_dagster.domain.budget`:
    an enclosing deadline (a per-record budget) keeps counting while this one is
    armed, and if it expires first (or at the same time) its own exception
    surfaces instead of ``DeadlineExceeded``.  Restores any previous SIGALRM
    handler and re-arms a previous timer when the last deadline is left."""
    if not can_use_alarm():
        raise RuntimeError("alarm_deadline needs the main thread (SIGALRM)")
    return _budget_deadline(seconds, DeadlineExceeded)


def run_inprocess(gold: str, pred: str, timeout_s: float, memo: bool = False) -> tuple[bool | None, str]:
    """math-verify under an alarm deadline; main thread only.  The first call
    in a process warms math-verify up outside the deadline, and outside any
    enclosing record budget (their clocks are paused: the import is a per-process
    cost, not the record's)."""
    if not is_warm():
        try:
            with paused():
                warm_up()
        except Exception:
            pass
    try:
        with alarm_deadline(timeout_s):
            return mv_compare(gold, pred, memo)
    except DeadlineExceeded:
        return None, "math_verify:timeout"
    except RecursionError:
        return None, "math_verify:recursion"
    except MemoryError:
        return None, "math_verify:memory"
    except Exception as exc:  # math-verify is not supposed to raise, but be safe
        return None, f"math_verify:error:{type(exc).__name__}"


# --------------------------------------------------------------------------
# worker subprocesses


class _WorkerGone(Exception):
    pass


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONHASHSEED", "0")
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "dlcot_dagster.domain.answers._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,
            close_fds=True,
            env=env,
        )
        self._buf = b""
        self._seq = 0
        line = self._readline(time.monotonic() + STARTUP_TIMEOUT_S)
        if line is None or json.loads(line).get("ready") is not True:
            self.kill()
            raise _WorkerGone("worker did not start")

    def _readline(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise _WorkerGone("worker closed its output")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def request(self, gold: str, pred: str, timeout_s: float, memo: bool) -> tuple[bool | None, str]:
        self._seq += 1
        msg = json.dumps({"id": self._seq, "gold": gold, "pred": pred, "timeout_s": timeout_s, "memo": memo})
        try:
            self.proc.stdin.write(msg.encode() + b"\n")  # type: ignore[union-attr]
        except (BrokenPipeError, OSError) as exc:
            raise _WorkerGone(str(exc)) from exc
        line = self._readline(time.monotonic() + timeout_s + HARD_GRACE_S)
        if line is None:
            raise TimeoutError
        reply = json.loads(line)
        if reply.get("id") != self._seq:
            raise _WorkerGone("out of step")
        return reply["equivalent"], reply["reason"]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except Exception:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except Exception:
                pass


class WorkerPool:
    """Up to ``size`` lazily started worker subprocesses shared by threads."""

    def __init__(self, size: int = 2) -> None:
        self.size = max(1, size)
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._pid = os.getpid()
        self.spawned = 0
        self.killed = 0

    def _acquire(self) -> _Worker:
        with self._cond:
            while True:
                while self._idle:
                    w = self._idle.pop()
                    if w.alive():
                        return w
                    self._count -= 1
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            w = _Worker()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise
        self.spawned += 1
        return w

    def _release(self, w: _Worker | None) -> None:
        with self._cond:
            if w is not None and w.alive():
                self._idle.append(w)
            else:
                self._count -= 1
            self._cond.notify()

    def run(self, gold: str, pred: str, timeout_s: float, memo: bool = False) -> tuple[bool | None, str]:
        try:
            w = self._acquire()
        except _WorkerGone:
            return None, "math_verify:worker_failed"
        try:
            result = w.request(gold, pred, timeout_s, memo)
        except TimeoutError:
            w.kill()
            self.killed += 1
            self._release(None)
            return None, "math_verify:timeout"
        except (_WorkerGone, ValueError, OSError):
            w.kill()
            self.killed += 1
            self._release(None)
            return None, "math_verify:worker_failed"
        self._release(w)
        return result

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for w in idle:
            w.kill()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def default_pool() -> WorkerPool:
    """The process-wide pool (re-created after ``fork``)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._pid != os.getpid():
            _POOL = WorkerPool(size=min(4, max(1, (os.cpu_count() or 2))))
        return _POOL


@atexit.register
def _close_pool() -> None:
    pool = _POOL
    if pool is not None and pool._pid == os.getpid():
        pool.close()
