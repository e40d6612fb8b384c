"""Git plumbing with pygit2: blobs, trees and commits built in memory (no working tree, no `git`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Mapping

from .._errors import IndexError_, IntegrityError, NetworkError
from ._gitpack import ObjectBatch

if TYPE_CHECKING:  # pygit2 costs ~60 ms to import: loaded where a repository is opened
    import pygit2

AUTHOR_NAME = "expertpm"
AUTHOR_EMAIL = "index@expertpm.invalid"


def open_repo(path: Path | str, *, where: str | None = None) -> pygit2.Repository:
    import pygit2

    try:
        return pygit2.Repository(str(path))
    except (pygit2.GitError, KeyError) as exc:
        raise IndexError_("not a Git index repository", where=where or str(path),
                          hint="create one with: expertpm index init DIR") from exc


def init_bare(path: Path) -> pygit2.Repository:
    import pygit2

    repo = pygit2.init_repository(str(path), bare=True, initial_head="main")
    return repo


def ref_target(repo: pygit2.Repository, ref: str) -> pygit2.Oid | None:
    try:
        return repo.references[ref].target
    except KeyError:
        return None


def set_ref(repo: pygit2.Repository, ref: str, oid: pygit2.Oid, message: str = "expertpm") -> None:
    repo.create_reference_direct(ref, oid, True, message=message)


def delete_ref(repo: pygit2.Repository, ref: str) -> None:
    try:
        repo.references.delete(ref)
    except KeyError:
        pass


def blob_at(repo: pygit2.Repository, tree: pygit2.Tree, path: str) -> pygit2.Oid | None:
    try:
        entry = tree[path]
    except KeyError:
        return None
    if entry.type_str != "blob":
        raise IndexError_(f"{path!r} is a {entry.type_str}, expected a file", where=path)
    return entry.id


def read_blob(repo: pygit2.Repository, oid: pygit2.Oid, *, max_size: int, where: str) -> bytes:
    """A blob's bytes, refusing one larger than `max_size` before inflating it."""
    kind, size = repo.odb.read_header(oid)
    if size > max_size:
        raise IntegrityError(f"file is {size} bytes, larger than the {max_size} bytes allowed", where=where,
                             hint="refusing oversized index data (endless-data attack?)")
    return repo[oid].data


def read_path(repo: pygit2.Repository, tree: pygit2.Tree, path: str, *, max_size: int) -> bytes | None:
    oid = blob_at(repo, tree, path)
    return None if oid is None else read_blob(repo, oid, max_size=max_size, where=path)


def walk_files(tree: pygit2.Tree, prefix: str = "") -> Iterator[tuple[str, pygit2.Oid]]:
    """Every (path, blob id) under `tree`; refuses links, submodules and executables."""
    import pygit2

    for entry in tree:
        path = f"{prefix}{entry.name}"
        if entry.filemode == pygit2.GIT_FILEMODE_TREE:
            yield from walk_files(entry, path + "/")  # type: ignore[arg-type]
        elif entry.filemode == pygit2.GIT_FILEMODE_BLOB:
            yield path, entry.id
        else:
            raise IndexError_(f"{path!r} is not a regular file (mode {entry.filemode:o})", where=path,
                              hint="an index holds only regular files")


def package_names(repo: pygit2.Repository, tree: pygit2.Tree | None) -> Iterator[str]:
    """The name of every package file in an index tree (the leaves outside keys/ and snapshot/)."""
    if tree is None:
        return
    for top in tree:
        if top.type_str != "tree" or top.name in ("keys", "snapshot"):
            continue
        stack = [top]
        while stack:
            for entry in repo[stack.pop().id]:
                if entry.type_str == "tree":
                    stack.append(entry)
                else:
                    yield entry.name


def changed_files(repo: pygit2.Repository, old: pygit2.Tree, new: pygit2.Tree
                  ) -> tuple[dict[str, str], dict[str, pygit2.Oid]]:
    """({path: 'A'|'M'|'D'}, {path: new blob id}) between two trees; unchanged subtrees are skipped."""
    import pygit2

    changes, oids = {}, {}
    for delta in old.diff_to_tree(new).deltas:
        status = delta.status_char()
        if status == "D":
            changes[delta.old_file.path] = "D"
            continue
        if delta.new_file.mode != pygit2.GIT_FILEMODE_BLOB:
            raise IndexError_(f"{delta.new_file.path!r} is not a regular file (mode {delta.new_file.mode:o})",
                              where=delta.new_file.path, hint="an index holds only regular files")
        changes[delta.new_file.path] = "A" if status == "A" else "M"
        oids[delta.new_file.path] = delta.new_file.id
    return changes, oids


def write_tree(batch: ObjectBatch, base: pygit2.Tree | None,
               changes: Mapping[str, bytes | pygit2.Oid | None]) -> pygit2.Oid:
    """A new tree: `base` with each path set to bytes/blob id, or removed when the value is None.
    Unchanged subtrees keep their ids; only the trees on changed paths are written."""
    oid = _write_tree(batch, base, changes)
    return oid if oid is not None else batch.tree({})


def _write_tree(batch: ObjectBatch, base: pygit2.Tree | None, changes: Mapping) -> pygit2.Oid | None:
    import pygit2

    entries = {e.name: (e.filemode, e.id) for e in base} if base is not None else {}
    below: dict[str, dict] = {}
    for path, value in changes.items():
        head, _, rest = path.partition("/")
        if rest:
            below.setdefault(head, {})[rest] = value
        elif value is None:
            entries.pop(head, None)
        else:
            entries[head] = (pygit2.GIT_FILEMODE_BLOB, batch.blob(value) if isinstance(value, bytes) else value)
    for name, sub in below.items():
        existing = entries.get(name)
        sub_base = batch.repo[existing[1]] if existing and existing[0] == pygit2.GIT_FILEMODE_TREE else None
        oid = _write_tree(batch, sub_base, sub)
        if oid is None:
            entries.pop(name, None)
        else:
            entries[name] = (pygit2.GIT_FILEMODE_TREE, oid)
    return batch.tree(entries) if entries else None


def commit(batch: ObjectBatch, ref: str | None, tree: pygit2.Oid, parents: list[pygit2.Oid],
           message: str) -> pygit2.Oid:
    """Write the batch's objects and a commit of `tree` as one pack, then point `ref` at it."""
    oid = batch.commit(tree, parents, message, name=AUTHOR_NAME, email=AUTHOR_EMAIL)
    batch.flush()
    if ref is not None:
        set_ref(batch.repo, ref, oid)
    return oid


def _bounded_callbacks(max_bytes: int):
    """Fetch callbacks that abort once more than `max_bytes` arrive (`.too_big` says so)."""
    import pygit2

    class Bounded(pygit2.RemoteCallbacks):
        def __init__(self) -> None:
            super().__init__()
            self.too_big = False

        def transfer_progress(self, stats) -> None:
            if stats.received_bytes > max_bytes:
                self.too_big = True
                raise IntegrityError(f"the index remote sent more than {max_bytes} bytes", hint="refusing endless data")

    return Bounded()


def fetch(repo: pygit2.Repository, url: str, refspec: str, *, max_bytes: int) -> None:
    """Fetch `refspec` from `url`, aborting once more than `max_bytes` arrive."""
    import pygit2

    callbacks = _bounded_callbacks(max_bytes)
    try:
        repo.remotes.create_anonymous(url).fetch([refspec], callbacks=callbacks)
    except IntegrityError as exc:
        raise IntegrityError(exc.message, where=url, hint=exc.hint) from exc
    except (pygit2.GitError, OSError, ValueError) as exc:
        if callbacks.too_big:
            raise IntegrityError(f"the index remote sent more than {max_bytes} bytes", where=url,
                                 hint="refusing endless data") from exc
        raise NetworkError(f"cannot fetch the index: {exc}", where=url,
                           hint="check the URL and your access to it") from exc
