"""A `store add` SIGKILLed at any point leaves the store consistent, and a retry succeeds.

Real subprocesses running the real CLI on a ~32 MB package: killed after random delays spread
over a whole install, and at two named steps through `EXPERTPM_TEST_KILL_AT`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from expertpm._canonical import sha256_file
from expertpm_testing import run_cli, store_entries


def _add_process(home, package, env=None) -> subprocess.Popen:
    full_env = dict(os.environ, EXPERTPM_HOME=str(home), **(env or {}))
    return subprocess.Popen([sys.executable, "-m", "expertpm", "store", "add", str(package)], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _assert_consistent(home, digest):
    fsck = run_cli("store", "fsck", home=home)
    assert (fsck.returncode, fsck.stdout) == (0, "store is consistent\n"), fsck.stdout + fsck.stderr
    entries = store_entries(home)
    assert entries["packages"] in ([], [digest])  # never a partial one: fsck hashed every file
    assert entries["refs"] in ([], ["big/1.0.0"])
    assert entries["tmp"] == []  # leftovers of the dead process were cleaned by fsck
    return entries


def _wait_for_staging(home, proc, timeout=60.0) -> float:
    """Block until the add process has created its staging directory; return when that was."""
    tmp = home / "store" / "tmp"
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and proc.poll() is None:
        if tmp.is_dir() and os.listdir(tmp):
            return time.perf_counter()
        time.sleep(0.002)
    raise AssertionError("store add never started staging")


@pytest.mark.slow
def test_random_kills_during_add(tmp_path, big_expert):
    digest = sha256_file(big_expert)[0]
    timing = _add_process(tmp_path / "timing", big_expert)
    staged = _wait_for_staging(tmp_path / "timing", timing)
    assert timing.wait() == 0
    install = time.perf_counter() - staged  # from staging to a committed ref
    home = tmp_path / "home"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    outcomes = []
    for _ in range(6):
        proc = _add_process(home, big_expert)
        _wait_for_staging(home, proc)
        delay = rng.uniform(0.0, 1.1) * install
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        outcomes.append((round(delay, 3), proc.returncode, store_entries(home)["packages"] != []))
        entries = _assert_consistent(home, digest)
        if entries["refs"]:  # the kill came too late: start over from an empty store
            run_cli("store", "remove", "big@1.0.0", home=home, check=True)
        run_cli("store", "gc", home=home, check=True)
    print(f"seed {seed}; install takes {install:.2f}s after staging starts; "
          f"(delay s, return code, package renamed in): {outcomes}")
    retry = run_cli("store", "add", str(big_expert), home=home, check=True)
    assert retry.stdout.startswith("installed big@1.0.0")
    _assert_consistent(home, digest)


@pytest.mark.parametrize("point", ["before-commit", "after-rename"])
def test_kill_at_named_step_then_retry(tmp_path, big_expert, point):
    digest = sha256_file(big_expert)[0]
    home = tmp_path / "home"
    proc = _add_process(home, big_expert, {"EXPERTPM_TEST_KILL_AT": point})
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    before = store_entries(home)
    assert len(before["tmp"]) == 2  # the dead process's staging dir and its lock file
    entries = _assert_consistent(home, digest)
    assert entries == {"packages": [digest] if point == "after-rename" else [], "refs": [], "tmp": []}
    if point == "after-rename":  # a complete package nothing refers to: gc would free it, a retry adopts it
        assert run_cli("store", "gc", home=home, check=True).stdout.startswith("removed 1 unreferenced")
    run_cli("store", "add", str(big_expert), home=home, check=True)
    assert _assert_consistent(home, digest) == {"packages": [digest], "refs": ["big/1.0.0"], "tmp": []}
