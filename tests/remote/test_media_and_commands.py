"""Hosted local media for the tchavi backend, cache push / pull, and clear errors."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import av
import httpx
import pytest
import yaml
from PIL import Image, ImageStat

from tchavi_render.emulator import RunningEmulator
from tchavi_render.engine.remote import open_remote
from tchavi_render.spec import load_spec
from tests.remote.conftest import Bucket, MachineFactory
from tests.support.clock import MovableClock
from tests.support.specs import HARBOUR_AND_MARKET

COLOUR = (200, 40, 90)

IMAGE_SPEC = """\
version: 1
backend: tchavi
cache:
  media_url_ttl: 900
defaults:
  model: seedance-2
  duration: 1
  seed: 9
  generate_audio: false
assets:
  still: art/still.png
shots:
  - id: opening
    image_url: still
    prompt: "The harbour wakes up"
"""

SPEC = HARBOUR_AND_MARKET


def image(path: Path, colour: tuple[int, int, int] = COLOUR) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (854, 480), colour).save(path)
    return path


def first_frame_rgb(video: Path) -> tuple[float, ...]:
    with av.open(str(video)) as container:
        frame = next(container.decode(video=0))
        return tuple(ImageStat.Stat(frame.to_image().convert("RGB")).mean)


def test_local_media_are_hosted_in_the_bucket_and_fetched_by_presigned_url(
    machines: MachineFactory, bucket: Bucket, emulator: RunningEmulator
) -> None:
    machine = machines()
    machine.write(IMAGE_SPEC)
    still = image(machine.root / "art" / "still.png")
    digest = hashlib.sha256(still.read_bytes()).hexdigest()

    machine.apply()
    (job,) = emulator.jobs()
    assert job["status"] == "completed"
    first = first_frame_rgb(machine.output("opening"))
    assert all(abs(got - want) <= 6 for got, want in zip(first, COLOUR, strict=True)), first
    assert bucket.keys("media/") == [f"team/media/{digest}.png"]

    # Another shot with the same image: the bucket has it, so it is not uploaded again.
    machine.write(IMAGE_SPEC + '  - id: closing\n    image_url: still\n    prompt: "Night"\n')
    before = len(bucket.server.requests)
    machine.apply()
    assert len(emulator.jobs()) == 2
    media_writes = [p for _, p in bucket.writes(before) if "/media/" in p]
    assert media_writes == []


def test_presigned_media_urls_expire_after_the_configured_time(
    bucket: Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    image(project / "art" / "still.png")
    spec = project / "tchavi.yaml"
    spec.write_text(IMAGE_SPEC.replace("media_url_ttl: 900", "media_url_ttl: 3"))
    loaded = load_spec(spec)
    environ = {
        "TCHAVI_RENDER_REMOTE_CACHE": bucket.remote,
        "TCHAVI_RENDER_REMOTE_CACHE_ENDPOINT_URL": bucket.server.url,
    }
    remote = open_remote(loaded.cache, environ=environ)
    assert remote is not None
    media = loaded.shots[0].image_url
    url = remote.media_url(media)  # type: ignore[arg-type]
    query = parse_qs(urlparse(url).query)
    assert query["X-Amz-Expires"] == ["3"]
    clock = MovableClock()
    monkeypatch.setattr(bucket.server, "clock", clock)
    assert httpx.get(url).status_code == 200
    # X-Amz-Date is whole seconds, so the URL lives between 2 and 3 s from now.
    clock.advance(4.1)
    expired = httpx.get(url)
    assert expired.status_code == 403 and "Request has expired" in expired.text


def test_local_media_on_the_tchavi_backend_without_a_bucket_fail_at_plan_time(
    machines: MachineFactory, emulator: RunningEmulator
) -> None:
    machine = machines(TCHAVI_RENDER_REMOTE_CACHE=None)
    machine.write(IMAGE_SPEC.replace("cache:\n  media_url_ttl: 900\n", ""))
    image(machine.root / "art" / "still.png")
    result = machine.run("plan", ok=False)
    assert result.exit_code == 1
    assert result.output == (
        "Error: tchavi.yaml: the tchavi backend takes media only as http(s) URLs, and the "
        "spec uses local files (art/still.png). Host them in a bucket: add `cache: {remote: "
        "s3://BUCKET/PREFIX}` to the spec or set TCHAVI_RENDER_REMOTE_CACHE=s3://BUCKET/PREFIX "
        "(needs pip install 'tchavi-render[s3]'); or give them as URLs (assets), or render "
        "with --backend local\n"
    )
    assert machine.apply(ok=False).exit_code == 1
    assert emulator.jobs() == []
    assert "1 to create" in machine.run("plan", "--backend", "local").output


def test_cache_push_then_pull_on_a_fresh_checkout_places_the_locked_renders(
    machines: MachineFactory, bucket: Bucket, emulator: RunningEmulator
) -> None:
    a, b = machines("a"), machines("b")
    a.write(SPEC)
    a.apply(TCHAVI_RENDER_REMOTE_CACHE="off")
    assert bucket.keys() == []
    pushed = a.run("cache", "push")
    assert f"Pushed 2 renders to {bucket.remote}; 0 already there." in pushed.output
    assert len(bucket.keys("objects/")) == 2 and len(bucket.keys("records/")) == 2
    again = a.run("cache", "push")
    assert "Pushed 0 renders" in again.output and "2 already there" in again.output

    # A fresh checkout: the spec and the lock from git, no renders, an empty cache.
    shutil.copy(a.spec, b.spec)
    shutil.copy(a.lock, b.lock)
    pulled = b.run("cache", "pull")
    assert f"Pulled 2 renders from {bucket.remote}; 0 already there." in pulled.output
    lock = yaml.safe_load(b.lock.read_text())["shots"]
    for shot in ("harbour", "market"):
        data = b.output(shot).read_bytes()
        assert hashlib.sha256(data).hexdigest() == lock[shot]["output"]["sha256"]
    assert "No changes" in b.run("plan").output
    assert "Pulled 0 renders" in b.run("cache", "pull").output
    assert len(emulator.jobs()) == 2


def test_pull_names_the_renders_the_bucket_lacks(machines: MachineFactory, bucket: Bucket) -> None:
    a, b = machines("a"), machines("b")
    a.write(SPEC)
    a.apply(TCHAVI_RENDER_REMOTE_CACHE="off")
    shutil.copy(a.spec, b.spec)
    shutil.copy(a.lock, b.lock)
    result = b.run("cache", "pull", ok=False)
    assert result.exit_code == 1
    assert "harbour: not in the remote cache" in result.output
    assert "Pulled 0 renders" in result.output and "2 missing" in result.output


def test_a_remote_without_boto3_says_how_to_install_it(
    machines: MachineFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = machines()
    machine.write(SPEC)
    monkeypatch.setitem(sys.modules, "boto3", None)
    result = machine.run("plan", ok=False)
    assert result.exit_code == 1
    assert result.output == (
        "Error: the remote cache needs boto3, which is not installed: "
        "pip install 'tchavi-render[s3]'\n"
    )


def test_missing_credentials_are_one_clear_message(
    machines: MachineFactory, emulator: RunningEmulator
) -> None:
    machine = machines(AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None)
    machine.write(SPEC)
    result = machine.apply(ok=False)
    assert result.exit_code == 1
    assert "Error: reading the record of sha256:" in result.output
    assert "no AWS credentials. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in result.output
    assert "TCHAVI_RENDER_REMOTE_CACHE=off" in result.output
    assert "Traceback" not in result.output
    assert emulator.jobs() == []


def test_a_missing_bucket_is_one_clear_message(machines: MachineFactory) -> None:
    machine = machines(TCHAVI_RENDER_REMOTE_CACHE="s3://no-such-bucket-here/team")
    machine.write(SPEC)
    result = machine.run("plan", ok=False)
    assert "the bucket 'no-such-bucket-here' does not exist" in result.output


def test_off_disables_a_remote_the_spec_configures(
    machines: MachineFactory, emulator: RunningEmulator, bucket: Bucket
) -> None:
    machine = machines(TCHAVI_RENDER_REMOTE_CACHE="off")
    machine.write(SPEC.replace("defaults:", "cache:\n  remote: s3://elsewhere-bucket/x\ndefaults:"))
    machine.apply()
    assert len(emulator.jobs()) == 2 and bucket.keys() == []
    assert not [p for _, p in bucket.server.requests if p.startswith("/elsewhere-bucket")]


CHAIN = """\
version: 1
backend: tchavi
defaults: {model: seedance-2, duration: 1, seed: 4, generate_audio: false}
shots:
  - id: flight
    prompt: "A plane over the clouds"
  - id: landing
    image_url: {shot: flight, frame: last}
    prompt: "The plane lands on a red runway"
"""


def test_continuity_frames_are_hosted_and_a_whole_chain_is_reused_from_the_bucket(
    machines: MachineFactory, bucket: Bucket, emulator: RunningEmulator
) -> None:
    a, b, offline = machines("a"), machines("b"), machines("c", TCHAVI_RENDER_REMOTE_CACHE=None)
    for machine in (a, b, offline):
        machine.write(CHAIN)
    refused = offline.run("plan", ok=False)
    assert "and shots continue frames of other shots (landing). Host them" in refused.output

    a.apply()
    assert [j["status"] for j in emulator.jobs()] == ["completed", "completed"]
    (frame,) = bucket.keys("media/")
    assert frame.endswith(".png")

    # B knows the chain's keys from the bucket alone: the head's record gives its frames.
    plan = b.run("plan", "--json").output
    assert plan.count('"action": "reuse"') == 2 and "in the remote cache" in plan
    b.apply()
    assert len(emulator.jobs()) == 2
    assert b.lock.read_bytes() == a.lock.read_bytes()
