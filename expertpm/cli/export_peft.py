"""`expertpm export-peft FILE DIR`: write an expert's adapter as a PEFT adapter directory."""

from __future__ import annotations

from ._common import add_command, out

ORDER = 24


def register(sub, common) -> None:
    p = add_command(sub, common, "export-peft",
                    "verify an expert package and write its adapter as a PEFT directory (for vLLM, LoRAX, peft)", run)
    p.add_argument("file", help="a .expert package")
    p.add_argument("dir", help="the directory to create (must not exist, or be empty)")
    p.add_argument("--trusted-key", action="append", metavar="KEY_ID",
                   help="only accept a signature by this key id (repeatable)")


def run(args) -> int:
    from .._peft import export_peft

    trusted = set(args.trusted_key) if args.trusted_key else None
    path = export_peft(args.file, args.dir, trusted_key_ids=trusted)
    out(f"wrote PEFT adapter to {path} (load it with peft.PeftModel.from_pretrained(base_model, {str(path)!r}))")
    return 0
