"""`expertpm store ...` end to end in subprocesses, with `--home` and `$EXPERTPM_HOME`."""

from __future__ import annotations

import json

from expertpm._canonical import sha256_file
from expertpm_testing import run_cli, store_entries


def test_add_list_path_remove_gc_with_env_home(cli, home, packed_expert, signing_key):
    digest = sha256_file(packed_expert)[0]
    added = cli("store", "add", str(packed_expert), "--trust", signing_key.key_id, "--sha256", digest, check=True)
    path = home / "store" / "packages" / digest
    assert added.stdout.splitlines() == [
        f"installed sql@1.0.0 (expert, sha256 {digest[:16]}, signed by {signing_key.key_id[:16]})", str(path)]
    listed = cli("store", "list", check=True).stdout
    assert listed.split() == ["sql", "1.0.0", "expert", digest[:16]]
    as_json = json.loads(cli("store", "list", "--json", check=True).stdout)
    assert as_json == [{"name": "sql", "version": "1.0.0", "kind": "expert", "digest": digest, "path": str(path),
                        "signer_key_id": signing_key.key_id}]
    assert cli("store", "path", "sql@1.0.0", check=True).stdout == f"{path}\n"
    assert cli("store", "path", "sql", check=True).stdout == f"{path}\n"
    assert cli("store", "fsck", check=True).stdout == "store is consistent\n"
    assert cli("store", "remove", "sql@1.0.0", check=True).stdout.startswith("removed sql@1.0.0")
    gc = cli("store", "gc", check=True).stdout
    assert gc.startswith("removed 1 unreferenced package(s), freed ")
    assert store_entries(home) == {"packages": [], "refs": [], "tmp": []}
    assert cli("store", "list", check=True).stdout.startswith("no packages installed")


def test_home_flag_wins_over_env(cli, home, tmp_path, packed_expert):
    other = tmp_path / "other-home"
    run_cli("store", "add", str(packed_expert), "--home", str(other), home=home, check=True)
    assert store_entries(other)["refs"] == ["sql/1.0.0"]
    assert store_entries(home)["refs"] == []
    assert json.loads(cli("store", "list", "--json", "--home", str(other), check=True).stdout)[0]["name"] == "sql"


def test_fsck_exits_1_with_one_line_per_problem(cli, home, packed_expert):
    cli("store", "add", str(packed_expert), check=True)
    digest = sha256_file(packed_expert)[0]
    readme = home / "store" / "packages" / digest / "README.md"
    readme.chmod(0o644)
    readme.write_text("# changed\n")
    (home / "store" / "refs" / "sql" / "2.0.0").write_text("f" * 64)
    result = cli("store", "fsck")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"packages/{digest}/README.md: writable (mode 0644); installed files must be read-only",
        f"packages/{digest}/README.md: size 10 differs from the manifest's 22",
        f"refs/sql/2.0.0: refers to missing package {'f' * 64} — reinstall sql@2.0.0",
    ]
    assert result.stderr == "3 problem(s) found in the store\n"


def test_user_mistakes_get_one_line(cli, home, packed_expert):
    cli("store", "add", str(packed_expert), check=True)
    cases = {
        ("store", "path", "sqk@1.0.0"): "no package named 'sqk' is installed — did you mean sql?",
        ("store", "path", "sql@2.0.0"): "sql@2.0.0 is not installed — installed versions: 1.0.0",
        ("store", "remove", "sql"): "expected NAME@VERSION, got 'sql' — for example: sql@1.0.0",
    }
    for args, message in cases.items():
        result = cli(*args)
        assert result.returncode == 1
        assert result.stderr.strip().endswith(message), result.stderr
        assert len(result.stderr.splitlines()) == 1
