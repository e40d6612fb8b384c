"""`expertpm verify FILE [--trusted-key KEY_ID ...]`: check every digest and the signature."""

from __future__ import annotations

from ._common import add_command, home_of, out

ORDER = 23


def register(sub, common) -> None:
    p = add_command(sub, common, "verify", "check a .expert package's files, sizes and signature", run)
    p.add_argument("file", help="a .expert package")
    p.add_argument("--trusted-key", action="append", metavar="KEY_ID",
                   help="only accept a signature by this key id (repeatable)")


def run(args) -> int:
    from .._package import verify_package
    from .inspect import _local_name

    trusted = set(args.trusted_key) if args.trusted_key else None
    verified = verify_package(args.file, trusted_key_ids=trusted)
    key_id = verified.signature.key_id
    out(f"OK {verified.manifest.id} signed by {key_id}{_local_name(args, key_id)}")
    return 0
