"""Verification of a sparse client's candidate state (see `_http`): the checks of
`_verify.verify_candidate`, applied to the subset of the index tree the client holds.

In order: the history only moves forward; the root chain starts at the pinned fingerprint and
old roots never change; the snapshot is signed by the current timestamp key, newer than any
seen and not expired; every held bin matches the snapshot and every held file its bin; config
agrees with the root; delegations verify against the current root and only move forward;
package files only grow and their new lines are signed by a delegated, unrevoked key (every
line with `deep`, as `index verify` asks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .._errors import IndexError_
from . import _gitdb as git
from ._entries import read_package_file
from ._layout import CONFIG_FILE, SNAPSHOT_FILE, Limits, bin_of, classify, format_time, root_path
from ._metadata import (
    FileRef, check_config_matches, decode_bin, load_config, load_delegation, load_root, load_snapshot, read_snapshot,
    verify_first_root, verify_next_root,
)
from ._signed import open_envelope
from ._verify import TrustedState, Verified, check_expiry

if TYPE_CHECKING:  # pygit2 costs ~60 ms to import: loaded where a repository is opened
    import pygit2


def verify_sparse(repo: pygit2.Repository, candidate: pygit2.Oid, previous: TrustedState | None,
                  fingerprint: str, *, now, allow_expired: bool, warn: Callable[[str], None], limits: Limits,
                  deep: bool = False, where: str = "index") -> Verified:
    import pygit2

    commit = repo[candidate]
    if not isinstance(commit, pygit2.Commit):
        raise IndexError_("the index state is not a commit", where=where)
    held = dict(git.walk_files(commit.tree))

    def read(path: str, max_size: int) -> bytes:
        if path not in held:
            raise IndexError_(f"the index has no {path}", where=where)
        return git.read_blob(repo, held[path], max_size=max_size, where=path)

    if previous is not None and str(candidate) == previous.commit:
        snap = read_snapshot(read(SNAPSHOT_FILE, limits.max_snapshot_bytes), where=SNAPSHOT_FILE)
        check_expiry(snap.expires, now, allow_expired=allow_expired, warn=warn, where=where)
        return Verified(previous, ())
    kinds = {path: classify(path) for path in held}
    old: dict[str, pygit2.Oid] = {}
    if previous is not None:
        prev_oid = pygit2.Oid(hex=previous.commit)
        if not repo.descendant_of(candidate, prev_oid):
            if repo.descendant_of(prev_oid, candidate):
                raise IndexError_("the server offers an older index state than the one already verified; "
                                  "refusing a rollback", where=where)
            raise IndexError_("the index history was rewritten: the new state does not descend from the last "
                              "verified one", where=where, hint="remove the index and add it again")
        old = dict(git.walk_files(repo[prev_oid].tree))
        for path in old.keys() - held.keys():
            raise IndexError_(f"{path} was removed; an index only grows", where=where)

    # 1. the root chain
    versions = sorted(int(k.arg) for k in kinds.values() if k.kind == "root")
    if not versions or versions != list(range(1, len(versions) + 1)):
        raise IndexError_(f"root metadata versions {versions} are not 1..N", where=where)
    limit = limits.max_metadata_bytes
    if previous is None:
        root = verify_first_root(read(root_path(1), limit), fingerprint, where=root_path(1))
    else:
        for version in range(1, previous.root_version + 1):
            if held.get(root_path(version)) != old.get(root_path(version)):
                raise IndexError_(f"{root_path(version)} was modified; root metadata never changes once written",
                                  where=root_path(version))
        root = load_root(read(root_path(previous.root_version), limit), where=root_path(previous.root_version))
    for version in versions[root.version:]:
        root = verify_next_root(root, read(root_path(version), limit), fingerprint, where=root_path(version))

    # 2. the snapshot: signed, newer than any seen, not expired
    snap = load_snapshot(read(SNAPSHOT_FILE, limits.max_snapshot_bytes), root, fingerprint, where=SNAPSHOT_FILE)
    if previous is not None and snap.version <= previous.snapshot_version:
        if snap.version < previous.snapshot_version:
            raise IndexError_(f"snapshot version {snap.version} is older than version {previous.snapshot_version}, "
                              "already verified; refusing a rollback", where=where)
        raise IndexError_(f"snapshot version {snap.version} was already verified with different contents",
                          where=where, hint="refusing a mix of index states")
    check_expiry(snap.expires, now, allow_expired=allow_expired, warn=warn, where=where)

    # 3. every held bin against the snapshot, every held file against its bin
    listings, contents = {}, {}
    for path, kind in kinds.items():
        if kind.kind == "bin":
            ref = snap.bins.get(kind.arg)
            data = read(path, min(ref.size, limits.max_bin_bytes) if ref else limits.max_bin_bytes)
            if ref is None or FileRef.of(data) != ref:
                raise IndexError_(f"{path} does not match the snapshot", where=path,
                                  hint="the index serves files from two different snapshots")
            listings[kind.arg] = decode_bin(data, kind.arg, where=path)
    for path, kind in kinds.items():
        if kind.kind in ("snapshot", "bin"):
            continue
        ref = listings.get(bin_of(path), {}).get(path)
        if ref is None:
            raise IndexError_(f"{path} is not listed in the snapshot", where=path,
                              hint="the index serves files from two different snapshots")
        data = read(path, ref.size)
        if FileRef.of(data) != ref:
            raise IndexError_(f"{path} does not match the snapshot", where=path,
                              hint="the index serves files from two different snapshots")
        contents[path] = data

    # 4. contents: config, delegations, package files
    if CONFIG_FILE not in contents:
        raise IndexError_(f"the index has no {CONFIG_FILE}", where=where)
    check_config_matches(load_config(contents[CONFIG_FILE], where=CONFIG_FILE), root, fingerprint, where=CONFIG_FILE)
    delegations = {}
    for path, kind in kinds.items():
        if kind.kind != "publisher":
            continue
        delegation = load_delegation(contents[path], root, fingerprint, where=path)
        if delegation.key_id != kind.arg:
            raise IndexError_("delegation file is not named after its key id", where=path)
        delegations[delegation.key_id] = delegation
        if path in old and old[path] != held[path]:
            before = open_envelope(repo[old[path]].data, where=path, expect_type="delegation").signed
            if delegation.version <= before["version"]:
                raise IndexError_(f"delegation {path} went from version {before['version']} to "
                                  f"{delegation.version}", where=path, hint="refusing a rolled-back delegation")
            if before["revoked"] and not delegation.revoked:
                raise IndexError_(f"revoked key {kind.arg[:16]} was un-revoked", where=path,
                                  hint="a revoked key stays revoked")
    changed = []
    for path, kind in kinds.items():
        if kind.kind != "package" or (path in old and old[path] == held[path]):
            continue
        changed.append(kind.arg)
        before = repo[old[path]].data if path in old else None
        data = contents[path]
        if before is not None and not data.startswith(before):
            raise IndexError_(f"{path} was changed after publication: index files are append-only", where=path,
                              hint="a published version line can never change; refusing this index state")
        if before is not None or deep:
            read_package_file(data, kind.arg, delegations, where=path,
                              verify_from=len(before) if before is not None else 0, limits=limits)
    state = TrustedState(str(candidate), snap.version, root.version, format_time(snap.expires), fingerprint)
    return Verified(state, tuple(sorted(changed)))
