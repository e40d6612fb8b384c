"""The expert provider: what the generic resolver needs to know about experts, bases and indexes.

Packages are names; versions are `Version`s. Candidates come from *sources* (one-method
interface: `versions(name)` returns index-entry-like records), so tests use an in-memory source
built from real entry dicts and the CLI uses verified indexes. The rules:

- a name is served by the first source that has it, unless the project pins it to an index;
- an expert requires its base (`base.name`, `base.version` range) *at a version whose weights
  digest equals the expert's `base.weights_sha256`*, its `requires`, and excludes its
  `incompatible_with`;
- a base excludes every other base seen in the resolution (a project has exactly one base);
- at most `max_chain` experts are selected together (a nogood the core learns from);
- yanked versions are invisible unless locked (and not being upgraded);
- the locked version is tried first, then the newest allowed one.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Collection, Hashable, Iterable, Mapping, Protocol, Sequence

from ._errors import UserError
from ._resolver import ANY, BaseProvider, Exclusion, Nogood, Requirement, Resolution, Reporter, resolve
from ._version_sets import matcher, version_key
from ._versions import Version, VersionRange

DEFAULT_MAX_CHAIN = 10


class Source(Protocol):
    """Where candidates come from: an index (or anything shaped like one)."""

    name: str  # the index name, as configured
    fingerprint: str  # the index's root key fingerprint ("" for non-index sources)
    snapshot_version: int
    lock_source: str  # how experts.lock names this source: "index+<fingerprint>", "git+URL@TAG#subdir"

    def versions(self, name: str) -> Sequence[Any]:
        """Every entry (mapping or IndexEntry-like object with `.yanked`) published for `name`."""

    def names(self) -> Iterable[str]:
        """Every package name the source knows (for close-name suggestions)."""


@dataclass(frozen=True)
class MemorySource:
    """A source held in memory: real index-entry dicts (plus an optional `"yanked": true`)."""

    name: str
    fingerprint: str
    entries: Sequence[Mapping] = ()
    snapshot_version: int = 1
    lock_source: str = ""
    _by_name: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.lock_source:
            object.__setattr__(self, "lock_source", f"index+{self.fingerprint}")
        for entry in self.entries:
            self._by_name.setdefault(entry["name"], []).append(entry)

    def versions(self, name: str) -> list[Mapping]:
        return list(self._by_name.get(name, ()))

    def names(self) -> list[str]:
        return list(self._by_name)


class IndexSource:
    """Adapts a verified index (`.entries(name)`, `.package_names()`, `.fingerprint`, ...)."""

    def __init__(self, name: str, index: Any) -> None:
        self.name = name
        self.index = index
        self.fingerprint = index.fingerprint
        self.snapshot_version = index.snapshot_version
        self.lock_source = f"index+{index.fingerprint}"

    def versions(self, name: str) -> list:
        return list(self.index.entries(name))

    def names(self) -> list[str]:
        return list(self.index.package_names())


@dataclass(frozen=True, slots=True)
class Candidate:
    """One usable version of a package, with the entry it was read from and where it came from."""

    name: str
    version: Version
    kind: str
    entry: Mapping
    yanked: bool
    source: Source
    key: tuple = field(default=(), compare=False, repr=False)  # version_key(version), for fast matching

    def get(self, key: str, default: Any = None) -> Any:
        return self.entry.get(key, default)

    @property
    def weights_sha256(self) -> str | None:
        section = self.entry.get("model" if self.kind == "base" else "base") or {}
        return section.get("weights_sha256")


def _as_dict(entry: Any) -> tuple[Mapping, bool]:
    if type(entry) is dict or isinstance(entry, Mapping):
        if "yanked" not in entry:
            return entry, False
        doc = dict(entry)
        return doc, bool(doc.pop("yanked"))
    raw = getattr(entry, "raw", None)
    if raw:
        return dict(raw), bool(getattr(entry, "yanked", False))
    fields = ("name", "version", "kind", "sha256", "size", "manifest_sha256", "publisher", "signature",
              "description", "base", "model", "requires", "incompatible_with")
    return {f: getattr(entry, f) for f in fields if getattr(entry, f, None) is not None}, bool(entry.yanked)


def short(digest: str | None) -> str:
    return f"{digest[:8]}…" if digest else "?"


def range_label(name: str, text: str) -> str:
    """`sql-expert>=2`, `sql-expert ^1.2`, `sql-expert 1.2.3`, `sql-expert` (for `*`)."""
    text = text.strip()
    if text in ("*", ""):
        return name
    return f"{name}{text}" if text[0] in "<>=" else f"{name} {text}"


class ExpertProvider(BaseProvider):
    def __init__(
        self,
        sources: Sequence[Source],
        *,
        pinned: Mapping[str, Source] | None = None,
        locked: Mapping[str, str] | None = None,
        upgrade: bool | Collection[str] = False,
        max_chain: int | None = DEFAULT_MAX_CHAIN,
    ) -> None:
        self.sources = list(sources)
        self.pinned = dict(pinned or {})
        self.upgrade_all = upgrade is True
        self.upgrade = frozenset() if isinstance(upgrade, bool) else frozenset(upgrade)
        self.locked = {} if self.upgrade_all else {n: v for n, v in (locked or {}).items() if n not in self.upgrade}
        self.max_chain = max_chain
        self._candidates: dict[str, list[Candidate]] = {}
        self._by_raw: dict[str, dict[str, Candidate]] = {}  # Version hashing is slow; raw strings are not
        self._skipped_yanked: dict[str, list[Version]] = {}
        self._bases: list[str] = []
        self._matchers: dict[str, object] = {}
        self._interned: dict[tuple, Requirement | Exclusion] = {}

    # -- candidates ------------------------------------------------------------------------
    def candidates(self, name: str) -> list[Candidate]:
        found = self._candidates.get(name)
        if found is not None:
            return found
        sources = [self.pinned[name]] if name in self.pinned else self.sources
        found, skipped, seen = [], [], set()
        for source in sources:
            entries = source.versions(name)
            if not entries:
                continue
            for entry in entries:
                doc, yanked = _as_dict(entry)
                version = Version.parse(doc["version"], where=f"{source.name}: {name}")
                key = version_key(version)
                if key in seen:
                    continue
                seen.add(key)
                if yanked and self.locked.get(name) != str(version):
                    skipped.append((key, version))
                    continue
                found.append(Candidate(name, version, doc["kind"], doc, yanked, source, key))
            break  # the first source that has the name serves it (no mixing across indexes)
        found.sort(key=lambda c: c.key)
        self._candidates[name] = found
        self._by_raw[name] = {c.version.raw: c for c in found}
        self._skipped_yanked[name] = [v for _, v in sorted(skipped, key=lambda kv: kv[0])]
        if any(c.kind == "base" for c in found):
            self._bases.append(name)
        return found

    def candidate(self, name: str, version: Version) -> Candidate:
        self.candidates(name)
        return self._by_raw[name][version.raw]

    def is_base(self, name: str) -> bool:
        self.candidates(name)
        return name in self._bases

    def _match(self, text: str):
        found = self._matchers.get(text)
        if found is None:
            found = self._matchers[text] = matcher(VersionRange.parse(text))
        return found

    # -- the Provider interface --------------------------------------------------------------
    def versions(self, package: Hashable) -> list[Version]:
        return [c.version for c in self.candidates(package)]

    def matches(self, package: Hashable, constraint: Hashable, version: object) -> bool:
        # ("range", text) any kind; ("expert"|"base", text) that kind; ("weights", text, digest) a
        # base whose weights digest is `digest`
        kind, text = constraint[0], constraint[1]
        candidate = self._by_raw[package][version.raw]
        if not self._match(text)(version, candidate.key):
            return False
        if kind == "weights":
            return candidate.kind == "base" and candidate.weights_sha256 == constraint[2]
        return kind == "range" or candidate.kind == kind

    def choose_version(self, package: Hashable, allowed: Sequence[Version]) -> Version | None:
        locked = self.locked.get(package)
        if locked is not None:
            for version in allowed:
                if str(version) == locked:
                    return version
        return allowed[-1] if allowed else None

    def priority(self, package: Hashable) -> tuple:
        return (package not in self._bases,)  # the base first: it narrows every expert

    def dependencies(self, package: Hashable, version: object) -> list[Requirement | Exclusion]:
        candidate = self.candidate(package, version)
        if candidate.kind == "base":
            return [Exclusion(other, ANY, f"base {other}", "a project uses exactly one base model")
                    for other in self._bases if other != package]
        deps: list[Requirement | Exclusion] = []
        intern = self._interned
        base = candidate.entry.get("base")
        if base:
            key = ("weights", base["name"], base.get("version", "*"), base["weights_sha256"])
            dep = intern.get(key)
            if dep is None:
                digest, text = key[3], key[2]
                where = "" if text.strip() == "*" else f" {text}"
                label = f"base {base['name']}{where} with weights digest {short(digest)}"
                dep = intern[key] = Requirement(base["name"], ("weights", text, digest), label)
            deps.append(dep)
        for section, kind, cls in (("requires", "expert", Requirement), ("incompatible_with", "range", Exclusion)):
            for name, text in sorted((candidate.entry.get(section) or {}).items()):
                dep = intern.get((section, name, text))
                if dep is None:
                    dep = intern[(section, name, text)] = cls(name, (kind, text), range_label(name, text))
                deps.append(dep)
        return deps

    def check_decision(self, package: Hashable, version: object, decided: Mapping) -> Nogood | None:
        if self.max_chain is None or self.is_base(package) or len(decided) < self.max_chain:
            return None
        experts = [p for p in decided if not self.is_base(p)] + [package]
        if len(experts) <= self.max_chain:
            return None
        reason = f"max_chain = {self.max_chain} allows at most {self.max_chain} experts"
        return Nogood(tuple((p, ANY) for p in experts), reason)

    def display(self, package: Hashable) -> str:
        return f"base {package}" if package in self._bases else str(package)

    def describe_missing(self, package: Hashable) -> str:
        if package in self.pinned:
            return f"{package} is not in index '{self.pinned[package].name}'"
        if len(self.sources) == 1:
            return f"{package} is not in index '{self.sources[0].name}'"
        return f"{package} is not in any configured index"

    def hints(self, causes: Sequence) -> list[str]:
        hints: list[str] = []
        for cause in causes:
            if cause.kind == "rule":
                texts = [f"raise max_chain under [tool.expertpm] in experts.toml (now {self.max_chain}) "
                         "or remove an expert"]
            elif cause.kind == "exclusion" and all(self.is_base(p) for p in cause.packages):
                texts = [f"use experts built on one base model ({' or '.join(sorted(cause.packages))})"]
            else:
                texts = [self._hint_for(name, cause.kind) for name in cause.packages]
            hints += [t for t in texts if t and t not in hints]
        return hints

    def _hint_for(self, name: str, kind: str) -> str | None:
        if not self.candidates(name) and not self._skipped_yanked.get(name):
            close = self.suggest(name)
            return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else None
        yanked = self._skipped_yanked.get(name)
        if yanked and kind == "missing":
            listed = ", ".join(str(v) for v in yanked[-3:])
            return f"{name} {listed} {'is' if len(yanked) == 1 else 'are'} yanked and only used when already locked"
        if kind == "missing" and self.candidates(name):
            return f"the newest version of {name} is {self.candidates(name)[-1].version}"
        return None

    def suggest(self, name: str, limit: int = 3) -> list[str]:
        """Known names close to `name` (difflib), for "did you mean ...?"."""
        known = sorted({n for source in self.sources for n in source.names()})
        return difflib.get_close_matches(name, known, n=limit, cutoff=0.6)

    # -- the project's own requirements ------------------------------------------------------
    def base_requirement(self, name: str, text: str) -> Requirement:
        match = self._match(text)
        versions = [c for c in self.candidates(name) if c.kind == "base" and match(c.version, c.key)]
        digests = {c.weights_sha256 for c in versions}
        note = f" (digest {short(next(iter(digests)))})" if len(digests) == 1 else ""
        return Requirement(name, ("base", text), f"base {range_label(name, text)}{note}")

    def expert_requirement(self, name: str, text: str) -> Requirement:
        return Requirement(name, ("expert", text), range_label(name, text))


@dataclass(frozen=True, slots=True)
class ProjectResolution:
    """A resolved project: the selected candidates (sorted by name) and who requires whom."""

    packages: tuple[Candidate, ...]
    dependencies: Mapping[str, tuple[str, ...]]
    roots: tuple[str, ...]
    indexes: tuple[Source, ...]

    def get(self, name: str) -> Candidate | None:
        return next((c for c in self.packages if c.name == name), None)

    def to_lock(self, project):
        from ._lockfile import LockedIndex, LockedPackage, build_lock

        packages = [
            LockedPackage(c.name, str(c.version), c.kind, c.source.lock_source, c.entry["sha256"], c.entry.get("size"),
                          c.entry["manifest_sha256"], c.entry.get("publisher"), c.entry.get("signature"),
                          self.dependencies.get(c.name, ()))
            for c in self.packages
        ]
        indexes = [LockedIndex(s.name, s.fingerprint, s.snapshot_version) for s in self.indexes]
        return build_lock(project, packages, indexes)


def project_sources(project, sources: Sequence[Source]) -> tuple[list[Source], dict[str, Source]]:
    """The indexes a project resolves from (in its order) and the sources its experts are pinned to."""
    by_name = {s.name: s for s in sources}
    where = str(project.path)
    for name in project.indexes:
        if name not in by_name:
            raise UserError(f"tool.expertpm.indexes names index {name!r}, which is not configured", where=where,
                            hint=f"configured: {', '.join(by_name) or 'none'}; add it with `expertpm index add`")
    ordered = [by_name[n] for n in project.indexes] if project.indexes else list(sources)
    pinned: dict[str, Source] = {}
    for spec in project.experts:
        if spec.index is None:
            continue
        if spec.index not in by_name:
            raise UserError(f"experts.{spec.name}.index names index {spec.index!r}, which is not configured",
                            where=where, hint=f"configured: {', '.join(by_name) or 'none'}")
        pinned[spec.name] = by_name[spec.index]
        if by_name[spec.index] not in ordered:
            ordered.append(by_name[spec.index])
    return ordered, pinned


def resolve_project(
    project,
    sources: Sequence[Source],
    *,
    locked: Mapping[str, str] | None = None,
    upgrade: bool | Collection[str] = False,
    git_sources: Mapping[str, Source] | None = None,
    reporter: Reporter | None = None,
) -> ProjectResolution:
    """Resolve `project` (a `_project.Project`) against `sources`.

    `locked` (name -> version, e.g. `Lock.versions`) are preferred and let yanked versions stay;
    `upgrade=True` ignores them all, a collection of names ignores them for those packages only
    (`--upgrade-package`). Git-sourced experts must be given in `git_sources` (fetched by the caller).
    """
    ordered, pinned = project_sources(project, sources)
    for spec in project.experts:
        if spec.is_git:
            if not git_sources or spec.name not in git_sources:
                raise UserError(f"the git source of {spec.name} ({spec.git}) has not been fetched",
                                where=str(project.path))
            pinned[spec.name] = git_sources[spec.name]
    provider = ExpertProvider(ordered, pinned=pinned, locked=locked, upgrade=upgrade, max_chain=project.max_chain)
    requirements: list[Requirement | Exclusion] = []
    if project.base is not None:
        requirements.append(provider.base_requirement(project.base.name, project.base.version))
    requirements += [provider.expert_requirement(e.name, e.version) for e in project.experts]
    result: Resolution = resolve(provider, requirements, reporter)
    packages = tuple(sorted((provider.candidate(n, v) for n, v in result.versions.items()), key=lambda c: c.name))
    deps = {name: tuple(sorted(set(edges))) for name, edges in result.dependencies.items()}
    return ProjectResolution(packages, deps, tuple(result.roots), tuple(ordered))
