"""`expertpm keys generate | list | export-public`."""

from __future__ import annotations

from ._common import add_command, add_group, home_of, out, print_json

ORDER = 10


def register(sub, common) -> None:
    group = add_group(sub, common, "keys", "manage ed25519 signing keys")
    p = add_command(group, common, "generate", "create a new signing key", run_generate)
    p.add_argument("--name", default="default", help="key name (default: default)")
    p.add_argument("--passphrase-env", metavar="VAR",
                   help="encrypt the key with the passphrase in environment variable VAR")
    p = add_command(group, common, "list", "list signing keys", run_list)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = add_command(group, common, "export-public", "print a key's public half as JSON", run_export)
    p.add_argument("name", nargs="?", default="default")


def run_generate(args) -> int:
    from .._keys import Keyring, passphrase_from_env

    passphrase = passphrase_from_env(args.passphrase_env) if args.passphrase_env else None
    info = Keyring(home_of(args)).generate(args.name, passphrase)
    out(f"generated key {info.name!r} ({'encrypted' if info.encrypted else 'unencrypted'})")
    out(f"key id: {info.key_id}")
    return 0


def run_list(args) -> int:
    from .._keys import Keyring

    keys = Keyring(home_of(args)).list()
    if args.json:
        print_json([k.to_dict() | {"encrypted": k.encrypted} for k in keys])
    elif not keys:
        out("no keys (create one with: expertpm keys generate)")
    for k in keys if not args.json else []:
        out(f"{k.name:<20} {k.key_id}{'  (encrypted)' if k.encrypted else ''}")
    return 0


def run_export(args) -> int:
    from .._keys import Keyring

    print_json(Keyring(home_of(args)).public(args.name).to_dict())
    return 0
