"""Fixtures for the remote cache: moto's S3 server on loopback, an emulator, and machines.

A "machine" is a checkout with its own cache dir; machines share one bucket and one
emulator (the Tchavi account), so every claim about money is proven by counting jobs, and
every claim about writes by counting the requests the S3 server received.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from botocore.config import Config
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from tchavi_render.emulator import EmulatorConfig, RunningEmulator, running_emulator
from tests.support.checkouts import Machine

API_KEY = "sk-tch_remote-tests"
# Distinctive values, so a test can prove they never leak into output, logs or files.
AWS_SECRET = "s3SECRET-never-printed-0b7e1c"
CACHE_SECRET = "hmacSECRET-never-printed-5d2a9f"
REGION = "us-east-1"
WRITES = frozenset({"PUT", "POST", "DELETE", "PATCH"})
_names = itertools.count()


class _QuietHandler(MotoRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


def _expired(query: str, now: datetime) -> bool:
    """AWS's rule for a presigned URL: refused once X-Amz-Date + X-Amz-Expires has passed."""
    params = parse_qs(query)
    if "X-Amz-Expires" not in params or "X-Amz-Date" not in params:
        return False
    signed = datetime.strptime(params["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return (now - signed).total_seconds() > int(params["X-Amz-Expires"][0])


def _serve(app: Any) -> tuple[BaseWSGIServer, threading.Thread, str]:
    """Serve the WSGI `app` on a loopback port in a thread: (server, thread, root URL)."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread, f"http://127.0.0.1:{server.server_port}"


def _shut(server: BaseWSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    thread.join()


@dataclass
class S3Server:
    """moto's S3 protocol server on a free loopback port, behind a gate that records every
    request and refuses expired presigned URLs with 403 as AWS does (moto 5 serves them).
    `clock` is the gate's time: a test moves it past an expiry instead of sleeping."""

    url: str = ""
    clock: Callable[[], float] = time.time
    requests: list[tuple[str, str]] = field(default_factory=list)
    _app: Any = None
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None
    # S3 makes a conditional write atomic; moto's threaded server checks, then writes, so
    # the gate runs conditional writes one at a time as S3 would order them.
    _conditional: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.requests.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        conditional = "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MATCH" in environ
        if conditional and environ["REQUEST_METHOD"] in WRITES:
            with self._conditional:
                return self._serve(environ, start_response)
        return self._serve(environ, start_response)

    def _serve(self, environ: dict[str, Any], start_response: Any) -> Any:
        if _expired(environ.get("QUERY_STRING", ""), datetime.fromtimestamp(self.clock(), UTC)):
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [
                b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            ]
        return self._app(environ, start_response)

    def start(self) -> None:
        self._app = DomainDispatcherApplication(create_backend_app)
        self._server, self._thread, self.url = _serve(self)

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        _shut(self._server, self._thread)

    def seen(self, bucket: str, since: int = 0) -> list[tuple[str, str]]:
        """(method, path) of the requests about `bucket`, from request number `since` on."""
        return [(m, p) for m, p in self.requests[since:] if p.startswith(f"/{bucket}/")]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, and nothing of the real machine's AWS setup (no instance metadata
    either: a test must never leave loopback)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@dataclass
class Bucket:
    """One test's bucket on the shared server, with an admin client to inspect or tamper."""

    name: str
    server: S3Server
    client: Any

    @property
    def remote(self) -> str:
        return f"s3://{self.name}/team"

    def keys(self, folder: str = "") -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.name, Prefix=f"team/{folder}")
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def read(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return data

    def write(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=data)

    def writes(self, since: int = 0) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.server.seen(self.name, since) if m in WRITES]


@pytest.fixture
def bucket(s3_server: S3Server, aws_env: None) -> Bucket:
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=s3_server.url,
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}),
    )
    name = f"tchavi-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return Bucket(name, s3_server, client)


MachineFactory = Callable[..., Machine]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[RunningEmulator]:
    config = EmulatorConfig(data_dir=tmp_path / "emulator", credits=10_000_000, latency=0.0)
    with running_emulator(config) as emu:
        yield emu


@pytest.fixture
def slow_emulator(tmp_path: Path) -> Iterator[RunningEmulator]:
    """Jobs take 3 s: long enough for two machines to overlap, even on a busy runner."""
    config = EmulatorConfig(data_dir=tmp_path / "slow-emulator", credits=10_000_000, latency=3.0)
    with running_emulator(config) as emu:
        yield emu


def machine_factory(tmp_path: Path, bucket: Bucket, emu: RunningEmulator) -> MachineFactory:
    def make(name: str | None = None, **env: str) -> Machine:
        label = name or f"machine-{next(_names)}"
        root = tmp_path / label / "project"
        root.mkdir(parents=True)
        base = {
            "TCHAVI_API_KEY": API_KEY,
            "TCHAVI_BASE_URL": emu.base_url,
            "TCHAVI_RENDER_REMOTE_CACHE": bucket.remote,
            "TCHAVI_RENDER_REMOTE_CACHE_ENDPOINT_URL": bucket.server.url,
            "TCHAVI_RENDER_CACHE_SECRET": CACHE_SECRET,
            **env,
        }
        return Machine(root=root, cache_dir=tmp_path / label / "cache", name=label, base_env=base)

    return make


@pytest.fixture
def machines(tmp_path: Path, bucket: Bucket, emulator: RunningEmulator) -> MachineFactory:
    """machines(name, **env) -> a new machine sharing the bucket and the emulator."""
    return machine_factory(tmp_path, bucket, emulator)


@pytest.fixture
def slow_machines(tmp_path: Path, bucket: Bucket, slow_emulator: RunningEmulator) -> MachineFactory:
    return machine_factory(tmp_path, bucket, slow_emulator)


@dataclass
class CarelessStore:
    """An S3-compatible store that ignores conditional writes: a gate in front of the S3
    server that drops `If-None-Match` and `If-Match` from every request, as some stores do."""

    upstream: S3Server
    url: str = ""
    dropped: list[tuple[str, str]] = field(default_factory=list)
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        for header in ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH"):
            if environ.pop(header, None) is not None:
                self.dropped.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")))
        return self.upstream(environ, start_response)

    def start(self) -> None:
        self._server, self._thread, self.url = _serve(self)

    def stop(self) -> None:
        assert self._server is not None and self._thread is not None
        _shut(self._server, self._thread)


@pytest.fixture
def careless_store(s3_server: S3Server) -> Iterator[CarelessStore]:
    """A store on the same S3 server (same buckets) that ignores conditional writes; point a
    machine at it with TCHAVI_RENDER_REMOTE_CACHE_ENDPOINT_URL=careless_store.url."""
    store = CarelessStore(s3_server)
    store.start()
    yield store
    store.stop()


@pytest.fixture
def failing_emulator(tmp_path: Path) -> Iterator[RunningEmulator]:
    """Every job fails (refunded) after 3 s: long enough for another machine to follow it."""
    config = EmulatorConfig(
        data_dir=tmp_path / "failing-emulator", credits=10_000_000, latency=3.0, fail_rate=1.0
    )
    with running_emulator(config) as emu:
        yield emu


@pytest.fixture
def failing_machines(
    tmp_path: Path, bucket: Bucket, failing_emulator: RunningEmulator
) -> MachineFactory:
    return machine_factory(tmp_path, bucket, failing_emulator)
