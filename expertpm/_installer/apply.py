"""Apply a plan: fetch and verify in parallel, then switch the project's installed set atomically.

    1. locate every artifact to fetch (index lookups, lock-vs-index checks): a failure here
       changes nothing;
    2. stage them in parallel (bounded, largest first): each archive is read once, its digest,
       signature and files verified while it streams into a private staging directory of the
       store (hashlib and zstd release the GIL, so the threads use every core);
    3. commit them all at once: one flush, one hold of the store lock, one rename each, then the
       refs (`StoreBatch.commit`); git-sourced packages are installed on their own meanwhile;
    4. write `.experts/installed.json` (the switch) and the home's profile;
    5. drop the refs of packages the project no longer uses (when nobody else does).

If step 2 or 3 fails, nothing staged enters the store and the refs created for git sources are
removed again, so the store's refs, the project's installed set and the lock look exactly as
before (verified downloads stay in the cache).
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from pathlib import Path

from .._canonical import sha256_file
from .._errors import ExpertpmError, IntegrityError, NetworkError, StoreError
from .._home import Home
from .._lockfile import LockedPackage
from .fetch import Fetcher, IndexCatalog
from .installed import InstalledEntry, InstalledSet, write_installed, write_profile
from .plan import InstallPlan, Step

DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True, slots=True)
class Inputs:
    """What the installed set records about the inputs it was built from."""

    project_sha256: str
    lock_sha256: str
    indexes: dict
    fresh: bool


def apply_plan(home: Home, plan: InstallPlan, *, project_root: Path, inputs: Inputs, offline: bool = False,
               progress=None, concurrency: int = DEFAULT_CONCURRENCY, catalog: IndexCatalog | None = None
               ) -> InstalledSet:
    from .._store import Store

    store = Store(home)
    store.layout.ensure()
    catalog = catalog or IndexCatalog(home, offline=offline)
    fetches = plan.fetches
    artifacts = {s.id: catalog.artifact(s.package) for s in fetches if not _is_git(s.package)}
    created: list[Step] = []
    with Fetcher(home, offline=offline, progress=progress) as fetcher:
        try:
            _install_all(fetches, artifacts, fetcher, store, home, created, concurrency, offline)
        except BaseException:
            for step in created:
                try:
                    store.remove(step.name, step.version)
                except ExpertpmError:
                    pass
            raise
    entries = []
    for step in plan.steps:
        if step.action == "remove":
            continue
        added = step.action == "install" or step.added
        entries.append(InstalledEntry(step.name, step.version, step.kind, _digest_of(store, step), added))
    state = InstalledSet(str(store.root), inputs.project_sha256, inputs.lock_sha256, dict(inputs.indexes),
                         inputs.fresh, tuple(entries))
    write_installed(project_root, state)
    write_profile(home, project_root, state.packages)
    for step in plan.of("remove"):
        if step.unref:
            try:
                store.remove(step.name, step.version)
            except StoreError:
                pass  # already gone
    return state


def _digest_of(store, step: Step) -> str:
    if step.package is not None and _is_git(step.package) and step.action == "install":
        return store.get(step.name, step.version).digest
    return step.digest


def _is_git(package: LockedPackage | None) -> bool:
    return package is not None and package.source.startswith("git+")


def _install_all(fetches: list[Step], artifacts: dict, fetcher: Fetcher, store, home: Home, created: list,
                 concurrency: int, offline: bool) -> None:
    if not fetches:
        return
    workers = max(1, min(concurrency, len(fetches)))
    # largest first, so the last archive to finish is a small one
    ordered = sorted(fetches, key=lambda s: -artifacts[s.id].size if s.id in artifacts else 0)
    staged: dict[str, object] = {}

    def one(step: Step, batch) -> Step:
        if _is_git(step.package):
            _install_git(home, step.package, offline)
            created.append(step)
        else:
            staged[step.id] = fetcher.stage(artifacts[step.id], batch)
        return step

    with store.batch() as batch, \
            concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="expertpm-install") as pool:
        futures = [pool.submit(one, step, batch) for step in ordered]
        error: BaseException | None = None
        for future in concurrent.futures.as_completed(futures):
            try:
                future.result()
            except BaseException as exc:  # stop what has not started; keep the first error
                if error is None:
                    error = exc
                    for other in futures:
                        other.cancel()
        if error is not None:
            raise error
        done = [step for step in fetches if step.id in staged]
        batch.commit([staged[step.id] for step in done])
        created.extend(done)


def _install_git(home: Home, package: LockedPackage, offline: bool) -> None:
    """A git-sourced package: fetch the tag, install, and check it is what the lock recorded."""
    from .._index._source import install_git_source
    from .._store import Store

    if offline:
        raise NetworkError(f"--offline: {package.name}@{package.version} comes from {package.source}, which is not "
                           "installed here", hint="sync once with the network")
    result = install_git_source(home, package.source, warn=lambda message: None)
    installed = result.installed
    manifest_sha = sha256_file(installed.path / "manifest.json")[0]
    if installed.digest != package.sha256 and manifest_sha != package.manifest_sha256:
        Store(home).remove(installed.name, installed.version)
        raise IntegrityError(f"{package.source} now holds other content than experts.lock recorded for "
                             f"{package.name}@{package.version}", where="experts.lock",
                             hint="the tag was moved; run `expertpm lock --upgrade-package "
                                  f"{package.name}` if that is expected")
