"""The emulator's persistent state: accounts, jobs and billing in SQLite, videos and media as files.

Accounts are keyed by the sha256 of the API key; the key itself is never stored. Every
balance change happens in the same transaction as the job change that causes it, so a
crash cannot charge without a job or refund twice.

A job's visible status moves pending -> processing -> completed/failed. The render worker
records the *outcome* and the wall-clock time it becomes visible (`outcome_at`, which
honours the configured latency); `settle()` makes due outcomes visible, refunding failed
jobs. Settling lazily on every read means no timer thread, and a restarted emulator
settles old jobs the moment it is asked about them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Account", "InsufficientBalance", "JobRow", "NewJob", "Store", "key_hash"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    key_hash          TEXT PRIMARY KEY,
    credits_remaining INTEGER NOT NULL,
    credits_used      INTEGER NOT NULL DEFAULT 0,
    requests          INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    account          TEXT NOT NULL,
    params           TEXT NOT NULL,
    model            TEXT NOT NULL,
    seed             INTEGER NOT NULL,
    duration         INTEGER NOT NULL,
    resolution       TEXT NOT NULL,
    status           TEXT NOT NULL,
    created_at       REAL NOT NULL,
    credits_used     INTEGER NOT NULL,
    credits_refunded INTEGER NOT NULL DEFAULT 0,
    media            TEXT NOT NULL,
    fail_code        TEXT,
    fail_message     TEXT,
    outcome          TEXT,
    outcome_at       REAL,
    file_name        TEXT,
    file_size        INTEGER,
    url_expires_at   REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_account ON jobs (account, seq);
CREATE INDEX IF NOT EXISTS jobs_unsettled ON jobs (status, outcome_at);
"""

UNSETTLED = ("pending", "processing")


def key_hash(api_key: str) -> str:
    """How an account is named in the store and in logs: sha256 of its key."""
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class Account:
    credits_remaining: int
    credits_used: int
    requests: int

    def as_dict(self) -> dict[str, int]:
        return {
            "credits_remaining": self.credits_remaining,
            "credits_used": self.credits_used,
            "requests": self.requests,
        }


class InsufficientBalance(Exception):
    """The account cannot pay for the job; nothing was charged."""

    def __init__(self, needed: int, available: int) -> None:
        self.needed = needed
        self.available = available
        super().__init__(f"needs {needed} credits, {available} available")


@dataclass(frozen=True)
class NewJob:
    """What the API decided about a job at submission."""

    id: str
    account: str
    params: dict[str, Any]
    model: str
    seed: int
    duration: int
    resolution: str
    created_at: float
    credits: int
    media: dict[str, str]  # field -> sha256 of the fetched first/last frame image
    fail_code: str | None = None
    fail_message: str | None = None


@dataclass(frozen=True)
class JobRow:
    """A job as stored."""

    seq: int
    id: str
    account: str
    params: dict[str, Any]
    model: str
    seed: int
    duration: int
    resolution: str
    status: str
    created_at: float
    credits_used: int
    credits_refunded: int
    media: dict[str, str]
    fail_code: str | None
    fail_message: str | None
    outcome: str | None
    outcome_at: float | None
    file_name: str | None
    file_size: int | None
    url_expires_at: float | None

    @classmethod
    def from_sql(cls, row: sqlite3.Row) -> JobRow:
        values = dict(row)
        values["params"] = json.loads(values["params"])
        values["media"] = json.loads(values["media"])
        return cls(**values)


class Store:
    """SQLite + files under one data dir. Thread-safe: one connection behind a lock."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.videos_dir = data_dir / "videos"
        self.media_dir = data_dir / "media"
        self.videos_dir.mkdir(parents=True, exist_ok=True)
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            data_dir / "emulator.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # Every request writes (its count): in WAL mode, NORMAL syncs at checkpoints only,
        # which survives the emulator crashing, if not the machine.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- accounts -------------------------------------------------------------------------

    def count_request(self, account: str, starting_credits: int) -> Account:
        """Record one API request by an account, opening it with `starting_credits` if new."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO accounts (key_hash, credits_remaining, requests) VALUES (?, ?, 1)"
                " ON CONFLICT (key_hash) DO UPDATE SET requests = requests + 1",
                (account, starting_credits),
            )
        found = self.account(account)
        assert found is not None
        return found

    def account(self, account: str) -> Account | None:
        with self._lock:
            row = self._db.execute(
                "SELECT credits_remaining, credits_used, requests FROM accounts WHERE key_hash = ?",
                (account,),
            ).fetchone()
        return None if row is None else Account(*row)

    # --- jobs ------------------------------------------------------------------------------

    def create_job(self, job: NewJob) -> JobRow:
        """Charge the account and store the job, atomically; InsufficientBalance if it can't pay."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT credits_remaining FROM accounts WHERE key_hash = ?", (job.account,)
            ).fetchone()
            available = 0 if row is None else int(row[0])
            if available < job.credits:
                raise InsufficientBalance(job.credits, available)
            db.execute(
                "UPDATE accounts SET credits_remaining = credits_remaining - ?,"
                " credits_used = credits_used + ? WHERE key_hash = ?",
                (job.credits, job.credits, job.account),
            )
            db.execute(
                "INSERT INTO jobs (id, account, params, model, seed, duration, resolution, status,"
                " created_at, credits_used, media, fail_code, fail_message)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.account,
                    json.dumps(job.params, sort_keys=True),
                    job.model,
                    job.seed,
                    job.duration,
                    job.resolution,
                    job.created_at,
                    job.credits,
                    json.dumps(job.media, sort_keys=True),
                    job.fail_code,
                    job.fail_message,
                ),
            )
        created = self.job(job.id)
        assert created is not None
        return created

    def job(self, job_id: str) -> JobRow | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else JobRow.from_sql(row)

    def list_jobs(
        self, account: str, status: str | None, limit: int, offset: int
    ) -> tuple[list[JobRow], bool]:
        """A page of an account's jobs, newest first, and whether more follow."""
        query = "SELECT * FROM jobs WHERE account = ?"
        args: list[object] = [account]
        if status is not None:
            query += " AND status = ?"
            args.append(status)
        query += " ORDER BY seq DESC LIMIT ? OFFSET ?"
        args += [limit + 1, offset]
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        return [JobRow.from_sql(r) for r in rows[:limit]], len(rows) > limit

    def all_jobs(self) -> list[JobRow]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY seq").fetchall()
        return [JobRow.from_sql(r) for r in rows]

    def unfinished_jobs(self) -> list[str]:
        """Ids of jobs whose render has no outcome yet, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE outcome IS NULL ORDER BY seq"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def mark_processing(self, job_id: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET status = 'processing' WHERE id = ? AND status = 'pending'",
                (job_id,),
            )

    def record_outcome(
        self,
        job_id: str,
        outcome: str,
        outcome_at: float,
        *,
        fail_code: str | None = None,
        fail_message: str | None = None,
        file_name: str | None = None,
        file_size: int | None = None,
        url_expires_at: float | None = None,
    ) -> None:
        """Record how a job ends and when that becomes visible; the first outcome wins."""
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET outcome = ?, outcome_at = ?,"
                " fail_code = COALESCE(?, fail_code), fail_message = COALESCE(?, fail_message),"
                " file_name = ?, file_size = ?, url_expires_at = ?"
                " WHERE id = ? AND outcome IS NULL",
                (
                    outcome,
                    outcome_at,
                    fail_code,
                    fail_message,
                    file_name,
                    file_size,
                    url_expires_at,
                    job_id,
                ),
            )

    def settle(self, now: float) -> None:
        """Make every outcome due by `now` visible; refund the failed jobs among them."""
        due_query = (
            "SELECT id, account, outcome, credits_used FROM jobs"
            " WHERE status IN (?, ?) AND outcome IS NOT NULL AND outcome_at <= ?"
        )
        with self._lock:
            # Most calls find nothing due: look before taking the write lock.
            if self._db.execute(due_query + " LIMIT 1", (*UNSETTLED, now)).fetchone() is None:
                return
        with self._transaction() as db:
            due = db.execute(due_query, (*UNSETTLED, now)).fetchall()
            for job_id, account, outcome, credits in due:
                refund = credits if outcome == "failed" else 0
                db.execute(
                    "UPDATE jobs SET status = ?, credits_refunded = ? WHERE id = ?",
                    (outcome, refund, job_id),
                )
                if refund:
                    db.execute(
                        "UPDATE accounts SET credits_remaining = credits_remaining + ?,"
                        " credits_used = credits_used - ? WHERE key_hash = ?",
                        (refund, refund, account),
                    )
