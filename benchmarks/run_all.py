"""Run every benchmark, one after another, and print their figures (what `make bench` runs)."""

from __future__ import annotations

import subprocess
import sys

SCRIPTS = (
    "cli_start",
    "plan_scale",
    "apply_throughput",
    "request_economy",
    "memory",
    "export_copy",
    "shared_runners",
)


def main() -> None:
    for name in SCRIPTS:
        print(f"\n## benchmarks/{name}.py\n", flush=True)
        subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=True)


if __name__ == "__main__":
    main()
