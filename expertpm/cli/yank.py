"""`expertpm yank NAME@VERSION` and `expertpm unyank NAME@VERSION` (signed records in the index)."""

from __future__ import annotations

from ._common import add_command, home_of, out

ORDER = 32


def register(sub, common) -> None:
    for name, help in (("yank", "mark a published version as yanked (resolvers skip it)"),
                       ("unyank", "restore a yanked version")):
        p = add_command(sub, common, name, help, run_yank if name == "yank" else run_unyank)
        p.add_argument("spec", metavar="NAME@VERSION")
        p.add_argument("--index", required=True, metavar="DIR_OR_URL")
        p.add_argument("--key", default="default", help="a key delegated for the name (default: default)")
        p.add_argument("--passphrase-env", metavar="VAR")


def _run(args, yank: bool) -> int:
    from .._errors import UserError
    from .._index import set_yanked
    from .._keys import Keyring, passphrase_from_env

    name, at, version = args.spec.partition("@")
    if not at or not version:
        raise UserError(f"{args.spec!r} names no version", hint="use NAME@VERSION, e.g. sql@1.0.0")
    key = Keyring(home_of(args)).load(args.key, passphrase_from_env(args.passphrase_env))
    result = set_yanked(args.index, name, version, key, yank=yank)
    out(f"{'yanked' if yank else 'unyanked'} {result.entry.id} (snapshot {result.snapshot_version})")
    return 0


def run_yank(args) -> int:
    return _run(args, True)


def run_unyank(args) -> int:
    return _run(args, False)
