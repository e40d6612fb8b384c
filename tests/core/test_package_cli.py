"""The package commands end to end through the real CLI in subprocesses: new, pack, inspect, verify,
export-peft; bad input gets one clear line and a non-zero exit, never a traceback."""

import json

from expertpm._keys import Keyring
from expertpm._home import Home
from expertpm_testing.packages import make_expert_source, package_members, tar_member, write_tar_zst


def one_line_error(proc, text):
    assert proc.returncode == 1, proc
    assert proc.stderr.startswith("error: ") and text in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_new_pack_inspect_verify_export(cli, home, tmp_path):
    assert cli("keys", "generate").returncode == 0
    key_id = Keyring(Home(home)).public("default").key_id
    base, sql = tmp_path / "base", tmp_path / "sql"
    assert cli("new", "tiny-qwen3", "--kind", "base", "--dir", str(base), check=True).returncode == 0
    assert "created expert source directory" in cli("new", "sql", "--dir", str(sql), check=True).stdout
    proc = cli("pack", str(sql), "-o", str(tmp_path), "--base", str(base), check=True)
    package = tmp_path / "sql-0.1.0.expert"
    assert proc.stdout.splitlines() == [f"packed sql@0.1.0 -> {package}",
                                        f"{package.stat().st_size} bytes, signed by {key_id} (default)"]
    assert proc.stderr == ""
    inspected = cli("inspect", str(package), check=True).stdout
    assert inspected.startswith("sql 0.1.0 (expert)\n") and "adapter: lora rank 8 alpha 16 on q_proj, v_proj" in inspected
    doc = json.loads(cli("inspect", str(package), "--json", check=True).stdout)
    assert doc["name"] == "sql" and set(doc["files"]) == {"README.md", "adapter_config.json",
                                                          "adapter_model.safetensors"}
    assert cli("verify", str(package), check=True).stdout == f"OK sql@0.1.0 signed by {key_id} (local key 'default')\n"
    assert cli("verify", str(package), "--trusted-key", key_id, check=True).returncode == 0
    one_line_error(cli("verify", str(package), "--trusted-key", "f" * 64),
                   f"signed by key {key_id[:16]}, which is not trusted")
    proc = cli("export-peft", str(package), str(tmp_path / "peft"), check=True)
    assert sorted(p.name for p in (tmp_path / "peft").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    proc = cli("pack", "--from-peft", str(tmp_path / "peft"), "--name", "sql-again", "--version", "1.0.0",
               "--base", str(base), "-o", str(tmp_path), check=True)
    assert "packed sql-again@1.0.0" in proc.stdout


def test_pack_without_a_key_says_how_to_make_one(cli, tmp_path):
    src = make_expert_source(tmp_path / "src")
    (tmp_path / "out").mkdir()
    one_line_error(cli("pack", str(src), "-o", str(tmp_path / "out")),
                   "no key named 'default' — create one with: expertpm keys generate")
    assert list((tmp_path / "out").iterdir()) == []


def test_pack_with_an_encrypted_key(cli, tmp_path):
    cli("keys", "generate", "--name", "locked", "--passphrase-env", "PW", env={"PW": "s3cret"}, check=True)
    src = make_expert_source(tmp_path / "src")
    one_line_error(cli("pack", str(src), "--key", "locked", "-o", str(tmp_path)),
                   "this key is encrypted and no passphrase was given")
    proc = cli("pack", str(src), "--key", "locked", "--passphrase-env", "PW", "-o", str(tmp_path), env={"PW": "s3cret"})
    assert proc.returncode == 0 and "(locked)" in proc.stdout
    assert "warning: the base digests are placeholders" not in proc.stderr


def test_bad_input_is_one_line(cli, tmp_path):
    cli("keys", "generate", check=True)
    src = make_expert_source(tmp_path / "src", version="01.2")
    one_line_error(cli("pack", str(src), "-o", str(tmp_path)), "version: invalid version '01.2'")
    src = make_expert_source(tmp_path / "pickled")
    (src / "pytorch_model.bin").write_bytes(b"\x80\x04.")
    one_line_error(cli("pack", str(src), "-o", str(tmp_path)), "pytorch_model.bin: pickle-based weights are refused")
    one_line_error(cli("pack"), "give either a source directory or --from-peft DIR")
    one_line_error(cli("pack", "--from-peft", str(src), "--name", "x"), "--from-peft also needs --version, --base")
    one_line_error(cli("new", "Bad_Name", "--dir", str(tmp_path / "n")), "invalid expert name 'Bad_Name'")
    assert list(tmp_path.glob("*.expert")) == []


def test_verify_reports_tampering_in_one_line(cli, tmp_path):
    cli("keys", "generate", check=True)
    package = tmp_path / "sql-1.0.0.expert"
    cli("pack", str(make_expert_source(tmp_path / "src")), "-o", str(tmp_path), check=True)
    members = []
    for info, data in package_members(package):
        if info.name == "adapter_model.safetensors":
            data = data[:-1] + bytes([data[-1] ^ 1])
        members.append(tar_member(info.name, data))
    write_tar_zst(tmp_path / "bad.expert", members)
    one_line_error(cli("verify", str(tmp_path / "bad.expert")),
                   "file 'adapter_model.safetensors' does not match its sha256 in the manifest")
    (tmp_path / "cut.expert").write_bytes(package.read_bytes()[:100])
    one_line_error(cli("verify", str(tmp_path / "cut.expert")), "archive is truncated or corrupt")
    one_line_error(cli("inspect", str(tmp_path / "missing.expert")), "cannot open package: No such file or directory")
