"""Hosting local media for the real service: which specs the tchavi backend cannot take
without a bucket."""

from __future__ import annotations

from tchavi_render.engine.remote.bucket import RemoteCache
from tchavi_render.engine.remote.settings import ENV_REMOTE, INSTALL_HINT
from tchavi_render.errors import TchaviRenderError
from tchavi_render.spec.shot import LoadedSpec

__all__ = ["check_media_hosting", "local_media_problem"]


def local_media_problem(spec: LoadedSpec) -> str | None:
    """Why the tchavi backend cannot take this spec's local files or shot frames without a
    bucket to host them, or None."""
    local = sorted({m.relpath for s in spec.shots for m in s.local_media()})
    frames = sorted({s.id for s in spec.shots if s.upstream})
    if not local and not frames:
        return None
    if local:
        listed = ", ".join(local[:5]) + (" ..." if len(local) > 5 else "")
        what = f"the spec uses local files ({listed})"
    else:
        listed = ", ".join(frames[:5]) + (" ..." if len(frames) > 5 else "")
        what = f"shots continue frames of other shots ({listed})"
    return (
        f"{spec.path.name}: the tchavi backend takes media only as http(s) URLs, and {what}. "
        f"Host them in a bucket: add `cache: {{remote: s3://BUCKET/PREFIX}}` to the spec or "
        f"set {ENV_REMOTE}=s3://BUCKET/PREFIX (needs {INSTALL_HINT}); or give them as URLs "
        "(assets), or render with --backend local"
    )


def check_media_hosting(spec: LoadedSpec, backend: str, remote: RemoteCache | None) -> None:
    """Refuse, before anything is planned, local media the chosen backend cannot be sent."""
    if backend != "tchavi" or remote is not None:
        return
    problem = local_media_problem(spec)
    if problem:
        raise TchaviRenderError(problem)
