"""CLI start-up: `tchavi-render --version` and `validate` of an example, median wall time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.common import CLI, ROOT, median_run, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    example = ROOT / "examples" / "quickstart" / "tchavi.yaml"
    script = Path(sys.executable).parent / "tchavi-render"  # what users run
    cli = [str(script)] if script.exists() else CLI
    version, v_times, _ = median_run([*cli, "--version"], args.runs)
    validate, l_times, _ = median_run([*cli, "validate", str(example)], args.runs)
    print(
        table(
            [
                ("command", "target", "median", "min", "max"),
                (
                    "--version",
                    "≤ 0.15 s",
                    f"{version:.3f} s",
                    f"{min(v_times):.3f} s",
                    f"{max(v_times):.3f} s",
                ),
                (
                    "validate quickstart",
                    "≤ 0.5 s",
                    f"{validate:.3f} s",
                    f"{min(l_times):.3f} s",
                    f"{max(l_times):.3f} s",
                ),
            ]
        )
    )
    print(f"\n{args.runs} runs each of {cli[0]}, wall time of the whole process.")


if __name__ == "__main__":
    main()
