"""`expertpm sync --locked` of 10 experts (~250 MB) from a directory mirror versus `cp -r` of the
same artifacts (target: ratio <= 1.5), and a no-op `sync` (target: < 0.3 s).

A real signed index is built in a temporary directory: a tiny base and 10 experts of float32
weights, published, locked by a project and written to a mirror with `mirror create --lock`.
Each run then starts a fresh home that follows the mirror and times the CLI (`python -m expertpm
sync --locked`, interpreter start-up included) against `cp -r` of the mirror's artifacts
directory, interleaved; the best run counts (other processes on a shared machine only add time),
the median is shown too. One untimed sync first compiles the bytecode (an installed expertpm has
it; PYTHONDONTWRITEBYTECODE is dropped for the CLI runs) and warms the caches, as one untimed
copy does for `cp`.

Sync does more than the copy: it reads each archive once, hashing it (the locked digest) while
zstd decompresses it and hashing every file (the manifest's digests) while writing it, checks
signatures and safetensors headers, and makes the result durable before renaming it into the
store (writeback started as each file is sealed, then a syncfs per commit step; see
docs/store.md); `EXPERTPM_FSYNC=0` skips that and has its own row, and `cp -r` + fsync is shown
for comparison. The "floor" row is that unavoidable work alone, in this process
on one thread per CPU: sha256 of every archive, zstd decompression and sha256 of the output,
with nothing written; its breakdown is printed too.

    .venv/bin/python bench/sync.py [--experts 10] [--mb 25] [-n 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET, NOOP_TARGET_S = 1.5, 0.3


def build(workdir: Path, experts: int, megabytes: int) -> tuple[Path, Path, str]:
    """(project dir, mirror dir, fingerprint)."""
    import numpy as np
    from safetensors.numpy import save_file

    from expertpm._actions import do_init, do_lock
    from expertpm._home import Home
    from expertpm._index import add_index, delegate, init_index, publish, publisher_key_from
    from expertpm._keys import Keyring
    from expertpm._mirror import create_mirror
    from expertpm._package import pack
    from expertpm._scaffold import scaffold

    maintainer = Home(workdir / "maintainer")
    ring = Keyring(maintainer)
    ring.generate("root")
    ring.generate("publisher")
    root, publisher = ring.load("root"), ring.load("publisher")
    index = workdir / "index"
    fingerprint = init_index(index, [root], name="bench")
    delegate(index, publisher_key_from(maintainer, "publisher"), ["*"], [root])
    base = scaffold("tiny-qwen3", workdir / "base", kind="base")
    doc = json.loads((base / "manifest.json").read_text())
    doc["version"] = "1.0.0"
    (base / "manifest.json").write_text(json.dumps(doc))
    (workdir / "dist").mkdir()
    publish(index, pack(base, workdir / "dist", publisher), publisher)
    rng = np.random.default_rng(0)
    rows = max(1, round(megabytes * 1e6 / (4096 * 4)))
    for i in range(experts):
        src = workdir / f"src-{i}"
        src.mkdir()
        name = f"bench-{i:02d}"
        (src / "manifest.json").write_text(json.dumps({
            "format_version": 1, "name": name, "version": "1.0.0", "kind": "expert", "description": "benchmark",
            "license": "Apache-2.0", "authors": ["bench"], "base": {"name": "tiny-qwen3", "version": "^1"},
            "adapter": {"type": "lora", "rank": 64, "alpha": 128, "target_modules": ["q_proj"], "dtype": "float32"}}))
        save_file({"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":
                   rng.standard_normal((rows, 4096), dtype=np.float32)}, str(src / "adapter_model.safetensors"))
        (src / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 64, "lora_alpha": 128,
                                                              "target_modules": ["q_proj"]}))
        publish(index, pack(src, workdir / "dist", publisher, base_dir=base), publisher)
        shutil.rmtree(src)
    client = Home(workdir / "client")
    add_index(client, "default", str(index), fingerprint=fingerprint)
    project = workdir / "project"
    project.mkdir()
    do_init(project)
    with open(project / "experts.toml", "a") as f:
        f.writelines(f'bench-{i:02d} = "^1"\n' for i in range(experts))
    do_lock(project, client, offline=True)
    mirror = workdir / "mirror"
    create_mirror(client, mirror, lock=project / "experts.lock", offline=True)
    shutil.rmtree(index / "artifacts")  # only the mirror holds artifacts now
    return project, mirror, fingerprint


def timed(cmd, **kw) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def fresh_home(workdir: Path, mirror: Path, fingerprint: str) -> Path:
    from expertpm._home import Home
    from expertpm._index import add_index

    home = workdir / "machine-b"
    shutil.rmtree(home, ignore_errors=True)
    add_index(Home(home), "default", str(mirror), fingerprint=fingerprint)
    quiesce()
    return home


def quiesce() -> None:
    """Before each timed run: write back (and, on a `discard` mount, trim) what earlier runs wrote
    and deleted, so no run pays for the one before it."""
    os.sync()


def cli_env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return dict(env, EXPERTPM_HOME=str(home), **extra)


def sync_cli(project: Path, home: Path, **env: str) -> float:
    (project / ".experts" / "installed.json").unlink(missing_ok=True)
    return timed([sys.executable, "-m", "expertpm", "sync", "--locked"], cwd=project, env=cli_env(home, **env))


def floor(mirror: Path) -> tuple[float, dict[str, float]]:
    """(wall time on one thread per CPU, single-thread seconds of each part) of the work no
    verified install can skip: sha256 of the archives, zstd decompression, sha256 of the output."""
    import concurrent.futures
    import hashlib

    import zstandard

    archives = sorted((mirror / "artifacts").rglob("*.expert"))
    parts = {"sha256 of the archives": 0.0, "zstd -d": 0.0, "sha256 of the files": 0.0}

    def one(path: Path, timed_parts: bool) -> None:
        data = path.read_bytes()
        t0 = time.perf_counter()
        hashlib.sha256(data)
        t1 = time.perf_counter()
        reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
        out, digest = [], hashlib.sha256()
        while chunk := reader.read(1 << 20):
            out.append(chunk)
        t2 = time.perf_counter()
        for chunk in out:
            digest.update(chunk)
        t3 = time.perf_counter()
        if timed_parts:
            for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
                parts[key] += dt

    for path in archives:
        one(path, True)
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda p: one(p, False), archives))
    return time.perf_counter() - start, parts


def copy(mirror: Path, workdir: Path, fsync: bool) -> float:
    out = workdir / "cp-out"
    shutil.rmtree(out, ignore_errors=True)
    quiesce()
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(mirror / "artifacts"), str(out)], check=True)
    if fsync:
        for path in out.rglob("*"):
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
    elapsed = time.perf_counter() - start
    shutil.rmtree(out)
    return elapsed


def tar_and_hash(mirror: Path, workdir: Path) -> float:
    """What the store itself is benchmarked against: unpack each archive and hash every file."""
    out = workdir / "tar-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    archives = sorted((mirror / "artifacts").rglob("*.expert"))
    quiesce()
    start = time.perf_counter()
    for i, archive in enumerate(archives):
        (out / str(i)).mkdir()
        subprocess.run(["tar", "--zstd", "-xf", str(archive), "-C", str(out / str(i))], check=True)
    subprocess.run(f"sha256sum {' '.join(map(str, archives))} >/dev/null && "
                   f"find {out} -type f -exec sha256sum {{}} + >/dev/null", shell=True, check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(out)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=10)
    parser.add_argument("--mb", type=int, default=25, help="MB of weights per expert (default 25)")
    parser.add_argument("-n", type=int, default=3, help="interleaved runs of each side (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sync-", dir=os.environ.get("BENCH_TMP")) as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        project, mirror, fingerprint = build(workdir, args.experts, args.mb)
        total = sum(p.stat().st_size for p in (mirror / "artifacts").rglob("*.expert"))
        print(f"built {args.experts} experts + base, {total / 1e6:.0f} MB of artifacts in the mirror "
              f"({time.perf_counter() - t0:.0f} s)")
        copy(mirror, workdir, False)  # warm the page cache
        sync_cli(project, fresh_home(workdir, mirror, fingerprint))  # compile the bytecode, warm the caches
        base, durable, untar, ours, unsynced, floors = [], [], [], [], [], []
        for i in range(args.n):
            base.append(copy(mirror, workdir, False))
            durable.append(copy(mirror, workdir, True))
            untar.append(tar_and_hash(mirror, workdir))
            # the two syncs take turns going first: the second of a pair runs measurably slower
            # here (the file system still digesting the first one's 250 MB being deleted)
            for runs, env in ([(ours, {}), (unsynced, {"EXPERTPM_FSYNC": "0"})][::1 if i % 2 == 0 else -1]):
                home = fresh_home(workdir, mirror, fingerprint)
                runs.append(sync_cli(project, home, **env))
            wall, parts = floor(mirror)
            floors.append(wall)
        noop = [timed([sys.executable, "-m", "expertpm", "sync", "--locked"], cwd=project, env=cli_env(home))
                for _ in range(5)]
        from expertpm._actions import do_sync
        from expertpm._home import Home

        start = time.perf_counter()
        result = do_sync(project, Home(home), mode="locked")
        in_process = time.perf_counter() - start
        assert result.plan is None
        interpreter = min(timed([sys.executable, "-c", "pass"]) for _ in range(5))
    print(f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    rows = [("cp -r artifacts", base), ("cp -r + fsync", durable), ("tar --zstd -x + sha256sum", untar),
            ("expertpm sync --locked", ours), ("  with EXPERTPM_FSYNC=0", unsynced),
            (f"floor ({os.cpu_count()} threads)", floors)]
    for label, runs in rows:
        print(f"{label:<26} best {min(runs):6.2f} s  median {statistics.median(runs):6.2f} s  "
              f"runs {', '.join(f'{t:.2f}' for t in runs)}")
    print("floor, one thread: " + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items())
          + f" (sum {sum(parts.values()):.2f} s)")
    ratio = min(ours) / min(base)
    median = statistics.median(ours) / statistics.median(base)
    print(f"ratio vs cp -r (best of {args.n}) {ratio:.2f}, (median) {median:.2f}"
          f"; vs cp -r + fsync {min(ours) / min(durable):.2f}; vs tar + sha256sum {min(ours) / min(untar):.2f}"
          f"; EXPERTPM_FSYNC=0 vs cp -r {min(unsynced) / min(base):.2f}; floor vs cp -r {min(floors) / min(base):.2f}"
          f" — target <= {TARGET:g} (vs cp -r)")
    print(f"no-op sync: CLI best {min(noop):.3f} s, median {statistics.median(noop):.3f} s (python -c pass: "
          f"{interpreter:.3f} s); in-process {in_process * 1000:.1f} ms — target < {NOOP_TARGET_S:g} s")
    return 0 if ratio <= TARGET and min(noop) < NOOP_TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
