"""Request economy under the Free level's 10 requests a minute: requests per rendered shot and
shots per minute, for tchavi-render apply and for the docs' loop, on the same emulator.

Requests are counted by the emulator (`account(key)["requests"]`: every API request of the
key, 429s included; video downloads are not API requests).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from benchmarks.common import table
from benchmarks.emulated import docs_loop, plain_storyboard, timed_apply
from tchavi_render.emulator import EmulatorConfig, running_emulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shots", type=int, default=12)
    parser.add_argument("--rpm", type=int, default=10)
    parser.add_argument("--latency", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tchavi-bench-") as tmp:
        work = Path(tmp)
        config = EmulatorConfig(
            data_dir=work / "emulator", latency=args.latency, rpm=args.rpm, credits=10**9
        )
        with running_emulator(config) as emu:
            ours = "sk-tch_bench-economy"
            spec = plain_storyboard(work / "project", args.shots, "eco")
            result = timed_apply(spec, emu.base_url, ours, work / "cache")
            assert result.returncode == 0, result.events[-3:]
            assert len(result.times("rendered")) == args.shots
            our_requests = emu.account(ours)["requests"]
            docs_key = "sk-tch_bench-economy-docs"
            prompts = [f"docs shot {i}: a harbour at dawn" for i in range(args.shots)]
            docs_wall = docs_loop(emu.base_url, docs_key, prompts, work / "docs")
            docs_requests = emu.account(docs_key)["requests"]
    rows = [
        ("client", "requests", "per shot (target ≤ 2)", "wall", "shots a minute"),
        (
            "tchavi-render apply",
            str(our_requests),
            f"{our_requests / args.shots:.2f}",
            f"{result.wall:.0f} s",
            f"{args.shots / result.wall * 60:.1f}",
        ),
        (
            "docs' loop (+ waits on 429)",
            str(docs_requests),
            f"{docs_requests / args.shots:.2f}",
            f"{docs_wall:.0f} s",
            f"{args.shots / docs_wall * 60:.1f}",
        ),
    ]
    print(table(rows))
    print(f"\n{args.shots} shots, emulator --rpm {args.rpm} --latency {args.latency}.")


if __name__ == "__main__":
    main()
