"""The generic PubGrub core, driven through the provider seam by a plain table of packages.

Scenarios and expected outcomes follow pub's solver documentation; explanations are pinned
word for word because they are user-facing output.
"""

from __future__ import annotations

import pytest
from expertpm_testing.resolver import DictProvider, requirement, solve

from expertpm._errors import ResolutionError
from expertpm._resolver import ROOT, CountingReporter, Reporter, resolve
from expertpm._resolver.terms import Universe
from expertpm._versions import Version


def explain(data: dict, *requirements: str) -> ResolutionError:
    with pytest.raises(ResolutionError) as info:
        solve(data, *requirements)
    return info.value


def test_no_conflicts_takes_newest_versions():
    data = {"foo": {"1.0.0": {"bar": "^1"}}, "bar": {"1.0.0": {}, "1.1.0": {}, "2.0.0": {}}}
    assert solve(data, "foo ^1") == {"foo": "1.0.0", "bar": "1.1.0"}


def test_avoids_a_conflict_while_deciding():
    data = {"foo": {"1.0.0": {}, "1.1.0": {"bar": "^2"}}, "bar": {"1.0.0": {}, "1.1.0": {}, "2.0.0": {}}}
    assert solve(data, "foo ^1", "bar ^1") == {"foo": "1.0.0", "bar": "1.1.0"}


def test_conflict_resolution_drops_a_dependency():
    data = {"foo": {"1.0.0": {}, "2.0.0": {"bar": "^1"}}, "bar": {"1.0.0": {"foo": "^1"}}}
    assert solve(data, "foo >=1") == {"foo": "1.0.0"}


def test_conflict_resolution_with_a_partial_satisfier_backtracks():
    data = {
        "foo": {"1.0.0": {}, "1.1.0": {"left": "^1", "right": "^1"}},
        "left": {"1.0.0": {"shared": ">=1"}},
        "right": {"1.0.0": {"shared": "<2"}},
        "shared": {"1.0.0": {"target": "^1"}, "2.0.0": {}},
        "target": {"1.0.0": {}, "2.0.0": {}},
    }
    reporter = CountingReporter()
    result = resolve(DictProvider(data), [requirement("foo", "^1"), requirement("target", "^2")], reporter)
    assert {n: str(v) for n, v in result.versions.items()} == {"foo": "1.0.0", "target": "2.0.0"}
    assert reporter.conflicts >= 1 and reporter.backtracks >= 1


def test_diamond_selects_one_version_each_and_reports_edges():
    data = {
        "app": {"1.0.0": {"left": "^1", "right": "^1"}},
        "left": {"1.0.0": {"shared": "^1"}},
        "right": {"1.0.0": {"shared": ">=1.1, <2"}},
        "shared": {"1.0.0": {}, "1.1.0": {}, "1.2.0": {}, "2.0.0": {}},
    }
    result = resolve(DictProvider(data), [requirement("app", "*")])
    assert {n: str(v) for n, v in result.versions.items()} == {
        "app": "1.0.0", "left": "1.0.0", "right": "1.0.0", "shared": "1.2.0"}
    assert result.roots == ("app",)
    assert result.dependencies["app"] == ("left", "right")
    assert result.dependencies["shared"] == ()


def test_preferences_are_soft():
    data = {"a": {"1.0.0": {}, "1.1.0": {}, "1.2.0": {}}}
    assert solve(data, "a ^1", prefer={"a": "1.1.0"}) == {"a": "1.1.0"}
    assert solve(data, "a >=1.2", prefer={"a": "1.1.0"}) == {"a": "1.2.0"}


def test_exact_pins_are_decided_before_ranges():
    order = []

    class Recorder(Reporter):
        def deciding(self, package, version):
            if package is not ROOT:
                order.append(package)

    data = {"wide": {"1.0.0": {}, "2.0.0": {}}, "pinned": {"1.0.0": {}, "1.1.0": {}}, "later": {"1.0.0": {}, "1.1.0": {}}}
    reqs = [requirement("wide", "*"), requirement("later", "*"), requirement("pinned", "1.0.0")]
    resolve(DictProvider(data), reqs, Recorder())
    assert order == ["pinned", "wide", "later"]


def test_linear_error_report():
    data = {"foo": {"1.0.0": {"bar": "^2"}}, "bar": {"2.0.0": {"baz": "^3"}}, "baz": {"1.0.0": {}, "3.0.0": {}}}
    error = explain(data, "foo ^1", "baz ^1")
    assert error.message == (
        "Because foo requires bar ^2 which requires baz ^3, foo requires baz ^3.\n"
        "And because you require foo ^1 and baz ^1, your requirements are unsatisfiable."
    )
    assert [c.kind for c in error.causes] == ["dependency"] * 4


def test_branching_error_report_numbers_reused_lines():
    data = {
        "foo": {"1.0.0": {"a": "^1", "b": "^1"}, "1.1.0": {"x": "^1", "y": "^1"}},
        "a": {"1.0.0": {"b": "^2"}}, "b": {"1.0.0": {}, "2.0.0": {}},
        "x": {"1.0.0": {"y": "^2"}}, "y": {"1.0.0": {}, "2.0.0": {}},
    }
    assert explain(data, "foo ^1").message == (
        "Because foo<1.1.0 requires a ^1 which requires b ^2, foo<1.1.0 requires b ^2.\n"
        "And because foo<1.1.0 requires b ^1, foo<1.1.0 cannot be used. (1)\n"
        "\n"
        "Because foo>=1.1.0 requires x ^1 which requires y ^2, foo>=1.1.0 requires y ^2.\n"
        "And because foo>=1.1.0 requires y ^1, foo>=1.1.0 cannot be used.\n"
        "And because foo<1.1.0 cannot be used (1), foo cannot be used.\n"
        "And because you require foo ^1, your requirements are unsatisfiable."
    )


def test_no_matching_version_is_named_as_such():
    error = explain({"a": {"1.0.0": {}}}, "a >=3")
    assert error.message == "Because there is no version of a>=3 and you require a>=3, your requirements are unsatisfiable."
    assert [c.kind for c in error.causes] == ["dependency", "missing"]


def test_unknown_package_uses_the_provider_wording():
    error = explain({"a": {"1.0.0": {"ghost": "^1"}}}, "a")
    assert error.message == (
        "Because a requires ghost ^1 and ghost does not exist, a cannot be used.\n"
        "And because you require a, your requirements are unsatisfiable."
    )


def test_hint_offers_the_versions_not_ruled_out():
    data = {"a": {"1.0.0": {}, "2.0.0": {"b": "^2"}}, "b": {"1.0.0": {}}}
    error = explain(data, "a >=2")
    assert error.hint == "try a<2.0.0"


def test_dependencies_shared_by_neighbours_are_asked_once_per_version():
    data = {"a": {f"1.{i}.0": {"b": "^9"} for i in range(10)}, "b": {"1.0.0": {}}}
    provider = DictProvider(data)
    with pytest.raises(ResolutionError) as info:
        resolve(provider, [requirement("a", "^1")])
    assert "a requires b ^9" in info.value.message  # one incompatibility for the whole run of versions
    assert provider.dependency_calls == 10


@pytest.mark.parametrize(
    ("versions", "chosen", "text"),
    [
        (["1.0.0", "1.1.0", "2.0.0"], ["2.0.0"], ">=2.0.0"),
        (["1.0.0", "1.1.0", "2.0.0"], ["1.0.0", "1.1.0"], "<2.0.0"),
        (["1.0.0", "1.1.0", "2.0.0"], ["1.1.0"], "1.1.0"),
        (["1.0.0", "1.1.0", "2.0.0", "3.0.0"], ["1.1.0", "2.0.0"], ">=1.1.0, <3.0.0"),
        (["1.0.0", "1.1.0", "2.0.0"], ["1.0.0", "2.0.0"], "<1.1.0 || >=2.0.0"),
        (["1.0.0", "2.0.0-rc.1", "2.0.0"], ["1.0.0", "2.0.0"], "*"),
        (["1.0.0", "2.0.0-rc.1", "2.0.0", "3.0.0"], ["2.0.0", "3.0.0"], ">=2.0.0"),
        (["1.0.0"], [], "(none)"),
    ],
)
def test_version_sets_render_as_ranges_relative_to_the_universe(versions, chosen, text):
    universe = Universe.of("p", [Version.parse(v) for v in versions])
    mask = sum(1 << universe.position(Version.parse(v)) for v in chosen)
    assert universe.render(mask) == text


def test_the_resolver_core_exports_exactly_its_api():
    import expertpm._resolver as core

    assert sorted(core.__all__) == [
        "ANY", "BaseProvider", "Cause", "CountingReporter", "Exclusion", "Incompatibility", "Nogood", "Provider",
        "ROOT", "Reporter", "Requirement", "Resolution", "resolve"]
    assert all(hasattr(core, name) for name in core.__all__)
