"""experts.toml: reading, exact error messages (file, line, field), and minimal edits."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from expertpm_testing.core import REPO
from expertpm_testing.resolver import write_project

from expertpm._errors import FormatError, UserError
from expertpm._project import (
    BaseSpec,
    ExpertSpec,
    add_expert,
    find_project,
    line_of,
    load_project,
    new_project_text,
    remove_expert,
)

FULL = """\
# my service's experts
[project]
name = "demo"

[base]
name = "tiny-qwen3"
version = "^1"

[experts]
# the SQL one first
sql = "^1.2"   # pinned by the team
chat = { version = "^1", index = "corp" }
tools = { git = "https://example.org/tools.git", tag = "v1", subdir = "expert" }

[tool.expertpm]
max_chain = 4
indexes = ["default", "corp"]

[tool.other]
anything = true
"""


def test_reads_every_form(project_dir: Path):
    project = load_project(write_project(project_dir, FULL))
    assert project.name == "demo" and project.base == BaseSpec("tiny-qwen3", "^1")
    assert project.experts == (
        ExpertSpec("sql", "^1.2"),
        ExpertSpec("chat", "^1", index="corp"),
        ExpertSpec("tools", git="https://example.org/tools.git", tag="v1", subdir="expert"),
    )
    assert (project.max_chain, project.indexes) == (4, ("default", "corp"))
    assert load_project(project_dir) == project
    (project_dir / "sub" / "dir").mkdir(parents=True)
    assert find_project(project_dir / "sub" / "dir") == project_dir / "experts.toml"


@pytest.mark.parametrize("text", ['base = "tiny-qwen3@^1"\n[project]\nname = "x"\n',
                                  '[project]\nname = "x"\nbase = "tiny-qwen3@^1"\n'])
def test_inline_base_at_the_top_or_in_project(project_dir: Path, text: str):
    assert load_project(write_project(project_dir, text)).base == BaseSpec("tiny-qwen3", "^1")


def test_defaults(project_dir: Path):
    project = load_project(write_project(project_dir, '[project]\nname = "x"\n'))
    assert (project.base, project.experts, project.max_chain, project.indexes) == (None, (), 10, ())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[project]\nname = "x"\n[experts]\nsql = "^^1"\n',
         "experts.toml:4: experts.sql: invalid version range '^^1': cannot read '^1' — use forms like '^1.2', "
         "'~1.2.3', '>=1, <2', '*' or '1.2.3'"),
        ('[project]\nname = "x"\n\n[experts]\nSQL_Expert = "1"\n',
         "experts.toml:5: experts.SQL_Expert: invalid expert name 'SQL_Expert' — did you mean 'sql-expert'?"),
        ('[project]\nname = "x"\n[experts]\nsql = { version = "1", colour = "red" }\n',
         "experts.toml:4: experts.sql: unknown field(s): 'colour'"),
        ('[project]\nname = "x"\n[experts]\nsql = { git = "https://e.org/x.git", version = "1" }\n',
         "experts.toml:4: experts.sql: a git source takes tag, rev and subdir, not version or index"),
        ('[project]\nname = "x"\n[tool.expertpm]\nmax_chain = "ten"\n',
         "experts.toml:4: tool.expertpm.max_chain: 'ten' is not of type 'integer'"),
        ('[project]\nname = "x"\n[tool.expertpm]\n\nmax_chian = 3\n',
         "experts.toml:5: tool.expertpm: unknown field(s): 'max_chian'"),
        ('[project]\nname = "x"\n[experts]\nsql = "1\n',
         "experts.toml:4: invalid TOML: Illegal character '\\n' (column 9) — fix the syntax at that line"),
        ('[experts]\nsql = "1"\n', "experts.toml: project: is required"),
        ('[project]\nname = "x"\n[base]\nname = "tiny-qwen3"\nversion = "one"\n',
         "experts.toml:5: base.version: invalid version range 'one': cannot read 'one' — use forms like '^1.2', "
         "'~1.2.3', '>=1, <2', '*' or '1.2.3'"),
        ('base = "a"\n[project]\nname = "x"\nbase = "b"\n',
         "experts.toml:4: project.base: the base model is given twice (here and at the top level); keep one"),
    ],
)
def test_malformed_files_name_file_line_and_field(project_dir: Path, text: str, message: str):
    with pytest.raises(FormatError) as info:
        load_project(write_project(project_dir, text))
    assert str(info.value) == message.replace("experts.toml", str(project_dir / "experts.toml"), 1)


def test_several_problems_are_listed_with_their_lines(project_dir: Path):
    text = '[project]\nname = "x"\n[experts]\nBad_Name = "1"\ngood = { version = "1", tag = "v1" }\n'
    with pytest.raises(FormatError) as info:
        load_project(write_project(project_dir, text))
    assert info.value.message.endswith('; experts.good (line 5): tag, rev and subdir need a git URL (git = "...")')
    assert [p for p, _ in info.value.problems] == ["experts.Bad_Name", "experts.good"]


def test_missing_project_file_says_how_to_create_one(tmp_path: Path):
    with pytest.raises(UserError, match=r"does not exist — run `expertpm init`"):
        load_project(tmp_path)
    with pytest.raises(UserError, match="no experts.toml in"):
        find_project(tmp_path)


def test_line_of_handles_array_tables_and_quoted_keys():
    text = '[[package]]\nname = "a"\n\n[[package]]\nname = "b"\nsha256 = "x"\n[x."y.z"]\nk = 1\n'
    assert line_of(text, "package[1].sha256") == 6
    assert line_of(text, "package[0].sha256") == 1  # falls back to the table
    assert line_of(text, 'x."y.z".k') == 8


def test_add_keeps_comments_order_and_layout(project_dir: Path):
    path = write_project(project_dir, FULL)
    add_expert(path, ExpertSpec("math", "~2.1"))
    add_expert(path, ExpertSpec("sql", "^1.3"))
    project = add_expert(path, ExpertSpec("corp-thing", "^1", index="corp"))
    text = path.read_text()
    assert text == FULL.replace(
        'sql = "^1.2"   # pinned by the team\n', ""
    ).replace(
        'subdir = "expert" }\n',
        'subdir = "expert" }\nmath = "~2.1"\nsql = "^1.3"\ncorp-thing = { version = "^1", index = "corp" }\n',
    )
    assert [e.name for e in project.experts] == ["chat", "tools", "math", "sql", "corp-thing"]


def test_add_creates_the_experts_table_and_remove_deletes_one_entry(project_dir: Path):
    path = write_project(project_dir, '[project]\nname = "x"  # keep me\n')
    add_expert(path, ExpertSpec("sql", "^1"))
    add_expert(path, ExpertSpec("tools", git="https://e.org/t.git", rev="abcdef1"))
    assert path.read_text() == (
        '[project]\nname = "x"  # keep me\n\n[experts]\nsql = "^1"\n'
        'tools = { git = "https://e.org/t.git", rev = "abcdef1" }\n')
    project = remove_expert(path, "sql")
    assert [e.name for e in project.experts] == ["tools"]
    assert path.read_text() == '[project]\nname = "x"  # keep me\n\n[experts]\ntools = { git = "https://e.org/t.git", rev = "abcdef1" }\n'


def test_remove_handles_a_subtable_and_refuses_unknown_names(project_dir: Path):
    path = write_project(project_dir, '[project]\nname = "x"\n\n[experts.sql]\nversion = "^1"\n\n[tool.expertpm]\nmax_chain = 3\n')
    assert remove_expert(path, "sql").experts == ()
    assert path.read_text() == '[project]\nname = "x"\n\n[tool.expertpm]\nmax_chain = 3\n'
    with pytest.raises(UserError, match=r"sqll is not in \[experts\]"):
        remove_expert(path, "sqll")


def test_edits_refuse_a_broken_file_and_leave_it_alone(project_dir: Path):
    path = write_project(project_dir, '[project]\nname = "x"\n[experts]\nsql = "^^1"\n')
    before = path.read_bytes()
    with pytest.raises(FormatError):
        add_expert(path, ExpertSpec("chat", "^1"))
    assert path.read_bytes() == before


def test_new_project_text_round_trips_and_matches_the_schema(project_dir: Path):
    import tomllib

    text = new_project_text("demo", BaseSpec("tiny-qwen3", "^1"), indexes=("default",))
    project = load_project(write_project(project_dir, text))
    assert (project.name, project.base, project.indexes) == ("demo", BaseSpec("tiny-qwen3", "^1"), ("default",))
    schema = json.loads((REPO / "schemas" / "project.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(tomllib.loads(FULL))
    jsonschema.Draft202012Validator(schema).validate(tomllib.loads(text))
