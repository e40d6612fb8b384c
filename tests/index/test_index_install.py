"""Installing from an index and from Git source repositories."""

import json

import pygit2
import pytest

from expertpm import IntegrityError, PackageError, ResolutionError
from expertpm._index import find_entry, install_entry, install_from_index, parse_spec, set_yanked
from expertpm._index._gitdb import commit, write_tree
from expertpm._index._gitpack import ObjectBatch
from expertpm._index._source import install_git_source, parse_git_source
from expertpm_testing.packages import make_expert_source


def test_install_picks_the_newest_matching_non_yanked_version(index_world):
    for i, version in enumerate(["1.0.0", "1.1.0", "1.2.0", "2.0.0"]):
        index_world.publish("sql", version, seed=i)
    set_yanked(index_world.dir, "sql", "1.2.0", index_world.publisher)
    index_world.add_client()
    result = install_from_index(index_world.client, "sql@^1", index_name="main")
    assert (result.index, result.entry.version, result.installed.version) == ("main", "1.1.0", "1.1.0")
    assert result.installed.digest == result.entry.sha256
    assert result.installed.signer_key_id == index_world.publisher.key_id
    assert install_from_index(index_world.client, "SQL").entry.version == "2.0.0"


def test_install_explains_what_is_missing(index_world):
    index_world.publish("sql", "1.0.0")
    set_yanked(index_world.dir, "sql", "1.0.0", index_world.publisher)
    index_world.add_client()
    with pytest.raises(ResolutionError, match=r"no version of sql matches '\^2' .* available: 1.0.0 \(yanked\)"):
        install_from_index(index_world.client, "sql@^2")
    with pytest.raises(ResolutionError, match="no package named 'nosuch' in index 'main'"):
        install_from_index(index_world.client, "nosuch", index_name="main")
    assert index_world.installed() == []


def test_install_entry_reuses_a_verified_cached_artifact(index_world):
    index_world.publish("sql", "1.0.0")
    index_world.add_client()
    index, entry = find_entry(index_world.client, "sql")
    install_entry(index_world.client, index, entry)
    (index_world.dir / "artifacts" / "sql" / "sql-1.0.0.expert").unlink()
    assert install_entry(index_world.client, index, entry).digest == entry.sha256


def test_truncated_artifact_is_refused(index_world):
    index_world.publish("sql", "1.0.0")
    index_world.add_client()
    artifact = index_world.dir / "artifacts" / "sql" / "sql-1.0.0.expert"
    artifact.write_bytes(artifact.read_bytes()[:-1])
    with pytest.raises(IntegrityError, match=r"the artifact is \d+ bytes, but its signed index line declares \d+"):
        install_from_index(index_world.client, "sql")
    assert index_world.installed() == []


@pytest.mark.parametrize("spec, message", [("sql@", None), ("sql@^1.2", None), ("bad name!", "invalid expert name"),
                                           ("sql@>>1", "invalid version range")])
def test_parse_spec(spec, message):
    if message is None:
        assert parse_spec(spec)[0] == "sql"
    else:
        with pytest.raises(Exception, match=message):
            parse_spec(spec)


def make_source_repo(path, src_dir, *, tag="v1.0.0", extra: dict[str, bytes] | None = None, subdir=""):
    """A bare Git repository whose tag `tag` holds the files of `src_dir` (under `subdir`)."""
    repo = pygit2.init_repository(str(path), bare=True, initial_head="main")
    files = {f"{subdir + '/' if subdir else ''}{p.relative_to(src_dir)}": p.read_bytes()
             for p in sorted(src_dir.rglob("*")) if p.is_file()}
    files.update(extra or {})
    batch = ObjectBatch(repo)
    oid = commit(batch, "refs/heads/main", write_tree(batch, None, files), [], "expert source")
    repo.create_reference_direct(f"refs/tags/{tag}", oid, True)
    return path


def test_git_source_without_a_signed_package_installs_with_a_loud_warning(index_world, tmp_path):
    src = make_expert_source(tmp_path / "src")
    remote = make_source_repo(tmp_path / "sql.git", src, subdir="experts/sql")
    warnings = []
    result = install_git_source(index_world.client, f"git+file://{remote}@v1.0.0#experts/sql", warn=warnings.append)
    assert result.verified is False and result.installed.version == "1.0.0"
    assert "it is NOT verified" in warnings[0]


def test_git_source_with_a_matching_signed_package_is_verified(index_world, tmp_path):
    src = make_expert_source(tmp_path / "src")
    package = index_world.pack("sql", "1.0.0")
    remote = make_source_repo(tmp_path / "sql.git", src, extra={"sql-1.0.0.expert": package.read_bytes()})
    warnings = []
    result = install_git_source(index_world.client, f"git+file://{remote}@v1.0.0", warn=warnings.append)
    assert result.verified and result.signer == index_world.publisher.key_id and warnings == []


def test_git_source_whose_signed_package_does_not_match_is_refused(index_world, tmp_path):
    src = make_expert_source(tmp_path / "src")
    package = index_world.pack("sql", "1.0.0")
    (src / "README.md").write_text("changed after signing\n")
    remote = make_source_repo(tmp_path / "sql.git", src, extra={"sql-1.0.0.expert": package.read_bytes()})
    with pytest.raises(IntegrityError, match=r"does not match the source next to it \(README.md differs\)"):
        install_git_source(index_world.client, f"git+file://{remote}@v1.0.0")
    assert index_world.installed() == []


def test_git_source_errors(index_world, tmp_path):
    src = make_expert_source(tmp_path / "src")
    remote = make_source_repo(tmp_path / "sql.git", src)
    with pytest.raises(PackageError, match="no tag 'v9' in"):
        install_git_source(index_world.client, f"git+file://{remote}@v9")
    with pytest.raises(PackageError, match="no directory 'nope'"):
        install_git_source(index_world.client, f"git+file://{remote}@v1.0.0#nope")
    with pytest.raises(PackageError, match="names no tag"):
        parse_git_source("git+ssh://git@example.com/sql.git")
    assert parse_git_source("git+ssh://git@example.com/sql.git@v1#a/b").subdir == "a/b"
    assert json.loads((src / "manifest.json").read_text())["name"] == "sql"
