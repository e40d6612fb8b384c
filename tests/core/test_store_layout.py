"""Staging directories, stale-leftover cleanup and atomic writes, with real processes and files."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from expertpm._errors import StoreError
from expertpm._store.layout import (Layout, Staging, clean_stale, durable, flush, remove_tree, rename_scratch, seal_tree,
                                    write_scratch)

HOLD_STAGING = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from expertpm._store.layout import Staging
    staging = Staging(Path(sys.argv[1]))
    (staging.path / "partial.bin").write_bytes(b"x" * 1000)
    print(staging.path, flush=True)
    time.sleep(600)
""")


def _hold_staging(tmp_dir):
    proc = subprocess.Popen([sys.executable, "-c", HOLD_STAGING, str(tmp_dir)], stdout=subprocess.PIPE, text=True)
    path = proc.stdout.readline().strip()
    assert path, "the staging holder did not start"
    return proc, path


def test_live_staging_of_another_process_survives_cleanup_and_dead_one_is_removed(tmp_path):
    layout = Layout(tmp_path / "store")
    layout.ensure()
    proc, path = _hold_staging(layout.tmp)
    try:
        assert clean_stale(layout.tmp) == []
        assert os.path.isdir(path)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    name = os.path.basename(path)
    assert sorted(clean_stale(layout.tmp)) == [name, f"{name}.lock"]
    assert os.listdir(layout.tmp) == []


def test_cleanup_removes_unlocked_leftovers_and_keeps_own_live_staging(tmp_path):
    layout = Layout(tmp_path / "store")
    layout.ensure()
    (layout.tmp / "gc-0123").mkdir()
    (layout.tmp / "gc-0123" / "f").write_bytes(b"1")
    (layout.tmp / "orphan.lock").write_bytes(b"")
    (layout.tmp / "stray-file").write_bytes(b"2")
    with Staging(layout.tmp) as staging:
        assert sorted(clean_stale(layout.tmp)) == ["gc-0123", "orphan.lock", "stray-file"]
        assert staging.path.is_dir()
    assert os.listdir(layout.tmp) == []


def test_seal_tree_makes_files_read_only_and_remove_tree_still_deletes_them(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(b"a" * 10)
    (root / "sub" / "b.bin").write_bytes(b"b" * 5)
    seal_tree(root)
    for f in (root / "a.bin", root / "sub" / "b.bin"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o444
    (root / "sub").chmod(0o555)  # even a read-only directory goes
    assert remove_tree(root) == 15
    assert not root.exists()


def test_scratch_writes_replace_and_create_parents(tmp_path):
    target = tmp_path / "refs" / "demo" / "1.0.0"
    for n, data in enumerate((b"one\n", b"two\n")):
        writes = [(target, data, tmp_path / f"scratch{n}")]
        changed = write_scratch(writes)
        assert changed == ([tmp_path / "refs", target.parent] if n == 0 else [target.parent])
        assert target.exists() == (n == 1)  # nothing visible before the rename
        flush([tmp_path / f"scratch{n}", *changed])
        rename_scratch(writes)
    assert target.read_bytes() == b"two\n"
    assert not (tmp_path / "scratch0").exists() and not (tmp_path / "scratch1").exists()


def test_seal_tree_lists_files_before_the_directories_that_name_them(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "a.bin").write_bytes(b"a")
    (root / "sub" / "b.bin").write_bytes(b"b")
    written = seal_tree(root)
    assert sorted(written[:2]) == [root / "a.bin", root / "sub" / "b.bin"]
    assert written[2:] == [root / "sub", root]
    flush(written * 4)  # enough paths for one syncfs of the file system (where the C library has it)


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("1", True), ("yes", True), ("0", False),
                                                 ("off", False), (" False ", False)])
def test_expertpm_fsync_switch(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("EXPERTPM_FSYNC", raising=False)
    else:
        monkeypatch.setenv("EXPERTPM_FSYNC", value)
    assert durable() is expected


def test_expertpm_fsync_refuses_a_value_it_does_not_know(monkeypatch):
    monkeypatch.setenv("EXPERTPM_FSYNC", "sometimes")
    with pytest.raises(StoreError, match=r"EXPERTPM_FSYNC='sometimes' is not a yes/no value"):
        durable()
