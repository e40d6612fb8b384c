"""Publishing 1,000 versions in a loop: per-publish time versus one `git commit` of a one-line
change through the git CLI (target: ratio <= 2).

Measured (means, so the periodic folding of packs counts): `expertpm._index.publish` of 1,000 real signed packages (100 names x 10 versions,
packed beforehand) into a real index, each publish doing everything it does for a user: verify
the package, check delegation and the version rules, sign the line, copy the artifact, write the
blobs, bins, signed snapshot and commit with pygit2. Baseline, same run: in a plain Git working
tree, append one line to a file and run `git commit -q -a -m …` (one git process), N times.
Optionally also publishes a few versions into a big index (`--big-packages`).

    .venv/bin/python bench/index_publish.py [--names 100] [--versions 10] [--git-commits 100]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from index_gen import build_index, make_source  # noqa: E402
from expertpm._home import Home  # noqa: E402
from expertpm._index import PublisherKey, delegate, init_index, publish  # noqa: E402
from expertpm._keys import Keyring  # noqa: E402
from expertpm._package import pack  # noqa: E402

TARGET = 2.0


def git_commit_times(repo: Path, n: int) -> list[float]:
    work = repo.parent
    repo.mkdir()
    env = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@b", "PATH": "/usr/bin:/bin", "HOME": str(work)}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    (repo / "file.txt").write_text("start\n")
    subprocess.run(["git", "add", "file.txt"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "start"], cwd=repo, check=True, env=env)
    times = []
    for i in range(n):
        with open(repo / "file.txt", "a") as f:
            f.write(f"line {i}\n")
        start = time.perf_counter()
        subprocess.run(["git", "commit", "-q", "-a", "-m", f"line {i}"], cwd=repo, check=True, env=env)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=100)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--git-commits", type=int, default=100)
    parser.add_argument("--big-packages", type=int, default=0, help="also publish into an index this big")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-index-publish-", dir=args.workdir))
    try:
        home = Home(work / "home")
        ring = Keyring(home)
        ring.generate("root")
        ring.generate("publisher")
        root, publisher = ring.load("root"), ring.load("publisher")
        index = work / "index"
        init_index(index, [root], name="bench")
        delegate(index, PublisherKey(publisher.key_id, publisher.public_key, "publisher"), ["*"], [root])
        packages = []
        (work / "dist").mkdir()
        for v in range(args.versions):
            for n in range(args.names):
                src = make_source(work / "src" / f"{n}-{v}", f"expert-{n:04d}", f"1.{v}.0", seed=n * 1000 + v)
                packages.append(pack(src, work / "dist" / f"expert-{n:04d}-1.{v}.0.expert", publisher))
        print(f"packed {len(packages)} packages")

        git_times = git_commit_times(work / "git-before", args.git_commits)
        publish_times = []
        for package in packages:
            start = time.perf_counter()
            publish(index, package, publisher)
            publish_times.append(time.perf_counter() - start)
        git_times += git_commit_times(work / "git-after", args.git_commits)  # the baseline brackets the loop

        # means, so the occasional folding of packs counts against publish
        per_publish, per_commit = statistics.mean(publish_times), statistics.mean(git_times)
        print(f"git commit (CLI, one-line change): {per_commit * 1000:8.2f} ms mean, "
              f"{statistics.median(git_times) * 1000:.2f} ms median")
        print(f"publish ({len(packages)} in a loop):    {per_publish * 1000:8.2f} ms mean, "
              f"{statistics.median(publish_times) * 1000:.2f} ms median, {max(publish_times) * 1000:.0f} ms max")
        if args.big_packages:
            big = build_index(work / "big", args.big_packages, 10)
            delegate(big.dir, PublisherKey(publisher.key_id, publisher.public_key, "publisher"), ["*"],
                     [Keyring(big.home).load("root")])
            big_times = []
            for package in packages[:20]:
                start = time.perf_counter()
                publish(big.dir, package, publisher)
                big_times.append(time.perf_counter() - start)
            print(f"publish into {big.lines} lines:  {statistics.mean(big_times) * 1000:8.2f} ms mean (not targeted)")
        ratio = per_publish / per_commit
        print(f"ratio publish / git commit = {ratio:.2f} (target <= {TARGET})")
        return 0 if ratio <= TARGET else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
