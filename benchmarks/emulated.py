"""Benchmarks against the emulator: a project, an apply as a child process with timed events,
and the Tchavi docs' own loop (submit, sleep 5 s, poll, download: one shot after another)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import CLI

DOCS_SLEEP = 5.0


def plain_storyboard(root: Path, shots: int, tag: str) -> Path:
    """`shots` one-second shots with distinct prompts, for the tchavi backend (URLs only)."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        "version: 1",
        "backend: tchavi",
        "defaults:",
        "  model: seedance-2",
        "  duration: 1",
        "  generate_audio: false",
        "  seed: 1",
        "shots:",
    ]
    for i in range(shots):
        lines += [f"  - id: {tag}-{i:04d}", f'    prompt: "{tag} shot {i}: a harbour at dawn"']
    spec = root / "tchavi.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


@dataclass
class TimedApply:
    """An apply run to its end: wall time, peak RSS and when each JSON event arrived."""

    wall: float
    rss_mb: int
    returncode: int
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)

    def times(self, kind: str) -> list[float]:
        return [t for t, e in self.events if e.get("event") == kind]


def timed_apply(spec: Path, base_url: str, key: str, cache: Path, *args: str) -> TimedApply:
    """`apply --yes --json` as a child process, stamping each event line as it arrives."""
    env = {
        **os.environ,
        "TCHAVI_BASE_URL": base_url,
        "TCHAVI_API_KEY": key,
        "TCHAVI_RENDER_CACHE_DIR": str(cache),
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        [*CLI, "apply", "--yes", "--json", *args, str(spec)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    events = []
    assert process.stdout is not None
    with process.stdout:
        for line in process.stdout:
            stamp = time.perf_counter() - started
            if line.startswith("{"):
                events.append((stamp, json.loads(line)))
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    return TimedApply(wall, int(usage.ru_maxrss / 1024), process.returncode, events)


def docs_loop(base_url: str, key: str, prompts: list[str], out: Path) -> float:
    """The Tchavi docs' approach, one shot after another: submit, sleep 5 s, poll until done,
    download. Its only addition: on a 429 it waits Retry-After and sends again (the docs'
    code would stop at the first one). Returns the wall time."""
    headers = {"Authorization": f"Bearer {key}"}
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as http:

        def send(method: str, url: str, **kw: Any) -> httpx.Response:
            while True:
                response = http.request(method, url, **kw)
                if response.status_code != 429:
                    response.raise_for_status()
                    return response
                time.sleep(float(response.headers.get("retry-after", "1")))

        for i, prompt in enumerate(prompts):
            body = {"model": "seedance-2", "prompt": prompt, "duration": 1, "seed": 1}
            job = send("POST", "/videos/generations", json={**body, "generate_audio": False})
            job = job.json()
            while job["status"] not in ("completed", "failed"):
                time.sleep(DOCS_SLEEP)
                job = send("GET", f"/jobs/{job['id']}").json()
            if job["status"] == "completed":
                video = httpx.get(job["output"]["video_url"], timeout=60)
                (out / f"{i}.mp4").write_bytes(video.content)
    return time.perf_counter() - started


def download_seconds(jobs: list[dict[str, Any]]) -> float:
    """How long fetching every completed job's video takes, one after another."""
    started = time.perf_counter()
    with httpx.Client(timeout=60) as http:
        for job in jobs:
            if job["status"] == "completed":
                http.get(job["output"]["video_url"]).raise_for_status()
    return time.perf_counter() - started


def python() -> str:
    return sys.executable
