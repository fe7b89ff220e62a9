"""The OpenAI-compatible backend: a real vLLM API server process on loopback, plus retry behaviour."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest

from dlcot_dagster.defs.llm.resources import LLMConfig
from dlcot_dagster.domain.llm import ChatRequest, OpenAIHTTPClient, Sampling, build_llm_engine
from dlcot_dagster.domain.llm.prompts import LabelReply, label_messages, schema_of
from dlcot_dagster.domain.pipeline import segment_frame

from .llm_support import SERVED_NAME, sample_raw


@pytest.mark.slow
def test_openai_backend_against_a_real_vllm_server(vllm_server, tmp_path):
    print(f"\nserver up in {vllm_server['start_s']:.1f}s (pid {vllm_server['pid']})")
    client = OpenAIHTTPClient(vllm_server["base_url"], SERVED_NAME, max_concurrency=4, timeout_s=120)
    raw = sample_raw()
    schema = schema_of(LabelReply, max_items={"error_passages": 1})
    reqs = [
        ChatRequest(label_messages(r["problem"], r["reference_answer"], "solution", r["thinking"][:400]), schema,
                    Sampling(max_tokens=192))
        for r in raw.iter_rows(named=True)
    ]
    replies = client.chat_batch(reqs)
    assert client.stats.prompts == len(reqs) and not client.stats.errors
    assert all(r.ok and r.completion_tokens > 0 for r in replies)
    finished = [r for r in replies if r.finish_reason == "stop"]
    assert len(finished) >= len(reqs) - 1
    for r in finished:  # the server honours the JSON schema of response_format
        jsonschema.validate(json.loads(r.text), schema)

    # the same DLCoT step over HTTP, through the resource's configuration; replies land in the resume cache
    cfg = LLMConfig(backend="openai", base_url=vllm_server["base_url"], model=SERVED_NAME,
                    cache_url=str(tmp_path / "cache"), max_tokens_segment=96, max_parts=2)
    c = cfg.client()
    engine = build_llm_engine(c, steps=["segment"], step_config=cfg.step_config())
    out = segment_frame(raw, engine)
    st = engine.segmenter.stats
    assert out.height == raw.height and st.records == raw.height
    assert st.accepted + sum(st.fallbacks.values()) == raw.height
    assert c.stats.prompts == raw.height and c.stats.cache_misses == raw.height


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 twice, then a valid chat completion."""

    hits = 0

    def do_POST(self):  # noqa: N802
        type(self).hits += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        if type(self).hits <= 2:
            self.send_response(503)
            self.end_headers()
            return
        body = json.dumps({"choices": [{"message": {"content": '{"ok": true}'}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 3, "completion_tokens": 4}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_http_client_retries_with_backoff_then_succeeds():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        c = OpenAIHTTPClient(f"http://127.0.0.1:{srv.server_port}/v1", "m", max_retries=3, backoff_s=0.01, timeout_s=5)
        [rep] = c.chat_batch([ChatRequest([{"role": "user", "content": "hi"}], {"type": "object"}, Sampling(max_tokens=8))])
        assert rep.ok and rep.text == '{"ok": true}' and rep.completion_tokens == 4
        assert c.stats.calls == 3  # two 503s, then success
    finally:
        srv.shutdown()
        srv.server_close()


def test_http_client_gives_up_on_a_dead_endpoint():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    c = OpenAIHTTPClient(f"http://127.0.0.1:{port}/v1", "m", max_retries=2, backoff_s=0.01, timeout_s=2)
    [rep] = c.chat_batch([ChatRequest([{"role": "user", "content": "hi"}])])
    assert rep.error == "connection" and not rep.ok
    assert c.stats.calls == 3 and c.stats.errors == {"connection": 1}
