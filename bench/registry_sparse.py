"""A cold `index add` + update over HTTP for a project needing 20 packages, from a 10,000-package
index served by the registry, versus a full Git clone of that index (target: ratio <= 0.1).

The sparse client (`expertpm._index._http`) fetches `snapshot.json`, `config.json`, the root keys,
then — as the resolver reads them — the 20 package files, their snapshot bins and the publisher
delegation, each verified against the signed snapshot. Measured from an empty client home: add
the index, read the 20 packages' verified entries (what `lock` reads), then `index update` (a 304).
Baselines in the same run: a bare `pygit2.clone_repository` of the index over file:// (no
verification, and no network: the cheapest a full clone can be) and `index add` over Git (clone
+ verification). The registry runs as its own process (1 uvicorn worker). Medians of the rounds.

    .venv/bin/python bench/registry_sparse.py [--packages 10000] [--versions 10] [--needed 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pygit2  # noqa: E402

from index_gen import build_index, package_name  # noqa: E402
from registry_common import registry_server  # noqa: E402
from expertpm._home import Home  # noqa: E402
from expertpm._index import add_index, open_index, update_index  # noqa: E402

TARGET = 0.1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--needed", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-registry-sparse-", dir=args.workdir))
    server = None
    try:
        started = time.perf_counter()
        big = build_index(work / "index", args.packages, args.versions)
        print(f"built index: {args.packages} packages, {big.lines} lines, {big.bytes / 1e6:.1f} MB of package "
              f"files in {time.perf_counter() - started:.1f} s")
        server = registry_server(big.dir)
        needed = [package_name(i) for i in random.Random(7).sample(range(args.packages), args.needed)]

        clones, git_adds, sparse, fetched = [], [], [], []
        for r in range(args.rounds):
            target = work / f"clone-{r}"
            t = time.perf_counter()
            pygit2.clone_repository(f"file://{big.dir}", str(target), bare=True)
            clones.append(time.perf_counter() - t)
            shutil.rmtree(target)

            git_home = Home(work / f"git-{r}")
            t = time.perf_counter()
            add_index(git_home, "bench", f"file://{big.dir}", fingerprint=big.fingerprint)
            git_adds.append(time.perf_counter() - t)
            shutil.rmtree(git_home.root, ignore_errors=True)

            home = Home(work / f"sparse-{r}")
            t = time.perf_counter()
            add_index(home, "bench", server.url, fingerprint=big.fingerprint)
            index = open_index(home, "bench")
            versions = sum(len(index.entries(name)) for name in needed)
            update_index(home, "bench")
            sparse.append(time.perf_counter() - t)
            assert versions == args.needed * args.versions, versions
            fetched.append(_held_files(home))
        clone, git_add, cold = (statistics.median(x) for x in (clones, git_adds, sparse))
        print(f"full Git clone (pygit2, file://, no verification): {clone * 1000:9.1f} ms")
        print(f"`index add` over Git (clone + verification):       {git_add * 1000:9.1f} ms")
        print(f"cold sparse HTTP: add + {args.needed} packages + update:  {cold * 1000:9.1f} ms "
              f"({fetched[-1]} index files held of {args.packages + 260}+)")
        ratio = cold / clone
        print(f"ratio sparse / full clone = {ratio:.3f} (target <= {TARGET}); sparse / Git add = {cold / git_add:.3f}")
        return 0 if ratio <= TARGET else 1
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _held_files(home: Home) -> int:
    from expertpm._index import _gitdb as git

    index = open_index(home, "bench")
    return sum(1 for _ in git.walk_files(index.repo[pygit2.Oid(hex=index.state.commit)].tree))


if __name__ == "__main__":
    sys.exit(main())
