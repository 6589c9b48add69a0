"""The one rule for local media on the tchavi backend: hosted in the bucket, or refused.

Refused before anything is planned when there is no bucket to host them.
"""

from __future__ import annotations

from collections.abc import Callable

from tchavi_render.engine.remote.bucket import RemoteCache
from tchavi_render.engine.remote.settings import ENV_REMOTE, INSTALL_HINT
from tchavi_render.errors import TchaviRenderError
from tchavi_render.spec.shot import LoadedSpec, LocalMedia

__all__ = ["check_media_hosting", "local_media_problem", "tchavi_media_url"]


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


def tchavi_media_url(spec: LoadedSpec, remote: RemoteCache | None) -> Callable[[LocalMedia], str]:
    """How the tchavi backend sends this spec's local media: presigned URLs of `remote`'s
    bucket. Without a bucket, a spec that needs one is refused here (TchaviRenderError)."""
    if remote is not None:
        return remote.media_url
    problem = local_media_problem(spec)
    if problem:
        raise TchaviRenderError(problem)
    return _refuse_local


def _refuse_local(media: LocalMedia) -> str:
    raise TchaviRenderError(f"{media.relpath}: local files cannot be sent to the service")


def check_media_hosting(spec: LoadedSpec, backend: str, remote: RemoteCache | None) -> None:
    """Refuse, before anything is planned, local media the chosen backend cannot be sent."""
    if backend == "tchavi":
        tchavi_media_url(spec, remote)
