"""Print the bundled experts' published scores as a Markdown table (used by build-bundled.sh and
docs/experts.md): base vs base + expert on each held-out set, and the general-text probe.

    python scripts/bundled_scores.py [EXPERTPM_HOME]
"""

from __future__ import annotations

import sys

from expertpm._home import Home
from expertpm._store import Store

EXPERTS = ("sql", "tool-call", "cypher", "sentiment", "ner")


def main() -> int:
    home = Home.resolve(sys.argv[1] if len(sys.argv) > 1 else None)
    packages = {p.name: p for p in Store(home).list()}
    print("| expert | metric | n | base | base + expert | probe ratio | adapter |")
    print("|---|---|---|---|---|---|---|")
    for name in EXPERTS:
        manifest = packages[name].manifest.doc
        ev, adapter = manifest["eval"], manifest["adapter"]
        probe = ev.get("probe", {}).get("ratio")
        probe = "-" if probe is None else f"{probe:.2f}"
        print(f"| `{name}` | {ev['metric']} | {ev['n']} | {ev['base_score']:.2f} | **{ev['expert_score']:.2f}** "
              f"| {probe} | {adapter['type']} r={adapter.get('rank')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
