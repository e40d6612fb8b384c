"""The public names of the project, installer, mirror and search modules (a deliberate API)."""

import expertpm._actions as actions
import expertpm._installer as installer
import expertpm._mirror as mirror
import expertpm._search as search


def test_actions():
    assert actions.__all__ == [
        "AddResult", "InitResult", "ListRow", "LockChange", "LockResult", "OutdatedRow", "RemoveResult", "SyncResult",
        "TreeNode", "WhyPath", "do_add", "do_init", "do_list", "do_lock", "do_outdated", "do_remove", "do_sync",
        "do_tree", "do_why", "locked_project", "parse_requirement", "render_tree", "resolve_lock"]
    assert all(getattr(actions, name) is not None for name in actions.__all__)


def test_installer():
    assert installer.__all__ == [
        "Artifact", "BoundedReader", "DEFAULT_CONCURRENCY", "Fetcher", "IndexCatalog", "Inputs", "InstallPlan",
        "InstalledEntry", "InstalledSet", "NullProgress", "RichProgress", "Step", "apply_plan", "installed_digest",
        "plan_install", "progress_for_terminal", "read_installed", "refs_used_elsewhere", "state_path",
        "write_installed"]
    assert all(getattr(installer, name) is not None for name in installer.__all__)


def test_mirror_and_search():
    assert mirror.__all__ == [
        "MIRROR_FILE", "ExportResult", "ImportedIndex", "MirrorArtifact", "MirrorManifest", "MirrorReport",
        "MirrorResult", "Selection", "create_mirror", "export_lock", "import_archive", "read_manifest", "require_ok",
        "update_mirror", "verify_mirror"]
    assert search.__all__ == ["EMBEDDING_DIM", "SearchHit", "Searcher", "Table", "build_rows", "embedding_text",
                              "encode_one", "load_encoder", "load_table", "manifest_embedding", "package_embedding",
                              "search", "words"]
