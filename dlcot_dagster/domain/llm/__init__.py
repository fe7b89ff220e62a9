"""LLM-assisted DLCoT (plain Python; never imports dagster; vLLM is imported only when an engine starts).

Public API::

    from dlcot_dagster.domain.llm import (
        make_client, VLLMOfflineClient, VLLMEngineArgs, OpenAIHTTPClient, CachingClient,
        ChatRequest, ChatReply, Sampling, LocalDirCache, MemoryCache, ResultCache,
        build_llm_engine, LLMStepConfig, LLM_STEPS, llm_report, llm_fallbacks,
    )

Modules: :mod:`.client` (backends, cache wrapper), :mod:`.cache` (result cache), :mod:`.prompts` (instructions
and reply schemas), :mod:`.guards` (fidelity checks), :mod:`.steps` (the four LLM steps and the engine factory).
"""

from __future__ import annotations

import os
from typing import Literal

from .cache import BlobStoreCache, LocalDirCache, MemoryCache, ResultCache, cache_key
from .client import (
    CachingClient,
    ChatReply,
    ChatRequest,
    ClientStats,
    LLMClient,
    OpenAIHTTPClient,
    Sampling,
    VLLMEngineArgs,
    VLLMOfflineClient,
    get_vllm_engine,
    parse_reply,
    shutdown_vllm_engines,
)
from .steps import LLM_ENGINE_VERSION, LLM_STEPS, LLMStepConfig, build_llm_engine, llm_fallbacks, llm_report


def make_client(
    backend: Literal["vllm", "openai"],
    model: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    engine_args: dict | None = None,
    batch_size: int = 0,
    base_url: str | None = None,
    http: dict | None = None,
) -> LLMClient:
    """A client for ``backend``, wrapped in a :class:`CachingClient` over ``cache_dir`` when one is given.

    ``engine_args``: extra :class:`VLLMEngineArgs` fields (vllm); ``http``: extra :class:`OpenAIHTTPClient`
    keyword arguments (openai). For ``openai``, ``model`` is the served model name.
    """
    if backend == "vllm":
        client: LLMClient = VLLMOfflineClient(VLLMEngineArgs(model=model, **(engine_args or {})), batch_size=batch_size)
    elif backend == "openai":
        if not base_url:
            raise ValueError("the openai backend needs base_url (e.g. http://127.0.0.1:8000/v1)")
        client = OpenAIHTTPClient(base_url, model, **(http or {}))
    else:
        raise ValueError(f"unknown LLM backend {backend!r}: vllm | openai")
    if cache_dir is not None:
        client = CachingClient(client, LocalDirCache(cache_dir))
    return client


__all__ = [
    "LLM_ENGINE_VERSION",
    "LLM_STEPS",
    "BlobStoreCache",
    "CachingClient",
    "ChatReply",
    "ChatRequest",
    "ClientStats",
    "LLMClient",
    "LLMStepConfig",
    "LocalDirCache",
    "MemoryCache",
    "OpenAIHTTPClient",
    "ResultCache",
    "Sampling",
    "VLLMEngineArgs",
    "VLLMOfflineClient",
    "build_llm_engine",
    "cache_key",
    "get_vllm_engine",
    "llm_fallbacks",
    "llm_report",
    "make_client",
    "parse_reply",
    "shutdown_vllm_engines",
]
