"""The `tchavi-render emulator` verb as a user runs it, and the Tchavi docs' example against it."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import httpx

from tests.emulator.conftest import StartEmulator
from tests.support.waiting import wait_until

DOCS = Path(__file__).resolve().parents[2] / "docs" / "emulator.md"
VERB = [sys.executable, "-m", "tchavi_render", "emulator"]


def read_line(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the emulator printed nothing"
    return process.stdout.readline()


def test_the_emulator_verb_serves_until_interrupted(tmp_path: Path) -> None:
    command = [*VERB, "--port", "0", "--data-dir", str(tmp_path / "data"), "--credits", "300"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = read_line(process)
        match = re.fullmatch(
            r"Tchavi emulator serving at (http://127\.0\.0\.1:\d+/api/v1)\n", first
        )
        assert match, first
        base_url = match.group(1)
        headers = {"Authorization": "Bearer sk-tch_cli"}
        job = {"model": "kling-v3", "prompt": "a red kite", "duration": 1}
        submitted = httpx.post(f"{base_url}/videos/generations", json=job, headers=headers)
        too_much = httpx.post(f"{base_url}/videos/generations", json=job, headers=headers)
        assert submitted.status_code == 202
        assert too_much.status_code == 402
        assert httpx.get(f"{base_url}/jobs").status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Emulator stopped." in out
    assert "Traceback" not in err
    assert (tmp_path / "data" / "emulator.sqlite3").is_file()


def test_the_limit_per_address_is_on_by_default_and_can_be_set(tmp_path: Path) -> None:
    def answers(*flags: str) -> list[int]:
        command = [*VERB, "--port", "0", "--data-dir", str(tmp_path / "data"), *flags]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            base_url = read_line(process).rsplit(" ", 1)[1].strip()
            keys = [f"sk-tch_{n}" for n in range(3)]
            return [
                httpx.get(
                    f"{base_url}/jobs", headers={"Authorization": f"Bearer {key}"}
                ).status_code
                for key in keys
            ]
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=20)

    assert answers("--ip-rpm", "2") == [200, 200, 429]
    assert answers("--ip-rpm", "0") == [200, 200, 200]  # 0: no limit
    assert answers() == [200, 200, 200]  # the service's 500 a minute


def test_help_imports_no_server_or_video_library() -> None:
    code = (
        "import sys\n"
        "from tchavi_render.cli.main import cli\n"
        "try:\n"
        "    cli.main(['emulator', '--help'], prog_name='tchavi-render')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('starlette', 'uvicorn', 'av', 'PIL') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "--fail-rate" in result.stdout
    assert result.stdout.strip().endswith("[]"), result.stdout


def test_a_bad_flag_value_is_a_usage_error() -> None:
    result = subprocess.run([*VERB, "--fail-rate", "2"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Invalid value for '--fail-rate': 2.0 is not in the range 0<=x<=1." in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_a_clean_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [*VERB, "--port", str(port), "--data-dir", str(tmp_path)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"Error: cannot listen on 127.0.0.1:{port}: Address already in use." in result.stderr
    assert "Traceback" not in result.stderr


def test_the_tchavi_docs_example_runs_unchanged_against_the_emulator(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    text = DOCS.read_text()
    example = text.split("<!-- docs-example -->\n```python\n", 1)[1].split("```", 1)[0]
    assert 'BASE_URL = "https://tchavi.com/api/v1"' in example
    with start_emulator(credits=2000) as emu:
        script = tmp_path / "example.py"
        script.write_text(example.replace("https://tchavi.com/api/v1", emu.base_url))
        env = {**os.environ, "TCHAVI_API_KEY": "sk-tch_docs"}
        result = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    assert "Saved output.mp4" in result.stdout
    with av.open(str(tmp_path / "output.mp4")) as video:
        assert abs(float(video.duration or 0) / av.time_base - 5) <= 0.1


def test_an_unusable_data_dir_is_a_clean_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    command = [*VERB, "--port", "0", "--data-dir", str(blocker / "data")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"Error: cannot use the data dir {blocker / 'data'}" in result.stderr
    assert "Traceback" not in result.stderr


def _raw_request(base: httpx.URL, head: str, body: bytes = b"") -> socket.socket:
    """A connection that has sent `head` (then `body`) and reads nothing yet."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the server must wait on us
    sock.connect((base.host, base.port or 80))
    sock.sendall(head.encode() + b"\r\n" + body)
    return sock


def _hang_up(sock: socket.socket) -> None:
    """Close with a reset, as a killed client's kernel does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_clients_that_hang_up_mid_download_or_mid_request_leave_no_traceback(
    tmp_path: Path,
) -> None:
    command = [*VERB, "--port", "0", "--data-dir", str(tmp_path / "data"), "--credits", "9000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base_url = read_line(process).rsplit(" ", 1)[1].strip()
        auth = {"Authorization": "Bearer sk-tch_gone"}
        job = {
            "model": "kling-v3",
            "prompt": "a pan",
            "duration": 6,
            "resolution": "720p",
            "seed": 1,
        }
        job_id = httpx.post(f"{base_url}/videos/generations", json=job, headers=auth).json()["id"]

        def completed() -> dict[str, Any] | None:
            found: dict[str, Any] = httpx.get(f"{base_url}/jobs/{job_id}", headers=auth).json()
            return found if found["status"] == "completed" else None

        done = wait_until(completed, 30, f"job {job_id} to complete")
        assert done is not None
        video = httpx.URL(done["output"]["video_url"])

        download = _raw_request(video, f"GET {video.raw_path.decode()} HTTP/1.1\r\nHost: x\r\n")
        assert download.recv(1024).startswith(b"HTTP/1.1 200 OK")  # the file is on its way
        _hang_up(download)
        submit = _raw_request(
            video,
            "POST /api/v1/videos/generations HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer sk-tch_gone\r\nContent-Length: 500\r\n",
            b'{"model": "kling-v3", ',  # the rest of the body never comes
        )
        time.sleep(0.2)  # the route is waiting for the body
        _hang_up(submit)
        headers_only = _raw_request(video, "GET /api/v1/jobs HTTP/1.1\r\nHost:")
        _hang_up(headers_only)

        whole = httpx.get(str(video))
        listed = httpx.get(f"{base_url}/jobs", headers=auth)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert whole.status_code == 200
    assert len(whole.content) == int(whole.headers["content-length"]) > 100_000
    assert [j["id"] for j in listed.json()["data"]] == [done["id"]]
    assert process.returncode == 0, err
    assert "Emulator stopped." in out
    assert "Traceback" not in err
    assert err == ""  # the hang-ups are not worth a line on the console


def test_a_second_emulator_on_a_data_dir_in_use_is_refused_by_name(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = subprocess.Popen(
        [*VERB, "--port", "0", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        root_url = read_line(first).rsplit(" ", 1)[1].strip().removesuffix("/api/v1")
        second = subprocess.run(
            [*VERB, "--port", "0", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        elsewhere = subprocess.Popen(
            [*VERB, "--port", "0", "--data-dir", str(tmp_path / "other")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            other_url = read_line(elsewhere).rsplit(" ", 1)[1].strip()
            assert httpx.get(f"{other_url}/jobs", headers={"Authorization": "Bearer k"}).is_success
        finally:
            elsewhere.send_signal(signal.SIGINT)
            elsewhere.communicate(timeout=20)
        still_serving = httpx.get(f"{root_url}/api/v1/jobs", headers={"Authorization": "Bearer k"})
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=20)
    assert second.returncode == 1
    assert second.stderr == (
        f"Error: data dir {data} is in use by the emulator at {root_url} (pid {first.pid});"
        " stop it or pass another --data-dir\n"
    )
    assert second.stdout == ""
    assert elsewhere.returncode == 0
    assert still_serving.is_success
