"""Plan at scale: `plan` of an unchanged storyboard of 100, 1,000 and 10,000 shots, vs `dvc status`.

Each storyboard is generated (groups of ten takes made with for_each, templated prompts,
one local reference image per group) and its lock, outputs and media memo are seeded as
a finished apply leaves them; then `plan` runs as a whole process, several times. DVC is
installed from PyPI into its own virtualenv (under the benchmark cache dir) and times
`dvc status` on the equivalent 1,000-stage pipeline: a foreach stage whose every item
depends on its prompt file and its reference image and outputs its render.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import (
    BENCH_CACHE,
    CLI,
    median_run,
    run,
    seed_lock,
    table,
    write_assets,
    write_storyboard,
)

TARGETS = {1_000: 0.5, 10_000: 3.0}
DVC_VENV = BENCH_CACHE / "dvc-venv"


def plan_figures(work: Path, sizes: list[int], runs: int) -> list[tuple[int, float, float]]:
    """(shots, first plan, median plan) for each size."""
    out = []
    for shots in sizes:
        root = work / f"plan-{shots}"
        spec = write_storyboard(root, shots)
        cache = work / f"cache-{shots}"
        seed_lock(spec, cache)
        env = {"TCHAVI_RENDER_CACHE_DIR": str(cache)}
        first, _, _ = run([*CLI, "plan", str(spec)], env=env)
        median, _, output = median_run([*CLI, "plan", str(spec)], runs, env=env)
        assert f"{shots} unchanged" in output and "No changes" in output, output[-500:]
        out.append((shots, first, median))
    return out


def dvc() -> Path:
    """The dvc executable of the benchmark's own virtualenv (made on first use)."""
    exe = DVC_VENV / "bin" / "dvc"
    if not exe.exists():
        print(f"installing DVC into {DVC_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
        pip = [str(DVC_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "dvc"], check=True)
    return exe


def dvc_figures(work: Path, stages: int, runs: int) -> tuple[str, float, float]:
    """(dvc version, first status, median status) on a committed `stages`-stage pipeline."""
    exe = str(dvc())
    env = {"DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@x"}
    env |= {"GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@x"}
    root = work / "dvc"
    root.mkdir()
    assets = write_assets(root)
    shots = []
    for i in range(stages):
        shot_id = f"scene{i // 10:04d}-take{i % 10}"
        prompt = root / "prompts" / f"{shot_id}.txt"
        prompt.parent.mkdir(exist_ok=True)
        prompt.write_text(f"Scene {i // 10}, take {i % 10}: the Cotonou waterfront\n")
        shots.append({"id": shot_id, "ref": i // 10 % len(assets)})
    (root / "shots.json").write_text(json.dumps({"shots": shots}))
    (root / "dvc.yaml").write_text(
        "vars:\n  - shots.json\nstages:\n  render:\n    foreach: ${shots}\n    do:\n"
        "      cmd: cp prompts/${item.id}.txt renders/${item.id}.mp4\n"
        "      deps:\n        - prompts/${item.id}.txt\n        - assets/ref${item.ref}.png\n"
        "      outs:\n        - renders/${item.id}.mp4\n"
    )
    (root / "renders").mkdir()
    for shot in shots:  # what `dvc repro` would make, without 1,000 processes
        name = str(shot["id"])
        shutil.copy(root / "prompts" / f"{name}.txt", root / "renders" / f"{name}.mp4")
    for command in (["git", "init", "-q"], [exe, "init", "-q"], [exe, "commit", "-f", "-q"]):
        run(command, cwd=root, env=env)
    version = run([exe, "--version"], env=env)[2].strip()
    first, _, _ = run([exe, "status"], cwd=root, env=env)
    median, _, output = median_run([exe, "status"], runs, cwd=root, env=env)
    assert "up to date" in output, output[-500:]
    return version, first, median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--no-dvc", action="store_true", help="skip the DVC comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tchavi-bench-") as tmp:
        work = Path(tmp)
        figures = plan_figures(work, args.sizes, args.runs)
        rows = [("shots", "target", "plan (median)", "first plan", "per 1,000 shots")]
        for shots, first, median in figures:
            target = f"≤ {TARGETS[shots]} s" if shots in TARGETS else ""
            rate = f"{median / shots * 1000:.2f} s"
            rows.append((f"{shots:,}", target, f"{median:.2f} s", f"{first:.2f} s", rate))
        if not args.no_dvc:
            version, first, median = dvc_figures(work, 1_000, args.runs)
            rows.append(
                (f"1,000 (dvc {version} status)", "", f"{median:.2f} s", f"{first:.2f} s", "")
            )
    print(table(rows))
    print(f"\nMedian of {args.runs} runs of the whole process; 'first plan' also fills the caches.")


if __name__ == "__main__":
    main()
