"""`expertpm --help` wall time versus `python -c pass` (target: ratio <= 4).

Both run as fresh interpreters from the same venv, interleaved, N times each; the median counts.
Also fails loudly if `--help` imported torch or transformers.

    .venv/bin/python bench/cli_help.py [-n 21]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET = 4.0
HEAVY = ("torch", "transformers", "numpy", "safetensors")


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def heavy_imports() -> list[str]:
    probe = ("import sys, contextlib, io\n"
             "from expertpm.cli import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    try: main(['--help'])\n"
             "    except SystemExit: pass\n"
             f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    return result.stdout.split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=21, help="runs of each command (default 21)")
    args = parser.parse_args()
    baseline_cmd = [sys.executable, "-c", "pass"]
    help_cmd = [sys.executable, "-m", "expertpm", "--help"]
    wall(help_cmd)  # warm the page cache and __pycache__
    baseline, measured = [], []
    for _ in range(args.n):
        baseline.append(wall(baseline_cmd))
        measured.append(wall(help_cmd))
    base, help_ = statistics.median(baseline), statistics.median(measured)
    ratio = help_ / base
    heavy = heavy_imports()
    print(f"python -c pass     median {base * 1000:7.1f} ms  ({args.n} runs)")
    print(f"expertpm --help    median {help_ * 1000:7.1f} ms  ({args.n} runs)")
    print(f"ratio {ratio:.2f} (target <= {TARGET:g})  heavy modules imported: {', '.join(heavy) or 'none'}")
    return 0 if ratio <= TARGET and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
