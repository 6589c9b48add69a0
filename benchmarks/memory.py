"""Memory: peak RSS of `apply` rendering 1,000 shots, and RSS growth while a 500 MB video
downloads through the client (the path apply uses), both as child processes.

Peak RSS is the child's ru_maxrss (from wait4); the download's growth is VmHWM minus VmRSS
just before the download, read from /proc/self/status inside the child.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.common import run, table
from benchmarks.emulated import plain_storyboard, timed_apply
from tchavi_render.emulator import EmulatorConfig, running_emulator

DOWNLOADER = """
import asyncio, json, sys
from pathlib import Path
from tchavi_render.api import AsyncTchaviClient

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

async def main(url, target):
    async with AsyncTchaviClient(api_key="sk-tch_bench-memory", base_url=url) as client:
        before = status("VmRSS")
        sha256, size = await client.download(sys.argv[3], target)
    print(json.dumps({"before": before, "peak": status("VmHWM"), "bytes": size}))

asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
"""


def download_growth(work: Path, emu_url: str, file_url: str) -> dict[str, float]:
    target = work / "downloaded.mp4"
    _, _, output = run([sys.executable, "-c", DOWNLOADER, emu_url, str(target), file_url])
    target.unlink()
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shots", type=int, default=1_000)
    parser.add_argument("--megabytes", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tchavi-bench-") as tmp:
        work = Path(tmp)
        # Memory, not speed: the 1,000-shot apply would wait minutes for the service's 500
        # requests a minute per address, so that limit is off here.
        config = EmulatorConfig(data_dir=work / "emulator", credits=10**12, ip_rpm=None)
        with running_emulator(config) as emu:
            spec = plain_storyboard(work / "project", args.shots, "mem")
            result = timed_apply(spec, emu.base_url, "sk-tch_bench-memory", work / "cache")
            assert result.returncode == 0, result.events[-3:]
            assert len(result.times("rendered")) == args.shots
            big = work / "big.mp4"
            with big.open("wb") as handle:
                block = os.urandom(1 << 20)
                for _ in range(args.megabytes):
                    handle.write(block)
            url = emu.host_file(big)
            big.unlink()
            growth = download_growth(work, emu.base_url, url)
    rows = [
        ("measure", "target", "measured"),
        (f"apply of {args.shots:,} shots: peak RSS", "≤ 200 MB", f"{result.rss_mb} MB"),
        (
            f"download of {growth['bytes'] / 1e6:.0f} MB: RSS growth",
            "≤ 50 MB",
            f"{growth['peak'] - growth['before']:.1f} MB "
            f"(RSS {growth['before']:.0f} MB before, peak {growth['peak']:.0f} MB)",
        ),
    ]
    print(table(rows))
    print(f"\nThe apply took {result.wall:.0f} s against an emulator with no render latency.")


if __name__ == "__main__":
    main()
