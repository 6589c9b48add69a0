"""What the benchmark scripts share: timing whole processes, generated storyboards, seeded locks."""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "tchavi_render"]
BENCH_CACHE = Path(
    os.environ.get("TCHAVI_BENCH_CACHE", Path.home() / ".cache" / "tchavi-render-bench")
)


# Runs the CLI and, on its way out, writes its peak RSS (VmHWM, in KiB) to a file.
# ru_maxrss of a child would also count what the child was before exec: a copy of the
# parent, which here may be the biggest process of the run.
PEAK = """
import atexit, os, runpy, sys

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(os.environ["TCHAVI_BENCH_PEAK"], "w").write(line.split()[1])

atexit.register(peak)
sys.argv[0] = "tchavi-render"
runpy.run_module("tchavi_render", run_name="__main__")
"""


def cli_with_peak(peak_file: Path) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run the CLI and record its peak RSS in `peak_file`."""
    return [sys.executable, "-c", PEAK], {"TCHAVI_BENCH_PEAK": str(peak_file)}


def run(
    args: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, int, str]:
    """Run a process to its end: (wall seconds, ru_maxrss in MB, output)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        list(args),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    with process.stdout:
        output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {process.returncode}:\n{output[-3000:]}")
    return elapsed, int(usage.ru_maxrss / 1024), output  # ru_maxrss: KiB on Linux


def median_run(
    args: Sequence[str], runs: int, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[float, list[float], str]:
    """The median wall time of `runs` runs, every time, and the last output."""
    times = []
    output = ""
    for _ in range(runs):
        elapsed, _, output = run(args, cwd=cwd, env=env)
        times.append(elapsed)
    return statistics.median(times), times, output


def write_assets(root: Path, count: int = 10) -> list[str]:
    """`count` small distinct PNGs under assets/; their relative paths."""
    names = []
    (root / "assets").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        name = f"assets/ref{i}.png"
        Image.new("RGB", (64, 36), (20 * i, 255 - 20 * i, 90)).save(root / name)
        names.append(name)
    return names


def write_storyboard(root: Path, shots: int, *, backend: str = "local", media: bool = True) -> Path:
    """A spec of `shots` shots the way people write big ones: groups of ten takes made with
    for_each, templated prompts from variables, and (with `media`) one local reference
    image per group, named in the prompt with ref()."""
    assert shots % 10 == 0
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        "version: 1",
        f"backend: {backend}",
        "defaults:",
        "  model: seedance-2",
        "  duration: 1",
        "  resolution: 480p",
        "  generate_audio: false",
        "vars:",
        "  city: Cotonou",
        "  light: [dawn, noon, dusk, night]",
    ]
    if media:
        lines.append("assets:")
        lines += [f"  ref{i}: {name}" for i, name in enumerate(write_assets(root))]
    lines.append("shots:")
    for group in range(shots // 10):
        lines += [
            f'  - id: "scene{group:04d}-take{{{{ take }}}}"',
            "    for_each:",
            "      take: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]",
            '    seed: "{{ take }}"',
            f'    prompt: "Scene {group}, take {{{{ take }}}}: the {{{{ city }}}} waterfront at '
            f"{{{{ light[{group} % 4] }}}}"
            + (f", {{{{ ref('ref{group % 10}') }}}} in the foreground" if media else "")
            + '"',
        ]
        if media:
            lines.append(f"    reference_images: [ref{group % 10}]")
    spec = root / "tchavi.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def seed_lock(spec: Path, cache_dir: Path) -> int:
    """Write the lock and output files a finished apply would leave, without rendering.

    Every output is a small placeholder file: plan compares keys and output digests, never
    video content. Returns the number of shots locked.
    """
    from tchavi_render.engine.keys import key_request
    from tchavi_render.engine.lock import LockEntry, Lockfile, OutputRecord, write_lock
    from tchavi_render.engine.workspace import PlanRequest, open_workspace

    entries = {}
    with open_workspace(PlanRequest(spec_path=spec), cache_dir) as ws:
        for planned in ws.plan().shots:  # the keys exactly as plan computes them
            shot = planned.shot
            assert shot is not None
            path = ws.spec.output_dir / f"{shot.id}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = f"placeholder render of {shot.id}\n".encode()
            path.write_bytes(data)
            entries[shot.id] = LockEntry(
                key=planned.key,
                model=shot.model,
                request=key_request(shot),
                job_id=f"job_{hashlib.sha256(shot.id.encode()).hexdigest()[:24]}",
                output=OutputRecord(
                    path=path.relative_to(ws.spec.project_dir).as_posix(),
                    sha256=hashlib.sha256(data).hexdigest(),
                    bytes=len(data),
                    duration=1,
                    resolution="480p",
                ),
                credits_used=260,
            )
        write_lock(ws.lock_path, Lockfile(entries))
    return len(entries)


def table(rows: list[tuple[str, ...]]) -> str:
    """A markdown table; the first row is the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
        for r in rows[1:]
    ]
    return "\n".join(out)
