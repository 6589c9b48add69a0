"""The final cut: `export` of 12 shots of 5 s at 720p against `ffmpeg -f concat -c copy` on
the same rendered files, in one run; and the re-encoding export (`--reencode`) for scale.

The shots are rendered by the embedded emulator (`apply --backend local`), with sound, so
all twelve share one format and export copies their packets. Every figure is the wall time
of a whole child process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import CLI, median_run, run, table
from tchavi_render.exportmemo import SETTLED_NS, memo_path_for

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
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--reencode-runs", type=int, default=1)
    args = parser.parse_args()
    # An installed package has its bytecode; compiling the whole package from source in
    # every run would measure Python's compiler, not export.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    ffmpeg = shutil.which("ffmpeg")
    with tempfile.TemporaryDirectory(prefix="tchavi-bench-") as tmp:
        work = Path(tmp)
        spec = write_spec(work / "project", args.shots, args.seconds)
        cache = ["--cache-dir", str(work / "cache")]
        rendered, _, _ = run([*CLI, "apply", str(spec), "--yes", *cache])
        # Renders this fresh are not memoed (a change in the same tick could keep their
        # stat): wait as a user would have, then one export writes the memo.
        time.sleep(SETTLED_NS / 1e9)
        memo = memo_path_for(spec.absolute())
        renders = sorted((work / "project" / "renders").glob("*.mp4"))
        assert len(renders) == args.shots, renders
        megabytes = sum(r.stat().st_size for r in renders) / 1e6

        copied_mp4 = work / "copied.mp4"
        commands = {
            "export": [*CLI, "export", str(spec), *cache, "-o", str(copied_mp4)],
            "export-slow": [*CLI, "export", str(spec), *cache, "-o", str(work / "slow.mp4")],
            "plan": [*CLI, "plan", str(spec), *cache],
        }
        if ffmpeg is not None:
            listing = work / "concat.txt"
            listing.write_text("".join(f"file '{r}'\n" for r in renders))
            commands["ffmpeg"] = [ffmpeg, "-v", "error", "-y", "-f", "concat", "-safe", "0"]
            commands["ffmpeg"] += ["-i", str(listing), "-c", "copy", str(work / "ffmpeg.mp4")]
        # One run of each in turn, so that whatever else the machine does weighs on all.
        times: dict[str, list[float]] = {name: [] for name in commands}
        run(commands["export"])
        assert memo.is_file(), "the first export wrote no memo"
        for _ in range(args.runs):
            for name, command in commands.items():
                if name == "export-slow":
                    memo.unlink()  # loads the spec and plans, then writes the memo again
                elapsed, _, output = run(command)
                times[name].append(elapsed)
                if name.startswith("export"):
                    assert "Copied, nothing re-encoded" in output, output
                    assert memo.is_file(), "export wrote no memo"
        medians = {name: statistics.median(values) for name, values in times.items()}
        in_process = cut_in_process(spec, work / "cache", work / "in-process.mp4", args.runs)
        reencode = [*CLI, "export", str(spec), *cache, "--reencode", "-o", str(work / "re.mp4")]
        reencoded, r_times, output = median_run(reencode, args.reencode_runs)
        assert "--reencode asked for it" in output, output
        comparison = compare_cuts(copied_mp4, work / "ffmpeg.mp4") if ffmpeg else ""

    concat = medians.get("ffmpeg")
    rows = [("command", "median", "min", "max", "vs ffmpeg")]
    if concat is None:
        rows.append(("ffmpeg -f concat -c copy", "NOT INSTALLED", "", "", ""))
    else:
        rows.append(("ffmpeg -f concat -c copy", *spread(concat, times["ffmpeg"]), "1.00 ×"))
    rows += [
        (
            "tchavi-render export (copies)",
            *spread(medians["export"], times["export"]),
            ratio(medians["export"], concat),
        ),
        (
            "export, slow way (no memo: loads, plans)",
            *spread(medians["export-slow"], times["export-slow"]),
            ratio(medians["export-slow"], concat),
        ),
        (
            "of which the cut (write_cut, in-process)",
            *spread(statistics.median(in_process), in_process),
            ratio(statistics.median(in_process), concat),
        ),
        (
            "tchavi-render plan (the same spec)",
            *spread(medians["plan"], times["plan"]),
            ratio(medians["plan"], concat),
        ),
        ("tchavi-render export --reencode", *spread(reencoded, r_times), ratio(reencoded, concat)),
    ]
    print(table(rows))
    print(
        f"\n{args.shots} shots of {args.seconds} s at 720p with sound ({megabytes:.1f} MB of "
        f"renders, rendered in {rendered:.1f} s); {args.runs} runs each, taking turns, of "
        f"ffmpeg, export (its memo written by the run before), export without a memo and "
        f"plan; {args.reencode_runs} of export --reencode."
    )
    if concat is None:
        print(
            "\nffmpeg is NOT installed: export was not compared with it and its target was not "
            "checked. `make bench` installs Debian's ffmpeg when it is missing."
        )
        return
    assert ffmpeg is not None
    verdict = "met" if medians["export"] <= TARGET * concat else "MISSED"
    print(f"Target, export ≤ {TARGET:g} × ffmpeg: {verdict}. {ffmpeg_version(ffmpeg)}.")
    print(comparison)


def cut_in_process(spec: Path, cache_dir: Path, out: Path, runs: int) -> list[float]:
    """write_cut alone, as export calls it (after the plan): seconds of each run."""
    from tchavi_render.engine.status import shot_states
    from tchavi_render.engine.workspace import PlanRequest, open_workspace
    from tchavi_render.export import ClipSource, write_cut

    with open_workspace(PlanRequest(spec_path=spec), cache_dir) as ws:
        states = shot_states(ws.plan())
        sources = []
        for item in ws.spec.sequence:
            entry = states[item.shot_id].entry
            assert entry is not None and entry.output is not None
            path = ws.spec.project_dir / entry.output.path
            info = ws.media.info(path)
            assert info.duration and info.width and info.height
            sources.append(
                ClipSource(
                    item.shot_id,
                    path,
                    entry.output.path,
                    item.trim,
                    str(item.location),
                    info.duration,
                    info.width,
                    info.height,
                )
            )
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        assert write_cut(sources, out).copied
        times.append(time.perf_counter() - started)
    return times


def compare_cuts(ours: Path, theirs: Path) -> str:
    """What export's cut and ffmpeg's hold: frames, length and sound packets."""
    import av

    def count(path: Path) -> tuple[int, int, float]:
        with av.open(str(path)) as container:
            assert container.duration is not None
            video = audio = 0
            for packet in container.demux():
                if packet.size:
                    video += packet.stream.type == "video"
                    audio += packet.stream.type == "audio"
            return video, audio, container.duration / 1e6

    (v1, a1, s1), (v2, a2, s2) = count(ours), count(theirs)
    assert v1 == v2, (v1, v2)
    return (
        f"Both cuts hold {v1} frames; export's lasts {s1:.3f} s, ffmpeg's {s2:.3f} s; "
        f"{a1} sound packets against ffmpeg's {a2} (ffmpeg keeps every packet; export "
        "leaves out each later clip's encoder priming and any last packet that would play "
        "mostly after its clip's last frame)."
    )


def spread(median: float, times: list[float]) -> tuple[str, str, str]:
    return f"{median:.2f} s", f"{min(times):.2f} s", f"{max(times):.2f} s"


def ratio(seconds: float, concat: float | None) -> str:
    return f"{seconds / concat:.2f} ×" if concat else "n/a"


if __name__ == "__main__":
    main()
