"""Verifying a full index snapshot of 100,000 lines versus `sha256sum` of the same bytes (target:
ratio <= 5).

A real signed index of 10,000 packages x 10 versions is cloned into a client repository. Measured:
the full first-fetch verification of that state (root chain, snapshot signature, every bin and
every file hashed against the snapshot, tree shape, config, delegations), reading the files out
of Git. Baseline, same run: `sha256sum` over the same files exported as a plain directory. Also
printed, not part of the target: `deep` verification, which additionally checks the ed25519
signature and schema of every one of the 100,000 lines.

    .venv/bin/python bench/index_verify.py [--packages 10000] [--versions 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pygit2  # noqa: E402

from index_gen import build_index  # noqa: E402
from expertpm._index import IndexHost, export_index  # noqa: E402
from expertpm._index._layout import DEFAULT_LIMITS, utc_now  # noqa: E402
from expertpm._index._verify import verify_candidate  # noqa: E402

TARGET = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-deep", action="store_true", help="skip the (slow) every-signature figure")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-index-verify-", dir=args.workdir))
    try:
        big = build_index(work / "index", args.packages, args.versions)
        mirror = work / "mirror"
        export_index(IndexHost(big.dir), mirror, with_artifacts=False)
        files = sorted(str(p.relative_to(mirror)) for p in mirror.rglob("*") if p.is_file())
        total = sum(os.path.getsize(mirror / f) for f in files)
        print(f"index: {big.lines} lines, {len(files)} files, {total / 1e6:.1f} MB")
        repo = pygit2.clone_repository(f"file://{big.dir}", str(work / "client.git"), bare=True)
        commit = repo.references["refs/heads/main"].target

        def verify(deep: bool = False):
            return verify_candidate(repo, commit, None, big.fingerprint, now=utc_now(), allow_expired=False,
                                    warn=print, limits=DEFAULT_LIMITS, deep=deep)

        def sha256sum():
            subprocess.run(["sha256sum", *files], cwd=mirror, check=True, stdout=subprocess.DEVNULL)

        verify(), sha256sum()  # warm caches
        ours, base = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            sha256sum()
            base.append(time.perf_counter() - start)
            start = time.perf_counter()
            verify()
            ours.append(time.perf_counter() - start)
        b, o = statistics.median(base), statistics.median(ours)
        print(f"sha256sum of the same bytes:            {b * 1000:9.1f} ms")
        print(f"full snapshot verification:             {o * 1000:9.1f} ms")
        if not args.no_deep:
            start = time.perf_counter()
            verify(deep=True)
            d = time.perf_counter() - start
            print(f"deep verification (every line signed):  {d * 1000:9.1f} ms  ({d / b:.1f}x sha256sum; not targeted)")
        ratio = o / b
        print(f"ratio verify / sha256sum = {ratio:.2f} (target <= {TARGET})")
        return 0 if ratio <= TARGET else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
