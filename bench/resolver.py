"""Resolver time versus resolvelib on the same generated index (target: ratio <= 1.0, absolute < 1 s).

The index: 10,000 experts x 20 versions (1.0.0 .. 2.9.0) on one base model, plus the base
(1.0.0 and 1.1.0 with one weights digest, 2.0.0 with another). The request: base ^1 and 50
experts, each the head of a requires chain 20 deep, with cross-links between chains (about 1,000
experts selected). It is not a walk in the park: the 2.x versions of every fourth chain node were
built on the 2.x base (unusable under base ^1), and the 2.x versions of every seventh node require
their child at ^2, so both resolvers must learn to step back to 1.x for some packages.

Two scenarios. *fair*: the only dead ends are candidates whose base does not match, which
resolvelib rejects as it pins them; the ratio on this one is the target. *trap*: as fair, plus the
2.x versions of every seventh node require their child at ^2 -- a dead end that only shows two
levels down; resolvelib backtracks through it exponentially and is given up on after --limit s.

Both resolvers read the same in-memory index entries and match with the same `VersionRange`
semantics; the baseline is resolvelib driven through a minimal provider (newest candidate first,
pip-like preference: unpinned, then not direct, then not a backtrack cause, then by name; counting
candidates for the preference was 2x slower still). Incompatibility rules and max_chain are left
out of the data because resolvelib cannot state them. Our resolver runs -n times (median wall time,
min CPU time), resolvelib --baseline-runs times.

    .venv/bin/python bench/resolver.py [-n 5] [--baseline-runs 1] [--limit 120]
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import statistics
import sys
import time
from pathlib import Path

import resolvelib

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from expertpm._project import BaseSpec, ExpertSpec, Project  # noqa: E402
from expertpm._provider import MemorySource, resolve_project  # noqa: E402
from expertpm._versions import Version, VersionRange  # noqa: E402

TARGET = 1.0
ROOTS, DEPTH, STRIDE = 50, 20, 200
W1, W2 = hashlib.sha256(b"w1").hexdigest(), hashlib.sha256(b"w2").hexdigest()
TOKENIZER = hashlib.sha256(b"tok").hexdigest()
ROUTING = {"keywords": [], "exclude_keywords": [], "examples": []}


def name_of(i: int) -> str:
    return f"expert-{i:05d}"


def generate(n_experts: int, n_versions: int, *, trap: bool) -> list[dict]:
    base1 = {"name": "tiny-base", "version": "^1", "weights_sha256": W1, "tokenizer_sha256": TOKENIZER, "vocab_size": 512}
    base2 = dict(base1, version="^2", weights_sha256=W2)
    entries = [_entry("tiny-base", v, "base", model={"architecture": "qwen3", "weights_sha256": w,
                                                     "tokenizer_sha256": TOKENIZER, "vocab_size": 512,
                                                     "context_length": 256})
               for v, w in (("1.0.0", W1), ("1.1.0", W1), ("2.0.0", W2))]
    for i in range(n_experts):
        chain, depth = divmod(i, STRIDE)
        in_chain = chain < ROOTS and depth < DEPTH
        for v in range(n_versions):
            major, minor = 1 + v // 10, v % 10
            requires = {}
            if in_chain and depth + 1 < DEPTH:
                child = name_of(i + 1)
                requires[child] = "^2" if trap and major == 2 and depth % 7 == 6 else ("^1" if major == 1 else ">=1.5")
                if depth % 5 == 0:
                    requires[name_of(((chain + 1) % ROOTS) * STRIDE + depth + 1)] = ">=1.2, <2.5"
            elif not in_chain and i + 1 < n_experts:
                requires[name_of(i + 1)] = "*"  # the rest of the index: long chains nobody asks for
            base = base2 if in_chain and major == 2 and depth % 4 == 3 else base1
            entries.append(_entry(name_of(i), f"{major}.{minor}.0", "expert", base=base, requires=requires))
    return entries


def _entry(name: str, version: str, kind: str, **fields) -> dict:
    digest = hashlib.sha256(f"{name}@{version}".encode()).hexdigest()
    return {"name": name, "version": version, "kind": kind, "sha256": digest, "size": 4096, "manifest_sha256": digest,
            "description": "", "license": "MIT", "requires": {}, "incompatible_with": {}, "routing": ROUTING,
            "published": "2025-01-01T00:00:00Z", "publisher": "0" * 64, "signature": "0" * 128, **fields}


# -- ours ----------------------------------------------------------------------------------
def run_ours(source: MemorySource) -> dict[str, str]:
    project = Project(path=Path("experts.toml"), name="bench", base=BaseSpec("tiny-base", "^1"),
                      experts=tuple(ExpertSpec(name_of(c * STRIDE), "*") for c in range(ROOTS)), max_chain=10**6)
    result = resolve_project(project, [source])
    return {c.name: str(c.version) for c in result.packages}


# -- the baseline: resolvelib through a minimal provider ------------------------------------
class Candidate:
    __slots__ = ("name", "version", "entry")

    def __init__(self, name: str, version: Version, entry: dict) -> None:
        self.name, self.version, self.entry = name, version, entry


class Req:
    __slots__ = ("name", "range", "digest")

    def __init__(self, name: str, range_: VersionRange, digest: str | None = None) -> None:
        self.name, self.range, self.digest = name, range_, digest

    def matches(self, c: Candidate) -> bool:
        if not self.range.contains(c.version):
            return False
        return self.digest is None or (c.entry.get("model") or {}).get("weights_sha256") == self.digest


class MinimalProvider(resolvelib.AbstractProvider):
    def __init__(self, source: MemorySource) -> None:
        self.source = source
        self.cache: dict[str, list[Candidate]] = {}
        self.ranges: dict[str, VersionRange] = {}

    def rng(self, text: str) -> VersionRange:
        if text not in self.ranges:
            self.ranges[text] = VersionRange.parse(text)
        return self.ranges[text]

    def candidates(self, name: str) -> list[Candidate]:
        if name not in self.cache:
            found = [Candidate(name, Version.parse(e["version"]), e) for e in self.source.versions(name)
                     if not e.get("yanked")]
            self.cache[name] = sorted(found, key=lambda c: c.version, reverse=True)
        return self.cache[name]

    def identify(self, requirement_or_candidate):
        return requirement_or_candidate.name

    def get_preference(self, identifier, resolutions, candidates, information, backtrack_causes):
        return (identifier in resolutions, not any(i.parent is None for i in information[identifier]),
                any(c.requirement.name == identifier for c in backtrack_causes), identifier)

    def find_matches(self, identifier, requirements, incompatibilities):
        bad = {c.version for c in incompatibilities[identifier]}
        reqs = list(requirements[identifier])
        return [c for c in self.candidates(identifier) if c.version not in bad and all(r.matches(c) for r in reqs)]

    def is_satisfied_by(self, requirement, candidate):
        return requirement.matches(candidate)

    def get_dependencies(self, candidate):
        deps = []
        base = candidate.entry.get("base")
        if base:
            deps.append(Req(base["name"], self.rng(base["version"]), base["weights_sha256"]))
        deps += [Req(n, self.rng(r)) for n, r in sorted(candidate.entry["requires"].items())]
        return deps


def run_resolvelib(source: MemorySource) -> dict[str, str]:
    provider = MinimalProvider(source)
    requirements = [Req("tiny-base", provider.rng("^1"))] + [Req(name_of(c * STRIDE), provider.rng("*")) for c in range(ROOTS)]
    result = resolvelib.Resolver(provider, resolvelib.BaseReporter()).resolve(requirements, max_rounds=100_000)
    return {name: str(c.version) for name, c in result.mapping.items()}


class GaveUp(Exception):
    pass


def timed(fn, source, n: int, limit: float | None = None) -> tuple[float, float, dict | None]:
    """(median wall seconds, min CPU seconds, result); wall = limit and result None if it gave up."""
    walls, cpus, out = [], [], None
    for _ in range(n):
        if limit:
            signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(GaveUp()))
            signal.setitimer(signal.ITIMER_REAL, limit)
        start, cpu = time.perf_counter(), time.process_time()
        try:
            out = fn(source)
        except GaveUp:
            return limit, time.process_time() - cpu, None
        finally:
            if limit:
                signal.setitimer(signal.ITIMER_REAL, 0)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), min(cpus), out


def scenario(label: str, args, *, trap: bool) -> tuple[float, float, float]:
    """Returns (ours wall, ours CPU, resolvelib wall or the limit)."""
    start = time.perf_counter()
    source = MemorySource("bench", "0" * 64, tuple(generate(args.experts, args.versions, trap=trap)))
    print(f"[{label}] index: {args.experts} experts x {args.versions} versions + base, generated in "
          f"{time.perf_counter() - start:.1f}s")
    ours_wall, ours_cpu, ours = timed(run_ours, source, args.n)
    base_wall, base_cpu, theirs = timed(run_resolvelib, source, args.baseline_runs, args.limit)
    downgraded = sum(1 for v in ours.values() if v.startswith("1."))
    print(f"[{label}] selected {len(ours)} packages ({downgraded} held at 1.x)")
    if theirs is None:
        print(f"[{label}] expertpm (PubGrub) {ours_wall * 1000:.0f} ms wall, {ours_cpu * 1000:.0f} ms CPU   "
              f"resolvelib {resolvelib.__version__}: gave up after {args.limit:.0f} s   ratio < {ours_wall / args.limit:.3f}")
    else:
        same = "same" if ours == theirs else "different (both valid)"
        print(f"[{label}] expertpm (PubGrub) {ours_wall * 1000:.0f} ms wall, {ours_cpu * 1000:.0f} ms CPU   "
              f"resolvelib {resolvelib.__version__}: {base_wall * 1000:.0f} ms wall, {base_cpu * 1000:.0f} ms CPU   "
              f"ratio {ours_wall / base_wall:.3f} wall, {ours_cpu / base_cpu:.3f} CPU   resolutions {same}")
    return ours_wall, ours_cpu, base_wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="runs of our resolver per scenario (default 5)")
    parser.add_argument("--baseline-runs", type=int, default=1, help="runs of resolvelib per scenario (default 1)")
    parser.add_argument("--limit", type=float, default=120.0, help="seconds before resolvelib is given up on")
    parser.add_argument("--experts", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=20)
    args = parser.parse_args()
    ours_wall, ours_cpu, base_wall = scenario("fair", args, trap=False)
    scenario("trap", args, trap=True)
    ratio = ours_wall / base_wall
    # the absolute target is judged on CPU time: wall time on a shared, oversubscribed machine measures the neighbours
    ok = ratio <= TARGET and ours_cpu < 1.0
    print(f"fair scenario: ratio {ratio:.3f} (target <= {TARGET}), {ours_cpu * 1000:.0f} ms CPU (target < 1000 ms): "
          + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
