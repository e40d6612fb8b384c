"""Action functions: what each CLI command does, as plain functions over the domain modules
(one direction: cli → actions → domain). Each takes the project directory (or a path inside it)
and the `Home`, and returns a result object with `to_dict()` for `--json`.

    do_init, do_add, do_remove              experts.toml edits (project.py)
    do_lock                                 experts.lock (lock.py)
    do_sync                                 the installer (sync.py)
    do_list, do_tree, do_outdated, do_why   read commands (inspect.py)

Names are imported on first use (PEP 562), so a no-op `expertpm sync` loads only what it needs.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {
    "ListRow": "inspect", "OutdatedRow": "inspect", "TreeNode": "inspect", "WhyPath": "inspect",
    "do_list": "inspect", "do_outdated": "inspect", "do_tree": "inspect", "do_why": "inspect",
    "locked_project": "inspect", "render_tree": "inspect",
    "LockChange": "lock", "LockResult": "lock", "do_lock": "lock", "resolve_lock": "lock",
    "AddResult": "project", "InitResult": "project", "RemoveResult": "project", "do_add": "project",
    "do_init": "project", "do_remove": "project", "parse_requirement": "project",
    "SyncResult": "sync", "do_sync": "sync",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_exports(__name__, {k: f".{v}" for k, v in _WHERE.items()}, __all__)
