"""Serving an emulator: uvicorn in a background thread on a socket we bind, and its handle."""

from __future__ import annotations

import contextlib
import math
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import uvicorn

from tchavi_render.atomic import atomic_copy
from tchavi_render.digest import sha256_file
from tchavi_render.emulator.app import API_PREFIX, Emulator, job_record
from tchavi_render.emulator.config import EmulatorConfig, EmulatorStartError
from tchavi_render.emulator.datadir import IN_USE_HINT, hold_data_dir
from tchavi_render.emulator.store import key_hash
from tchavi_render.errors import TchaviRenderError

__all__ = ["RunningEmulator", "serve"]

STARTUP_TIMEOUT = 15.0


class RunningEmulator:
    """A started emulator: its URLs, plus helpers for the local backend and for tests."""

    def __init__(self, emulator: Emulator, host: str, port: int) -> None:
        self._emulator = emulator
        self.host = host
        self.port = port
        self.root_url = _root_url(host, port)
        self.base_url = f"{self.root_url}{API_PREFIX}"

    @property
    def config(self) -> EmulatorConfig:
        return self._emulator.config

    def host_file(self, path: Path) -> str:
        """Serve a local file at a loopback URL (outside the API; needs no key).

        The bytes are copied into the data dir under their sha256, so the URL keeps
        answering with the same content even if the file changes or the emulator restarts.
        """
        known = sha256_file(path)
        stored = self._emulator.store.media_dir / known
        if not stored.is_file():
            # Checked while copying: the stored bytes are exactly the ones the name promises.
            try:
                atomic_copy(path, stored, expect_sha256=known)
            except ValueError:
                raise TchaviRenderError(
                    f"{path} changed while it was copied; it was not served. Run again"
                ) from None
        return self._local_url(known, path)

    def _local_url(self, digest: str, path: Path) -> str:
        return f"{self.root_url}/_local/{digest}/{quote(path.name)}"

    def jobs(self) -> list[dict[str, Any]]:
        """Every job in the store (all accounts), oldest first, as the API shows them, plus
        `account`: the sha256 of the key that submitted it, and `params`: the request as
        the emulator received it (what tests check seeds and prompts against)."""
        store = self._emulator.store
        store.settle(self._emulator.clock())
        return [
            {**job_record(job, self.root_url), "account": job.account, "params": job.params}
            for job in store.all_jobs()
        ]

    def peak_in_flight(self, api_key: str) -> int:
        """The most jobs of `api_key` that were pending or processing at one moment (a job
        is in flight from its submit until its outcome became visible)."""
        store = self._emulator.store
        store.settle(self._emulator.clock())
        account = key_hash(api_key)
        moments: list[tuple[float, int]] = []
        for job in store.all_jobs():
            if job.account == account:
                moments.append((job.created_at, 1))
                moments.append((job.outcome_at if job.outcome_at is not None else math.inf, -1))
        peak = now = 0
        for _, step in sorted(moments):  # at a tie, an end (-1) sorts before a start
            now += step
            peak = max(peak, now)
        return peak

    def account(self, api_key: str) -> dict[str, int]:
        """An account's balance and request count (a key never used: the starting balance)."""
        store = self._emulator.store
        store.settle(self._emulator.clock())
        found = store.account(key_hash(api_key))
        if found is None:
            return {"credits_remaining": self.config.credits, "credits_used": 0, "requests": 0}
        return found.as_dict()


def _root_url(host: str, port: int) -> str:
    url_host = f"[{host}]" if ":" in host else host
    return f"http://{url_host}:{port}"


def _reason(exc: Exception) -> str:
    """An OS error's reason without the paths and addresses the message already names."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family)
    # Accepted connections inherit this. Without it, an answer written in two parts (headers,
    # then body) waits for the client's delayed ACK: 40 ms on every request but a
    # connection's first, which made the emulator ten times slower than it is.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@contextmanager
def serve(
    config: EmulatorConfig,
    *,
    in_use_hint: str = IN_USE_HINT,
    clock: Callable[[], float] = time.time,
) -> Iterator[RunningEmulator]:
    """Start an emulator in a thread; stop it (server, then renders, then store) on exit.

    The data dir is held for the emulator's life (see `datadir`); when another emulator
    holds it, DataDirInUse says who, ending with `in_use_hint`. `clock` is the emulator's
    wall clock (job latency, URL expiry).
    """
    try:
        sock = _bind(config.host, config.port)
    except OSError as exc:
        raise EmulatorStartError(
            f"cannot listen on {config.host}:{config.port}: {_reason(exc)}."
            " Choose another --port, or stop what is using this one"
        ) from None
    with contextlib.ExitStack() as stack:  # unwinds: store, data dir, socket
        stack.callback(sock.close)
        port = int(sock.getsockname()[1])
        try:
            # Before the store opens: whoever opens it resumes its unfinished jobs.
            url = _root_url(config.host, port)
            stack.enter_context(hold_data_dir(config.data_dir, url, in_use_hint=in_use_hint))
            emulator = Emulator(config, clock)
        except (OSError, sqlite3.Error) as exc:
            raise EmulatorStartError(
                f"cannot use the data dir {config.data_dir}: {_reason(exc)}."
                " Choose another --data-dir, or fix its permissions"
            ) from None
        stack.callback(emulator.close)
        server = uvicorn.Server(
            uvicorn.Config(
                emulator.app,
                log_config=None,
                log_level="warning",
                access_log=False,
                lifespan="off",
                http="h11",
                ws="none",
                loop="asyncio",
                timeout_graceful_shutdown=5,
            )
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="tchavi-emulator", daemon=True
        )
        try:
            emulator.start()
            thread.start()
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the emulator did not start on {config.host}:{port}")
                time.sleep(0.005)
            yield RunningEmulator(emulator, config.host, port)
        finally:
            server.should_exit = True
            if thread.is_alive():
                thread.join()
