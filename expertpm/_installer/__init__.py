"""The installer: plan what a lock needs against the store and the project, then apply it.

    plan = plan_install(lock, store_root, read_installed(project_root), used_elsewhere=...)
    state = apply_plan(home, plan, project_root=..., inputs=Inputs(...), offline=False, progress=...)

See `plan` (install / reuse / keep / remove), `fetch` (where bytes come from, resume, bounds),
`apply` (parallel installs, rollback, the atomic switch), `installed` (the project's set) and
`progress`. Names are imported on first use (PEP 562): the no-op sync path stays light.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {
    "DEFAULT_CONCURRENCY": "apply", "Inputs": "apply", "apply_plan": "apply",
    "Artifact": "fetch", "BoundedReader": "fetch", "Fetcher": "fetch", "IndexCatalog": "fetch",
    "InstalledEntry": "installed", "InstalledSet": "installed", "read_installed": "installed",
    "refs_used_elsewhere": "installed", "state_path": "installed", "write_installed": "installed",
    "InstallPlan": "plan", "Step": "plan", "installed_digest": "plan", "plan_install": "plan",
    "NullProgress": "progress", "RichProgress": "progress", "progress_for_terminal": "progress",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, {k: f".{v}" for k, v in _WHERE.items()}, __all__)
