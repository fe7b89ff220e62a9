"""The terminal for progress and results, a log file for everything the libraries print.

``dlcot demo`` loads vLLM, trains with TRL and runs Dagster: together they print a thousand lines of weight loading,
progress bars, deprecation warnings and trainer logs. :func:`libraries_to_log` points the process's own stdout and
stderr (file descriptors 1 and 2, so C extensions, child processes and every Python logging handler follow) at a log
file, and hands the caller a :class:`Console` that still writes to the terminal. :class:`Step` prints one short
progress line per step; on a terminal it ticks the elapsed seconds in place while the step runs.

Plain Python: no dagster import.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator


@dataclass
class Console:
    out: IO[str]  # the terminal's stdout
    err: IO[str]  # the terminal's stderr
    log_path: Path | None  # where library output goes (None: nothing redirected)

    def print(self, *args, err: bool = False, **kw) -> None:
        print(*args, file=self.err if err else self.out, flush=True, **kw)


@contextmanager
def libraries_to_log(log_path: str | Path) -> Iterator[Console]:
    """Redirect file descriptors 1 and 2 to ``log_path`` (appending) for the duration; yield the terminal."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    out = os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8", errors="replace")
    err = os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        yield Console(out, err, log_path)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, log_fd):
            os.close(fd)
        out.close()
        err.close()


class Step:
    """``[i/n] label ... ok in 12.3s``: one line per step; on a terminal the elapsed time ticks while it runs."""

    def __init__(self, console: Console, label: str, tick_s: float = 1.0):
        self.console = console
        self.label = label
        self.tick_s = tick_s
        self.t0 = time.perf_counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live = bool(getattr(console.out, "isatty", lambda: False)())

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.t0

    def __enter__(self) -> "Step":
        self.t0 = time.perf_counter()
        self.console.out.write(f"{self.label} ...")
        self.console.out.flush()
        if self._live:
            self._thread = threading.Thread(target=self._tick, name="dlcot-progress", daemon=True)
            self._thread.start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.console.out.write(f"\r{self.label} ... {self.seconds:.0f}s")
            self.console.out.flush()

    def _halt(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def done(self, ok: bool, detail: str = "") -> None:
        self._halt()
        status = "ok" if ok else "FAILED"
        lead = f"\r{self.label} ..." if self._live else ""
        self.console.out.write(f"{lead} {status} in {self.seconds:.1f}s{(' ' + detail) if detail else ''}\n")
        self.console.out.flush()

    def __exit__(self, exc_type, *_exc) -> None:
        self._halt()
        if exc_type is not None:
            self.console.out.write(" interrupted\n" if exc_type is KeyboardInterrupt else " error\n")
            self.console.out.flush()
