"""Chat completion with structured output, behind one interface, two backends.

* :class:`VLLMOfflineClient`: an in-process ``vllm.LLM`` engine; a batch of requests is one ``generate`` call
  (prompts rendered with the model's chat template, token ids passed in), prefix caching on. Engines are shared
  per process and per engine configuration (:func:`get_vllm_engine`), so the three DLCoT steps of one run, or a
  whole test session, start the engine once.
* :class:`OpenAIHTTPClient`: an OpenAI-compatible ``/v1/chat/completions`` endpoint (``vllm serve`` / the vLLM
  OpenAI API server): API key from an environment variable, a concurrency limit, retries with exponential backoff
  on connection errors, timeouts, 429 and 5xx, and a timeout per request. Standard library only.

Both return :class:`ChatReply` objects in request order. Structured output: every request may carry a JSON
schema; vLLM then constrains decoding to it (``StructuredOutputsParams(json=...)`` offline,
``response_format={"type": "json_schema", ...}`` over HTTP), so a reply that ran to completion parses by
construction. A reply cut off by ``max_tokens`` has ``finish_reason == "length"`` and usually does not parse.

:class:`CachingClient` wraps either backend with a :class:`~.cache.ResultCache`: completed replies are stored under
a hash of (model, messages, schema, sampling parameters) as they arrive, and a repeated request is answered from
the cache without reaching the engine.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from pydantic import BaseModel, ConfigDict

from .cache import ResultCache, cache_key

OnReply = Callable[[int, "ChatReply"], None]


class Sampling(BaseModel):
    """Sampling parameters of one request (part of the cache key)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int | None = 0

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    schema: dict | None = None
    sampling: Sampling = field(default_factory=Sampling)
    tag: str = ""  # which step asked (for statistics only; not part of the cache key)


@dataclass
class ChatReply:
    text: str | None
    error: str | None = None  # prompt_too_long | http_<status> | timeout | connection | engine_error:<type>
    finish_reason: str | None = None  # stop | length
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    def to_json(self) -> str:
        d = asdict(self)
        d.pop("cached")
        return json.dumps(d, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, blob: str, cached: bool = True) -> "ChatReply":
        d = json.loads(blob)
        return cls(**d, cached=cached)


@dataclass
class ClientStats:
    calls: int = 0  # generate calls (vLLM) / HTTP requests sent (retries included)
    prompts: int = 0  # prompts actually generated
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0

    def note_error(self, err: str) -> None:
        key = err.split(":")[0]
        self.errors[key] = self.errors.get(key, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class LLMClient(Protocol):
    model_id: str
    stats: ClientStats

    def chat_batch(self, requests: Sequence[ChatRequest], on_reply: OnReply | None = None) -> list[ChatReply]: ...


# ---------------------------------------------------------------------------------------------- vLLM offline


class VLLMEngineArgs(BaseModel):
    """Arguments of ``vllm.LLM``; equal arguments share one engine per process."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    tokenizer: str | None = None
    dtype: str = "auto"
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    #: on CPU, the KV cache size in bytes (else a share of node memory is reserved, which may not be free)
    kv_cache_memory_bytes: int | None = None
    enable_prefix_caching: bool = True
    #: skip torch.compile / CUDA graphs: starts in ~15 s instead of ~90 s on a small CPU (tests, benches)
    enforce_eager: bool = False
    seed: int = 0
    trust_remote_code: bool = False
    #: structured output without free whitespace between JSON tokens (small models pad replies with it)
    compact_json: bool = True

    def llm_kwargs(self) -> dict[str, Any]:
        kw = self.model_dump(exclude_none=True, exclude={"compact_json"})
        if self.compact_json:
            kw["structured_outputs_config"] = {"backend": "xgrammar", "disable_any_whitespace": True}
        return kw


_ENGINES: dict[VLLMEngineArgs, Any] = {}
_ENGINES_LOCK = threading.Lock()


def get_vllm_engine(args: VLLMEngineArgs):
    """The process-wide ``vllm.LLM`` for these arguments, started on first use."""
    with _ENGINES_LOCK:
        eng = _ENGINES.get(args)
        if eng is None:
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            from vllm import LLM

            eng = LLM(**args.llm_kwargs())
            _ENGINES[args] = eng
        return eng


def shutdown_vllm_engines() -> None:
    """Forget the shared engines (their memory is freed when nothing else holds them)."""
    with _ENGINES_LOCK:
        _ENGINES.clear()


class VLLMOfflineClient:
    """Batched chat completion on an in-process vLLM engine."""

    def __init__(self, args: VLLMEngineArgs, *, model_id: str | None = None, batch_size: int = 0, min_new_tokens: int = 16):
        self.args = args
        self.model_id = model_id or args.model
        #: prompts per ``generate`` call (0: the whole batch in one call); smaller batches cache results sooner
        self.batch_size = batch_size
        self.min_new_tokens = min_new_tokens
        self.stats = ClientStats()

    @property
    def engine(self):
        return get_vllm_engine(self.args)

    def max_model_len(self) -> int:
        return int(self.engine.llm_engine.model_config.max_model_len)

    def render(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of the chat-templated prompt (generation prompt appended)."""
        tok = self.engine.get_tokenizer()
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(tok.encode(text, add_special_tokens=False))

    def chat_batch(self, requests: Sequence[ChatRequest], on_reply: OnReply | None = None) -> list[ChatReply]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        llm = self.engine
        limit = self.max_model_len()
        replies: list[ChatReply | None] = [None] * len(requests)
        todo: list[tuple[int, list[int], Any]] = []
        for i, req in enumerate(requests):
            ids = self.render(req.messages)
            room = limit - len(ids)
            if room < self.min_new_tokens:
                replies[i] = ChatReply(text=None, error="prompt_too_long", prompt_tokens=len(ids))
                self.stats.note_error("prompt_too_long")
                if on_reply:
                    on_reply(i, replies[i])
                continue
            s = req.sampling
            sp = SamplingParams(
                temperature=s.temperature,
                top_p=s.top_p,
                max_tokens=min(s.max_tokens, room),
                seed=s.seed,
                structured_outputs=StructuredOutputsParams(json=req.schema) if req.schema is not None else None,
            )
            todo.append((i, ids, sp))
        step = self.batch_size or max(1, len(todo))
        for k in range(0, len(todo), step):
            chunk = todo[k : k + step]
            t0 = time.perf_counter()
            outs = llm.generate(
                [{"prompt_token_ids": ids} for _, ids, _ in chunk], [sp for _, _, sp in chunk], use_tqdm=False
            )
            self.stats.seconds += time.perf_counter() - t0
            self.stats.calls += 1
            for (i, ids, _sp), out in zip(chunk, outs):
                o = out.outputs[0]
                rep = ChatReply(
                    text=o.text,
                    finish_reason=o.finish_reason,
                    prompt_tokens=len(ids),
                    completion_tokens=len(o.token_ids),
                )
                self.stats.prompts += 1
                self.stats.prompt_tokens += rep.prompt_tokens
                self.stats.completion_tokens += rep.completion_tokens
                replies[i] = rep
                if on_reply:
                    on_reply(i, rep)
        return replies  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- HTTP


class OpenAIHTTPClient:
    """``POST {base_url}/chat/completions`` with JSON-schema ``response_format``; thread pool, retries, timeouts."""

    RETRY_STATUS = (408, 409, 425, 429, 500, 502, 503, 504)

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 8,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        timeout_s: float = 300.0,
    ):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.model_id = model
        self.api_key_env = api_key_env
        self.max_concurrency = max(1, max_concurrency)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.stats = ClientStats()
        self._lock = threading.Lock()

    def _body(self, req: ChatRequest) -> dict:
        s = req.sampling
        body: dict[str, Any] = {
            "model": self.model,
            "messages": req.messages,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_tokens,
        }
        if s.seed is not None:
            body["seed"] = s.seed
        if req.schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": req.schema, "strict": True},
            }
        return body

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body, ensure_ascii=False).encode()
        rq = urllib.request.Request(f"{self.base_url}/chat/completions", data=data, headers=headers, method="POST")
        with urllib.request.urlopen(rq, timeout=self.timeout_s) as resp:
            return json.loads(resp.read())

    def _one(self, req: ChatRequest) -> ChatReply:
        body = self._body(req)
        err = "unknown"
        for attempt in range(self.max_retries + 1):
            if attempt:
                delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)) * (0.5 + random.random())
                time.sleep(delay)
            with self._lock:
                self.stats.calls += 1
            try:
                out = self._post(body)
            except urllib.error.HTTPError as e:
                err = f"http_{e.code}"
                if e.code in self.RETRY_STATUS:
                    continue
                break
            except TimeoutError:
                err = "timeout"
                continue
            except (urllib.error.URLError, ConnectionError, OSError) as e:
                reason = getattr(e, "reason", e)
                err = "timeout" if isinstance(reason, TimeoutError) else "connection"
                continue
            choice = out["choices"][0]
            usage = out.get("usage") or {}
            return ChatReply(
                text=choice["message"].get("content"),
                finish_reason=choice.get("finish_reason"),
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
            )
        return ChatReply(text=None, error=err)

    def chat_batch(self, requests: Sequence[ChatRequest], on_reply: OnReply | None = None) -> list[ChatReply]:
        replies: list[ChatReply | None] = [None] * len(requests)
        t0 = time.perf_counter()

        def run(i: int) -> None:
            rep = self._one(requests[i])
            with self._lock:
                if rep.error:
                    self.stats.note_error(rep.error)
                else:
                    self.stats.prompts += 1
                    self.stats.prompt_tokens += rep.prompt_tokens
                    self.stats.completion_tokens += rep.completion_tokens
                replies[i] = rep
            if on_reply:
                on_reply(i, rep)

        if requests:
            with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests))) as pool:
                list(pool.map(run, range(len(requests))))
        self.stats.seconds += time.perf_counter() - t0
        return replies  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- cache


class CachingClient:
    """Answers repeated requests from a :class:`ResultCache`; only misses reach the wrapped client."""

    def __init__(self, inner: LLMClient, cache: ResultCache):
        self.inner = inner
        self.cache = cache
        self.model_id = inner.model_id

    @property
    def stats(self) -> ClientStats:
        return self.inner.stats

    def key(self, req: ChatRequest) -> str:
        return cache_key(self.model_id, req.messages, req.schema, req.sampling.as_dict())

    def chat_batch(self, requests: Sequence[ChatRequest], on_reply: OnReply | None = None) -> list[ChatReply]:
        keys = [self.key(r) for r in requests]
        replies: list[ChatReply | None] = [None] * len(requests)
        first_of: dict[str, int] = {}
        miss: list[int] = []  # indices sent to the engine (one per distinct key)
        dup: dict[int, list[int]] = {}
        for i, k in enumerate(keys):
            blob = self.cache.get(k)
            if blob is not None:
                replies[i] = ChatReply.from_json(blob, cached=True)
                self.stats.cache_hits += 1
                if on_reply:
                    on_reply(i, replies[i])
            elif k in first_of:
                dup.setdefault(first_of[k], []).append(i)
            else:
                first_of[k] = i
                miss.append(i)
        self.stats.cache_misses += len(miss)
        if miss:

            def store(j: int, rep: ChatReply) -> None:
                i = miss[j]
                if rep.ok:
                    self.cache.put(keys[i], rep.to_json())
                for t in [i, *dup.get(i, [])]:
                    replies[t] = rep
                    if on_reply:
                        on_reply(t, rep)

            self.inner.chat_batch([requests[i] for i in miss], on_reply=store)
        return replies  # type: ignore[return-value]


def parse_reply(reply: ChatReply, model: type[BaseModel]) -> tuple[BaseModel | None, str | None]:
    """(parsed object, None) or (None, reason): ``error:<e>``, ``truncated``, ``unparseable``."""
    if reply.error is not None:
        return None, reply.error.split(":")[0]
    try:
        return model.model_validate_json(reply.text or ""), None
    except ValueError:
        return None, "truncated" if reply.finish_reason == "length" else "unparseable"


__all__ = [
    "CachingClient",
    "ChatReply",
    "ChatRequest",
    "ClientStats",
    "LLMClient",
    "OpenAIHTTPClient",
    "Sampling",
    "VLLMEngineArgs",
    "VLLMOfflineClient",
    "get_vllm_engine",
    "parse_reply",
    "shutdown_vllm_engines",
]
