"""Resolving real experts.toml files against in-memory indexes of real, signed entries."""

from __future__ import annotations

from pathlib import Path

import pytest
from expertpm_testing.resolver import (
    OTHER_FINGERPRINT,
    WEIGHTS_V1,
    WEIGHTS_V2,
    base_entries,
    entry,
    memory_index,
)

from expertpm._errors import ResolutionError, UserError
from expertpm._project import parse_project
from expertpm._provider import resolve_project


def project(experts: dict[str, str], base: str | None = None, extra: str = ""):
    text = '[project]\nname = "demo"\n' + (f'base = "{base}"\n' if base else "") + "[experts]\n"
    text += "".join(f'{name} = {value if value.startswith("{") else repr(value)}\n' for name, value in experts.items())
    return parse_project(text + extra, Path("experts.toml"))


def versions(experts, entries, *, base=None, extra="", sources=None, **kw) -> dict[str, str]:
    result = resolve_project(project(experts, base, extra), sources or [memory_index(entries)], **kw)
    return {c.name: str(c.version) for c in result.packages}


def failure(experts, entries, *, base=None, extra="", **kw) -> ResolutionError:
    with pytest.raises(ResolutionError) as info:
        resolve_project(project(experts, base, extra), [memory_index(entries)], **kw)
    return info.value


SQL = base_entries() + [
    entry("sql-expert", "1.0.0"), entry("sql-expert", "1.5.0"),
    entry("sql-expert", "2.0.0", base_range="^2", weights=WEIGHTS_V2),
    entry("sql-expert", "2.1.0", base_range="^2", weights=WEIGHTS_V2),
]


def test_base_is_pulled_in_by_the_experts_digest():
    assert versions({"sql-expert": "*"}, SQL) == {"sql-expert": "2.1.0", "tiny-qwen3": "2.0.0"}
    assert versions({"sql-expert": "*"}, SQL, base="tiny-qwen3@^1") == {"sql-expert": "1.5.0", "tiny-qwen3": "1.1.0"}


def test_base_digest_mismatch_is_explained_with_a_fix():
    error = failure({"sql-expert": ">=2"}, SQL, base="tiny-qwen3@^1")
    assert error.message == (
        f"Because sql-expert>=2.0.0 requires base tiny-qwen3 ^2 with weights digest {WEIGHTS_V2[:8]}… and you "
        f"require base tiny-qwen3 ^1 (digest {WEIGHTS_V1[:8]}…), sql-expert>=2.0.0 cannot be used.\n"
        "And because you require sql-expert>=2, your requirements are unsatisfiable."
    )
    assert error.hint == "try sql-expert<2.0.0"
    assert {c.kind for c in error.causes} == {"dependency"}


def test_same_base_name_with_other_weights_is_a_conflict_resolved_by_backtracking():
    entries = base_entries() + [
        entry("sql-expert", "1.0.0"),
        entry("sql-expert", "2.0.0", base_range="*", weights=WEIGHTS_V2),  # retrained on other weights
        entry("chat", "1.0.0"),
    ]
    assert versions({"sql-expert": "*", "chat": "*"}, entries) == {
        "sql-expert": "1.0.0", "chat": "1.0.0", "tiny-qwen3": "1.1.0"}


def test_two_base_models_cannot_be_combined():
    entries = base_entries() + base_entries("tiny-llama") + [entry("sql", "1.0.0"), entry("chat", "1.0.0", base="tiny-llama")]
    error = failure({"sql": "*", "chat": "*"}, entries)
    assert error.message == (
        f"Because sql requires base tiny-qwen3 ^1 with weights digest {WEIGHTS_V1[:8]}… and base tiny-qwen3 is "
        "incompatible with base tiny-llama (a project uses exactly one base model), sql is incompatible with "
        "base tiny-llama.\n"
        f"And because chat requires base tiny-llama ^1 with weights digest {WEIGHTS_V1[:8]}…, sql is incompatible "
        "with chat.\n"
        "And because you require sql and chat, your requirements are unsatisfiable."
    )
    assert error.hint == "use experts built on one base model (tiny-llama or tiny-qwen3)"


def test_requires_diamond_and_lock_dependencies():
    entries = base_entries() + [
        entry("app", "1.0.0", requires={"left": "^1", "right": "^1"}),
        entry("left", "1.0.0", requires={"shared": "^1"}),
        entry("right", "1.0.0", requires={"shared": ">=1.1, <2"}),
        entry("shared", "1.0.0"), entry("shared", "1.1.0"), entry("shared", "2.0.0"),
    ]
    result = resolve_project(project({"app": "*"}), [memory_index(entries)])
    assert {c.name: str(c.version) for c in result.packages} == {
        "app": "1.0.0", "left": "1.0.0", "right": "1.0.0", "shared": "1.1.0", "tiny-qwen3": "1.1.0"}
    assert result.dependencies["app"] == ("left", "right", "tiny-qwen3")
    assert result.dependencies["tiny-qwen3"] == ()
    assert result.roots == ("app",)


def test_incompatible_with_steers_to_an_older_version_or_explains():
    entries = base_entries() + [
        entry("a", "1.0.0"), entry("a", "2.0.0", incompatible_with={"b": "^1"}), entry("b", "1.0.0")]
    assert versions({"a": "*", "b": "^1"}, entries) == {"a": "1.0.0", "b": "1.0.0", "tiny-qwen3": "1.1.0"}
    error = failure({"a": ">=2", "b": "^1"}, entries)
    assert error.message == (
        "Because a>=2.0.0 is incompatible with b ^1 and you require a>=2, b ^1 cannot be used.\n"
        "And because you require b ^1, your requirements are unsatisfiable."
    )
    assert [c.kind for c in error.causes] == ["exclusion", "dependency", "dependency"]


YANKED = base_entries() + [entry("sql", "1.0.0"), entry("sql", "1.1.0", yanked=True)]


def test_yanked_versions_are_skipped_unless_locked():
    assert versions({"sql": "^1"}, YANKED)["sql"] == "1.0.0"
    assert versions({"sql": "^1"}, YANKED, locked={"sql": "1.1.0"})["sql"] == "1.1.0"
    assert versions({"sql": "^1"}, YANKED, locked={"sql": "1.1.0"}, upgrade={"sql"})["sql"] == "1.0.0"
    assert versions({"sql": "^1"}, YANKED, locked={"sql": "1.1.0"}, upgrade=True)["sql"] == "1.0.0"


def test_requiring_only_yanked_versions_says_so():
    error = failure({"sql": ">=1.1"}, YANKED)
    assert error.message == (
        "Because there is no version of sql>=1.1 and you require sql>=1.1, your requirements are unsatisfiable.")
    assert error.hint == "sql 1.1.0 is yanked and only used when already locked"


def test_lock_preference_and_upgrade_package():
    entries = base_entries() + [entry("sql", "1.0.0"), entry("sql", "1.5.0"), entry("chat", "1.0.0"), entry("chat", "1.2.0")]
    locked = {"sql": "1.0.0", "chat": "1.0.0", "tiny-qwen3": "1.0.0"}
    assert versions({"sql": "^1", "chat": "^1"}, entries, locked=locked) == {
        "sql": "1.0.0", "chat": "1.0.0", "tiny-qwen3": "1.0.0"}
    assert versions({"sql": "^1", "chat": "^1"}, entries, locked=locked, upgrade={"sql"}) == {
        "sql": "1.5.0", "chat": "1.0.0", "tiny-qwen3": "1.0.0"}
    assert versions({"sql": "^1", "chat": "^1"}, entries, locked=locked, upgrade=True) == {
        "sql": "1.5.0", "chat": "1.2.0", "tiny-qwen3": "1.1.0"}
    # a lock that no longer satisfies the project is only a preference: the requirement wins
    assert versions({"sql": ">=1.5", "chat": "^1"}, entries, locked=locked)["sql"] == "1.5.0"


MAX = base_entries() + [entry("a", "1.0.0"), entry("a", "2.0.0", requires={"helper": "^1"}), entry("helper", "1.0.0"),
                        entry("b", "1.0.0")]


def test_max_chain_makes_the_resolver_pick_a_smaller_set():
    extra = "[tool.expertpm]\nmax_chain = 2\n"
    assert versions({"a": "*", "b": "*"}, MAX, extra=extra) == {"a": "1.0.0", "b": "1.0.0", "tiny-qwen3": "1.1.0"}
    assert versions({"a": "*", "b": "*"}, MAX)["a"] == "2.0.0"  # default max_chain = 10


def test_max_chain_exceeded_is_explained():
    error = failure({"a": ">=2", "b": "*"}, MAX, extra="[tool.expertpm]\nmax_chain = 2\n")
    assert error.message == (
        "Because a>=2.0.0 requires helper ^1 and a, b and helper cannot all be used together (max_chain = 2 allows "
        "at most 2 experts), a>=2.0.0 is incompatible with b.\n"
        "And because you require a>=2 and b, your requirements are unsatisfiable."
    )
    assert error.hint == "raise max_chain under [tool.expertpm] in experts.toml (now 2) or remove an expert"
    assert error.causes[-1].kind == "rule" or "rule" in [c.kind for c in error.causes]


def test_unknown_names_get_close_suggestions():
    error = failure({"sqlexpert": "^1"}, SQL)
    assert error.message == (
        "Because sqlexpert is not in index 'default' and you require sqlexpert ^1, your requirements are unsatisfiable.")
    assert error.hint == "did you mean 'sql-expert'?"
    entries = base_entries() + [entry("a", "1.0.0", requires={"ghost-expert": "^1"}), entry("ghost-exprt", "1.0.0")]
    error = failure({"a": "*"}, entries)
    assert error.message == (
        "Because a requires ghost-expert ^1 and ghost-expert is not in index 'default', a cannot be used.\n"
        "And because you require a, your requirements are unsatisfiable."
    )
    assert error.hint == "did you mean 'ghost-exprt'?"


def test_no_matching_version_names_the_newest():
    error = failure({"sql-expert": "^3"}, SQL)
    assert error.hint == "the newest version of sql-expert is 2.1.0"


def test_first_index_serves_a_name_unless_pinned():
    default = memory_index(base_entries() + [entry("sql", "1.0.0")])
    corp = memory_index([entry("sql", "9.0.0"), entry("corp-only", "1.0.0")], name="corp", fingerprint=OTHER_FINGERPRINT)
    assert versions({"sql": "*", "corp-only": "*"}, [], sources=[default, corp])["sql"] == "1.0.0"
    pinned = versions({"sql": '{ version = "*", index = "corp" }'}, [], sources=[default, corp])
    assert pinned["sql"] == "9.0.0"
    result = resolve_project(project({"sql": '{ version = "*", index = "corp" }'}), [default, corp])
    assert result.get("sql").source is corp and result.get("tiny-qwen3").source is default


def test_project_indexes_choose_and_order_the_sources():
    default = memory_index(base_entries() + [entry("sql", "1.0.0")])
    corp = memory_index(base_entries() + [entry("sql", "9.0.0")], name="corp", fingerprint=OTHER_FINGERPRINT)
    extra = '[tool.expertpm]\nindexes = ["corp"]\n'
    result = resolve_project(project({"sql": "*"}, extra=extra), [default, corp])
    assert str(result.get("sql").version) == "9.0.0" and result.indexes == (corp,)
    with pytest.raises(UserError, match="names index 'nowhere', which is not configured"):
        resolve_project(project({"sql": "*"}, extra='[tool.expertpm]\nindexes = ["nowhere"]\n'), [default])
    with pytest.raises(UserError, match=r"experts.sql.index names index 'nowhere'"):
        resolve_project(project({"sql": '{ version = "*", index = "nowhere" }'}), [default])


def test_git_sources_must_be_fetched_first():
    with pytest.raises(UserError, match="the git source of tools"):
        resolve_project(project({"tools": '{ git = "https://example.org/t.git", tag = "v1" }'}), [memory_index(SQL)])
    git = memory_index(base_entries() + [entry("tools", "0.3.0")], name="git")
    object.__setattr__(git, "lock_source", "git+https://example.org/t.git@v1")
    result = resolve_project(project({"tools": '{ git = "https://example.org/t.git", tag = "v1" }'}), [memory_index(SQL)],
                             git_sources={"tools": git})
    assert result.get("tools").source.lock_source == "git+https://example.org/t.git@v1"
