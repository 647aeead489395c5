"""Tiny random-weight LLMs made on the spot (no model can be downloaded here), the real
llama.cpp server that serves one, and a fake Ollama server.

The models write nonsense; the tests that use them check protocols, streaming, timeouts and
error paths, and that nonsense is flagged as unsupported.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np


VOCAB_BYTES = 256
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
# A byte-level tokenizer spends about a token a character; a prompt with passages needs room.
CONTEXT = 8192
WIDTH, LAYERS, HEADS, FFN = 64, 2, 4, 128
API_KEY = "test-key"


def byte_tokens() -> list[str]:
    """GPT-2's byte-to-unicode alphabet, in byte order, so token i is byte i."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return [mapping[b] for b in range(256)]


def vocabulary() -> tuple[list[str], list[str]]:
    """Bytes, one merge (llama.cpp refuses a BPE vocabulary without merges), BOS and EOS."""
    tokens = byte_tokens()
    space = tokens[ord(" ")]
    return [*tokens, space + "t", "<|bos|>", "<|eos|>"], [f"{space} t"]


def output_rows(vocab_size: int, rng: np.random.Generator) -> np.ndarray:
    """Random rows for printable ASCII and zeros elsewhere, so greedy decoding writes ASCII
    (random weights otherwise emit invalid UTF-8, which comes back as empty text)."""
    rows = np.zeros((vocab_size, WIDTH), dtype=np.float32)
    printable = [*range(ord(" "), ord("~") + 1), VOCAB_BYTES]  # and the " t" merge
    rows[printable] = rng.normal(0, 1, (len(printable), WIDTH))
    return rows


def write_gguf(path: Path, seed: int = 0) -> Path:
    """A 2-layer, 64-wide LLaMA with a byte-level GPT-2 tokenizer and a chat template (< 1 MB)."""
    import gguf

    tokens, merges = vocabulary()
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(WIDTH)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(HEADS)
    writer.add_rope_dimension_count(WIDTH // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.NORMAL] * (len(tokens) - 2) + [gguf.TokenType.CONTROL] * 2)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(len(tokens) - 2)
    writer.add_eos_token_id(len(tokens) - 1)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    def tensor(name: str, *shape: int, scale: float = 0.05) -> None:
        writer.add_tensor(name, (rng.normal(0, scale, shape)).astype(np.float32))

    tensor("token_embd.weight", len(tokens), WIDTH, scale=1.0)
    writer.add_tensor("output_norm.weight", np.ones(WIDTH, dtype=np.float32))
    writer.add_tensor("output.weight", output_rows(len(tokens), rng))
    for i in range(LAYERS):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(WIDTH, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(WIDTH, dtype=np.float32))
        for part in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensor(f"blk.{i}.{part}.weight", WIDTH, WIDTH)
        tensor(f"blk.{i}.ffn_gate.weight", FFN, WIDTH)
        tensor(f"blk.{i}.ffn_up.weight", FFN, WIDTH)
        tensor(f"blk.{i}.ffn_down.weight", WIDTH, FFN)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_hf_model(folder: Path, seed: int = 0) -> Path:
    """The same shape as a transformers LlamaForCausalLM folder, with a byte-level BPE tokenizer."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokens, merges = vocabulary()
    bpe = models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=[tuple(m.split(" ")) for m in merges])
    backend = Tokenizer(bpe)
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<|bos|>", eos_token="<|eos|>", pad_token="<|eos|>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokens), hidden_size=WIDTH, intermediate_size=FFN, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=HEADS, max_position_embeddings=CONTEXT,
        bos_token_id=len(tokens) - 2, eos_token_id=len(tokens) - 1, pad_token_id=len(tokens) - 1,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.lm_head.weight.copy_(torch.from_numpy(output_rows(len(tokens), np.random.default_rng(seed))))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """llama-cpp-python's OpenAI-compatible server, a real process on 127.0.0.1."""

    def __init__(self, model: Path, log: Path):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
            "--port", str(self.port), "--n_ctx", str(CONTEXT), "--api_key", API_KEY,
            # Otherwise a new request cuts off a stream still running.
            "--interrupt_requests", "false",
        ]
        self.log = log
        self.process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not listen within {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """A crash: SIGKILL, so open streams are cut rather than drained as a graceful stop would."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class FakeOllamaServer:
    """A fake: no real Ollama can run here. It speaks the part of Ollama's native API the
    backend uses, POST /api/chat streaming NDJSON, and records what it was sent.

    `statuses` are answered, one per request, before any request succeeds (429, 503, …);
    `known_models` get replies, any other model a 404 as Ollama sends it.
    """

    def __init__(self, reply: str = "Kishi and Austin met [1].", known_models=("tiny",), delay_s: float = 0.0):
        self.reply = reply
        self.known_models = set(known_models)
        self.delay_s = delay_s
        self.statuses: list[int] = []
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.requests.append({"path": self.path, **body})
                if self.path != "/api/chat":
                    return self._json(404, {"error": "404 page not found"})
                if fake.statuses:
                    status = fake.statuses.pop(0)
                    return self._json(status, {"error": f"fake status {status}"}, {"Retry-After": "0"})
                if body.get("model") not in fake.known_models:
                    return self._json(404, {"error": f"model '{body.get('model')}' not found, try pulling it first"})
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.end_headers()
                for piece in fake.pieces():
                    time.sleep(fake.delay_s)
                    self._line({"model": body["model"], "message": {"role": "assistant", "content": piece}, "done": False})
                self._line({"model": body["model"], "message": {"role": "assistant", "content": ""}, "done": True,
                            "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 1})

            def _line(self, payload: dict) -> None:
                self.wfile.write((json.dumps(payload) + "\n").encode())
                self.wfile.flush()

            def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def pieces(self) -> Iterator[str]:
        words = self.reply.split(" ")
        return (word if i == 0 else " " + word for i, word in enumerate(words))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


