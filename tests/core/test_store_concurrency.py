"""Several real processes adding, collecting garbage and checking one store at the same time."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from expertpm._canonical import sha256_file
from expertpm._package import pack
from expertpm_testing import make_expert_source, run_cli, store_entries

PRELUDE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from expertpm._home import Home
    from expertpm._store import Store
    store = Store(Home(Path(sys.argv[1])))
    go = Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.001)
""")
ADD = PRELUDE + "print(store.add(sys.argv[3]).digest)\n"
MAINTAIN = PRELUDE + textwrap.dedent("""
    stop, rounds, problems, removed = Path(sys.argv[3]), 0, [], []
    while not stop.exists() or rounds < 3:
        removed += store.gc().removed_packages
        problems += store.fsck()
        rounds += 1
    print(json.dumps({"rounds": rounds, "problems": problems, "removed": removed}))
""")


def _spawn(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_concurrent_adds_gc_and_fsck(tmp_path, home, big_expert, signing_key):
    small = []
    for version in ("1.0.0", "1.1.0"):
        src = make_expert_source(tmp_path / f"src-{version}", version=version, seed=len(small))
        small.append(pack(src, tmp_path, signing_key))
    go, stop = tmp_path / "go", tmp_path / "stop"
    adders = [_spawn(ADD, home, go, package) for package in (big_expert, big_expert, *small)]
    maintainer = _spawn(MAINTAIN, home, go, stop)
    go.touch()
    results = [p.communicate() + (p.returncode,) for p in adders]
    stop.touch()
    out, err = maintainer.communicate()
    assert maintainer.returncode == 0, err
    for stdout, stderr, code in results:
        assert code == 0, stderr
    digests = [stdout.strip() for stdout, _, _ in results]
    expected = [sha256_file(p)[0] for p in (big_expert, big_expert, *small)]
    assert digests == expected
    report = json.loads(out)
    assert report["problems"] == []  # live stagings are never reported, nor deleted
    assert report["removed"] == []  # nothing committed is ever unreferenced
    assert store_entries(home) == {"packages": sorted(set(expected)),
                                   "refs": ["big/1.0.0", "sql/1.0.0", "sql/1.1.0"], "tmp": []}
    assert run_cli("store", "fsck", home=home).returncode == 0
