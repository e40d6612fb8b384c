"""Ed25519 keys and detached signatures over bytes.

A key id is the sha256 hex of the raw 32-byte public key. Private keys live in
`<home>/keys/<name>.key` (JSON, mode 0600, optionally encrypted with a passphrase through
argon2id + XSalsa20-Poly1305). We sign and verify exact bytes (canonical JSON produced by
`_canonical.canonical_json`), never parsed objects.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from ._canonical import canonical_json, parse_json, sha256_bytes
from ._errors import FormatError, KeyringError, SignatureError
from ._home import Home

KEY_FORMAT_VERSION = 1
_KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")


def key_id_of(public_key: bytes) -> str:
    return sha256_bytes(public_key)


@dataclass(frozen=True, slots=True)
class Signature:
    """A detached ed25519 signature, with the public key that made it."""

    key_id: str
    public_key: str  # hex
    signature: str  # hex
    algorithm: str = "ed25519"

    def to_dict(self) -> dict:
        return {"algorithm": self.algorithm, "key_id": self.key_id,
                "public_key": self.public_key, "signature": self.signature}

    @classmethod
    def from_dict(cls, data: object, *, where: str | None = None) -> "Signature":
        if not isinstance(data, dict):
            raise SignatureError("signature must be a JSON object", where=where)
        if data.get("algorithm") != "ed25519":
            raise SignatureError(f"unsupported signature algorithm {data.get('algorithm')!r}", where=where,
                                 hint="expertpm signs with ed25519")
        for field, pattern in (("key_id", _HEX64), ("public_key", _HEX64), ("signature", _HEX128)):
            value = data.get(field)
            if not isinstance(value, str) or not pattern.match(value):
                raise SignatureError(f"signature field {field!r} is missing or malformed", where=where)
        return cls(key_id=data["key_id"], public_key=data["public_key"], signature=data["signature"])


def verify_signature(sig: Signature, data: bytes, *, where: str | None = None) -> None:
    """Check that `sig` is a valid signature of `data` by the key it names. Raises SignatureError."""
    public = bytes.fromhex(sig.public_key)
    if key_id_of(public) != sig.key_id:
        raise SignatureError("signature key id does not match its public key", where=where)
    try:
        nacl.signing.VerifyKey(public).verify(data, bytes.fromhex(sig.signature))
    except (nacl.exceptions.BadSignatureError, ValueError) as exc:
        raise SignatureError(f"bad signature by key {sig.key_id[:16]}", where=where,
                             hint="the signed data was modified or signed by another key") from exc


@dataclass(frozen=True, slots=True)
class PublicKey:
    name: str
    key_id: str
    public_key: str  # hex
    encrypted: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "key_id": self.key_id, "public_key": self.public_key, "algorithm": "ed25519"}


class SigningKey:
    """An unlocked private key."""

    __slots__ = ("name", "_key")

    def __init__(self, name: str, seed: bytes) -> None:
        self.name = name
        self._key = nacl.signing.SigningKey(seed)

    @property
    def public_key(self) -> str:
        return bytes(self._key.verify_key).hex()

    @property
    def key_id(self) -> str:
        return key_id_of(bytes(self._key.verify_key))

    def sign(self, data: bytes) -> Signature:
        raw = self._key.sign(data).signature
        return Signature(key_id=self.key_id, public_key=self.public_key, signature=raw.hex())

    def sign_json(self, obj: object) -> tuple[bytes, Signature]:
        data = canonical_json(obj)
        return data, self.sign(data)

    @classmethod
    def generate(cls, name: str = "ephemeral") -> "SigningKey":
        return cls(name, nacl.utils.random(32))


class Keyring:
    """The private keys under `<home>/keys`."""

    def __init__(self, home: Home) -> None:
        self.dir = home.keys_dir

    def _path(self, name: str) -> Path:
        if not _KEY_NAME.match(name):
            raise KeyringError(f"invalid key name {name!r}", hint="use letters, digits, '.', '_' and '-'")
        return self.dir / f"{name}.key"

    def generate(self, name: str = "default", passphrase: str | None = None) -> PublicKey:
        path = self._path(name)
        if path.exists():
            raise KeyringError(f"a key named {name!r} already exists", where=str(path),
                               hint="choose another --name, or delete the old key file first")
        seed = nacl.utils.random(32)
        key = SigningKey(name, seed)
        doc = {"format_version": KEY_FORMAT_VERSION, "name": name, "algorithm": "ed25519",
               "key_id": key.key_id, "public_key": key.public_key, "secret": _seal(seed, passphrase)}
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(".key.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return PublicKey(name, key.key_id, key.public_key, encrypted=passphrase is not None)

    def list(self) -> list[PublicKey]:
        if not self.dir.is_dir():
            return []
        return [self.public(p.stem) for p in sorted(self.dir.glob("*.key"))]

    def public(self, name: str) -> PublicKey:
        doc = self._read(name)
        return PublicKey(name, doc["key_id"], doc["public_key"], encrypted=doc["secret"].get("kdf") is not None)

    def load(self, name: str = "default", passphrase: str | None = None) -> SigningKey:
        doc = self._read(name)
        path = self._path(name)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise KeyringError(f"private key is accessible by other users (mode {mode:04o})", where=str(path),
                               hint=f"run: chmod 600 {path}")
        seed = _open(doc["secret"], passphrase, where=str(path))
        key = SigningKey(name, seed)
        if key.key_id != doc["key_id"]:
            raise KeyringError("private key does not match its recorded key id", where=str(path))
        return key

    def _read(self, name: str) -> dict:
        path = self._path(name)
        if not path.is_file():
            known = ", ".join(p.stem for p in sorted(self.dir.glob("*.key"))) if self.dir.is_dir() else ""
            raise KeyringError(f"no key named {name!r}", where=str(self.dir),
                               hint=f"known keys: {known}" if known else "create one with: expertpm keys generate")
        try:
            doc = parse_json(path.read_bytes(), where=str(path))
            if not isinstance(doc, dict) or not isinstance(doc.get("secret"), dict):
                raise FormatError("not an expertpm key file", where=str(path))
            for field in ("key_id", "public_key"):
                if not isinstance(doc.get(field), str) or not _HEX64.match(doc[field]):
                    raise FormatError(f"key file field {field!r} is missing or malformed", where=str(path))
        except OSError as exc:
            raise KeyringError(f"cannot read key file: {exc.strerror}", where=str(path)) from exc
        return doc


def _seal(seed: bytes, passphrase: str | None) -> dict:
    if passphrase is None:
        return {"seed": seed.hex()}
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    ops, mem = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
    box_key = nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(), salt,
                                       opslimit=ops, memlimit=mem)
    sealed = nacl.secret.SecretBox(box_key).encrypt(seed)
    return {"kdf": {"name": "argon2id", "salt": salt.hex(), "opslimit": ops, "memlimit": mem},
            "box": "xsalsa20poly1305", "ciphertext": bytes(sealed).hex()}


def _open(secret: dict, passphrase: str | None, *, where: str) -> bytes:
    kdf = secret.get("kdf")
    if kdf is None:
        seed = bytes.fromhex(secret.get("seed", ""))
        if len(seed) != 32:
            raise KeyringError("key file holds a malformed private key", where=where)
        return seed
    if passphrase is None:
        raise KeyringError("this key is encrypted and no passphrase was given", where=where,
                           hint="set EXPERTPM_PASSPHRASE or pass --passphrase-env VAR")
    try:
        box_key = nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode(),
                                           bytes.fromhex(kdf["salt"]), opslimit=kdf["opslimit"],
                                           memlimit=kdf["memlimit"])
        return nacl.secret.SecretBox(box_key).decrypt(bytes.fromhex(secret["ciphertext"]))
    except nacl.exceptions.CryptoError as exc:
        raise KeyringError("wrong passphrase for this key", where=where) from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise KeyringError("key file holds a malformed encrypted key", where=where) from exc


def passphrase_from_env(var: str | None) -> str | None:
    """The passphrase from `--passphrase-env VAR`, else `$EXPERTPM_PASSPHRASE`, else None."""
    if var:
        if var not in os.environ:
            raise KeyringError(f"environment variable {var} is not set", hint="export it or drop --passphrase-env")
        return os.environ[var]
    return os.environ.get("EXPERTPM_PASSPHRASE")
