"""The two backends: the real Tchavi service, and the embedded emulator on loopback."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tchavi_render.engine.apply import Backend
from tchavi_render.engine.remote import RemoteCache, local_media_problem
from tchavi_render.errors import InvalidApiKey, TchaviRenderError
from tchavi_render.spec.shot import LoadedSpec, LocalMedia

__all__ = ["BACKENDS", "DEFAULT_BASE_URL", "LOCAL_API_KEY", "local_media_problem", "open_backend"]

BACKENDS = ("local", "tchavi")
DEFAULT_BASE_URL = "https://tchavi.com/api/v1"
# The embedded emulator's account. It is not a secret: it only opens a loopback server.
LOCAL_API_KEY = "sk-tch_local-backend"
# The local backend is free; its account starts with enough credits for any storyboard,
# and still bills every job so the lock shows what the real service would charge.
LOCAL_CREDITS = 10**12


@contextlib.contextmanager
def open_backend(
    name: str,
    *,
    spec: LoadedSpec,
    cache_dir: Path,
    base_url: str | None = None,
    max_rpm: int | None = None,
    remote: RemoteCache | None = None,
) -> Iterator[Backend]:
    """Yield a ready backend; the local one runs for the duration of the block. The tchavi
    backend sends local media as presigned URLs of the `remote` cache's bucket."""
    from tchavi_render.api import AsyncTchaviClient

    if name == "local":
        from tchavi_render.emulator import EmulatorConfig, running_emulator

        data_dir = cache_dir / "local-backend"
        # Renders on this machine: no network, so no limit per address.
        config = EmulatorConfig(
            data_dir=data_dir, credits=LOCAL_CREDITS, api_key=LOCAL_API_KEY, ip_rpm=None
        )
        with running_emulator(config) as emu:
            url = emu.base_url
            yield Backend(
                name="local",
                identity=f"local:{data_dir}",
                make_client=lambda: AsyncTchaviClient(
                    api_key=LOCAL_API_KEY, base_url=url, max_rpm=max_rpm
                ),
                media_url=lambda media: emu.host_file(media.path),
            )
        return
    if name != "tchavi":
        raise TchaviRenderError(f"unknown backend {name!r}; use one of: {', '.join(BACKENDS)}")
    key = os.environ.get("TCHAVI_API_KEY", "").strip()
    if not key:
        raise InvalidApiKey(
            "TCHAVI_API_KEY is not set; the tchavi backend needs an API key", status=None
        )
    problem = None if remote is not None else local_media_problem(spec)
    if problem:
        raise TchaviRenderError(problem)
    url = (base_url or os.environ.get("TCHAVI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")

    def no_local(media: LocalMedia) -> str:
        raise TchaviRenderError(f"{media.relpath}: local files cannot be sent to the service")

    yield Backend(
        name="tchavi",
        identity=f"tchavi:{url}",
        make_client=lambda: AsyncTchaviClient(api_key=key, base_url=url, max_rpm=max_rpm),
        media_url=no_local if remote is None else remote.media_url,
    )
