"""Import cost of the authoring surface: `from alula import task, workflow`.

Prints the median wall time over fresh interpreters, minus that of `python -c pass` (the
interpreter's own start), so the number is what Alula adds. The target is under 20 ms.

    python benchmarks/import_time.py [--runs 20] [--code "from alula import task, workflow"]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_ms(code: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--code", default="from alula import task, workflow")
    args = parser.parse_args()
    median_ms(args.code, 2)  # warm the file cache
    bare = median_ms("pass", args.runs)
    full = median_ms(args.code, args.runs)
    print(f"python -c pass:       {bare:7.2f} ms (median of {args.runs})")
    print(f"{args.code}: {full:7.2f} ms")
    print(f"import cost:          {full - bare:7.2f} ms (target < 20 ms)")


if __name__ == "__main__":
    main()
