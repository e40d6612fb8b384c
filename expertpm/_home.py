"""Where expertpm keeps its state: `--home` > `$EXPERTPM_HOME` > `~/.expertpm`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, override: str | os.PathLike | None = None) -> "Home":
        if override:
            return cls(Path(override).expanduser().absolute())
        env = os.environ.get("EXPERTPM_HOME")
        if env:
            return cls(Path(env).expanduser().absolute())
        return cls(Path.home() / ".expertpm")

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def indexes_dir(self) -> Path:
        return self.root / "indexes"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def config_file(self) -> Path:
        return self.root / "config.toml"
