"""A small HTTP/1.1 load generator for the registry (run it as a second process).

    python -m expertpm_registry.loadgen http://127.0.0.1:8000/index/ --paths-file PATHS \
        --clients 64 --requests 5000 --max-seconds 30

Each client is one keep-alive connection sending GET requests one after another (it reconnects
when the server closes the connection, as an HTTP/1.0 server such as `python -m http.server`
does after every response). The run stops after `--requests` requests in all or `--max-seconds`,
whichever comes first, and prints one JSON object: requests, errors (transport failures and
statuses other than 200/304), requests per second, latency percentiles in milliseconds. With
`--check-etag` every 200 response's body must hash to its strong ETag (sha256).

It is deliberately written on raw asyncio streams: a full client library would spend more CPU per
request than the server under test, and the figure would measure the client.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    bytes: int = 0
    connections: int = 0


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, tally: Tally) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        tally.connections += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def get(self, path: str, tally: Tally) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            await self.open(tally)
        assert self.reader is not None and self.writer is not None
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split(" ", 2)[:2]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        else:
            body = await self.reader.read()
            self.close()
            return int(status), headers, body
        if version == "HTTP/1.0" or headers.get("connection", "").lower() == "close":
            self.close()
        return int(status), headers, body


async def _client(host: str, port: int, prefix: str, paths: list[str], offset: int, budget: list[int],
                  deadline: float, tally: Tally, check_etag: bool, timeout: float) -> None:
    conn = _Connection(host, port)
    i = offset
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            path = prefix + paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            try:
                status, headers, body = await asyncio.wait_for(conn.get(path, tally), timeout)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
                tally.errors.append(f"{path}: {type(exc).__name__}: {exc}")
                conn.close()
                continue
            tally.latencies.append(time.perf_counter() - started)
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            tally.bytes += len(body)
            if status not in (200, 304):
                tally.errors.append(f"{path}: HTTP {status}")
            elif check_etag and status == 200:
                etag = headers.get("etag", "").strip('"')
                if etag != hashlib.sha256(body).hexdigest():
                    tally.errors.append(f"{path}: body does not match its ETag")
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(url: str, paths: list[str], *, clients: int, requests: int, max_seconds: float,
              check_etag: bool = False, timeout: float = 10.0) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    prefix = parts.path if parts.path.endswith("/") else parts.path + "/"
    tally, budget = Tally(), [requests]
    started = time.perf_counter()
    deadline = started + max_seconds
    await asyncio.gather(*(_client(host, port, prefix, paths, k * 7, budget, deadline, tally, check_etag, timeout)
                           for k in range(clients)))
    elapsed = time.perf_counter() - started
    done = len(tally.latencies)
    return {"clients": clients, "requests": done, "errors": len(tally.errors), "error_samples": tally.errors[:5],
            "statuses": {str(k): v for k, v in sorted(tally.statuses.items())}, "seconds": round(elapsed, 3),
            "requests_per_second": round(done / elapsed, 1) if elapsed else 0.0,
            "p50_ms": round(percentile(tally.latencies, 0.50) * 1000, 2),
            "p99_ms": round(percentile(tally.latencies, 0.99) * 1000, 2),
            "max_ms": round(max(tally.latencies, default=0.0) * 1000, 2),
            "bytes": tally.bytes, "connections": tally.connections}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="base URL the paths are relative to, e.g. http://127.0.0.1:8000/index/")
    parser.add_argument("--paths-file", required=True, help="one relative path per line")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=5000, help="total requests (a bound)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop after this long (a bound)")
    parser.add_argument("--check-etag", action="store_true", help="check each body against its sha256 ETag")
    args = parser.parse_args(argv)
    with open(args.paths_file) as f:
        paths = [line.strip() for line in f if line.strip()]
    if not paths:
        print("no paths to request", file=sys.stderr)
        return 2
    result = asyncio.run(run(args.url, paths, clients=args.clients, requests=args.requests,
                             max_seconds=args.max_seconds, check_etag=args.check_etag))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
