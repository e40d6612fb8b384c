"""`expertpm pack SRC | --from-peft DIR ...`: build a signed, deterministic `.expert` package."""

from __future__ import annotations

import sys

from ._common import add_command, err, home_of, out

ORDER = 21


def register(sub, common) -> None:
    p = add_command(sub, common, "pack", "build <name>-<version>.expert from a source directory or a PEFT adapter",
                    run)
    p.add_argument("src", nargs="?", help="source directory holding manifest.json and the files to package")
    p.add_argument("-o", "--output", metavar="OUT", help="output directory or file path (default: current directory)")
    p.add_argument("--key", default="default", help="signing key name (default: default)")
    p.add_argument("--passphrase-env", metavar="VAR", help="read the key's passphrase from environment variable VAR")
    p.add_argument("--base", metavar="DIR",
                   help="the expert's base model (Hugging Face directory or unpacked base package): fills or "
                        "checks base.weights_sha256, base.tokenizer_sha256 and base.vocab_size")
    peft = p.add_argument_group("packing a PEFT adapter directory (needs --base, --name, --version)")
    peft.add_argument("--from-peft", metavar="DIR", help="adapter_config.json + adapter_model.safetensors directory")
    peft.add_argument("--name", help="package name")
    peft.add_argument("--version", dest="pkg_version", metavar="VERSION", help="package version (semver)")
    peft.add_argument("--base-name", help="the base's package name (default: from the base directory)")
    peft.add_argument("--base-version", help="the base versions this expert works with (a semver range)")
    peft.add_argument("--description", default="", help="one-line description")
    peft.add_argument("--license", default="UNLICENSED", help="license identifier (default: UNLICENSED)")
    peft.add_argument("--author", action="append", dest="authors", help="author (repeatable)")


def run(args) -> int:
    from .._errors import PackageError
    from .._keys import Keyring, passphrase_from_env
    from .._package import PLACEHOLDER_DIGEST, build

    if bool(args.src) == bool(args.from_peft):
        raise PackageError("give either a source directory or --from-peft DIR",
                           hint="expertpm pack SRC, or expertpm pack --from-peft DIR --name N --version V --base BASE")
    key = Keyring(home_of(args)).load(args.key, passphrase_from_env(args.passphrase_env))
    if args.from_peft:
        from .._peft import build_peft

        missing = [flag for flag, value in (("--name", args.name), ("--version", args.pkg_version),
                                            ("--base", args.base)) if not value]
        if missing:
            raise PackageError(f"--from-peft also needs {', '.join(missing)}",
                               hint="the base binds the expert to the exact weights it was trained on")
        packed = build_peft(args.from_peft, args.output, key, base_dir=args.base, name=args.name,
                         version=args.pkg_version, base_name=args.base_name, base_version=args.base_version,
                         description=args.description, license=args.license, authors=args.authors)
    else:
        packed = build(args.src, args.output, key, base_dir=args.base)
    out(f"packed {packed.manifest.id} -> {packed.path}")
    out(f"{packed.size} bytes, signed by {key.key_id} ({key.name})")
    base = packed.manifest.get("base") or {}
    if PLACEHOLDER_DIGEST in (base.get("weights_sha256"), base.get("tokenizer_sha256")):
        err("warning: the base digests are placeholders; pack with --base BASE_DIR to bind this expert to "
            "its real base model before publishing")
    sys.stdout.flush()
    return 0
