"""`expertpm index …`: create and maintain an index (maintainer side) and follow indexes (client side)."""

from __future__ import annotations

from ._common import add_command, add_group, err, home_of, out, print_json

ORDER = 30


def register(sub, common) -> None:
    group = add_group(sub, common, "index", "create, maintain and follow signed Git indexes")

    p = add_command(group, common, "init", "create a new index (a bare Git repository) in DIR", run_init)
    p.add_argument("dir")
    p.add_argument("--root-key", action="append", required=True, metavar="NAME",
                   help="a keyring key that becomes a root key (repeat for several)")
    p.add_argument("--threshold", type=int, default=1, help="root signatures needed to change keys (default 1)")
    p.add_argument("--name", help="index name (default: the directory name)")
    p.add_argument("--artifact-url", metavar="TEMPLATE",
                   help="artifact URL template with {name}, {version}, {sha256}: absolute, or relative to the "
                        "index under artifacts/ (default: artifacts/{name}/{name}-{version}.expert)")
    p.add_argument("--expires", type=float, default=None, metavar="DAYS",
                   help="how long each snapshot stays valid (default 30 days)")
    _passphrase(p)

    p = add_command(group, common, "delegate", "allow a publisher key to publish some names", run_delegate)
    p.add_argument("key", metavar="PUBLISHER_KEY", help="keyring key name or id, or a `keys export-public` file")
    p.add_argument("--names", nargs="+", required=True, metavar="PATTERN",
                   help="exact names or prefixes like 'acme-*' ('*' for every name)")
    p.add_argument("--label", help="a human name for the publisher")
    _maintainer(p)

    p = add_command(group, common, "revoke", "revoke a publisher key", run_revoke)
    p.add_argument("key", metavar="KEY", help="the publisher's key id (or a keyring key name)")
    p.add_argument("--withdraw-published", action="store_true",
                   help="also withdraw the versions this key already published (default: they stay valid)")
    _maintainer(p)

    p = add_command(group, common, "rotate-root", "replace the root keys (signed by the old and new keys)",
                    run_rotate)
    p.add_argument("--new-root-key", action="append", required=True, metavar="NAME")
    p.add_argument("--threshold", type=int, default=None)
    p.add_argument("--new-timestamp-key", action="store_true", help="also replace the online timestamp key")
    _maintainer(p)

    p = add_command(group, common, "refresh", "sign a new snapshot with a fresh expiry", run_refresh)
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("--expires", type=float, default=None, metavar="DAYS")

    p = add_command(group, common, "export", "write the index as plain files (a directory mirror)", run_export)
    p.add_argument("--index", required=True, metavar="DIR")
    p.add_argument("out", metavar="OUT_DIR")
    p.add_argument("--no-artifacts", action="store_true")

    p = add_command(group, common, "add", "follow an index (identified by its root fingerprint)", run_add)
    p.add_argument("name")
    p.add_argument("url", help="Git URL (file://, ssh://, git+https://…, a bare repo path) or a mirror directory")
    p.add_argument("--fingerprint", metavar="ROOT_FP", help="the index's root fingerprint (from its maintainer)")
    p.add_argument("--trust-on-first-use", action="store_true",
                   help="accept whatever root the server sends now (unsafe; prefer --fingerprint)")
    p.add_argument("--artifact-base", metavar="URL", help="where relative artifact URLs are resolved")
    p.add_argument("--allow-expired", action="store_true")

    p = add_command(group, common, "update", "fetch and verify the newest state of indexes", run_update)
    p.add_argument("name", nargs="?", help="one index (default: all)")
    p.add_argument("--allow-expired", action="store_true",
                   help="accept an expired snapshot (a frozen index); logs a warning")

    p = add_command(group, common, "list", "list followed indexes", run_list)
    p.add_argument("--json", action="store_true")

    p = add_command(group, common, "remove", "stop following an index", run_remove)
    p.add_argument("name")

    p = add_command(group, common, "verify", "re-verify an index's state, every line included", run_verify)
    p.add_argument("name")


def _passphrase(p) -> None:
    p.add_argument("--passphrase-env", metavar="VAR", help="passphrase of encrypted keys from variable VAR")


def _maintainer(p) -> None:
    p.add_argument("--index", required=True, metavar="DIR", help="the index directory (or file:// URL)")
    p.add_argument("--root-key", action="append", default=[], metavar="NAME",
                   help="root keys to sign with (default: every keyring key that is a root key of the index)")
    _passphrase(p)


def _warn(message: str) -> None:
    err(f"WARNING: {message}")


def _signers(args, host):
    from .._index import load_signers
    from .._keys import passphrase_from_env

    return load_signers(home_of(args), set(host.root().keys), args.root_key, passphrase_from_env(args.passphrase_env))


def run_init(args) -> int:
    from .._index import init_index
    from .._index._layout import DEFAULT_ARTIFACT_URL, DEFAULT_EXPIRES_DAYS
    from .._keys import Keyring, passphrase_from_env

    ring = Keyring(home_of(args))
    keys = [ring.load(name, passphrase_from_env(args.passphrase_env)) for name in args.root_key]
    fp = init_index(args.dir, keys, threshold=args.threshold, name=args.name,
                    artifact_url=args.artifact_url or DEFAULT_ARTIFACT_URL,
                    expires_days=args.expires or DEFAULT_EXPIRES_DAYS)
    out(f"created index in {args.dir}")
    out(f"fingerprint: {fp}")
    out("clients add it with: expertpm index add NAME URL --fingerprint " + fp)
    return 0


def run_delegate(args) -> int:
    from .._index import IndexHost, delegate, publisher_key_from

    host = IndexHost(args.index)
    publisher = publisher_key_from(home_of(args), args.key, args.label)
    d = delegate(args.index, publisher, args.names, _signers(args, host))
    out(f"delegated {', '.join(d.names)} to {d.label or d.key_id[:16]} ({d.key_id})")
    return 0


def run_revoke(args) -> int:
    from .._index import IndexHost, revoke

    host = IndexHost(args.index)
    key_id = args.key
    if len(key_id) != 64:
        from .._index import publisher_key_from

        key_id = publisher_key_from(home_of(args), args.key).key_id
    d = revoke(args.index, key_id, _signers(args, host), withdraw_published=args.withdraw_published)
    kept, gone = len(d.kept_lines), len(d.withdrawn_lines)
    out(f"revoked {d.label or d.key_id[:16]}: {kept} published line(s) stay valid, {gone} withdrawn")
    return 0


def run_rotate(args) -> int:
    from .._index import IndexHost, rotate_root
    from .._keys import Keyring, passphrase_from_env

    host = IndexHost(args.index)
    ring = Keyring(home_of(args))
    new_keys = [ring.load(n, passphrase_from_env(args.passphrase_env)) for n in args.new_root_key]
    version = rotate_root(args.index, new_keys, _signers(args, host), threshold=args.threshold,
                          new_timestamp_key=args.new_timestamp_key)
    out(f"root metadata is now version {version}")
    return 0


def run_refresh(args) -> int:
    from .._index import refresh

    result = refresh(args.index, expires_days=args.expires)
    out(f"snapshot version {result.snapshot_version} ({result.commit[:12]})")
    return 0


def run_export(args) -> int:
    from pathlib import Path

    from .._index import IndexHost, export_index

    count = export_index(IndexHost(args.index), Path(args.out), with_artifacts=not args.no_artifacts)
    out(f"wrote {count} index files to {args.out}")
    return 0


def run_add(args) -> int:
    from .._index import add_index

    result = add_index(home_of(args), args.name, args.url, fingerprint=args.fingerprint,
                       trust_on_first_use=args.trust_on_first_use, allow_expired=args.allow_expired,
                       artifact_base=args.artifact_base, warn=_warn)
    out(f"added index {args.name!r} at snapshot {result.snapshot_version} "
        f"({len(result.changed_packages)} packages)")
    return 0


def run_update(args) -> int:
    from .._index import configured_indexes, update_index

    home = home_of(args)
    names = [args.name] if args.name else configured_indexes(home)
    if not names:
        out("no indexes (add one with: expertpm index add NAME URL --fingerprint FP)")
    for name in names:
        result = update_index(home, name, allow_expired=args.allow_expired, warn=_warn)
        if result.changed:
            out(f"{name}: snapshot {result.previous_version} -> {result.snapshot_version} "
                f"({len(result.changed_packages)} package(s) changed)")
        else:
            out(f"{name}: up to date (snapshot {result.snapshot_version})")
    return 0


def run_list(args) -> int:
    from .._index import list_indexes

    indexes = list_indexes(home_of(args))
    if args.json:
        print_json([i.to_dict() for i in indexes])
        return 0
    if not indexes:
        out("no indexes (add one with: expertpm index add NAME URL --fingerprint FP)")
    for i in indexes:
        out(f"{i.name:<16} snapshot {i.snapshot_version:<6} expires {i.expires}  {i.url}")
        out(f"{'':<16} fingerprint {i.fingerprint}")
    return 0


def run_remove(args) -> int:
    from .._index import remove_index

    remove_index(home_of(args), args.name)
    out(f"removed index {args.name!r}")
    return 0


def run_verify(args) -> int:
    from .._index import verify_index

    verified = verify_index(home_of(args), args.name, warn=_warn)
    out(f"{args.name}: snapshot {verified.state.snapshot_version} verified "
        f"({len(verified.changed_packages)} package files, every line checked)")
    return 0
