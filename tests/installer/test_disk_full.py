"""A full disk during `sync`: one clear error line, no ref to anything half-written, the project's
installed set untouched, and the store still clean. Simulated with a small tmpfs mounted over the
store (in a user + mount namespace, where the kernel allows it) and with a file-size limit."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys

import pytest

from expertpm._actions import do_add, do_init

CHECK_STORE = r"""
import json, os, sys
from expertpm._home import Home
from expertpm._store import Store
from pathlib import Path
store = Store(Home(Path(sys.argv[1])))
problems = store.fsck()
print(json.dumps({"refs": sorted(p.id for p in store.list()), "fsck": problems,
                  "tmp": sorted(os.listdir(store.layout.tmp))}))
"""


def _tmpfs_works() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || "
                            "mount -t tmpfs -o size=64k tmpfs /tmp"], capture_output=True)
    return probe.returncode == 0


@pytest.fixture
def big_world(followed_world):
    world = followed_world
    world.publish_expert("tool-call", "1.1.0", size=400_000)
    do_init(world.project)
    do_add(world.project, world.home, ["tool-call"])
    world.home.store_dir.mkdir(parents=True)
    return world


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def _check(world) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHECK_STORE, str(world.home.root)], capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout)


def test_a_file_size_limit_mid_install_leaves_nothing_half_installed(big_world):
    world = big_world
    env = dict(os.environ, EXPERTPM_HOME=str(world.home.root))
    proc = subprocess.run([sys.executable, "-m", "expertpm", "sync"], cwd=world.project, env=env, text=True,
                          capture_output=True, preexec_fn=_limit_file_size)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith("error: ") and "while extracting: File too large" in lines[0]
    assert _check(world) == {"refs": [], "fsck": [], "tmp": []}
    assert not (world.project / ".experts" / "installed.json").exists()


@pytest.mark.skipif(not _tmpfs_works(), reason="needs unshare -rm and tmpfs mounts in a user namespace")
def test_a_full_tmpfs_store_leaves_nothing_half_installed(big_world):
    world = big_world
    script = (f'mount -t tmpfs -o size=600k tmpfs "{world.home.store_dir}" && '
              f'"{sys.executable}" -m expertpm sync 2>"{world.tmp}/stderr"; echo $? >"{world.tmp}/rc"; '
              f'"{sys.executable}" -c \'{CHECK_STORE}\' "{world.home.root}"')
    env = dict(os.environ, EXPERTPM_HOME=str(world.home.root))
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=world.project, env=env, text=True,
                          capture_output=True)
    assert proc.returncode == 0, proc.stderr
    stderr = (world.tmp / "stderr").read_text()
    assert (world.tmp / "rc").read_text().strip() == "1", stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "No space left on device" in lines[0], stderr
    assert json.loads(proc.stdout) == {"refs": [], "fsck": [], "tmp": []}
    assert not (world.project / ".experts" / "installed.json").exists()
