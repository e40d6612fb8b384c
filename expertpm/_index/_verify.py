"""Client-side verification of a candidate index state before it replaces the last verified one.

With a previous verified state the check is incremental: only the files Git reports as changed
(unchanged subtrees are skipped by id) and the snapshot bins whose digest changed are read.
What is checked, in order:

  1. history — the candidate descends from the last verified commit (no forced push);
  2. the root chain — old root files unchanged, each new root signed by the previous threshold;
  3. the snapshot — signed by the current timestamp key, newer than any seen (no rollback), not
     expired (no freeze) unless explicitly allowed;
  4. every changed file matches its bin and every changed bin matches the snapshot (no
     mix-and-match), with sizes bounded by the declared ones (no endless data);
  5. contents — config agrees with the root; delegations are signed by the current root and only
     move forward; package files only grow, and their new lines are signed by a publisher
     delegated for the name and not revoked.

On a first fetch every file is hashed against the snapshot; the lines themselves are verified
when read (`VerifiedIndex.entries`) or by `deep=True`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Callable

from .._errors import IndexError_
from . import _gitdb as git
from ._entries import read_package_file
from ._layout import (
    CONFIG_FILE, PUBLISHERS_DIR, ROOT_DIR, SNAPSHOT_FILE, Limits, bin_of, bin_path, classify, format_time,
    root_path,
)
from ._signed import open_envelope
from ._metadata import (
    Delegation, FileRef, Root, Snapshot, check_config_matches, decode_bin, load_config, load_delegation, load_root,
    load_snapshot, read_snapshot, verify_first_root, verify_next_root,
)

if TYPE_CHECKING:  # pygit2 costs ~60 ms to import: loaded where a repository is opened
    import pygit2


@dataclass(frozen=True, slots=True)
class TrustedState:
    commit: str
    snapshot_version: int
    root_version: int
    expires: str
    fingerprint: str

    def to_dict(self) -> dict:
        return {"commit": self.commit, "snapshot_version": self.snapshot_version,
                "root_version": self.root_version, "expires": self.expires, "fingerprint": self.fingerprint}


@dataclass(frozen=True, slots=True)
class Verified:
    state: TrustedState
    changed_packages: tuple[str, ...]


class _Tree:
    def __init__(self, repo: pygit2.Repository, tree: pygit2.Tree, limits: Limits) -> None:
        self.repo, self.tree, self.limits = repo, tree, limits
        self.known: dict[str, pygit2.Oid] = {}  # blob ids already found by a walk or diff

    def read(self, path: str, max_size: int) -> bytes | None:
        oid = self.known.get(path)
        if oid is None:
            oid = git.blob_at(self.repo, self.tree, path)  # a path lookup loads every tree on the way
            if oid is None:
                return None
        return git.read_blob(self.repo, oid, max_size=max_size, where=path)

    def need(self, path: str, max_size: int) -> bytes:
        data = self.read(path, max_size)
        if data is None:
            raise IndexError_(f"the index has no {path}", where=path)
        return data

    def files_under(self, folder: str) -> list[str]:
        try:
            sub = self.tree[folder]
        except KeyError:
            return []
        return [path for path, _ in git.walk_files(sub, folder + "/")]  # type: ignore[arg-type]


def check_expiry(snapshot_expires: datetime, now: datetime, *, allow_expired: bool,
                 warn: Callable[[str], None], where: str) -> None:
    if snapshot_expires > now:
        return
    message = f"the index snapshot expired at {format_time(snapshot_expires)}"
    if not allow_expired:
        raise IndexError_(f"{message}; refusing a frozen index", where=where,
                          hint="the index host must run `expertpm index refresh`; to use it anyway pass --allow-expired")
    warn(f"{message}; using it anyway because --allow-expired was given (a frozen index can hide updates)")


def verify_candidate(repo: pygit2.Repository, candidate: pygit2.Oid, previous: TrustedState | None,
                     fingerprint: str, *, now: datetime, allow_expired: bool, warn: Callable[[str], None],
                     limits: Limits, deep: bool = False, where: str = "index") -> Verified:
    import pygit2

    commit = repo[candidate]
    if not isinstance(commit, pygit2.Commit):
        raise IndexError_("the index state is not a commit", where=where)
    new = _Tree(repo, commit.tree, limits)
    if previous is not None and str(candidate) == previous.commit:
        snap = read_snapshot(new.need(SNAPSHOT_FILE, limits.max_snapshot_bytes), where=SNAPSHOT_FILE)
        check_expiry(snap.expires, now, allow_expired=allow_expired, warn=warn, where=where)
        return Verified(previous, ())
    old = None
    if previous is not None:
        prev_oid = pygit2.Oid(hex=previous.commit)
        if not repo.descendant_of(candidate, prev_oid):
            if repo.descendant_of(prev_oid, candidate):
                older = read_snapshot(new.need(SNAPSHOT_FILE, limits.max_snapshot_bytes), where=SNAPSHOT_FILE)
                raise IndexError_(_rollback_message(older.version, previous.snapshot_version), where=where)
            raise IndexError_("the index history was rewritten: the new state does not descend from the last "
                              "verified one", where=where,
                              hint="a forced push of the index is refused; if its maintainers really rewrote "
                                   "history, remove the index and add it again")
        old = _Tree(repo, repo[pygit2.Oid(hex=previous.commit)].tree, limits)
        changed, new.known = git.changed_files(repo, old.tree, new.tree)
    else:
        new.known = dict(git.walk_files(new.tree))
        changed = {path: "A" for path in new.known}
    kinds = {path: classify(path) for path in changed}
    for path, status in changed.items():
        if status == "D":
            raise IndexError_(f"{path} was removed; an index only grows", where=where)

    root, root_changed = _verify_roots(new, old, previous, fingerprint, changed, kinds)
    snap = load_snapshot(new.need(SNAPSHOT_FILE, limits.max_snapshot_bytes), root, fingerprint, where=SNAPSHOT_FILE)
    if previous is not None:
        if snap.version < previous.snapshot_version:
            raise IndexError_(_rollback_message(snap.version, previous.snapshot_version), where=where)
        if snap.version == previous.snapshot_version:
            raise IndexError_(f"snapshot version {snap.version} was already verified with different contents",
                              where=where, hint="refusing a mix of index states")
    check_expiry(snap.expires, now, allow_expired=allow_expired, warn=warn, where=where)

    contents = _verify_files(new, old, snap, changed, kinds, limits)

    if root_changed or previous is None or CONFIG_FILE in changed:
        check_config_matches(load_config(new.need(CONFIG_FILE, limits.max_metadata_bytes), where=CONFIG_FILE),
                             root, fingerprint, where=CONFIG_FILE)
    delegations = load_delegations(new, root, fingerprint)
    if old is not None:
        _check_delegations_move_forward(old, root, fingerprint, delegations, changed, kinds, previous)
    changed_packages = []
    for path, kind in kinds.items():
        if kind.kind != "package":
            continue
        changed_packages.append(kind.arg)
        before = old.read(path, limits.max_package_file_bytes) if old is not None else None
        data = contents[path]
        if before is not None and not data.startswith(before):
            raise IndexError_(f"{path} was changed after publication: index files are append-only", where=path,
                              hint="a published version line can never change; refusing this index state")
        if previous is not None or deep:  # new bytes are verified now; a first fetch verifies lines on read
            read_package_file(data, kind.arg, delegations, where=path,
                              verify_from=len(before) if before is not None else 0, limits=limits)
    state = TrustedState(str(candidate), snap.version, root.version, format_time(snap.expires), fingerprint)
    return Verified(state, tuple(sorted(changed_packages)))


def _rollback_message(offered: int, seen: int) -> str:
    return f"snapshot version {offered} is older than version {seen}, already verified; refusing a rollback"


def _verify_roots(new: _Tree, old: _Tree | None, previous: TrustedState | None, fingerprint: str,
                  changed: dict, kinds: dict) -> tuple[Root, bool]:
    limit = new.limits.max_metadata_bytes
    kinds_under = [classify(p) for p in new.files_under(ROOT_DIR)]
    if any(k.kind != "root" for k in kinds_under):
        raise IndexError_("unexpected file among the root metadata", where=ROOT_DIR)
    versions = sorted(int(k.arg) for k in kinds_under)
    if not versions or versions != list(range(1, len(versions) + 1)):
        raise IndexError_(f"root metadata versions {versions} are not 1..N", where=ROOT_DIR)
    if previous is None:
        root = verify_first_root(new.need(root_path(1), limit), fingerprint, where=root_path(1))
    else:
        for path, status in changed.items():
            if kinds[path].kind == "root" and status != "A":
                raise IndexError_(f"{path} was modified; root metadata never changes once written", where=path)
        root = load_root(old.need(root_path(previous.root_version), limit), where=root_path(previous.root_version))
    start = root.version
    for version in versions[start:]:
        root = verify_next_root(root, new.need(root_path(version), limit), fingerprint, where=root_path(version))
    return root, root.version != start or previous is None


def _verify_files(new: _Tree, old: _Tree | None, snap: Snapshot, changed: dict, kinds: dict,
                  limits: Limits) -> dict[str, bytes]:
    """Check changed bins against the snapshot and changed files against their bins."""
    old_snap = read_snapshot(old.need(SNAPSHOT_FILE, limits.max_snapshot_bytes), where=SNAPSHOT_FILE) \
        if old is not None else None
    listings: dict[str, dict[str, FileRef]] = {}
    for bin_id in (old_snap.bins.keys() - snap.bins.keys()) if old_snap else ():
        raise IndexError_(f"snapshot bin {bin_id} disappeared; an index only grows", where=SNAPSHOT_FILE)
    for path, kind in kinds.items():
        if kind.kind == "bin" and kind.arg not in snap.bins:
            raise IndexError_(f"{path} is not part of the snapshot", where=path,
                              hint="the index serves files from two different snapshots")
    for bin_id, ref in snap.bins.items():
        path = bin_path(bin_id)
        if old_snap is not None and old_snap.bins.get(bin_id) == ref and path not in changed:
            continue
        data = new.read(path, min(ref.size, limits.max_bin_bytes))
        if data is None or FileRef.of(data) != ref:
            raise IndexError_(f"{path} does not match the snapshot", where=path,
                              hint="the index serves files from two different snapshots")
        listing = decode_bin(data, bin_id, where=path)
        listings[bin_id] = listing
        if old_snap is not None and bin_id in old_snap.bins:
            before = decode_bin(old.need(path, limits.max_bin_bytes), bin_id, where=path)
            for listed, file_ref in before.items():
                if listed not in listing:
                    raise IndexError_(f"{listed} disappeared from the snapshot; an index only grows", where=path)
                if listing[listed] != file_ref and listed not in changed:
                    raise IndexError_(f"{listed} does not match the snapshot", where=listed,
                                      hint="the index serves files from two different snapshots")
            for listed in listing.keys() - before.keys():
                if listed not in changed:
                    raise IndexError_(f"the snapshot lists {listed}, which the index does not hold", where=path)
        else:
            for listed in listing:
                if listed not in changed:
                    raise IndexError_(f"the snapshot lists {listed}, which the index does not hold", where=path)
    contents = {}
    for path, kind in kinds.items():
        if kind.kind in ("snapshot", "bin"):
            continue
        bin_id = bin_of(path)
        if bin_id not in listings:
            raise IndexError_(f"{path} does not match the snapshot", where=path,
                              hint="the index serves files from two different snapshots")
        file_ref = listings[bin_id].get(path)
        if file_ref is None:
            raise IndexError_(f"{path} is not listed in the snapshot", where=path,
                              hint="the index serves files from two different snapshots")
        data = new.read(path, file_ref.size)
        if data is None or FileRef.of(data) != file_ref:
            raise IndexError_(f"{path} does not match the snapshot", where=path,
                              hint="the index serves files from two different snapshots")
        contents[path] = data
    return contents


def load_delegations(tree: _Tree, root: Root, fingerprint: str) -> dict[str, Delegation]:
    found = {}
    for path in tree.files_under(PUBLISHERS_DIR):
        kind = classify(path)
        delegation = load_delegation(tree.need(path, tree.limits.max_metadata_bytes), root, fingerprint, where=path)
        if delegation.key_id != kind.arg:
            raise IndexError_("delegation file is not named after its key id", where=path)
        found[delegation.key_id] = delegation
    return found


def _check_delegations_move_forward(old: _Tree, root: Root, fingerprint: str, new: dict[str, Delegation],
                                    changed: dict, kinds: dict, previous: TrustedState) -> None:
    for path, kind in kinds.items():
        if kind.kind != "publisher" or changed[path] != "M":
            continue
        before_bytes = old.need(path, old.limits.max_metadata_bytes)
        before = open_envelope(before_bytes, where=path, expect_type="delegation").signed
        after = new[kind.arg]
        if after.version <= before["version"]:
            raise IndexError_(f"delegation {path} went from version {before['version']} to {after.version}",
                              where=path, hint="refusing a rolled-back delegation")
        if before["revoked"] and not after.revoked:
            raise IndexError_(f"revoked key {kind.arg[:16]} was un-revoked", where=path,
                              hint="a revoked key stays revoked")
