"""Index-file requests per second: the registry server versus `python -m http.server` serving the
same files (an `index export` of the same index), at 64 concurrent keep-alive clients (target:
ratio >= 1.0).

Both servers and the load generator run as separate processes on 127.0.0.1 and are measured in the
same run, alternating rounds; the median round counts. Every file of the index (bins, package
files, keys, snapshot, config) is requested in turn. `python -m http.server` is threaded and
speaks HTTP/1.0 (a new connection per request); the registry keeps connections alive. On a
2-core machine the load generator needs a core of its own, so one uvicorn worker is the
sensible setting (`--workers 2` is measured too, for the record).

    .venv/bin/python bench/registry_files.py [--packages 2000] [--versions 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from index_gen import build_index  # noqa: E402
from registry_common import load, registry_server, static_server  # noqa: E402
from expertpm._index import IndexHost, export_index  # noqa: E402

TARGET = 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=6000, help="per round and server")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-registry-files-", dir=args.workdir))
    servers = []
    try:
        big = build_index(work / "index", args.packages, args.versions)
        export_index(IndexHost(big.dir), work / "www", with_artifacts=False)
        paths = sorted(str(p.relative_to(work / "www")) for p in (work / "www").rglob("*") if p.is_file())
        paths_file = work / "paths.txt"
        paths_file.write_text("\n".join(paths))
        print(f"index: {args.packages} packages x {args.versions} versions, {len(paths)} files")

        setups = {}
        for name, start in (("http.server", lambda: static_server(work / "www")),
                            ("registry (1 worker)", lambda: registry_server(big.dir)),
                            ("registry (2 workers)", lambda: registry_server(big.dir, workers=2))):
            setups[name] = start()
            servers.append(setups[name])
        for server in servers:  # warm caches and connections
            load(server.url, paths_file, clients=8, requests=min(len(paths), 2000), max_seconds=30)
        ratios = {}
        for clients in (args.clients, 8):
            print(f"-- {clients} concurrent clients" + ("" if clients == args.clients else
                  " (for the record: few enough that http.server's listen backlog of 5 drops no connection)"))
            rounds: dict[str, list[dict]] = {name: [] for name in setups}
            for _ in range(args.rounds):
                for name, server in setups.items():
                    rounds[name].append(load(server.url, paths_file, clients=clients, requests=args.requests,
                                             max_seconds=60))
            medians = {}
            for name, results in rounds.items():
                rps = statistics.median(r["requests_per_second"] for r in results)
                p99 = statistics.median(r["p99_ms"] for r in results)
                errors = sum(r["errors"] for r in results)
                medians[name] = rps
                print(f"{name:22s} {rps:9.0f} req/s   p99 {p99:8.1f} ms   errors {errors}"
                      + (f" (e.g. {results[0]['error_samples'][0]})" if errors and results[0]["error_samples"] else ""))
            base = max(medians["http.server"], 1e-9)
            for name in ("registry (1 worker)", "registry (2 workers)"):
                print(f"ratio {name} / http.server = {medians[name] / base:.2f} (target >= {TARGET})")
            ratios[clients] = medians["registry (1 worker)"] / base
        return 0 if ratios[args.clients] >= TARGET else 1
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
