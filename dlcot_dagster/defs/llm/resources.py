"""The inference resource: vLLM in-process (``backend: vllm``) or an OpenAI-compatible endpoint (``backend: openai``).

:class:`LLMConfig` holds every knob once. It is used two ways:

* nested as ``dlcot_engine.llm`` (the DLCoT stage assets run their LLM steps through it when
  ``dlcot_engine.engine`` is ``llm``; nesting keeps ``dlcot_engine`` the only resource those assets need);
* as the ``llm`` resource (:class:`LLMResource`, the same fields) for assets that only generate, such as
  ``teacher_generations``.

Engines are shared per process and per engine configuration, so the three DLCoT steps of a run (in-process
executor) start vLLM once. Completed replies are cached under ``cache_url`` (default
``<blob location>/llm_cache``, i.e. under the storage folder; ``s3://`` works through the blob store), keyed by a
hash of (model, prompt, schema, sampling), so a retried or re-run partition only generates what is missing.

CPU hosts (no CUDA): ``enforce_eager`` and ``kv_cache_memory_bytes`` default to values that start SmolLM2 on a
laptop in ~15 s (eager mode, 1 GiB of KV cache); on GPU hosts they default to vLLM's own (compiled graphs, a
``gpu_memory_utilization`` share of GPU memory).
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

import dagster as dg
from pydantic import Field

from ...domain.llm import (
    CachingClient,
    LLMClient,
    LLMStepConfig,
    LocalDirCache,
    OpenAIHTTPClient,
    VLLMEngineArgs,
    VLLMOfflineClient,
)
from ...domain.llm.cache import BlobStoreCache
from ...domain.storage import is_s3_url
from ..settings import blob_location

SMOLLM2 = "smollm2"
CPU_KV_CACHE_BYTES = 1 << 30


@lru_cache(maxsize=1)
def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # torch missing or broken: treat as CPU
        return False


def resolve_model(model: str) -> str:
    """``smollm2`` -> the converted SmolLM2-135M-Instruct folder (built once, offline); anything else as is."""
    if model == SMOLLM2:
        from ...domain.models import ensure_smollm2

        return str(ensure_smollm2())
    return model


def default_cache_url() -> str:
    return blob_location().rstrip("/") + "/llm_cache"


class LLMConfig(dg.Config):
    """Backend, model, engine, HTTP, sampling, guard and cache settings of LLM inference."""

    backend: Literal["vllm", "openai"] = Field(
        default_factory=lambda: os.environ.get("DLCOT_LLM_BACKEND", "vllm"),  # type: ignore[arg-type]
        description="vllm: in-process engine (needs the step's GPU); openai: an OpenAI-compatible endpoint",
    )
    model: str = Field(
        default_factory=lambda: os.environ.get("DLCOT_LLM_MODEL", SMOLLM2),
        description="vllm: a model folder or HF id ('smollm2' = the bundled 135M model); openai: the served name",
    )
    # -- vLLM engine
    dtype: str = Field(default="auto", description="vLLM dtype (auto, bfloat16, float16, float32)")
    max_model_len: int | None = Field(default=None, description="context length (default: the model's)")
    tensor_parallel_size: int = Field(default=1, description="GPUs per engine")
    gpu_memory_utilization: float = Field(default=0.9, description="share of GPU memory vLLM may take")
    kv_cache_memory_bytes: int | None = Field(default=None, description="KV cache size; default 1 GiB on CPU hosts")
    enable_prefix_caching: bool = Field(default=True, description="reuse the KV cache of shared prompt prefixes")
    enforce_eager: bool | None = Field(default=None, description="skip graph compilation; default True on CPU hosts")
    batch_size: int = Field(default=0, description="prompts per generate call; 0: a partition's prompts in one call")
    # -- OpenAI-compatible endpoint
    base_url: str | None = Field(
        default_factory=lambda: os.environ.get("DLCOT_VLLM_URL") or None,
        description="e.g. http://dlcot-vllm:8000/v1 (DLCOT_VLLM_URL)",
    )
    api_key_env: str = Field(default="OPENAI_API_KEY", description="environment variable holding the API key")
    max_concurrency: int = Field(default=16, description="requests in flight at once")
    max_retries: int = Field(default=4, description="retries on connection errors, timeouts, 429 and 5xx")
    timeout_s: float = Field(default=600.0, description="timeout of one request")
    # -- sampling and guards (see dlcot_dagster.domain.llm.steps.LLMStepConfig)
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    max_tokens_segment: int = 2048
    max_tokens_label: int = 256
    max_tokens_cluster: int = 512
    max_tokens_rewrite: int = 16384
    max_parts: int = Field(default=64, description="most parts an LLM split may list (bounds the reply)")
    min_coverage: float = Field(default=0.90, description="reject an LLM split covering less of the thinking")
    rewrite_max_edit_ratio: float = Field(default=0.05, description="edit budget of a rewrite, share of kept text")
    rewrite_min_edit_chars: int = 80
    # -- resume cache
    cache_url: str | None = Field(
        default=None, description="reply cache: a folder or s3://...; default <blob location>/llm_cache; '' = off"
    )

    def step_config(self) -> LLMStepConfig:
        return LLMStepConfig(
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            max_tokens_segment=self.max_tokens_segment,
            max_tokens_label=self.max_tokens_label,
            max_tokens_cluster=self.max_tokens_cluster,
            max_tokens_rewrite=self.max_tokens_rewrite,
            max_parts=self.max_parts,
            min_coverage=self.min_coverage,
            rewrite_max_edit_ratio=self.rewrite_max_edit_ratio,
            rewrite_min_edit_chars=self.rewrite_min_edit_chars,
        )

    def engine_args(self) -> VLLMEngineArgs:
        cpu = not _has_cuda()
        eager = self.enforce_eager if self.enforce_eager is not None else cpu
        kv = self.kv_cache_memory_bytes if self.kv_cache_memory_bytes is not None else (CPU_KV_CACHE_BYTES if cpu else None)
        return VLLMEngineArgs(
            model=resolve_model(self.model),
            dtype=self.dtype,
            max_model_len=self.max_model_len,
            tensor_parallel_size=self.tensor_parallel_size,
            gpu_memory_utilization=self.gpu_memory_utilization,
            kv_cache_memory_bytes=kv,
            enable_prefix_caching=self.enable_prefix_caching,
            enforce_eager=eager,
            seed=self.seed or 0,
        )

    def raw_client(self) -> LLMClient:
        if self.backend == "openai":
            if not self.base_url:
                raise ValueError("llm.backend is openai but llm.base_url (or DLCOT_VLLM_URL) is not set")
            return OpenAIHTTPClient(
                self.base_url,
                self.model,
                api_key_env=self.api_key_env,
                max_concurrency=self.max_concurrency,
                max_retries=self.max_retries,
                timeout_s=self.timeout_s,
            )
        return VLLMOfflineClient(self.engine_args(), batch_size=self.batch_size)

    def cache(self):
        url = default_cache_url() if self.cache_url is None else self.cache_url
        if not url:
            return None
        if is_s3_url(url):
            from ...domain.storage import S3BlobStore
            from ..deployment import s3_resource_from_env

            return BlobStoreCache(S3BlobStore.from_url(url, s3_resource_from_env().get_client()))
        return LocalDirCache(url)

    def client(self) -> LLMClient:
        """The backend client, behind the reply cache unless ``cache_url`` is ''."""
        inner = self.raw_client()
        cache = self.cache()
        return CachingClient(inner, cache) if cache is not None else inner


class LLMResource(dg.ConfigurableResource, LLMConfig):
    """The ``llm`` resource: :class:`LLMConfig` as a resource, for assets that generate (teacher traces)."""
