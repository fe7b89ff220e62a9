"""Release one shared vLLM engine (a student checkpoint's) without forgetting the others."""

from __future__ import annotations

import gc

# In-process vLLM keeps its distributed (model-parallel) state process-wide, and tearing down one engine tears that
# state down for every engine still alive in the process. An engine released while others are alive is therefore
# parked here instead of destroyed; it is freed with the process. With no other engine alive it is freed at once.
_PARKED: list = []


def release_engine(args) -> None:
    """Drop the process-wide engine of ``args`` (a ``VLLMEngineArgs``) so its memory can be freed."""
    from ..llm.client import _ENGINES, _ENGINES_LOCK

    with _ENGINES_LOCK:
        engine = _ENGINES.pop(args, None)
        others_alive = bool(_ENGINES)
    if engine is not None and others_alive:
        _PARKED.append(engine)
        return
    del engine
    gc.collect()


def engine_alive(args) -> bool:
    """Whether the process already holds an engine for ``args`` (a ``VLLMEngineArgs``): one another asset or a
    caller started and still uses, which a step that only borrows it must not release."""
    from ..llm.client import _ENGINES, _ENGINES_LOCK

    with _ENGINES_LOCK:
        return args in _ENGINES
