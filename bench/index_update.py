"""`index update` fetching one new version into an index of 10,000 packages x 10 versions, versus a
fresh clone of the same index (target: ratio <= 0.05).

The index is a real signed index served as a Git remote over file://. Baselines, measured in the
same run: a bare `pygit2.clone_repository` of the index (no verification at all) and a fresh
`index add` (clone + full snapshot verification). Measured: after one new version is published,
`update_index` (incremental fetch + verification of the changed files, bins and snapshot). The
median of several rounds counts.

    .venv/bin/python bench/index_update.py [--packages 10000] [--versions 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pygit2  # noqa: E402

from index_gen import append_version, build_index  # noqa: E402
from expertpm._home import Home  # noqa: E402
from expertpm._index import add_index, remove_index, update_index  # noqa: E402

TARGET = 0.05


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-index-update-", dir=args.workdir))
    try:
        started = time.perf_counter()
        big = build_index(work / "index", args.packages, args.versions)
        print(f"built index: {big.lines} lines, {big.bytes / 1e6:.1f} MB of package files "
              f"in {time.perf_counter() - started:.1f} s")
        url = f"file://{big.dir}"
        client = Home(work / "client")

        clones, adds = [], []
        for r in range(args.rounds):
            target = work / f"clone-{r}"
            clones.append(timed(lambda: pygit2.clone_repository(url, str(target), bare=True)))
            shutil.rmtree(target)
            adds.append(timed(lambda: add_index(client, "bench", url, fingerprint=big.fingerprint)))
            if r < args.rounds - 1:
                remove_index(client, "bench")

        updates = []
        for r in range(args.rounds):
            append_version(big, r, f"2.0.{r}")
            updates.append(timed(lambda: update_index(client, "bench")))
        result = update_index(client, "bench")
        assert not result.changed

        clone, add, update = (statistics.median(x) for x in (clones, adds, updates))
        print(f"fresh clone (pygit2, no verification): {clone * 1000:9.1f} ms")
        print(f"fresh `index add` (clone + verify):   {add * 1000:9.1f} ms")
        print(f"`index update`, one new version:      {update * 1000:9.1f} ms")
        ratio = update / clone
        print(f"ratio update / clone = {ratio:.4f} (target <= {TARGET}); update / fresh add = {update / add:.4f}")
        return 0 if ratio <= TARGET else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
