"""Lazy package exports (PEP 562): names load from their submodule on first use, so importing a
package (and starting the CLI) stays cheap."""

from __future__ import annotations

import importlib
import sys


def lazy_exports(package: str, where: dict[str, str], exported: list[str]):
    """`__getattr__` and `__dir__` for `package`, which exports `name` from `where[name]` (a module
    path relative to the package) on first access and caches it in the package's namespace."""

    def __getattr__(name: str):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exported))

    return __getattr__, __dir__
