"""Runners that share one storyboard through render claims (issue 13).

60 shots on an emulator that allows 10 requests a minute per API key (the service's rate
limit, `rpm`), each runner also limiting itself with `--max-rpm 10`. One runner renders the
storyboard alone; then three runners, each with its own API key (its own rate limit), apply
the same storyboard at once, coordinated only by claims in one S3 bucket (moto on
loopback). Printed: the wall time of each, their ratio (target <= 0.4), and the number of
jobs the emulator made (target: 60, no shot paid twice).

The figures are dominated by the rate limit, not by the CPU: at 10 requests a minute a
runner submits at most one job every 6 s.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from benchmarks.emulated import plain_storyboard
from tchavi_render.emulator import EmulatorConfig, RunningEmulator, running_emulator

SHOTS = int(os.environ.get("TCHAVI_BENCH_SHARED_SHOTS", "60"))
RPM = 10
RUNNERS = 3
LATENCY = 5.0  # seconds a job renders on the emulator
APPLY = (sys.executable, "-m", "tchavi_render", "apply", "--yes")


def _bucket(endpoint: str) -> str:
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    name = f"bench-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=name)
    return name


def _runners(
    work: Path, emu: RunningEmulator, endpoint: str, tag: str, keys: list[str]
) -> tuple[float, list[int]]:
    """`len(keys)` runners (one per key, own checkout and cache) applying one storyboard
    started together; (wall seconds until the last one ends, their exit codes)."""
    bucket = _bucket(endpoint)
    processes = []
    started = time.perf_counter()
    for i, key in enumerate(keys):
        root = work / tag / f"runner-{i}"
        spec = plain_storyboard(root, SHOTS, tag)
        env = {
            **os.environ,
            "TCHAVI_API_KEY": key,
            "TCHAVI_BASE_URL": emu.base_url,
            "TCHAVI_RENDER_CACHE_DIR": str(root / "cache"),
            "TCHAVI_RENDER_REMOTE_CACHE": f"s3://{bucket}/team",
            "TCHAVI_RENDER_REMOTE_CACHE_ENDPOINT_URL": endpoint,
        }
        log = (root / "apply.log").open("w")
        processes.append(
            subprocess.Popen(
                [*APPLY, "--max-rpm", str(RPM), str(spec)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    codes = [p.wait() for p in processes]
    return time.perf_counter() - started, codes


def main() -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        keep = os.environ.get("TCHAVI_BENCH_KEEP")  # a folder to keep the runners' logs in
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(keep or tmp)
            config = EmulatorConfig(
                data_dir=work / "emulator", credits=10_000_000, latency=LATENCY, rpm=RPM
            )
            with running_emulator(config) as emu:
                print(
                    f"{SHOTS} one-second shots, {RPM} requests/min per API key "
                    f"(emulator rpm and --max-rpm), jobs render in {LATENCY:g} s",
                    flush=True,
                )
                alone, codes = _runners(work, emu, endpoint, "alone", ["sk-tch_bench-solo"])
                jobs_alone = len(emu.jobs())
                print(f"  1 runner, 1 key:   {alone:7.1f} s  {jobs_alone} jobs  exit {codes}")
                keys = [f"sk-tch_bench-{i}" for i in range(RUNNERS)]
                shared, codes = _runners(work, emu, endpoint, "shared", keys)
                jobs = emu.jobs()[jobs_alone:]
                per_key = sorted(Counter(job["account"][:8] for job in jobs).values())
                print(
                    f"  {RUNNERS} runners, {RUNNERS} keys: {shared:7.1f} s  {len(jobs)} jobs "
                    f"(per key {per_key})  exit {codes}"
                )
                print(f"  wall time ratio: {shared / alone:.2f} (target <= 0.4)")
                print(f"  jobs with claims: {len(jobs)} for {SHOTS} shots (target {SHOTS})")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
