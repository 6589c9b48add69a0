"""This apply's side of render claims: a claim held while its job runs (renewed in the
background, released once the record is in the bucket), and the words for shots claimed by
another machine."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from tchavi_render.engine.cache import CacheRecord
from tchavi_render.engine.remote.claims import Claim, Claims, Held
from tchavi_render.engine.remote.layered import LayeredCache
from tchavi_render.engine.remote.records import short_key
from tchavi_render.engine.run import Failure
from tchavi_render.errors import RemoteCacheError

__all__ = ["Holding", "claimed_elsewhere"]


def claimed_elsewhere(claim: Claim, *, following: bool) -> str:
    """What progress says of a shot another machine is paying for."""
    where = f"in flight on host {claim.host}"
    if claim.job_id is not None:
        where += f", {claim.job_id}"
    if following:
        return f"{where}; following that job"
    if claim.job_id is None:
        return f"{where}; waiting for its job"
    return f"{where}; waiting for its render in the remote cache"


class Holding:
    """One claim this machine holds (or none: `held` None) for the life of its render.

    Used as `async with`: renewed every third of the lease until the block ends, then
    released: after the record upload when `outcome` is a render, else with the failure."""

    def __init__(self, claims: Claims | None, held: Held | None, cache: LayeredCache | None):
        self.claims = claims
        self.held = held
        self.cache = cache
        self.outcome: CacheRecord | Failure | None = None
        self._renewal: asyncio.Task[None] | None = None
        # One conditional write at a time: a renewal and the job's attachment racing on one
        # ETag would make the loser believe its claim was taken over.
        self._writing = asyncio.Lock()
        self._done = asyncio.Event()

    @property
    def inherited(self) -> Claim | None:
        return self.held.inherited if self.held is not None else None

    async def __aenter__(self) -> Holding:
        if self.held is not None:
            self._renewal = asyncio.create_task(self._renew())
        return self

    async def _renew(self) -> None:
        """Renew every third of the lease until the block ends. Never cancelled mid-write:
        a write the thread finishes after a cancel would leave `held` with a stale ETag,
        and the release would then fail and leave the claim behind."""
        assert self.claims is not None
        while self.held is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), self.claims.ttl / 3)
            if self._done.is_set():
                return
            async with self._writing:
                if self.held is None:
                    return
                try:
                    self.held = await asyncio.to_thread(self.claims.renew, self.held)
                except RemoteCacheError as exc:
                    self.claims.remote.warn(f"{exc}; the claim is renewed again shortly")

    async def attach(self, job_id: str) -> None:
        """Name the paid job in the claim, for machines of the same account to follow."""
        if self.claims is None:
            return
        async with self._writing:
            held = self.held
            if held is None:
                return
            try:
                self.held = await asyncio.to_thread(self.claims.attach_job, held, job_id)
            except RemoteCacheError as exc:
                key = short_key(held.claim.key)
                self.claims.remote.warn(f"{exc}; other machines wait for the record of {key}")

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._renewal is not None:
            await self._renewal
        held, claims = self.held, self.claims
        if held is None or claims is None:
            return
        outcome = self.outcome
        if isinstance(outcome, CacheRecord):
            if self.cache is not None:
                await asyncio.to_thread(self.cache.wait_for_upload, outcome.key)
            failed = None
        elif isinstance(outcome, Failure):
            failed = f"{outcome.code}: {outcome.message}"
        else:
            failed = "the apply stopped before the render finished"
        try:
            await asyncio.to_thread(claims.release, held, failed)
        except RemoteCacheError as exc:
            claims.remote.warn(f"{exc}; the claim lapses after {claims.ttl:g} s")
