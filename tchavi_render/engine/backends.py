"""The two backends: the real Tchavi service, and the embedded emulator on loopback."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tchavi_render.api.account import account_fingerprint, api_key_from_env, configured_base_url
from tchavi_render.engine.remote import RemoteCache, tchavi_media_url
from tchavi_render.errors import TchaviRenderError
from tchavi_render.spec.shot import LoadedSpec

if TYPE_CHECKING:
    # The apply engine loads with the backend it drives: plan, show and export, which only
    # need an identity, start without it.
    from tchavi_render.engine.apply import Backend

__all__ = [
    "BACKENDS",
    "LOCAL_API_KEY",
    "Identity",
    "backend_identity",
    "local_data_dir",
    "open_backend",
    "require_api_key",
]

BACKENDS = ("local", "tchavi")
# The embedded emulator's account. It is not a secret: it only opens a loopback server.
LOCAL_API_KEY = "sk-tch_local-backend"
# The local backend is free; its account starts with enough credits for any storyboard,
# and still bills every job so the lock shows what the real service would charge.
LOCAL_CREDITS = 10**12


@dataclass(frozen=True)
class Identity:
    """Where jobs of a backend live and whose they are, as the journal records them."""

    endpoint: str  # stable across runs (the local backend's port changes, its data dir not)
    account: str | None  # the API key's fingerprint; None when no key is set


def local_data_dir(spec_path: Path, cache_dir: Path) -> Path:
    """The embedded emulator's data dir for one spec: its own, so that two specs (two folders,
    or two specs in one folder) render side by side without sharing one emulator's state."""
    resolved = spec_path.resolve()
    digest = hashlib.sha256(str(resolved).encode("utf-8")).hexdigest()[:12]
    return cache_dir / "local-backend" / f"{resolved.stem}-{digest}"


def backend_identity(
    name: str, cache_dir: Path, spec_path: Path, base_url: str | None = None
) -> Identity:
    """The identity `open_backend` would give, without starting anything (plan uses it)."""
    if name == "local":
        data_dir = local_data_dir(spec_path, cache_dir)
        return Identity(f"local:{data_dir}", account_fingerprint(LOCAL_API_KEY))
    key = api_key_from_env()
    return Identity(
        f"tchavi:{configured_base_url(base_url)}", account_fingerprint(key) if key else None
    )


def require_api_key(name: str) -> None:
    """The tchavi backend needs TCHAVI_API_KEY: say so before planning, not after."""
    if name == "tchavi" and not api_key_from_env():
        raise TchaviRenderError(
            "TCHAVI_API_KEY is not set: the tchavi backend needs an API key. "
            "Set one (export TCHAVI_API_KEY=sk-tch_...), or render on the embedded emulator "
            "with --backend local"
        )


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
    from tchavi_render.engine.apply import Backend

    if name == "local":
        from tchavi_render.emulator import EmulatorConfig, running_emulator

        data_dir = local_data_dir(spec.path, cache_dir)
        # Renders on this machine: no network, so no limit per address.
        config = EmulatorConfig(
            data_dir=data_dir, credits=LOCAL_CREDITS, api_key=LOCAL_API_KEY, ip_rpm=None
        )
        hint = "wait for that apply to finish, or give this one another --cache-dir"
        with running_emulator(config, in_use_hint=hint) as emu:
            url = emu.base_url
            identity = backend_identity("local", cache_dir, spec.path)
            yield Backend(
                name="local",
                identity=identity.endpoint,
                account=identity.account or "",
                make_client=lambda: AsyncTchaviClient(
                    api_key=LOCAL_API_KEY, base_url=url, max_rpm=max_rpm
                ),
                media_url=lambda media: emu.host_file(media.path),
            )
        return
    if name != "tchavi":
        raise TchaviRenderError(f"unknown backend {name!r}; use one of: {', '.join(BACKENDS)}")
    require_api_key(name)
    key = api_key_from_env()
    media_url = tchavi_media_url(spec, remote)
    url = configured_base_url(base_url)
    identity = backend_identity(name, cache_dir, spec.path, base_url)
    yield Backend(
        name="tchavi",
        identity=identity.endpoint,
        account=identity.account or "",
        make_client=lambda: AsyncTchaviClient(api_key=key, base_url=url, max_rpm=max_rpm),
        media_url=media_url,
    )
