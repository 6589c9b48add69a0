"""This apply's side of render claims: when a key may be claimed, a claim held while its job
runs (renewed in the background, released once the record is in the bucket), and the words
for shots claimed by another machine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TYPE_CHECKING

from tchavi_render.engine.cache import CacheRecord
from tchavi_render.engine.plan import PlannedShot
from tchavi_render.engine.remote.claims import Claim, Claims, Held
from tchavi_render.engine.remote.layered import LayeredCache
from tchavi_render.engine.remote.records import short_key
from tchavi_render.engine.run import ApplyEvent, Failure, Run
from tchavi_render.errors import RemoteCacheError

if TYPE_CHECKING:
    from tchavi_render.api import AsyncTchaviClient

__all__ = ["Coordinator", "Holding", "claimed_elsewhere"]


def claimed_elsewhere(claim: Claim, *, following: bool) -> str:
    """What progress says of a shot another machine is paying for."""
    where = claim.where
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


class Coordinator:
    """How this apply meets the other machines on one bucket, before it pays for a key: the
    record asked for once more, the claim turn, the claim itself. Without a bucket, every
    answer lets the shot render here (no claims)."""

    def __init__(self, run: Run, client: AsyncTchaviClient) -> None:
        self.run = run
        self.client = client
        cache = run.ctx.cache
        self.layered = cache if isinstance(cache, LayeredCache) else None
        backend = run.ctx.backend
        self.claims = (
            None
            if self.layered is None
            else Claims(self.layered.remote, backend.identity, backend.account)
        )
        self._told: dict[str, str] = {}  # shot -> what progress last said of its claim
        self._turn = asyncio.Lock()

    async def rendered_elsewhere(self, planned: PlannedShot) -> CacheRecord | None:
        """Another machine may have rendered this key since planning: the cache is asked
        once more just before paying (only a remote layer can say yes; RenderCache.pull)."""
        if planned.forced:
            return None  # --replace asks for a new take, not the bucket's
        record = await asyncio.to_thread(self.run.ctx.cache.pull, planned.key)
        if record is not None:
            self.run.found_elsewhere.add(planned.key)
            message = "rendered meanwhile on another machine; from the remote cache"
            self.run.ctx.emit(
                ApplyEvent("status", planned.id, job_id=record.job_id, message=message)
            )
        return record

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[Callable[[], None]]:
        """One claim at a time waits for its submit, and only once the rate limiter would
        send a request now: a runner held back by its rate limit leaves the keys it cannot
        submit yet to the other runners instead of hoarding claims. Yields the function
        that gives the turn back (once the submit is answered); the block's end gives it
        back too. No turn without claims."""
        if self.claims is None:
            yield lambda: None
            return
        await self._turn.acquire()
        held = True

        def done() -> None:
            nonlocal held
            if held:
                held = False
                self._turn.release()

        try:
            while (delay := self.client.send_delay()) > 0:
                await asyncio.sleep(delay)
            yield done
        finally:
            done()

    async def claim(self, planned: PlannedShot) -> Held | Claim | CacheRecord | None:
        """This machine's claim on the key (None: pay without one), another's live claim, or
        the key's render, found once the claim was won."""
        if self.claims is None:
            return None
        try:
            taken = await asyncio.to_thread(self.claims.take, planned.key)
        except RemoteCacheError as exc:
            self.claims.remote.warn(f"{exc}; the shot is rendered without a claim")
            return None
        if isinstance(taken, Held):
            # The holder before may have written its record and let go between the look
            # before the claim and the claim: look once more, now that no other machine
            # can start paying for the key.
            elsewhere = await self.rendered_elsewhere(planned)
            if elsewhere is not None:
                await asyncio.to_thread(self.claims.release, taken)  # a failed delete warns
                return elsewhere
        return taken

    def holding(self, held: Held | None) -> Holding:
        return Holding(self.claims, held, self.layered)

    def tell(self, planned: PlannedShot, claim: Claim) -> None:
        """Progress says where a shot another machine pays for is, once per change."""
        message = claimed_elsewhere(claim, following=False)
        if self._told.get(planned.id) != message:
            self._told[planned.id] = message
            self.run.ctx.emit(
                ApplyEvent("status", planned.id, job_id=claim.job_id, message=message)
            )
