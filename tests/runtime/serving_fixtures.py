"""Real tiny packages for the router, API, CLI and server tests: a random-weight Qwen3 base with a
freshly trained tokenizer, and PEFT LoRA experts saved with `save_pretrained`, each laid out as an
installed package directory (manifest.json + files). Built once per test session.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

from expertpm._canonical import canonical_json, sha256_bytes, sha256_file
from expertpm._manifest import Manifest, directory_digests

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Parse this JSON object and return the keys.",
    "Write a SQL query that selects every user.",
    "Bonjour, comment allez-vous aujourd'hui ?",
    "Translate the sentence into French please.",
    "Explain how photosynthesis works in plants.",
    "The weather is nice today, isn't it?",
    "def add(a, b): return a + b",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CONTEXT = 128
REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_NAME = "tiny-qwen3"


@dataclass(frozen=True)
class TinyPackages:
    root: Path
    base: Path                  # the base package directory (an HF model dir + manifest.json)
    experts: dict[str, Path]    # expert name -> package directory
    digests: dict[str, str]     # package name -> stand-in package digest


def _train_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(SENTENCES * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"],
                                   model_max_length=CONTEXT, clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out))


def _file_entries(path: Path) -> dict:
    entries = {}
    for f in sorted(path.rglob("*")):
        if f.is_file() and f.name not in ("manifest.json", "signature.json"):
            digest, size = sha256_file(f)
            entries[f.relative_to(path).as_posix()] = {"sha256": digest, "size": size}
    return entries


def _write_manifest(path: Path, doc: dict) -> str:
    doc = {"format_version": 1, "license": "Apache-2.0", "authors": ["tests"], **doc, "files": _file_entries(path)}
    Manifest.from_dict(doc)  # the manifest our tests install must be valid
    data = canonical_json(doc)
    (path / "manifest.json").write_bytes(data)
    return sha256_bytes(data)  # stands in for the .expert archive digest


def build_base(out: Path, *, seed: int = 0, vocab_size: int | None = None) -> Path:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    out.mkdir(parents=True)
    _train_tokenizer(out)
    from transformers import AutoTokenizer

    vocab = vocab_size or len(AutoTokenizer.from_pretrained(str(out)))
    torch.manual_seed(seed)
    config = Qwen3Config(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         max_position_embeddings=CONTEXT, tie_word_embeddings=False,
                         eos_token_id=AutoTokenizer.from_pretrained(str(out)).eos_token_id)
    model = Qwen3ForCausalLM(config).to(torch.float32)
    model.save_pretrained(str(out))
    return out


def base_manifest(path: Path, name: str = BASE_NAME) -> str:
    weights, tokenizer = directory_digests(path)
    config = json.loads((path / "config.json").read_text())
    return _write_manifest(path, {
        "name": name, "version": "1.0.0", "kind": "base", "description": "tiny random Qwen3 for tests",
        "model": {"architecture": "qwen3", "weights_sha256": weights, "tokenizer_sha256": tokenizer,
                  "vocab_size": config["vocab_size"], "context_length": CONTEXT}})


def build_lora_expert(base: Path, out: Path, name: str, *, seed: int, routing: dict | None = None,
                      generation: dict | None = None, rank: int = 4, base_dir_for_digest: Path | None = None) -> str:
    """Save a real PEFT LoRA (non-zero B) for `base` into `out` and write its manifest."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    peft_model.save_pretrained(str(out))
    weights, tokenizer = directory_digests(base_dir_for_digest or base)
    vocab = json.loads((base / "config.json").read_text())["vocab_size"]
    doc = {"name": name, "version": "0.1.0", "kind": "expert", "description": f"{name} test expert",
           "base": {"name": BASE_NAME, "version": "^1.0.0", "weights_sha256": weights,
                    "tokenizer_sha256": tokenizer, "vocab_size": vocab},
           "adapter": {"type": "lora", "rank": rank, "alpha": 2 * rank, "target_modules": ["q_proj", "v_proj"],
                       "dtype": "float32"}}
    if routing:
        doc["routing"] = routing
    if generation:
        doc["generation"] = generation
    return _write_manifest(out, doc)


ROUTING = {
    "json-tool": {"keywords": ["json", "parse"], "exclude_keywords": ["yaml"], "priority": 0.6,
                  "examples": ["Parse this JSON object", "Extract the fields from this JSON document",
                               "Convert the data to a JSON array"]},
    "french": {"keywords": ["french", "français"], "priority": 0.4,
               "examples": ["Translate this sentence into French", "How do you say hello in French?",
                            "Write a short paragraph in French about the sea"]},
}


def build_tiny_packages(root: Path) -> TinyPackages:
    base = build_base(root / "base")
    digests = {BASE_NAME: base_manifest(base)}
    experts = {}
    for i, name in enumerate(["json-tool", "french"]):
        experts[name] = root / name
        gen = {"max_tokens": 8, "temperature": 0.0, "template": "<|im_start|>user\n{prompt}<|im_end|>\n"
               "<|im_start|>assistant\n"} if name == "json-tool" else {"max_tokens": 6}
        digests[name] = build_lora_expert(base, experts[name], name, seed=10 + i, routing=ROUTING[name],
                                          generation=gen)
    # An expert trained for another base (same shapes, different weights): must be refused.
    other = build_base(root / "other-base", seed=1)
    experts["foreign"] = root / "foreign"
    digests["foreign"] = build_lora_expert(other, experts["foreign"], "foreign", seed=30)
    return TinyPackages(root=root, base=base, experts=experts, digests=digests)


# Test modules import these fixtures by name, which gives each module its own fixture definition;
# the builds are shared through this cache so the session pays for each of them once.
_SHARED: dict[str, object] = {}


def _shared(key: str, build):
    if key not in _SHARED:
        _SHARED[key] = build()
    return _SHARED[key]


@pytest.fixture(scope="session")
def tiny_packages(tmp_path_factory) -> TinyPackages:
    return _shared("packages", lambda: build_tiny_packages(tmp_path_factory.mktemp("serving-packages")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install(packages: TinyPackages, home: Path, names: tuple[str, ...] | None = None) -> dict[str, str]:
    """Pack and sign the tiny packages and install them into the store of `home`; name -> digest."""
    from expertpm._home import Home
    from expertpm._keys import SigningKey
    from expertpm._package import pack
    from expertpm._store import Store

    key, store, out = SigningKey.generate("tests"), Store(Home(home)), home.parent / "dist"
    out.mkdir(parents=True, exist_ok=True)
    dirs = {BASE_NAME: packages.base, **packages.experts}
    return {name: store.add(pack(path, out / f"{name}.expert", key)).digest
            for name, path in dirs.items() if names is None or name in names}


@pytest.fixture(scope="session")
def tiny_home(tiny_packages, tmp_path_factory) -> Path:
    """An EXPERTPM_HOME whose store holds the tiny base and every tiny expert (incl. `foreign`)."""
    def build() -> Path:
        home = tmp_path_factory.mktemp("serving-home") / "home"
        install(tiny_packages, home)
        return home

    return _shared("home", build)


class RunningServer:
    """`expertpm_runtime.server` on a real uvicorn, 127.0.0.1 and a free port, in a thread."""

    def __init__(self, runtime) -> None:
        import threading

        import uvicorn

        from expertpm_runtime.server import create_app

        self.runtime = runtime
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=self.port,
                                                     log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        import time

        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stats(self) -> dict:
        return self.runtime.loop.call(lambda engine: engine.stats()).result(timeout=30)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)
        self.runtime.close()


@pytest.fixture(scope="session")
def tiny_server(tiny_home):
    """A server over the tiny store: keyword routing, max_chain=2, a 1 MiB KV cache (128 blocks)."""
    from expertpm_runtime.api import Runtime
    from expertpm_runtime.router import RouterConfig

    if "server" in _SHARED:
        yield _SHARED["server"]
        return
    runtime = Runtime.from_store(tiny_home, router=RouterConfig(use_embeddings=False), max_chain=2,
                                 kv_cache_bytes=1 << 20)
    server = _SHARED["server"] = RunningServer(runtime)
    yield server
    server.close()


def sse_events(response) -> list:
    """The `data:` payloads of a server-sent-events response (JSON-decoded, "[DONE]" kept as is)."""
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[len("data: "):]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events
