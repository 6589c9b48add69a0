"""Render claims in the bucket: before paying for a key, a machine creates `claims/<key>` with a
conditional write, so one machine pays and the others follow its job or wait for its record.

A claim is a small signed JSON document. Its holder renews it while the job runs, and deletes
it once the record is written (or the job failed). A claim whose ETag has not changed for
longer than the lease is presumed abandoned and is taken over with a write conditional on
that ETag, so exactly one machine takes it. Stores that ignore conditional writes are found
by a probe at the first claim of a run; claims are then off for the run, with one warning.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from tchavi_render.engine.keys import canonical_json
from tchavi_render.engine.remote.bucket import RemoteCache
from tchavi_render.engine.remote.records import short_key
from tchavi_render.engine.remote.settings import ENV_SECRET
from tchavi_render.errors import RemoteCacheError

__all__ = ["CLAIM_FORMAT", "Claim", "Claims", "Held", "claim_document", "parse_claim"]

CLAIM_FORMAT = "tchavi-render-claim/1"


@dataclass(frozen=True)
class Claim:
    """Who pays for one key right now: the holder, its backend and account, and its job."""

    key: str
    host: str
    pid: int
    run: str  # one apply of one machine
    backend: str  # the backend's identity (its endpoint)
    account: str  # the API key's fingerprint, never the key
    taken: float
    renewed: float
    job_id: str | None = None
    failed: str | None = None  # why the holder's render failed, just before it lets go

    @property
    def where(self) -> str:
        """Where the key is being rendered, as progress and plan say it."""
        return f"in flight on host {self.host}" + (f", {self.job_id}" if self.job_id else "")


@dataclass(frozen=True)
class Held:
    """A claim this machine holds, with the ETag its next conditional write must match.
    `inherited` is the abandoned claim it took over, if any (its job may be followed)."""

    claim: Claim
    etag: str
    inherited: Claim | None = None


def _signature(claim: Claim, secret: bytes) -> str:
    payload = canonical_json({"format": CLAIM_FORMAT, "claim": asdict(claim)}).encode("utf-8")
    return "hmac-sha256:" + hmac.new(secret, payload, hashlib.sha256).hexdigest()


def claim_document(claim: Claim, secret: bytes | None) -> bytes:
    """A claim as stored in the bucket: signed when a secret is given."""
    doc = {
        "format": CLAIM_FORMAT,
        "claim": asdict(claim),
        "signature": None if secret is None else _signature(claim, secret),
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def parse_claim(data: bytes, key: str, secret: bytes | None) -> tuple[Claim | None, str]:
    """The claim in `data` if it can be trusted for `key`, else (None, why not)."""
    try:
        doc = json.loads(data)
        raw = doc.get("claim") if isinstance(doc, dict) else None
        if (
            not isinstance(doc, dict)
            or doc.get("format") != CLAIM_FORMAT
            or not isinstance(raw, dict)
        ):
            return None, "not a tchavi-render claim"
        claim = Claim(**raw)
    except (ValueError, TypeError):
        return None, "not a readable tchavi-render claim"
    if claim.key != key:
        return None, f"it names another key ({short_key(str(claim.key))})"
    if not _well_typed(claim):
        return None, "its fields do not have the types of a claim"
    if secret is not None:
        signature = doc.get("signature")
        if not signature:
            return None, f"it is not signed, and {ENV_SECRET} is set"
        if not (
            isinstance(signature, str) and hmac.compare_digest(signature, _signature(claim, secret))
        ):
            return None, "its signature does not match (written without this secret, or altered)"
    return claim, ""


def _well_typed(claim: Claim) -> bool:
    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    def optional(value: object) -> bool:
        return value is None or isinstance(value, str)

    return (
        all(isinstance(v, str) for v in (claim.host, claim.run, claim.backend, claim.account))
        and isinstance(claim.pid, int)
        and number(claim.taken)
        and number(claim.renewed)
        and optional(claim.job_id)
        and optional(claim.failed)
    )


class Claims:
    """This machine's claims in one bucket. Every method makes blocking S3 calls (run them in
    a thread); RemoteCacheError is raised only when the bucket cannot be used at all."""

    def __init__(
        self,
        remote: RemoteCache,
        backend: str,
        account: str,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.remote = remote
        self.backend = backend
        self.account = account
        self.ttl = remote.config.claim_ttl
        self.clock = clock
        self.monotonic = monotonic
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.run = uuid.uuid4().hex[:12]
        self._probe_lock = threading.Lock()
        self._working: bool | None = None  # the store refuses a second conditional create
        # key -> (ETag, when this machine first saw it): a claim is abandoned when its ETag
        # stays the same for longer than the lease, by this machine's clock (no clock skew)
        self._seen: dict[str, tuple[str, float]] = {}

    @property
    def wait_interval(self) -> float:
        """How long a machine waiting for another's claim sleeps between looks."""
        return min(2.0, self.ttl / 4)

    def mine(self, claim: Claim) -> bool:
        """The claim's job runs under this machine's account and backend: it can follow it."""
        return claim.account == self.account and claim.backend == self.backend

    # -- the probe ----------------------------------------------------------------------------

    def working(self) -> bool:
        """Whether the store honours conditional creates (probed once per run, at the first
        claim). A store that ignores them would let two machines hold one claim."""
        with self._probe_lock:
            if self._working is None:
                self._working = self._probe()
                if not self._working and not self.required:
                    self.remote.warn(
                        "the store ignores conditional writes (If-None-Match), so render claims "
                        "are off for this apply: two machines starting one shot at the same "
                        "time may both pay for it"
                    )
            return self._working

    @property
    def required(self) -> bool:
        """`cache: {claims: required}`: no apply without claims on a store that ignores them."""
        return self.remote.config.claims == "required"

    def require(self) -> None:
        """With claims required, in mode read-write: refuse a store that ignores conditional
        writes, before anything is submitted (RemoteCacheError)."""
        if self.required and self.remote.config.writable and not self.working():
            raise RemoteCacheError(
                f"remote cache {self.remote.config.url}: the store ignores conditional writes "
                "(If-None-Match), so render claims cannot work, and the spec requires them "
                "(cache: {claims: required}); nothing was submitted. Use a store that honours "
                "conditional writes, or set `claims: auto` to render without claims (two "
                "machines starting one shot at the same time may then both pay for it)"
            )

    def _probe(self) -> bool:
        name = self.remote.config.claim_key(f"probe-{self.run}")
        what = "probing conditional writes"
        body = b'{"format": "tchavi-render-probe/1"}\n'
        etag = self.remote.put_if(what, name, body, etag=None)
        if etag is None:
            return False
        second = self.remote.put_if(what, name, body, etag=None)
        self.remote.delete_if(what, name, second or etag)
        return second is None

    # -- taking -------------------------------------------------------------------------------

    def _new(self, key: str) -> Claim:
        now = self.clock()
        return Claim(key, self.host, self.pid, self.run, self.backend, self.account, now, now)

    def look(self, key: str) -> tuple[Claim | None, str] | None:
        """The claim of `key` (None when it cannot be trusted, with a warning) and its ETag;
        None when there is no claim."""
        name = self.remote.config.claim_key(key)
        found = self.remote.read_small(f"reading the claim of {short_key(key)}", name)
        if found is None:
            self._seen.pop(key, None)
            return None
        data, etag = found
        claim, problem = parse_claim(data, key, self.remote.config.secret)
        if claim is None:
            self.remote.warn(f"the claim {name} is ignored: {problem}")
        return claim, etag

    def elsewhere(self, key: str) -> str | None:
        """Where `key` is being paid for right now, as `plan` says it: a claim renewed
        within the lease, by this machine's clock (plan cannot watch the ETag change).
        None when there is none, or the bucket cannot say (apply looks again anyway)."""
        try:
            found = self.look(key)
        except RemoteCacheError:
            return None
        claim = found[0] if found is not None else None
        if claim is None or claim.failed is not None or self.clock() - claim.renewed > self.ttl:
            return None
        if claim.job_id is not None and self.mine(claim):
            return f"{claim.where}; apply follows that job instead of paying for another"
        return f"{claim.where}; apply waits for its render in the remote cache instead of paying"

    def take(self, key: str) -> Held | Claim | None:
        """Claim `key`: Held when this machine now holds it, the other machine's live Claim
        when it must not pay, None when it may pay without a claim (read mode, or claims off)."""
        if self.remote.config.writable and not self.working():
            return None
        name = self.remote.config.claim_key(key)
        what = f"claiming {short_key(key)}"
        secret = self.remote.config.secret
        for _ in range(3):  # the claim may vanish or change between a look and a write
            found = self.look(key)
            if found is None:
                if not self.remote.config.writable:
                    return None
                claim = self._new(key)
                etag = self.remote.put_if(what, name, claim_document(claim, secret), etag=None)
                if etag is not None:
                    return Held(claim, etag)
                continue
            other, etag = found
            if other is not None and not self._abandoned(key, other, etag):
                return other
            if not self.remote.config.writable:
                return None  # read mode never takes over; an abandoned claim binds nobody
            claim = self._new(key)
            new_etag = self.remote.put_if(what, name, claim_document(claim, secret), etag=etag)
            if new_etag is not None:
                self._seen.pop(key, None)
                return Held(claim, new_etag, inherited=other)
        return self._latest(key)

    def _latest(self, key: str) -> Claim | None:
        found = self.look(key)
        return found[0] if found is not None else None

    def _abandoned(self, key: str, claim: Claim, etag: str) -> bool:
        """Not renewed for longer than the lease: its ETag unchanged that long as this machine
        saw it, or its own renewal time older than two leases (tolerating a lease of skew)."""
        now = self.monotonic()
        seen = self._seen.get(key)
        if seen is None or seen[0] != etag:
            self._seen[key] = (etag, now)
            seen = (etag, now)
        return now - seen[1] > self.ttl or self.clock() - claim.renewed > 2 * self.ttl

    # -- holding ------------------------------------------------------------------------------

    def _rewrite(self, held: Held, claim: Claim) -> Held | None:
        name = self.remote.config.claim_key(claim.key)
        body = claim_document(claim, self.remote.config.secret)
        etag = self.remote.put_if(
            f"renewing the claim of {short_key(claim.key)}", name, body, etag=held.etag
        )
        if etag is None:
            self.remote.warn(
                f"the claim of {short_key(claim.key)} was taken over by another machine (not "
                f"renewed within {self.ttl:g} s); this machine's job goes on and is not paid twice"
            )
            return None
        return replace(held, claim=claim, etag=etag)

    def attach_job(self, held: Held, job_id: str) -> Held | None:
        """Name the job in the claim, so machines of the same account follow it."""
        return self._rewrite(held, replace(held.claim, job_id=job_id, renewed=self.clock()))

    def renew(self, held: Held) -> Held | None:
        """Renew the lease; None when the claim was lost (taken over)."""
        return self._rewrite(held, replace(held.claim, renewed=self.clock()))

    def release(self, held: Held, failed: str | None = None) -> None:
        """Let go of the claim: after the record is written, or after a failure, which is
        recorded in the claim first so a machine looking at that moment sees why."""
        if failed is not None:
            rewritten = self._rewrite(held, replace(held.claim, failed=failed))
            if rewritten is None:
                return
            held = rewritten
        name = self.remote.config.claim_key(held.claim.key)
        try:
            self.remote.delete_if(
                f"releasing the claim of {short_key(held.claim.key)}", name, held.etag
            )
        except RemoteCacheError as exc:
            # Left behind, the claim lapses after its lease: others wait that long, no more.
            self.remote.warn(f"{exc}; the claim lapses after {self.ttl:g} s")
