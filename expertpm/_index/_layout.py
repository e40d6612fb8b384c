"""Where things live in an index: file paths inside the Git tree, limits, and time stamps.

The Git tree (the signed data, identical over every transport):

    config.json                    index name, format version, artifact URL template, root summary
    snapshot.json                  signed by the timestamp key: version, expiry, digest of each bin
    snapshot/<xx>.json             bins: {path: {sha256, size}} for every file whose path hashes to xx
    keys/root/<N>.json             root metadata, version N (never changes once written)
    keys/publishers/<key_id>.json  a publisher delegation, signed by a threshold of root keys
    1/<name>, 2/<name>             package files (cargo layout): one canonical-JSON line per record
    3/<c>/<name>, <ab>/<cd>/<name>

A maintainer's index directory is the bare Git repository itself plus two folders Git ignores:
`artifacts/` (the artifact store) and `host/` (the online timestamp key; never serve it).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .._errors import IndexError_, NameError_
from .._names import validate_name

FORMAT_VERSION = 1
BRANCH = "refs/heads/main"
CONFIG_FILE = "config.json"
SNAPSHOT_FILE = "snapshot.json"
BINS_DIR = "snapshot"
ROOT_DIR = "keys/root"
PUBLISHERS_DIR = "keys/publishers"
ARTIFACTS_DIR = "artifacts"
HOST_DIR = "host"
DEFAULT_ARTIFACT_URL = "artifacts/{name}/{name}-{version}.expert"
DEFAULT_EXPIRES_DAYS = 30
BIN_HEX_DIGITS = 2

_ROOT_FILE = re.compile(r"^keys/root/([1-9][0-9]{0,8})\.json$")
_PUBLISHER_FILE = re.compile(r"^keys/publishers/([0-9a-f]{64})\.json$")
_BIN_FILE = re.compile(r"^snapshot/([0-9a-f]{%d})\.json$" % BIN_HEX_DIGITS)


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds on what a client reads from an untrusted source (endless-data attacks)."""

    max_snapshot_bytes: int = 1 << 20
    max_metadata_bytes: int = 1 << 20
    max_bin_bytes: int = 16 << 20
    max_package_file_bytes: int = 16 << 20
    max_fetch_bytes: int = 2 << 30
    max_line_bytes: int = 256 << 10


DEFAULT_LIMITS = Limits()


def package_path(name: str) -> str:
    """The cargo-style path of a package's file: `1/a`, `2/ab`, `3/a/abc`, `ab/cd/abcd…`."""
    if len(name) <= 2:
        return f"{len(name)}/{name}"
    if len(name) == 3:
        return f"3/{name[0]}/{name}"
    return f"{name[:2]}/{name[2:4]}/{name}"


def root_path(version: int) -> str:
    return f"{ROOT_DIR}/{version}.json"


def publisher_path(key_id: str) -> str:
    return f"{PUBLISHERS_DIR}/{key_id}.json"


def bin_of(path: str) -> str:
    """The snapshot bin a file belongs to: the first hex digits of sha256(path)."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()[:BIN_HEX_DIGITS]


def bin_path(bin_id: str) -> str:
    return f"{BINS_DIR}/{bin_id}.json"


@dataclass(frozen=True, slots=True)
class PathKind:
    kind: str  # config | snapshot | bin | root | publisher | package
    arg: str = ""


def classify(path: str) -> PathKind:
    """What a path in the index tree is; raises IndexError_ for anything that does not belong."""
    if path == CONFIG_FILE:
        return PathKind("config")
    if path == SNAPSHOT_FILE:
        return PathKind("snapshot")
    if m := _BIN_FILE.match(path):
        return PathKind("bin", m.group(1))
    if m := _ROOT_FILE.match(path):
        return PathKind("root", m.group(1))
    if m := _PUBLISHER_FILE.match(path):
        return PathKind("publisher", m.group(1))
    name = path.rsplit("/", 1)[-1]
    try:
        validate_name(name)
    except NameError_:
        raise IndexError_(f"unexpected file {path!r} in the index tree", where=path,
                          hint="an index holds only config, snapshot, keys and package files") from None
    if package_path(name) != path:
        raise IndexError_(f"package file {path!r} is not at its name-derived path {package_path(name)!r}",
                          where=path)
    return PathKind("package", name)


def fill_template(template: str, entry) -> str:
    """An artifact URL template with {name}, {version} and {sha256} of an entry filled in."""
    return (template.replace("{name}", entry.name).replace("{version}", entry.version)
            .replace("{sha256}", entry.sha256))


# -- time stamps: RFC 3339, UTC, whole seconds ------------------------------------------------

def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object, *, where: str) -> datetime:
    if isinstance(text, str):
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    raise IndexError_(f"invalid time stamp {text!r}", where=where, hint="use RFC 3339 UTC, e.g. 2026-01-31T12:00:00Z")


def expiry_after(days: float, now: datetime | None = None) -> datetime:
    return (now or utc_now()) + timedelta(days=days)
