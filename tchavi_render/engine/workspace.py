"""A workspace: one spec with its lock, cache and media memo — what plan and apply start from."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tchavi_render.digest import sha256_file
from tchavi_render.engine.backends import backend_identity
from tchavi_render.engine.cache import RenderCache
from tchavi_render.engine.journal import Journal, journal_path_for
from tchavi_render.engine.lock import Lockfile, lock_path_for
from tchavi_render.engine.lockread import read_lock
from tchavi_render.engine.outputs import OutputFiles
from tchavi_render.engine.plan import InFlightJob, Plan, make_plan
from tchavi_render.engine.remote import LayeredCache, RemoteCache, check_media_hosting, open_remote
from tchavi_render.engine.remote.claims import Claims
from tchavi_render.errors import PlanStale, TchaviRenderError
from tchavi_render.media import MediaIndex
from tchavi_render.spec import load_spec
from tchavi_render.spec.shot import LoadedSpec

__all__ = [
    "PLANFILE_FORMAT",
    "PlanRequest",
    "Workspace",
    "check_saved_plan",
    "is_planfile",
    "open_workspace",
    "read_planfile",
    "write_planfile",
]

PLANFILE_FORMAT = "tchavi-render-plan/1"


@dataclass(frozen=True)
class PlanRequest:
    """Everything that decides a plan besides the files: what the user asked for."""

    spec_path: Path
    variables: tuple[tuple[str, str], ...] = ()
    var_files: tuple[Path, ...] = ()
    targets: tuple[str, ...] = ()
    force_replace: tuple[str, ...] = ()
    restore_modified: bool = False  # outputs modified by hand may be overwritten
    abandon_in_flight: bool = False  # jobs in flight under another API key are given up


@dataclass
class Workspace:
    request: PlanRequest
    spec: LoadedSpec
    lock_path: Path
    lock: Lockfile
    cache: RenderCache
    media: MediaIndex
    cache_dir: Path
    files: OutputFiles
    remote: RemoteCache | None = None  # the shared bucket, when one is configured

    def close(self) -> None:
        self.media.save()
        self.cache.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cached_output(self, key: str) -> str | None:
        record = self.cache.get(key)
        return None if record is None else record.sha256

    def remote_output(self, key: str) -> str | None:
        """The sha256 of the remote cache's trusted render of `key` (one GET), or None."""
        record = None if self.remote is None else self.remote.record(key)
        return None if record is None else record.sha256

    def check_backend(self, backend: str | None = None) -> None:
        """Refuse, before planning, local media that `backend` (default: the spec's) cannot
        be sent: the tchavi backend needs a bucket to host them."""
        check_media_hosting(self.spec, backend or self.spec.backend, self.remote)

    def journal(self) -> Journal:
        return Journal(journal_path_for(self.spec.path))

    def in_flight(
        self, backend: str | None = None, base_url: str | None = None
    ) -> dict[str, InFlightJob]:
        """The jobs an earlier apply left running, by key; `ours` when this backend and API
        key can collect them."""
        identity = backend_identity(
            backend or self.spec.backend, self.cache_dir, self.spec.path, base_url
        )
        return {
            key: InFlightJob(
                shot=item.shot,
                job_id=item.job_id,
                ours=item.belongs_to(identity.endpoint, identity.account),
            )
            for key, item in self.journal().in_flight.items()
        }

    def plan(self, backend: str | None = None, base_url: str | None = None) -> Plan:
        """The plan for rendering with `backend` (default: the spec's); the local backend's
        renders are keyed apart from the real service's."""
        claimed = None
        if self.remote is not None:
            identity = backend_identity(
                backend or self.spec.backend, self.cache_dir, self.spec.path, base_url
            )
            claimed = Claims(self.remote, identity.endpoint, identity.account or "").elsewhere
        return make_plan(
            self.spec,
            self.lock,
            cached=self.cached_output,
            files=self.files,
            targets=self.request.targets,
            force_replace=self.request.force_replace,
            remote=self.remote_output if self.remote is not None else None,
            emulated=(backend or self.spec.backend) == "local",
            in_flight=self.in_flight(backend, base_url),
            restore_modified=self.request.restore_modified,
            abandon_in_flight=self.request.abandon_in_flight,
            claimed=claimed,
        )


def open_workspace(request: PlanRequest, cache_dir: Path) -> Workspace:
    """Load and validate the spec (SpecError lists every problem), read the lock."""
    spec_path = request.spec_path
    if not spec_path.exists():
        raise TchaviRenderError(
            f"{spec_path}: no such spec file. Pass the spec's path, or run in the directory "
            "that holds tchavi.yaml"
        )
    media = MediaIndex(cache_dir / "media-index.json")
    spec = load_spec(
        spec_path,
        variables=dict(request.variables),
        var_files=request.var_files,
        media=media,
        template_cache=cache_dir / "templates",
    )
    lock_path = lock_path_for(spec.path)
    remote = open_remote(spec.cache)
    cache = RenderCache(cache_dir) if remote is None else LayeredCache(cache_dir, remote)
    files = OutputFiles(
        project_dir=spec.project_dir,
        output_dir=spec.output_dir,
        lock_path=lock_path,
        media=media,
        has_object=cache.has_object,
    )
    return Workspace(
        request=request,
        spec=spec,
        lock_path=lock_path,
        lock=read_lock(lock_path),
        cache=cache,
        media=media,
        cache_dir=cache_dir,
        files=files,
        remote=remote,
    )


def _file_sha256(path: Path) -> str | None:
    try:
        return sha256_file(path)
    except FileNotFoundError:
        return None


def write_planfile(path: Path, ws: Workspace, plan: Plan) -> None:
    from tchavi_render.atomic import atomic_write_text

    doc: dict[str, Any] = {
        "format": PLANFILE_FORMAT,
        "spec": str(ws.spec.path),
        "variables": [list(v) for v in ws.request.variables],
        "var_files": [str(p.resolve()) for p in ws.request.var_files],
        "targets": list(ws.request.targets),
        "replace": list(ws.request.force_replace),
        "restore_modified": ws.request.restore_modified,
        "abandon_in_flight": ws.request.abandon_in_flight,
        "lock_sha256": _file_sha256(ws.lock_path),
        **plan.as_json(),
    }
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")


def is_planfile(path: Path) -> bool:
    if path.suffix in (".yaml", ".yml") or not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
        return b'"format": "' + PLANFILE_FORMAT.encode() + b'"' in head
    except OSError:
        return False


def read_planfile(path: Path) -> tuple[PlanRequest, dict[str, Any]]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        request = PlanRequest(
            spec_path=Path(doc["spec"]),
            variables=tuple((str(k), str(v)) for k, v in doc["variables"]),
            var_files=tuple(Path(p) for p in doc["var_files"]),
            targets=tuple(doc["targets"]),
            force_replace=tuple(doc["replace"]),
            restore_modified=bool(doc.get("restore_modified", False)),
            abandon_in_flight=bool(doc.get("abandon_in_flight", False)),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TchaviRenderError(f"{path}: not a readable saved plan ({exc})") from None
    return request, doc


def check_saved_plan(saved: Mapping[str, Any], ws: Workspace, plan: Plan, path: Path) -> None:
    """Refuse a saved plan that no longer matches the spec, lock or media, naming what moved."""
    moved: list[str] = []
    if saved.get("lock_sha256") != _file_sha256(ws.lock_path):
        moved.append(f"the lock {ws.lock_path.name} changed")
    old = {s["id"]: (s["action"], s["key"]) for s in saved.get("shots", [])}
    new = {p.id: (p.action.value, p.key) for p in plan.shots}
    for shot_id in sorted(set(old) | set(new)):
        if old.get(shot_id) != new.get(shot_id):
            before = old.get(shot_id, ("absent", ""))[0]
            after = new.get(shot_id, ("absent", ""))[0]
            detail = f"{before} -> {after}" if before != after else "its request or media changed"
            moved.append(f"{shot_id} ({detail})")
    if moved:
        raise PlanStale(
            f"{path}: the saved plan is stale: " + "; ".join(moved) + ". Run plan again"
        )
