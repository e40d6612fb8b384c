"""`expertpm publish FILE --index DIR_OR_URL [--key NAME]`."""

from __future__ import annotations

from ._common import add_command, home_of, out

ORDER = 31


def register(sub, common) -> None:
    p = add_command(sub, common, "publish", "publish a signed .expert package to an index", run)
    p.add_argument("file", metavar="FILE", help="the .expert package (signed with the same key)")
    p.add_argument("--index", required=True, metavar="DIR_OR_URL", help="the index directory or file:// URL")
    p.add_argument("--key", default="default", help="the publisher key in your keyring (default: default)")
    p.add_argument("--passphrase-env", metavar="VAR")
    p.add_argument("--no-embedding", action="store_true",
                   help="do not store a search embedding in the index line (by default one is computed with "
                        "all-MiniLM-L6-v2 when the runtime extra is installed)")


def run(args) -> int:
    from .._index import publish
    from .._keys import Keyring, passphrase_from_env

    key = Keyring(home_of(args)).load(args.key, passphrase_from_env(args.passphrase_env))
    result = publish(args.index, args.file, key, embedding=None if args.no_embedding else _search_embedding)
    out(f"published {result.entry.id} (sha256 {result.entry.sha256[:16]}…, snapshot {result.snapshot_version})")
    return 0


def _search_embedding(manifest):
    """Search hook (issue 4): the publish-time embedding `expertpm search` ranks by, if available."""
    from .._search import manifest_embedding

    return manifest_embedding(manifest)
