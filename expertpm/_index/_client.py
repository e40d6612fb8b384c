"""The client's indexes: `<home>/indexes/<name>/` holds `index.json` (URL, pinned fingerprint),
`state.json` (the last verified state: commit, highest snapshot version, root version, expiry)
and `repo/`, a bare Git repository whose `refs/expertpm/verified` is the last verified commit.

An update fetches a candidate through the URL's transport, verifies it against the last
verified state, and only then moves the ref and rewrites `state.json`. Failing at any point
leaves the last verified state as it was.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import filelock

from .._errors import IndexError_
from .._home import Home
from .._names import validate_name
from . import _gitdb as git
from ._gitpack import consolidate
from ._layout import DEFAULT_LIMITS, Limits, parse_time, root_path, utc_now
from ._metadata import load_root
from ._transport import CANDIDATE_REF, local_path, transport_for
from ._verify import TrustedState, Verified, verify_candidate

if TYPE_CHECKING:  # pygit2 costs ~60 ms to import: loaded where a repository is opened
    import pygit2

INDEX_FILE = "index.json"
STATE_FILE = "state.json"
REPO_DIR = "repo"
VERIFIED_REF = "refs/expertpm/verified"
LOG = logging.getLogger("expertpm.index")


@dataclass(frozen=True, slots=True)
class IndexSettings:
    name: str
    url: str
    fingerprint: str
    artifact_base: str | None = None

    def to_dict(self) -> dict:
        doc = {"format_version": 1, "name": self.name, "url": self.url, "fingerprint": self.fingerprint}
        if self.artifact_base:
            doc["artifact_base"] = self.artifact_base
        return doc


@dataclass(frozen=True, slots=True)
class UpdateResult:
    name: str
    previous_version: int | None
    snapshot_version: int
    changed_packages: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return self.previous_version != self.snapshot_version


def index_dir(home: Home, name: str) -> Path:
    validate_name(name, where="index name")
    return home.indexes_dir / name


def configured_indexes(home: Home) -> list[str]:
    """Names of the indexes added to this home, sorted."""
    if not home.indexes_dir.is_dir():
        return []
    return sorted(p.name for p in home.indexes_dir.iterdir() if (p / INDEX_FILE).is_file())


def load_settings(home: Home, name: str) -> IndexSettings:
    path = index_dir(home, name) / INDEX_FILE
    if not path.is_file():
        known = ", ".join(configured_indexes(home))
        raise IndexError_(f"no index named {name!r}", where=str(home.indexes_dir),
                          hint=f"known indexes: {known}" if known else "add one with: expertpm index add NAME URL "
                                                                      "--fingerprint FP")
    doc = json.loads(path.read_text())
    return IndexSettings(doc["name"], doc["url"], doc["fingerprint"], doc.get("artifact_base"))


def load_state(home: Home, name: str) -> TrustedState | None:
    path = index_dir(home, name) / STATE_FILE
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    return TrustedState(doc["commit"], doc["snapshot_version"], doc["root_version"], doc["expires"],
                        doc["fingerprint"])


def _write_json(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def normalize_url(url: str) -> str:
    """Local paths become absolute; URLs stay as given."""
    if "://" in url or url.startswith("git+"):
        return url
    return str(Path(url).expanduser().absolute())


def _default_warn(message: str) -> None:
    LOG.warning(message)


def add_index(home: Home, name: str, url: str, *, fingerprint: str | None = None,
              trust_on_first_use: bool = False, allow_expired: bool = False, artifact_base: str | None = None,
              warn: Callable[[str], None] = _default_warn, now: datetime | None = None,
              limits: Limits = DEFAULT_LIMITS) -> UpdateResult:
    """Add an index under `name` and fetch its first verified state."""
    import pygit2

    target = index_dir(home, name)
    if (target / INDEX_FILE).exists():
        raise IndexError_(f"an index named {name!r} already exists", where=str(target),
                          hint="pick another name, or `expertpm index remove` it first")
    if fingerprint is not None:
        fingerprint = fingerprint.strip().lower().removeprefix("sha256:")
        if len(fingerprint) != 64 or any(c not in "0123456789abcdef" for c in fingerprint):
            raise IndexError_(f"malformed fingerprint {fingerprint!r}", hint="a fingerprint is 64 hex digits")
    elif not trust_on_first_use:
        raise IndexError_("refusing to trust an index without its root fingerprint",
                          hint="pass --fingerprint FP (ask the index maintainer), or --trust-on-first-use to "
                               "accept whatever the server sends this first time")
    url = normalize_url(url)
    target.mkdir(parents=True, exist_ok=True)
    try:
        repo = pygit2.init_repository(str(target / REPO_DIR), bare=True)
        transport = transport_for(url)
        candidate = transport.fetch(repo, None, limits)
        if fingerprint is None:
            tree = repo[candidate].tree
            first = git.read_path(repo, tree, root_path(1), max_size=limits.max_metadata_bytes)
            if first is None:
                raise IndexError_("the index has no root metadata", where=url)
            fingerprint = load_root(first, where=root_path(1)).fingerprint
            warn(f"trusting index {name!r} on first use: fingerprint {fingerprint}. Check it with the "
                 "index maintainer; anyone who controls this URL today could have sent a fake index")
        verify = getattr(transport, "verify", verify_candidate)  # a sparse transport verifies its subset
        verified = verify(repo, candidate, None, fingerprint, now=now or utc_now(),
                                    allow_expired=allow_expired, warn=warn, limits=limits, where=url)
        settings = IndexSettings(name, url, fingerprint, artifact_base)
        _commit_state(target, repo, verified)
        _write_json(target / INDEX_FILE, settings.to_dict())
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return UpdateResult(name, None, verified.state.snapshot_version, verified.changed_packages)


def update_index(home: Home, name: str, *, allow_expired: bool = False, warn: Callable[[str], None] = _default_warn,
                 now: datetime | None = None, limits: Limits = DEFAULT_LIMITS, deep: bool = False) -> UpdateResult:
    """Fetch, verify and switch to the index's current state (or keep the last verified one)."""
    import pygit2

    settings = load_settings(home, name)
    target = index_dir(home, name)
    with filelock.FileLock(str(target / ".lock"), timeout=600):
        previous = load_state(home, name)
        repo = git.open_repo(target / REPO_DIR)
        prev_oid = pygit2.Oid(hex=previous.commit) if previous else None
        try:
            transport = transport_for(settings.url)
            candidate = transport.fetch(repo, prev_oid, limits)
            verify = getattr(transport, "verify", verify_candidate)  # a sparse transport verifies its subset
            verified = verify(repo, candidate, previous, settings.fingerprint, now=now or utc_now(),
                                        allow_expired=allow_expired, warn=warn, limits=limits, deep=deep,
                                        where=settings.url)
        finally:
            git.delete_ref(repo, CANDIDATE_REF)
        if previous is None or verified.state.commit != previous.commit:
            _commit_state(target, repo, verified)
    return UpdateResult(name, previous.snapshot_version if previous else None, verified.state.snapshot_version,
                        verified.changed_packages)


def verify_index(home: Home, name: str, *, allow_expired: bool = True,
                 warn: Callable[[str], None] = _default_warn) -> Verified:
    """Re-verify the local verified state from scratch, every line included (an audit)."""
    import pygit2

    settings = load_settings(home, name)
    state = load_state(home, name)
    if state is None:
        raise IndexError_(f"index {name!r} has no verified state", hint=f"run: expertpm index update {name}")
    repo = git.open_repo(index_dir(home, name) / REPO_DIR)
    verify = getattr(transport_for(settings.url), "verify", verify_candidate)
    return verify(repo, pygit2.Oid(hex=state.commit), None, settings.fingerprint, now=utc_now(),
                            allow_expired=allow_expired, warn=warn, limits=DEFAULT_LIMITS, deep=True,
                            where=name)


def _commit_state(target: Path, repo: pygit2.Repository, verified: Verified) -> None:
    import pygit2

    git.set_ref(repo, VERIFIED_REF, pygit2.Oid(hex=verified.state.commit), "verified")
    _write_json(target / STATE_FILE, verified.state.to_dict())
    consolidate(repo)


def remove_index(home: Home, name: str) -> None:
    load_settings(home, name)
    shutil.rmtree(index_dir(home, name))


@dataclass(frozen=True, slots=True)
class IndexStatus:
    name: str
    url: str
    fingerprint: str
    snapshot_version: int | None
    expires: str | None

    def to_dict(self) -> dict:
        return {"name": self.name, "url": self.url, "fingerprint": self.fingerprint,
                "snapshot_version": self.snapshot_version, "expires": self.expires}


def list_indexes(home: Home) -> list[IndexStatus]:
    out = []
    for name in configured_indexes(home):
        settings, state = load_settings(home, name), load_state(home, name)
        out.append(IndexStatus(name, settings.url, settings.fingerprint,
                               state.snapshot_version if state else None, state.expires if state else None))
    return out


def artifact_base_of(settings: IndexSettings) -> str:
    """Where a relative artifact URL is resolved: the index's own location, if it serves files."""
    if settings.artifact_base:
        return settings.artifact_base
    url = settings.url.removeprefix("git+")
    path = local_path(url)
    if path is not None:
        return str(path)
    if url.startswith(("http://", "https://")) and not url.endswith((".git", ".git/")):
        return url
    raise IndexError_(f"the index at {url} has a relative artifact URL and a Git remote serves no artifacts",
                         hint="ask the maintainer for an absolute artifact_url, or re-add the index with "
                              "--artifact-base URL")


def expires_of(state: TrustedState) -> datetime:
    return parse_time(state.expires, where=STATE_FILE)
