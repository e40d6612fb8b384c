"""What the runtime can serve: one base and the installed experts, read from manifests only. No torch.

A request names experts as text — `a`, `a+b`, `a*0.5+b` (server), `a,b:0.5` (CLI) or `auto` — and
the catalog turns that into expert choices for the loaded base, refusing before any tensor is
touched: an unknown name, an expert built for another base (its `base.weights_sha256` differs
from the loaded base's digest), a malformed weight, a repeated expert, or more than `max_chain`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from expertpm._errors import FormatError, RuntimeUserError
from expertpm._manifest import MANIFEST_FILE, Manifest

from .config import ExpertSpec
from .packages import base_weights_digest

AUTO = "auto"
_TERM = re.compile(r"^\s*([a-z0-9][a-z0-9-]*)\s*(?:[*:]\s*([^\s*:]+)\s*)?$")


class UnknownExpertError(RuntimeUserError):
    """A request names an expert that is not installed."""

    status_code = 404
    code = "model_not_found"


class BaseMismatchError(RuntimeUserError):
    """A request names an expert built for a different base than the loaded one."""

    code = "base_mismatch"


class TooManyExpertsError(RuntimeUserError):
    """A request composes more experts than `max_chain`."""

    code = "too_many_experts"


@dataclass(frozen=True, slots=True)
class CatalogBase:
    name: str               # the package name, or the directory name for a plain HF directory
    version: str | None
    path: Path
    weights_sha256: str     # the base's identity: what experts' `base.weights_sha256` must equal
    context_length: int | None


@dataclass(frozen=True, slots=True)
class CatalogExpert:
    name: str
    version: str
    digest: str
    path: Path
    manifest: Mapping[str, Any]

    @property
    def base_weights_sha256(self) -> str:
        return self.manifest["base"]["weights_sha256"]

    @property
    def routing(self) -> Mapping[str, Any]:
        return self.manifest.get("routing") or {}

    @property
    def generation(self) -> Mapping[str, Any]:
        return self.manifest.get("generation") or {}

    @property
    def description(self) -> str:
        return self.manifest.get("description", "")


@dataclass(frozen=True, slots=True)
class ExpertChoice:
    expert: CatalogExpert
    weight: float = 1.0

    def spec(self) -> ExpertSpec:
        return ExpertSpec(digest=self.expert.digest, path=self.expert.path, weight=self.weight)


def parse_composition(text: str) -> list[tuple[str, float]]:
    """`a+b*0.5` or `a,b:0.5` → [("a", 1.0), ("b", 0.5)]; the weight defaults to 1."""
    terms = [t for t in re.split(r"[+,]", text)]
    if not text.strip() or any(not t.strip() for t in terms):
        raise RuntimeUserError(f"cannot read the expert list {text!r}",
                               hint="write NAME, NAME+NAME or NAME*WEIGHT+NAME (CLI: a,b:0.5)")
    out: list[tuple[str, float]] = []
    for term in terms:
        m = _TERM.match(term)
        if not m:
            raise RuntimeUserError(f"cannot read {term.strip()!r} in the expert list {text!r}",
                                   hint="expert names are lowercase a-z, 0-9 and '-'; weights are numbers")
        weight = 1.0
        if m.group(2) is not None:
            try:
                weight = float(m.group(2))
            except ValueError:
                weight = math.nan
            if not math.isfinite(weight):
                raise RuntimeUserError(f"weight {m.group(2)!r} of expert {m.group(1)!r} is not a number",
                                       hint="write NAME*0.5 (server) or NAME:0.5 (CLI)")
        out.append((m.group(1), weight))
    return out


class Catalog:
    """The loaded base and every installed expert (newest version per name built for this base)."""

    def __init__(self, base: CatalogBase, experts: Iterable[CatalogExpert], *, max_chain: int = 10) -> None:
        self.base = base
        self.max_chain = max_chain
        self._by_name: dict[str, list[CatalogExpert]] = {}
        for e in experts:
            self._by_name.setdefault(e.name, []).append(e)

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def from_dirs(cls, base_dir: Path, expert_dirs: Iterable[Path], *, max_chain: int = 10,
                  digests: Mapping[str, str] | None = None) -> "Catalog":
        """Package directories on disk (installed-package layout) without a store around them.

        `digests` maps a name to its package digest; without one, the digest of the manifest's
        canonical bytes stands in (it identifies the same content).
        """
        return cls(base_from_dir(Path(base_dir)), experts_from_dirs(expert_dirs, digests), max_chain=max_chain)

    @classmethod
    def from_store(cls, home, base: str | Path | None = None, *, expert_dirs: Iterable[Path] = (),
                   max_chain: int = 10) -> "Catalog":
        """The installed packages of `home`'s store, plus expert package directories `expert_dirs`.

        `base` is an installed base's name, `name@version`, or a model directory; without it the
        store must hold exactly one base.
        """
        from expertpm._home import Home
        from expertpm._store import Store

        store = Store(home if isinstance(home, Home) else Home.resolve(home))
        packages = store.list()
        experts = [CatalogExpert(p.name, str(p.version), p.digest, Path(p.path), _doc(p.manifest))
                   for p in packages if p.kind == "expert"]
        experts += experts_from_dirs(expert_dirs)
        return cls(_pick_base(store, packages, base), experts, max_chain=max_chain)

    # -- queries -------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def compatible(self) -> list[CatalogExpert]:
        """The newest version of every expert built for the loaded base, by name."""
        out = []
        for name in self.names():
            fits = [e for e in self._by_name[name] if e.base_weights_sha256 == self.base.weights_sha256]
            if fits:
                out.append(max(fits, key=_version_key))
        return out

    def get(self, name: str) -> CatalogExpert:
        versions = self._by_name.get(name)
        if not versions:
            names = ", ".join(e.name for e in self.compatible()) or "none"
            raise UnknownExpertError(f"unknown expert {name!r}: it is not installed",
                                     hint=f"installed experts: {names}; install it with `expertpm install {name}`")
        fits = [e for e in versions if e.base_weights_sha256 == self.base.weights_sha256]
        if not fits:
            e = max(versions, key=_version_key)
            want = e.manifest["base"]
            raise BaseMismatchError(
                f"expert {e.name}@{e.version} is built for base {want['name']} {want['version']} "
                f"(weights {e.base_weights_sha256[:12]}), not the loaded base {self.base.name} "
                f"(weights {self.base.weights_sha256[:12]})",
                hint=f"serve it with its own base (--base {want['name']}) or install a version built for "
                     f"{self.base.name}")
        return max(fits, key=_version_key)

    def resolve(self, terms: Iterable[tuple[str, float]]) -> tuple[ExpertChoice, ...]:
        terms = list(terms)
        if len(terms) > self.max_chain:
            raise TooManyExpertsError(f"{len(terms)} experts requested but at most {self.max_chain} can be "
                                      "composed on one request (max_chain)",
                                      hint="name fewer experts, or raise max_chain")
        seen: set[str] = set()
        for name, _ in terms:
            if name in seen:
                raise RuntimeUserError(f"expert {name!r} is named twice", hint="name each expert once")
            seen.add(name)
        return tuple(ExpertChoice(self.get(name), weight) for name, weight in terms)

    def parse_model(self, model: str) -> tuple[ExpertChoice, ...] | None:
        """An OpenAI `model` string → expert choices; None means `auto` (the router decides).

        The base's own name (or an empty string) means the base alone.
        """
        model = (model or "").strip()
        if model == AUTO:
            return None
        if model in ("", self.base.name, "base"):
            return ()
        return self.resolve(parse_composition(model))


def experts_from_dirs(dirs: Iterable[Path], digests: Mapping[str, str] | None = None) -> list[CatalogExpert]:
    experts = []
    for d in map(Path, dirs):
        m = _load_manifest(d)
        if m.kind != "expert":
            raise RuntimeUserError(f"{m.id} in {d} is a base model, not an expert", hint="pass it with --base")
        digest = (digests or {}).get(m.name) or _manifest_digest(m)
        experts.append(CatalogExpert(m.name, str(m.version), digest, d, m.doc))
    return experts


def base_from_dir(path: Path) -> CatalogBase:
    """A base package directory (with manifest.json) or a plain Hugging Face model directory."""
    if not (path / "config.json").is_file():
        raise RuntimeUserError(f"{path} is not a model directory (no config.json)",
                               hint="pass a base package name or a Hugging Face model directory")
    name, version, context = path.name, None, None
    if (path / MANIFEST_FILE).is_file():
        m = _load_manifest(path)
        if m.kind != "base":
            raise RuntimeUserError(f"{m.id} is an expert, not a base model", hint="pass a base with --base")
        name, version, context = m.name, str(m.version), m.doc["model"].get("context_length")
    if context is None:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        context = config.get("max_position_embeddings")
    return CatalogBase(name, version, path, base_weights_digest(path), context)


def _pick_base(store, packages, base: str | Path | None) -> CatalogBase:
    if base is not None and Path(base).is_dir():
        return base_from_dir(Path(base))
    if base is not None and ("/" in str(base) or str(base).startswith(".")):
        raise RuntimeUserError(f"base model directory {base} does not exist",
                               hint="pass an installed base's name or a Hugging Face model directory")
    bases = [p for p in packages if p.kind == "base"]
    if base is None:
        names = sorted({p.name for p in bases})
        if len(names) != 1:
            raise RuntimeUserError("no base model is installed" if not names else
                                   f"several base models are installed ({', '.join(names)})",
                                   hint="install one with `expertpm install NAME`, or pass --base NAME|DIR"
                                   if not names else "choose one with --base NAME")
        base = names[0]
    name, _, version = str(base).partition("@")
    pkg = store.get(name, version or None)
    if pkg.kind != "base":
        raise RuntimeUserError(f"{name} is an expert, not a base model", hint="pass a base with --base")
    return base_from_dir(Path(pkg.path))


def _load_manifest(path: Path) -> Manifest:
    try:
        return Manifest.load(path / MANIFEST_FILE)
    except FormatError as exc:
        raise RuntimeUserError(f"{path} is not an installed package: {exc.message}",
                               hint="reinstall it with `expertpm install NAME`") from exc


def _manifest_digest(m: Manifest) -> str:
    from expertpm._canonical import sha256_bytes

    return sha256_bytes(m.canonical_bytes())


def _doc(manifest) -> Mapping[str, Any]:
    return manifest.doc if isinstance(manifest, Manifest) else manifest


def _version_key(e: CatalogExpert):
    from expertpm._versions import Version

    return Version.parse(e.version)
