"""End to end through the real CLI: two EXPERTPM_HOMEs ("machines") and a bare Git remote.
The maintainer creates the index and publishes; the other machine follows it, updates and
installs; attacks and bad input end in one clear line and a non-zero exit."""

import json
import re

import pytest

from expertpm_testing.core import run_cli
from expertpm_testing.index import push_index
from expertpm_testing.packages import make_expert_source


def ok(*args, home):
    proc = run_cli(*args, home=home)
    assert proc.returncode == 0, f"expertpm {' '.join(args)} failed:\n{proc.stderr}"
    return proc.stdout


def fails(*args, home, code=1):
    proc = run_cli(*args, home=home)
    assert proc.returncode == code, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in proc.stderr
    return proc.stderr


@pytest.mark.slow
def test_publish_on_one_machine_update_and_install_on_the_other(tmp_path, bare_remote):
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    index = tmp_path / "index"
    for key in ("root", "default"):
        ok("keys", "generate", "--name", key, home=alice)
    out = ok("index", "init", str(index), "--root-key", "root", "--name", "team", home=alice)
    fingerprint = re.search(r"fingerprint: ([0-9a-f]{64})", out).group(1)
    ok("index", "delegate", "default", "--names", "sql", "--index", str(index), home=alice)

    src = make_expert_source(tmp_path / "src")
    (tmp_path / "dist").mkdir()
    ok("pack", str(src), "-o", str(tmp_path / "dist"), home=alice)
    assert "published sql@1.0.0" in ok("publish", str(tmp_path / "dist" / "sql-1.0.0.expert"), "--index",
                                       str(index), home=alice)
    push_index(index, bare_remote)

    refused = fails("index", "add", "team", f"file://{bare_remote}", home=bob)
    assert "refusing to trust an index without its root fingerprint" in refused
    ok("index", "add", "team", f"file://{bare_remote}", "--fingerprint", fingerprint,
       "--artifact-base", str(index), home=bob)
    listed = json.loads(ok("index", "list", "--json", home=bob))
    assert listed[0]["fingerprint"] == fingerprint

    make_expert_source(tmp_path / "src2", seed=1, version="1.1.0")
    ok("pack", str(tmp_path / "src2"), "-o", str(tmp_path / "dist"), home=alice)
    ok("publish", str(tmp_path / "dist" / "sql-1.1.0.expert"), "--index", str(index), "--no-embedding", home=alice)
    ok("yank", "sql@1.0.0", "--index", str(index), home=alice)
    push_index(index, bare_remote)

    assert "team: snapshot 3 -> 5 (1 package(s) changed)" in ok("index", "update", home=bob)
    assert "team: up to date (snapshot 5)" in ok("index", "update", "team", home=bob)
    info = ok("info", "sql", home=bob)
    assert re.search(r"1\.0\.0 .*\(yanked\)", info) and "1.1.0" in info
    detail = json.loads(ok("info", "sql@1.1.0", "--json", home=bob))
    assert detail[0]["yanked"] is False and detail[0]["artifact"].endswith("artifacts/sql/sql-1.1.0.expert")
    assert "installed sql@1.1.0 from index 'team'" in ok("install", "sql@^1", "--index", "team", home=bob)
    several = ok("install", "sql@~1.1", "sql@1.1.0", home=bob).splitlines()  # several specs, in order
    assert [line.split(" from ")[0] for line in several] == ["installed sql@1.1.0"] * 2
    assert "sql" in ok("store", "list", home=bob)
    assert "every line checked" in ok("index", "verify", "team", home=bob)

    ok("unyank", "sql@1.0.0", "--index", str(index), home=alice)
    ok("index", "refresh", "--index", str(index), home=alice)
    push_index(index, bare_remote)
    assert "team: snapshot 5 -> 7" in ok("index", "update", home=bob)


@pytest.mark.slow
def test_cli_refusals_are_one_line(tmp_path):
    maint = tmp_path / "maint"
    index = tmp_path / "index"
    ok("keys", "generate", "--name", "root", home=maint)
    ok("keys", "generate", "--name", "default", home=maint)
    fingerprint = re.search(r"fingerprint: (\w+)", ok("index", "init", str(index), "--root-key", "root",
                                                       home=maint)).group(1)
    src = make_expert_source(tmp_path / "src")
    (tmp_path / "dist").mkdir()
    ok("pack", str(src), "-o", str(tmp_path / "dist"), home=maint)
    package = str(tmp_path / "dist" / "sql-1.0.0.expert")
    assert "is not delegated to publish 'sql'" in fails("publish", package, "--index", str(index), "--no-embedding", home=maint)
    ok("index", "delegate", "default", "--names", "sql", "--index", str(index), home=maint)
    ok("publish", package, "--index", str(index), "--no-embedding", home=maint)
    assert "sql@1.0.0 is already published" in fails("publish", package, "--index", str(index), "--no-embedding", home=maint)
    assert "names no version" in fails("yank", "sql", "--index", str(index), home=maint)
    assert "no index named 'nope'" in fails("index", "update", "nope", home=maint)
    assert "no package sql in your indexes" in fails("info", "sql", home=maint)

    ok("index", "refresh", "--index", str(index), "--expires", "0.00001", home=maint)
    import time

    time.sleep(1.5)
    client = tmp_path / "client"
    assert "refusing a frozen index" in fails("index", "add", "main", str(index), "--fingerprint", fingerprint,
                                              home=client)
    proc = run_cli("index", "add", "main", str(index), "--fingerprint", fingerprint, "--allow-expired", home=client)
    assert proc.returncode == 0 and "WARNING: the index snapshot expired" in proc.stderr
    proc = run_cli("index", "update", "--allow-expired", home=client)
    assert proc.returncode == 0 and "--allow-expired was given" in proc.stderr
