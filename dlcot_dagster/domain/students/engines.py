"""Release one shared vLLM engine (a student checkpoint's) without forgetting the others."""

from __future__ import annotations

import gc


def release_engine(args) -> None:
    """Drop the process-wide engine of ``args`` (a ``VLLMEngineArgs``) so its memory can be freed."""
    from ..llm.client import _ENGINES, _ENGINES_LOCK

    with _ENGINES_LOCK:
        _ENGINES.pop(args, None)
    gc.collect()
