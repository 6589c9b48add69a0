"""The journal: jobs being submitted or rendered, so an interrupted apply never pays twice.

An append-only file of JSON lines, each fsynced before apply goes on: an `intent` before a
submit is sent (with the service and the account submitting it, as a fingerprint), `submitted`
with the job id before the first poll, `finished` when the render is stored (or the job
failed), `abandoned` when the submit certainly created nothing or the user gave the job up.
A job is only ever resumed by the account that submitted it: another API key cannot see it
(the service answers 404), and that answer must not make anyone forget a paid job.
A key with an intent and no job id was interrupted mid-submit: its job, if any, is found
again through `GET /jobs` before anything is resubmitted. That search takes any job it
cannot account for as the lost one, so the journal also remembers the ids of the jobs it
saw finish (failed ones included, which no lock keeps for long) for RECENT seconds.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tchavi_render.atomic import atomic_write_text

__all__ = ["RECENT", "InFlight", "Journal", "journal_path_for", "state_dir_for"]

# How long finished job ids are remembered: well past the client's CLOCK_SKEW_MARGIN (the
# span before a submit in which a job may still be that submit's), clock skew included.
RECENT = 600.0


def state_dir_for(spec_path: Path) -> Path:
    """`.tchavi/` beside the spec: the journal, the apply lock, export's memo (not committed)."""
    return spec_path.parent / ".tchavi"


def journal_path_for(spec_path: Path) -> Path:
    return state_dir_for(spec_path) / f"{spec_path.stem}.journal"


@dataclass(frozen=True)
class InFlight:
    """A key whose job was (or was being) submitted and is not finished."""

    key: str
    shot: str
    endpoint: str  # backends.Identity.endpoint: `tchavi:<base URL>` or `local:<data dir>`
    model: str
    credits: int
    started: float  # epoch seconds when the submit began
    job_id: str | None = None
    account: str | None = None  # the submitting key's fingerprint; None in older journals

    def belongs_to(self, endpoint: str, account: str | None) -> bool:
        """Submitted on `endpoint` by `account` (an older entry names no account: it is
        taken as the current one's, and a 404 keeps it all the same)."""
        if self.endpoint != endpoint:
            return False
        return self.account is None or account is None or self.account == account


class Journal:
    """Read and append the journal of one spec."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._state: dict[str, InFlight] = {}
        self._done: dict[str, float] = {}  # finished job id -> when it finished
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        for line in text.splitlines():
            try:
                event: dict[str, Any] = json.loads(line)
                self._fold(event)
            except (ValueError, KeyError, TypeError):
                # A line cut short by a crash: everything before it was fsynced and stands.
                continue

    def _fold(self, event: dict[str, Any]) -> None:
        op, key = event["op"], str(event["key"])
        if op == "intent":
            self._state[key] = InFlight(
                key=key,
                shot=str(event["shot"]),
                endpoint=str(event["endpoint"]),
                model=str(event["model"]),
                credits=int(event["credits"]),
                started=float(event["started"]),
                account=None if event.get("account") is None else str(event["account"]),
            )
        elif op == "submitted" and key in self._state:
            self._state[key] = replace(self._state[key], job_id=str(event["job_id"]))
        elif op == "finished":
            self._state.pop(key, None)
            if event.get("job_id"):
                self._done[str(event["job_id"])] = float(event.get("at", time.time()))
        elif op == "abandoned":
            self._state.pop(key, None)

    def _append(self, event: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(event, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._fold(event)

    @property
    def in_flight(self) -> dict[str, InFlight]:
        return dict(self._state)

    @property
    def known_job_ids(self) -> set[str]:
        """Every job id the journal knows: in flight, or finished in the last RECENT seconds."""
        return {i.job_id for i in self._state.values() if i.job_id} | set(self._done)

    def intent(
        self, key: str, shot: str, endpoint: str, account: str, model: str, credits: int
    ) -> InFlight:
        self._append(
            {
                "op": "intent",
                "key": key,
                "shot": shot,
                "endpoint": endpoint,
                "account": account,
                "model": model,
                "credits": credits,
                "started": time.time(),
            }
        )
        return self._state[key]

    def submitted(self, key: str, job_id: str) -> None:
        self._append({"op": "submitted", "key": key, "job_id": job_id})

    def finished(self, key: str, job_id: str | None) -> None:
        self._append({"op": "finished", "key": key, "job_id": job_id, "at": time.time()})

    def abandoned(self, key: str) -> None:
        self._append({"op": "abandoned", "key": key})

    def compact(self) -> None:
        """Rewrite the file to hold only what is in flight and the recently finished job ids
        (or remove it when that is nothing)."""
        lost = [i.started for i in self._state.values() if i.job_id is None]
        cutoff = min([time.time(), *lost]) - RECENT
        self._done = {job_id: at for job_id, at in self._done.items() if at >= cutoff}
        if not self._state and not self._done:
            self.path.unlink(missing_ok=True)
            return
        lines: list[dict[str, Any]] = [
            {"op": "finished", "key": "", "job_id": job_id, "at": at}
            for job_id, at in sorted(self._done.items())
        ]
        for item in self._state.values():
            lines.append(
                {
                    "op": "intent",
                    "key": item.key,
                    "shot": item.shot,
                    "endpoint": item.endpoint,
                    "account": item.account,
                    "model": item.model,
                    "credits": item.credits,
                    "started": item.started,
                }
            )
            if item.job_id is not None:
                lines.append({"op": "submitted", "key": item.key, "job_id": item.job_id})
        atomic_write_text(self.path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in lines))
