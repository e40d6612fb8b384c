"""Fixtures for forge's recipe, pipeline, data engine and teacher tests.

`stand_in_teacher` is the real stand-in teacher server on 127.0.0.1; `scripted_teacher` is a
real HTTP server that answers from a script (for failures a real endpoint can have: 5xx,
malformed JSON, going away half-way); `make_expert` writes an expert source directory.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest
import tomli_w

SCHEMA_SQL = """CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  city TEXT,
  age INTEGER
);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY,
  customer_id INTEGER REFERENCES customers(id),
  product TEXT,
  amount REAL
);
INSERT INTO customers (id, name, city, age) VALUES (1, 'Ana', 'Lisbon', 34), (2, 'Ben', 'Paris', 41);
INSERT INTO orders (id, customer_id, product, amount) VALUES (1, 1, 'laptop', 1200.0), (2, 2, 'phone', 650.5);
"""

DOCS = {
    "docs/customers.md": "# Customers\n\nThe customers table holds one row per customer. Every customer has "
                         "a name, a city and an age.\ncustomers.city: Lisbon, Paris, Berlin, Oslo, Madrid\n"
                         "customers.name: Ana, Ben, Chloe, Dan, Eve\n\nCopyright 2025 Example Shop.\n",
    "docs/orders.md": "# Orders\n\nThe orders table records what each customer bought and the amount paid. "
                      "Each order points at its customer.\norders.product: laptop, phone, tablet, monitor\n\n"
                      "Copyright 2025 Example Shop.\n",
    "docs/shop.html": "<html><head><title>Shop</title><script>var x = 1;</script></head><body>"
                      "<nav>Home | Products | Contact</nav><main><h1>The shop</h1><p>The shop sells laptops, "
                      "phones and tablets to customers in many cities.</p></main>"
                      "<footer>Copyright 2025 Example Shop.</footer></body></html>",
}


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (a teacher that is down)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def stand_in_teacher() -> str:
    """The stand-in teacher, running for the whole session; its endpoint URL (…/v1)."""
    from expertpm_forge.teacher.server import running_server

    with running_server() as endpoint:
        yield endpoint


class ScriptedTeacher:
    """A real chat-completions server. Each request takes the next script entry: an int status
    (answered with an error body), a string (sent as the raw body with status 200), or
    "teacher" (answered by the stand-in's rules). Past the script's end, `default` applies."""

    def __init__(self, script: list, default="teacher") -> None:
        self.script, self.default, self.requests = list(script), default, 0
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            self.requests += 1
            return self.script.pop(0) if self.script else self.default


@pytest.fixture
def scripted_teacher() -> Callable[..., tuple[str, ScriptedTeacher]]:
    from expertpm_forge.teacher.server import answer

    servers = []

    def start(script: list, default="teacher") -> tuple[str, ScriptedTeacher]:
        state = ScriptedTeacher(script, default)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                entry = state.next()
                if entry == "teacher":
                    status, data = 200, json.dumps(answer(json.loads(body))).encode()
                elif isinstance(entry, int):
                    status, data = entry, json.dumps({"error": {"message": f"scripted {entry}"}}).encode()
                else:
                    status, data = 200, entry.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/v1", state

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


def _write_recipe(root: Path, recipe: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "forge.toml"
    path.write_bytes(tomli_w.dumps(recipe).encode("utf-8"))
    return path


def _sql_recipe(endpoint: str, **sections) -> dict:
    recipe = {
        "expert": {"name": "sql", "version": "0.1.0", "description": "Text to SQLite queries"},
        "data": {"sources": ["docs/*.md", "docs/*.html"], "chunk_tokens": 48, "chunk_overlap": 8},
        "teacher": {"endpoint": endpoint, "model": "expertpm-stand-in", "n_per_chunk": 12,
                    "requests_per_chunk": 2, "backoff": 0.01, "retries": 2, "concurrency": 2},
        "task": {"kind": "sql", "schema": "schema.sql"},
        "generation": {"template": "Question: {prompt}\nSQL:"},
        "pipeline": {"steps": ["clean", "chunk", "dedupe", "synthesize", "format", "split"]},
    }
    for name, values in sections.items():
        recipe[name] = {**recipe.get(name, {}), **values}
    return recipe


@pytest.fixture
def sql_recipe() -> Callable[..., dict]:
    """`sql_recipe(endpoint, train={...}, ...)`: a text-to-SQL recipe dict; sections merge in."""
    return _sql_recipe


@pytest.fixture
def write_recipe() -> Callable[[Path, dict], Path]:
    return _write_recipe


@pytest.fixture
def make_expert(tmp_path: Path) -> Callable[..., Path]:
    """`make_expert(recipe_dict, docs=None, name="sql")` writes experts/<name>/ and returns its path."""

    def make(recipe: dict, docs: dict[str, str | bytes] | None = None, name: str = "sql",
             schema: str | None = SCHEMA_SQL) -> Path:
        root = tmp_path / "experts" / name
        for rel, content in (DOCS if docs is None else docs).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        if schema is not None:
            (root / "schema.sql").parent.mkdir(parents=True, exist_ok=True)
            (root / "schema.sql").write_text(schema, encoding="utf-8")
        _write_recipe(root, recipe)
        return root

    return make
