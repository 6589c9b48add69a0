"""The final cut: `export` of 12 shots of 5 s at 720p against `ffmpeg -f concat -c copy` on
the same rendered files, in one run; and the re-encoding export (`--reencode`) for scale.

The shots are rendered by the embedded emulator (`apply --backend local`), with sound, so
all twelve share one format and export copies their packets. Every figure is the wall time
of a whole child process.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmarks.common import CLI, median_run, run, table

TARGET = 2.0  # export may take at most this many times ffmpeg's time


def write_spec(root: Path, shots: int, seconds: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        "version: 1",
        "backend: local",
        "defaults:",
        "  model: seedance-2",
        f"  duration: {seconds}",
        "  resolution: 720p",
        '  aspect_ratio: "16:9"',
        "  generate_audio: true",
        "shots:",
    ]
    for i in range(shots):
        lines += [f"  - id: shot{i:02d}", f'    prompt: "Shot {i} of the harbour at dusk"']
        lines.append(f"    seed: {i}")
    spec = root / "tchavi.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def ffmpeg_version(ffmpeg: str) -> str:
    output = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, check=True)
    return output.stdout.splitlines()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shots", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reencode-runs", type=int, default=1)
    args = parser.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    with tempfile.TemporaryDirectory(prefix="tchavi-bench-") as tmp:
        work = Path(tmp)
        spec = write_spec(work / "project", args.shots, args.seconds)
        cache = ["--cache-dir", str(work / "cache")]
        rendered, _, _ = run([*CLI, "apply", str(spec), "--yes", *cache])
        renders = sorted((work / "project" / "renders").glob("*.mp4"))
        assert len(renders) == args.shots, renders
        megabytes = sum(r.stat().st_size for r in renders) / 1e6

        export = [*CLI, "export", str(spec), *cache, "-o", str(work / "copied.mp4")]
        copied, c_times, output = median_run(export, args.runs)
        assert "Copied, nothing re-encoded" in output, output
        reencode = [*CLI, "export", str(spec), *cache, "--reencode", "-o", str(work / "re.mp4")]
        reencoded, r_times, output = median_run(reencode, args.reencode_runs)
        assert "--reencode asked for it" in output, output

        rows = [("command", "median", "min", "max", "vs ffmpeg")]
        concat: float | None = None
        if ffmpeg is None:
            rows.append(("ffmpeg -f concat -c copy", "NOT INSTALLED", "", "", ""))
        else:
            listing = work / "concat.txt"
            listing.write_text("".join(f"file '{r}'\n" for r in renders))
            joined = work / "ffmpeg.mp4"
            ffmpeg_cmd = [ffmpeg, "-v", "error", "-y", "-f", "concat", "-safe", "0"]
            ffmpeg_cmd += ["-i", str(listing), "-c", "copy", str(joined)]
            concat, f_times, _ = median_run(ffmpeg_cmd, args.runs)
            rows.append(("ffmpeg -f concat -c copy", *spread(concat, f_times), "1.00 ×"))
        rows.append(
            ("tchavi-render export (copies)", *spread(copied, c_times), ratio(copied, concat))
        )
        rows.append(
            (
                "tchavi-render export --reencode",
                *spread(reencoded, r_times),
                ratio(reencoded, concat),
            )
        )
    print(table(rows))
    print(
        f"\n{args.shots} shots of {args.seconds} s at 720p with sound ({megabytes:.1f} MB of "
        f"renders, rendered in {rendered:.1f} s); {args.runs} runs of export and ffmpeg, "
        f"{args.reencode_runs} of export --reencode."
    )
    if ffmpeg is None or concat is None:
        print(
            "\nffmpeg is NOT installed: export was not compared with it and its target was not "
            "checked. `make bench` installs Debian's ffmpeg when it is missing."
        )
        return
    verdict = "met" if copied <= TARGET * concat else "MISSED"
    print(f"Target, export ≤ {TARGET:g} × ffmpeg: {verdict}. {ffmpeg_version(ffmpeg)}.")


def spread(median: float, times: list[float]) -> tuple[str, str, str]:
    return f"{median:.2f} s", f"{min(times):.2f} s", f"{max(times):.2f} s"


def ratio(seconds: float, concat: float | None) -> str:
    return f"{seconds / concat:.2f} ×" if concat else "n/a"


if __name__ == "__main__":
    main()
