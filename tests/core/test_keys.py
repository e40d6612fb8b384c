"""Keys and signatures: real ed25519 keys in a real home directory."""

import json
import os
import stat

import pytest

from expertpm import KeyringError, SignatureError
from expertpm._canonical import canonical_json
from expertpm._home import Home
from expertpm._keys import Keyring, Signature, SigningKey, key_id_of, verify_signature


def test_generate_writes_private_key_with_0600(home):
    info = Keyring(Home(home)).generate("alice")
    path = home / "keys" / "alice.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert info.key_id == key_id_of(bytes.fromhex(info.public_key))


def test_sign_and_verify_canonical_json(home):
    key = Keyring(Home(home)).generate("alice") and Keyring(Home(home)).load("alice")
    data, sig = key.sign_json({"b": 1, "a": [1, 2]})
    assert data == b'{"a":[1,2],"b":1}'
    verify_signature(sig, data)
    with pytest.raises(SignatureError, match="bad signature by key"):
        verify_signature(sig, data.replace(b"1", b"2", 1))


def test_signature_by_other_key_claiming_same_id_is_refused():
    alice, mallory = SigningKey.generate("alice"), SigningKey.generate("mallory")
    forged = Signature(key_id=alice.key_id, public_key=mallory.public_key,
                       signature=mallory.sign(b"x").signature)
    with pytest.raises(SignatureError, match="key id does not match its public key"):
        verify_signature(forged, b"x")


def test_encrypted_key_needs_the_right_passphrase(home):
    ring = Keyring(Home(home))
    ring.generate("bob", passphrase="correct horse")
    assert ring.list()[0].encrypted
    with pytest.raises(KeyringError, match="this key is encrypted and no passphrase was given"):
        ring.load("bob")
    with pytest.raises(KeyringError, match="wrong passphrase for this key"):
        ring.load("bob", passphrase="wrong")
    assert ring.load("bob", passphrase="correct horse").key_id == ring.public("bob").key_id


def test_group_readable_key_is_refused(home):
    ring = Keyring(Home(home))
    ring.generate("alice")
    os.chmod(home / "keys" / "alice.key", 0o644)
    with pytest.raises(KeyringError, match=r"private key is accessible by other users \(mode 0644\)"):
        ring.load("alice")


def test_malformed_signature_object_is_refused():
    with pytest.raises(SignatureError, match="signature field 'signature' is missing or malformed"):
        Signature.from_dict({"algorithm": "ed25519", "key_id": "a" * 64, "public_key": "b" * 64, "signature": "zz"})


def test_cli_generate_list_export(cli):
    assert cli("keys", "generate", "--name", "alice").returncode == 0
    again = cli("keys", "generate", "--name", "alice")
    assert again.returncode == 1
    assert again.stderr.startswith("error: ") and "a key named 'alice' already exists" in again.stderr
    assert "Traceback" not in again.stderr
    listed = json.loads(cli("keys", "list", "--json").stdout)
    exported = json.loads(cli("keys", "export-public", "alice").stdout)
    assert listed[0]["key_id"] == exported["key_id"]
    missing = cli("keys", "export-public", "carol")
    assert missing.returncode == 1 and "no key named 'carol'" in missing.stderr


def test_canonical_json_rejects_nan():
    from expertpm import FormatError

    with pytest.raises(FormatError):
        canonical_json({"x": float("nan")})
