"""The project file `experts.toml`: what a downstream project wants.

    [project]
    name = "my-app"

    [base]                       # or, at the top: base = "tiny-qwen3@^1"
    name = "tiny-qwen3"
    version = "^1"

    [experts]
    sql = "^1.2"
    chat = { version = "^1", index = "corp" }
    tools = { git = "https://example.org/tools.git", tag = "v1", subdir = "expert" }

    [tool.expertpm]
    max_chain = 10
    indexes = ["default", "corp"]

Reading validates against `schemas/project.schema.json`, then the rules a schema cannot say;
every error names the file, the line and the field. `add_expert`/`remove_expert` edit the text
minimally (one line of `[experts]` changes; comments, order and layout elsewhere stay), then
re-read the result before writing it atomically, so a failed edit never damages the file.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ._errors import ExpertpmError, FormatError, UserError
from ._fs import atomic_write
from ._names import validate_name
from ._schema import schema_problems
from ._versions import VersionRange

PROJECT_FILE = "experts.toml"
DEFAULT_MAX_CHAIN = 10
_KEY = r'(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_KEY_LINE = re.compile(rf"^\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*=")
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_KEY}(?:\s*\.\s*{_KEY})*)\s*\]\]?\s*(?:#.*)?$")


@dataclass(frozen=True, slots=True)
class BaseSpec:
    name: str
    version: str = "*"


@dataclass(frozen=True, slots=True)
class ExpertSpec:
    """One `[experts]` entry: an index requirement (`version`, optional `index`) or a git source."""

    name: str
    version: str = "*"
    index: str | None = None
    git: str | None = None
    tag: str | None = None
    rev: str | None = None
    subdir: str | None = None

    @property
    def is_git(self) -> bool:
        return self.git is not None

    def to_dict(self) -> dict:
        if self.is_git:
            return {k: v for k, v in (("git", self.git), ("tag", self.tag), ("rev", self.rev), ("subdir", self.subdir)) if v}
        return {"version": self.version, **({"index": self.index} if self.index else {})}

    def toml_value(self) -> str:
        """The value as written in `[experts]`: a plain range string when that is all there is."""
        doc = self.to_dict()
        if list(doc) == ["version"]:
            return _toml_string(self.version)
        return "{ " + ", ".join(f"{k} = {_toml_string(v)}" for k, v in doc.items()) + " }"


@dataclass(frozen=True, slots=True)
class Project:
    path: Path
    name: str
    base: BaseSpec | None
    experts: tuple[ExpertSpec, ...]
    max_chain: int = DEFAULT_MAX_CHAIN
    indexes: tuple[str, ...] = ()

    @property
    def root(self) -> Path:
        return self.path.parent

    def expert(self, name: str) -> ExpertSpec | None:
        return next((e for e in self.experts if e.name == name), None)

    def inputs(self) -> dict:
        """What the lockfile's content hash covers (order-independent where order means nothing)."""
        return {
            "base": {"name": self.base.name, "version": self.base.version} if self.base else None,
            "experts": {e.name: e.to_dict() for e in self.experts},
            "max_chain": self.max_chain,
        }


def find_project(start: Path | str = ".") -> Path:
    """The nearest experts.toml in `start` or its parents."""
    here = Path(start).absolute()
    for directory in (here, *here.parents):
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return candidate
    raise UserError(f"no {PROJECT_FILE} in {here} or any parent directory", hint="run `expertpm init` to create one")


def load_project(path: Path | str) -> Project:
    path = Path(path)
    if path.is_dir():
        path = path / PROJECT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UserError(f"{path} does not exist", hint="run `expertpm init` to create it") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read {PROJECT_FILE}: {exc}", where=str(path)) from exc
    return parse_project(text, path)


def parse_project(text: str, path: Path | str = PROJECT_FILE) -> Project:
    path = Path(path)
    doc = parse_toml(text, path)
    problems = schema_problems(doc, "project")
    if not problems:
        problems = _semantic_problems(doc)
    if problems:
        raise located_error(problems, text, path)
    tool = doc.get("tool", {}).get("expertpm", {})
    experts = tuple(_expert_spec(name, value) for name, value in doc.get("experts", {}).items())
    return Project(path=path, name=doc["project"]["name"], base=_base_spec(_base_value(doc)), experts=experts,
                   max_chain=tool.get("max_chain", DEFAULT_MAX_CHAIN), indexes=tuple(tool.get("indexes", ())))


def parse_toml(text: str, path: Path | str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column (\d+)\)", message)
        where = f"{path}:{found.group(1)}" if found else str(path)
        detail = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        if found:
            detail += f" (column {found.group(2)})"
        raise FormatError(f"invalid TOML: {detail}", where=where, hint="fix the syntax at that line") from exc


def _base_value(doc: dict) -> Any:
    return doc["base"] if "base" in doc else doc.get("project", {}).get("base")


def _base_spec(value: Any) -> BaseSpec | None:
    if value is None:
        return None
    if isinstance(value, str):
        name, _, version = value.partition("@")
        return BaseSpec(name.strip(), version.strip() or "*")
    return BaseSpec(value["name"], value.get("version", "*"))


def _expert_spec(name: str, value: Any) -> ExpertSpec:
    if isinstance(value, str):
        return ExpertSpec(name, value)
    return ExpertSpec(name, value.get("version", "*"), value.get("index"), value.get("git"), value.get("tag"),
                      value.get("rev"), value.get("subdir"))


def _semantic_problems(doc: dict) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []

    def check(path: str, fn) -> None:
        try:
            fn()
        except ExpertpmError as exc:
            problems.append((path, exc.message + (f" — {exc.hint}" if exc.hint else "")))

    value = _base_value(doc)
    base = _base_spec(value)
    prefix = "base" if "base" in doc else "project.base"
    if "base" in doc and "base" in doc["project"]:
        problems.append(("project.base", "the base model is given twice (here and at the top level); keep one"))
    if base is not None:
        check(prefix if isinstance(value, str) else f"{prefix}.name", lambda: validate_name(base.name))
        check(prefix if isinstance(value, str) else f"{prefix}.version", lambda: VersionRange.parse(base.version))
    for name, value in doc.get("experts", {}).items():
        check(f"experts.{name}", lambda name=name: validate_name(name))
        spec = _expert_spec(name, value)
        field = f"experts.{name}" if isinstance(value, str) else f"experts.{name}.version"
        check(field, lambda spec=spec: VersionRange.parse(spec.version))
        if isinstance(value, dict):
            if spec.is_git and ({"version", "index"} & set(value)):
                problems.append((f"experts.{name}", "a git source takes tag, rev and subdir, not version or index"))
            if not spec.is_git and ({"tag", "rev", "subdir"} & set(value)):
                problems.append((f"experts.{name}", "tag, rev and subdir need a git URL (git = \"...\")"))
            if spec.tag and spec.rev:
                problems.append((f"experts.{name}", "give either tag or rev, not both"))
    return problems


# -- locating fields in TOML text ----------------------------------------------------------
def toml_lines(text: str) -> dict[tuple, int]:
    """Map every table and key path (array tables indexed: ("package", 2, "sha256")) to its line."""
    found: dict[tuple, int] = {}
    current: tuple = ()
    counts: dict[tuple, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            keys = tuple(_split_key(header.group(2)))
            if header.group(1) == "[[":
                counts[keys] = counts.get(keys, -1) + 1
                current = keys + (counts[keys],)
            else:
                current = keys
            found.setdefault(current, number)
            continue
        key = _KEY_LINE.match(line)
        if key:
            path = current + tuple(_split_key(key.group(1)))
            for i in range(len(current) + 1, len(path) + 1):
                found.setdefault(path[:i], number)
    return found


def line_of(text: str, field: str | tuple) -> int | None:
    """The line of `field` (a dotted path like `experts.sql.version` or `package[2].sha256`)."""
    if isinstance(field, tuple):
        parts = field
    else:
        parts = tuple(
            json.loads(f'"{quoted}"') if quoted else (int(plain) if plain.isdigit() else plain)
            for quoted, plain in re.findall(r'"((?:[^"\\]|\\.)*)"|([^.\[\]]+)', field)
        )
    lines = toml_lines(text)
    for i in range(len(parts), 0, -1):
        if parts[:i] in lines:
            return lines[parts[:i]]
    return None


def located_error(problems: list[tuple[str, str]], text: str, path: Path) -> FormatError:
    """One FormatError: `file:line: field: message`, further problems listed with their lines."""
    field, message = problems[0]
    unknown = re.match(r"unknown field\(s\): '([^']+)'", message)
    line = (unknown and line_of(text, f"{field}.{unknown.group(1)}" if field != "(document)" else unknown.group(1)))
    line = line or line_of(text, field)
    where = f"{path}:{line}" if line else str(path)
    rest = [f"{f} (line {line_of(text, f) or '?'}): {m}" for f, m in problems[1:6]]
    detail = f"{field}: {message}" + ("; " + "; ".join(rest) if rest else "")
    return FormatError(detail, where=where, problems=problems)


def _split_key(dotted: str) -> list[str]:
    parts = re.findall(rf"{_KEY}", dotted)
    return [json.loads(p) if p.startswith('"') else p.strip("'") for p in parts]


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings


# -- writing and editing -------------------------------------------------------------------
def new_project_text(name: str, base: BaseSpec | None = None, *, indexes: tuple[str, ...] = ()) -> str:
    lines = ["[project]", f"name = {_toml_string(name)}", ""]
    if base is not None:
        lines += ["[base]", f"name = {_toml_string(base.name)}", f"version = {_toml_string(base.version)}", ""]
    lines += ["[experts]", ""]
    if indexes:
        lines += ["[tool.expertpm]", f"indexes = [{', '.join(_toml_string(i) for i in indexes)}]", ""]
    return "\n".join(lines)


def add_expert(path: Path | str, spec: ExpertSpec) -> Project:
    """Add or replace one `[experts]` entry, keeping every other line of the file as it is."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    load_project(path)  # refuse to edit a file that is already broken
    lines = _without_expert(text.splitlines(keepends=True), spec.name)
    entry = f"{spec.name} = {spec.toml_value()}\n"
    section = _section_span(lines, ("experts",))
    if section is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines += (["\n"] if lines and lines[-1].strip() else []) + ["[experts]\n", entry]
    else:
        start, end = section
        last = max((i for i in range(start + 1, end) if _KEY_LINE.match(lines[i])), default=start)
        lines.insert(last + 1, entry)
    return _write_checked(path, "".join(lines))


def remove_expert(path: Path | str, name: str) -> Project:
    path = Path(path)
    project = load_project(path)
    if project.expert(name) is None:
        close = [e.name for e in project.experts if e.name.startswith(name[:3])]
        raise UserError(f"{name} is not in [experts] of {path}",
                        hint=f"did you mean {close[0]!r}?" if close else "see `expertpm list`")
    text = path.read_text(encoding="utf-8")
    return _write_checked(path, "".join(_without_expert(text.splitlines(keepends=True), name)))


def _without_expert(lines: list[str], name: str) -> list[str]:
    out = list(lines)
    section = _section_span(out, ("experts",))
    if section is not None:
        start, end = section
        out = [line for i, line in enumerate(out)
               if not (start < i < end and (m := _KEY_LINE.match(line)) and _split_key(m.group(1))[0] == name)]
    sub = _section_span(out, ("experts", name))
    if sub is not None:  # an [experts.NAME] table, with the blank lines after it when one precedes it
        start, end = sub
        if start == 0 or not out[start - 1].strip():
            while end < len(out) and not out[end].strip():
                end += 1
        del out[start:end]
    return out


def _section_span(lines: list[str], keys: tuple) -> tuple[int, int] | None:
    """[start, end) of the table `keys`: its header line up to the next header (trailing blanks kept out)."""
    start = None
    for i, line in enumerate(lines):
        header = _HEADER.match(line)
        if not header:
            continue
        if start is not None:
            end = i
            while end - 1 > start and not lines[end - 1].strip():
                end -= 1
            return start, end
        if header.group(1) == "[" and tuple(_split_key(header.group(2))) == keys:
            start = i
    return (start, len(lines)) if start is not None else None


def _write_checked(path: Path, text: str) -> Project:
    project = parse_project(text, path)  # never write what we could not read back
    atomic_write(path, text.encode("utf-8"))
    return project


def project_inputs_for_hash(project: Project, indexes: Mapping[str, str]) -> dict:
    """The canonical document the lockfile's content hash is computed from."""
    return {"format": 1, **project.inputs(), "indexes": [{"name": n, "fingerprint": f} for n, f in indexes.items()]}
