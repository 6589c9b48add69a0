"""Downloads: streamed to a temp file, checked, renamed into place; refused if wrong or expired."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tchavi_render.api import Job
from tchavi_render.errors import DownloadError, MediaExpired
from tests.api.fakes import PARAMS, FakeTchavi, error

MiB = 2**20


class Zeros(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A large body made on the fly, optionally breaking off after `fail_after` bytes."""

    def __init__(self, total: int, fail_after: int | None = None) -> None:
        self.total = total
        self.fail_after = fail_after
        self.block = bytes(MiB)

    def _blocks(self) -> Iterator[bytes]:
        sent = 0
        while sent < self.total:
            if self.fail_after is not None and sent >= self.fail_after:
                raise httpx.ReadError("connection reset by peer")
            block = self.block[: min(MiB, self.total - sent)]
            sent += len(block)
            yield block

    def __iter__(self) -> Iterator[bytes]:
        yield from self._blocks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for block in self._blocks():
            yield block


def completed(client: Any) -> Job:
    job = client.videos.generations.create_and_wait(**PARAMS)
    assert isinstance(job, Job)
    return job


def video_job(url: str, size_mb: float | None = None) -> Job:
    output = {"video_url": url, "file_size_mb": size_mb, "url_expires_at": "2026-11-24T11:00:00Z"}
    return Job.model_validate({"id": "job_7", "status": "completed", "output": output})


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_download_lands_in_place_with_its_sha256_and_size(
    client: Any, server: FakeTchavi, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "shot.mp4"
    sha256, size = client.download(completed(client), target)
    assert target.read_bytes() == server.video
    assert (sha256, size) == (hashlib.sha256(server.video).hexdigest(), len(server.video))
    assert leftovers(target.parent) == ["shot.mp4"]


def test_a_download_replaces_an_older_file(client: Any, server: FakeTchavi, tmp_path: Path) -> None:
    target = tmp_path / "shot.mp4"
    target.write_bytes(b"old")
    client.download(completed(client), target)
    assert target.read_bytes() == server.video


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://tchavi.test/v.mp4", "/media/v.mp4"])
def test_a_download_refuses_urls_that_are_not_http(
    client: Any, server: FakeTchavi, tmp_path: Path, url: str
) -> None:
    with pytest.raises(DownloadError, match="only http\\(s\\) is allowed"):
        client.download(video_job(url), tmp_path / "x.mp4")
    assert server.requests == []
    assert leftovers(tmp_path) == []


def test_an_expired_url_410_says_the_url_expired(
    client: Any, server: FakeTchavi, tmp_path: Path
) -> None:
    job = completed(client)
    server.media[f"/media/{job.id}.mp4"] = error(410, "gone", "This link has expired")
    with pytest.raises(MediaExpired) as caught:
        client.download(job, tmp_path / "x.mp4")
    assert str(caught.value) == (
        "Tchavi API 410 url_expired: the video URL of job job_1 expired at "
        "2026-11-24T11:00:05Z (on GET /media/job_1.mp4). Output URLs expire; retrieve the job "
        "again for a fresh URL, or render it again"
    )
    assert leftovers(tmp_path) == []


def test_a_403_from_storage_saying_expired_is_an_expired_url(
    client: Any, server: FakeTchavi, tmp_path: Path
) -> None:
    denied = httpx.Response(403, text="<Error><Code>AccessDenied</Code>Request has expired</Error>")
    server.media["/media/v.mp4"] = denied
    with pytest.raises(MediaExpired, match="expired"):
        client.download(video_job("http://tchavi.test/media/v.mp4"), tmp_path / "x.mp4")


def test_another_403_is_a_download_error(client: Any, server: FakeTchavi, tmp_path: Path) -> None:
    server.media["/media/v.mp4"] = httpx.Response(403, text="Forbidden")
    with pytest.raises(DownloadError, match="could not download the video of job job_7"):
        client.download(video_job("http://tchavi.test/media/v.mp4"), tmp_path / "x.mp4")


def test_a_truncated_download_is_fetched_again_then_refused(
    make_client: Any, server: FakeTchavi, tmp_path: Path
) -> None:
    client = make_client(max_retries=2)
    job = completed(client)
    short = httpx.Response(200, headers={"Content-Length": "4000"}, content=b"x" * 1000)
    server.media[f"/media/{job.id}.mp4"] = lambda request: httpx.Response(
        200, headers=short.headers, content=short.content
    )
    with pytest.raises(DownloadError) as caught:
        client.download(job, tmp_path / "shot.mp4")
    assert str(caught.value) == (
        "the download of job job_1 failed: truncated: got 1000 of the 4000 bytes announced; "
        "tried 3 times"
    )
    assert server.count("GET", f"/media/{job.id}.mp4") == 3
    assert leftovers(tmp_path) == []


def test_a_download_cut_off_midway_starts_over(
    client: Any, server: FakeTchavi, tmp_path: Path
) -> None:
    answers = iter([Zeros(3 * MiB, fail_after=MiB), Zeros(3 * MiB)])
    server.media["/media/big.mp4"] = lambda request: httpx.Response(
        200, headers={"Content-Length": str(3 * MiB)}, stream=next(answers)
    )
    _, size = client.download(video_job("http://tchavi.test/media/big.mp4"), tmp_path / "b.mp4")
    assert size == 3 * MiB
    assert leftovers(tmp_path) == ["b.mp4"]


def test_a_file_that_contradicts_file_size_mb_is_not_kept(
    client: Any, server: FakeTchavi, tmp_path: Path
) -> None:
    server.media["/media/v.mp4"] = httpx.Response(200, content=b"<html>sorry</html>")
    with pytest.raises(DownloadError) as caught:
        client.download(video_job("http://tchavi.test/media/v.mp4", 2.5), tmp_path / "x.mp4")
    assert str(caught.value) == (
        "the video of job job_7 has 18 bytes but the job says 2.5 MB; not keeping it"
    )
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("size_mb", [3.15, 3.0], ids=["MB", "MiB"])
def test_file_size_mb_may_mean_mb_or_mib(
    client: Any, server: FakeTchavi, tmp_path: Path, size_mb: float
) -> None:
    server.media["/media/v.mp4"] = httpx.Response(200, content=bytes(3 * MiB))  # 3.146 MB
    url = "http://tchavi.test/media/v.mp4"
    assert client.download(video_job(url, size_mb), tmp_path / "x.mp4")[1] == 3 * MiB


def test_an_empty_answer_is_not_a_video(
    make_client: Any, server: FakeTchavi, tmp_path: Path
) -> None:
    client = make_client(max_retries=0)
    server.media["/media/v.mp4"] = httpx.Response(200, content=b"")
    with pytest.raises(DownloadError, match="the answer was empty"):
        client.download(video_job("http://tchavi.test/media/v.mp4"), tmp_path / "x.mp4")


def test_a_job_without_a_video_cannot_be_downloaded(client: Any, tmp_path: Path) -> None:
    job = Job.model_validate({"id": "job_3", "status": "processing"})
    with pytest.raises(DownloadError) as caught:
        client.download(job, tmp_path / "x.mp4")
    assert str(caught.value) == (
        "job job_3 has no video to download (status: processing); wait for it to complete first"
    )


def test_the_key_goes_only_to_the_apis_own_host(
    client: Any, server: FakeTchavi, tmp_path: Path
) -> None:
    client.download(video_job("http://tchavi.test/media/a.mp4"), tmp_path / "a.mp4")
    client.download(video_job("http://cdn.example/media/b.mp4?sig=abc"), tmp_path / "b.mp4")
    own, cdn = server.requests
    assert "authorization" in own.headers
    assert "authorization" not in cdn.headers


def test_memory_stays_flat_for_a_500_mb_video(
    client: Any, server: FakeTchavi, tmp_path: Path
) -> None:
    total = 500 * 10**6
    server.media["/media/huge.mp4"] = lambda request: httpx.Response(
        200, headers={"Content-Length": str(total)}, stream=Zeros(total)
    )
    tracemalloc.start()
    try:
        _, size = client.download(
            video_job("http://tchavi.test/media/huge.mp4", 500.0), tmp_path / "huge.mp4"
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == total
    assert peak < 8 * MiB


def test_a_429_from_a_media_host_waits_its_retry_after(
    client: Any, server: FakeTchavi, fake_time: Any, tmp_path: Path
) -> None:
    slow_down = httpx.Response(429, headers={"Retry-After": "3"}, text="slow down")
    answers = iter([slow_down, httpx.Response(200, content=server.video)])
    server.media["/media/b.mp4"] = lambda request: next(answers)
    client.download(video_job("http://cdn.example/media/b.mp4"), tmp_path / "b.mp4")
    assert fake_time.sleeps == [3.0]
    assert (tmp_path / "b.mp4").read_bytes() == server.video


def test_a_target_that_cannot_be_written_is_a_download_error(
    client: Any, server: FakeTchavi, tmp_path: Path
) -> None:
    (tmp_path / "shot.mp4").mkdir()  # a directory where the file should go
    target = tmp_path / "shot.mp4"
    with pytest.raises(DownloadError) as caught:
        client.download(completed(client), target)
    assert str(caught.value) == f"could not write the video to {target}: Is a directory"
    assert leftovers(tmp_path) == ["shot.mp4"]
