"""`expertpm inspect FILE [--json]`: show a package's manifest (reads only the package head)."""

from __future__ import annotations

from ._common import add_command, home_of, out, print_json

ORDER = 22


def register(sub, common) -> None:
    p = add_command(sub, common, "inspect", "show the manifest of a .expert package", run)
    p.add_argument("file", help="a .expert package")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")


def run(args) -> int:
    from .._package import read_manifest

    manifest, signature, _ = read_manifest(args.file)
    if args.json:
        print_json(manifest.to_dict())
        return 0
    doc = manifest.doc
    out(f"{manifest.name} {manifest.version} ({manifest.kind})")
    if doc.get("description"):
        out(f"  {doc['description']}")
    out(f"  license: {doc['license']}   authors: {', '.join(doc['authors'])}")
    if manifest.kind == "expert":
        base, adapter = doc["base"], doc["adapter"]
        out(f"  base: {base['name']} {base['version']}  weights {base['weights_sha256'][:16]}  "
            f"tokenizer {base['tokenizer_sha256'][:16]}  vocab {base['vocab_size']}")
        out(f"  adapter: {_adapter(adapter)}")
    else:
        model = doc["model"]
        out(f"  model: {model['architecture']}  weights {model['weights_sha256'][:16]}  "
            f"tokenizer {model['tokenizer_sha256'][:16]}  vocab {model['vocab_size']}  "
            f"context {model['context_length']}")
    for section in ("requires", "incompatible_with"):
        if doc.get(section):
            out(f"  {section}: " + ", ".join(f"{k} {v}" for k, v in sorted(doc[section].items())))
    routing = doc.get("routing") or {}
    if routing.get("keywords"):
        out(f"  routing keywords: {', '.join(routing['keywords'])}")
    if doc.get("eval"):
        ev = doc["eval"]
        out(f"  eval: {ev['metric']} {ev['expert_score']} (base {ev['base_score']}, n={ev['n']})")
    total = sum(e.size for e in manifest.files.values())
    out(f"  files: {len(manifest.files)} ({total} bytes)")
    for path, entry in manifest.files.items():
        out(f"    {entry.sha256[:16]}  {entry.size:>12}  {path}")
    out(f"  signed by {signature.key_id}{_local_name(args, signature.key_id)} "
        "(signature valid; run `expertpm verify` to check every file)")
    return 0


def _adapter(adapter: dict) -> str:
    text = adapter["type"]
    if "rank" in adapter:
        text += f" rank {adapter['rank']} alpha {adapter['alpha']}"
    if "num_virtual_tokens" in adapter:
        text += f" {adapter['num_virtual_tokens']} virtual tokens"
    if adapter.get("target_modules"):
        text += " on " + ", ".join(adapter["target_modules"])
    return f"{text} ({adapter['dtype']})"


def _local_name(args, key_id: str) -> str:
    from .._keys import Keyring

    names = [k.name for k in Keyring(home_of(args)).list() if k.key_id == key_id]
    return f" (local key {names[0]!r})" if names else ""
