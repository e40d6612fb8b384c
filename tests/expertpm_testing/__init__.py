"""The pytest plugin of expertpm's test suite (loaded with `-p expertpm_testing`).

Fixtures live in the submodules of this package, one per area (core, packages, store, index,
runtime, forge, ...); every public name a submodule lists in `__all__` is a fixture or helper.
"""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    for _name in getattr(_module, "__all__", ()):
        globals()[_name] = getattr(_module, _name)
