"""A machine killed (SIGKILL: no cleanup, like a lost CI runner) while it holds claims: the
others finish, after its lease where they must wait; with one account no key is paid twice,
and the killed machine's next apply pays nothing."""

from __future__ import annotations

import os
import signal
from collections import Counter

import yaml

from tchavi_render.emulator import RunningEmulator
from tchavi_render.engine.remote.claims import parse_claim
from tests.remote.conftest import CACHE_SECRET, Bucket, MachineFactory
from tests.support.checkouts import Machine
from tests.support.specs import storyboard
from tests.support.waiting import wait_until

SHOTS = 6
LEASE = 5  # seconds: the smallest claim_ttl a spec may set


def _spec() -> str:
    return storyboard(SHOTS).replace("defaults:", f"cache:\n  claim_ttl: {LEASE}\ndefaults:", 1)


def _claims(bucket: Bucket) -> list[tuple[str, str | None]]:
    """(holder's host:pid, job id) of every trusted claim in the bucket."""
    out = []
    for name in bucket.keys("claims/"):
        key = "sha256:" + name.rsplit("/", 1)[1]
        try:
            claim, _ = parse_claim(bucket.read(name), key, CACHE_SECRET.encode())
        except Exception:  # released between the listing and the read
            continue
        if claim is not None:
            out.append((f"{claim.host}:{claim.pid}", claim.job_id))
    return out


def _complete(machine: Machine) -> dict[str, tuple[str, str]]:
    shots = yaml.safe_load(machine.lock.read_text())["shots"]
    return {name: (entry["key"], entry["output"]["sha256"]) for name, entry in shots.items()}


def test_a_machine_killed_mid_apply_costs_no_second_job_on_one_account(
    slow_machines: MachineFactory, bucket: Bucket, slow_emulator: RunningEmulator
) -> None:
    machines = [slow_machines(name) for name in ("a", "b", "c")]
    for machine in machines:
        machine.write(_spec())
    a, b, c = machines
    # A claims every shot at once (one slot per shot), so once all its claims name their
    # jobs it starts no other: the kill cannot land between a submit and its claim's update.
    victim = a.spawn("apply", "--yes", "--concurrency", str(SHOTS))
    wait_until(
        lambda: len(_claims(bucket)) == SHOTS and all(job for _, job in _claims(bucket)),
        30,
        "machine A holding every claim, each naming its job",
    )
    others = [(m, m.spawn("apply", "--yes")) for m in (b, c)]
    wait_until(
        lambda: all(m.log.exists() and "in flight on host" in m.log.read_text() for m in (b, c)),
        30,
        "machines B and C following A's jobs",
    )
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    for machine, process in others:
        machine.finish(process, timeout=120)

    jobs = slow_emulator.jobs()
    assert len(jobs) == SHOTS, Counter(job["status"] for job in jobs)
    assert _complete(b) == _complete(c) and len(_complete(b)) == SHOTS

    again = a.apply()  # its journal still has the jobs it paid for: collected, not paid again
    assert len(slow_emulator.jobs()) == SHOTS, again.output
    assert "Credits spent: 0." in again.output
    assert _complete(a) == _complete(b)


def test_a_holder_killed_before_it_submits_is_taken_over_after_its_lease(
    slow_machines: MachineFactory, bucket: Bucket, slow_emulator: RunningEmulator
) -> None:
    """A dies holding a claim with no job yet (a deterministic moment: the failpoint before
    its intent is journaled); B and C wait for the lease, then exactly one takes over."""
    machines = [slow_machines(name) for name in ("a", "b", "c")]
    for machine in machines:
        machine.write(_spec())
    a, b, c = machines
    victim = a.spawn(
        "apply", "--yes", "--concurrency", "1", TCHAVI_RENDER_FAILPOINT="before-intent"
    )
    assert victim.wait(timeout=30) == -signal.SIGKILL
    (orphaned,) = _claims(bucket)
    assert orphaned[1] is None  # A died between its claim and its submit
    assert slow_emulator.jobs() == []

    logs = "".join(
        m.finish(p, timeout=120) for m, p in [(m, m.spawn("apply", "--yes")) for m in (b, c)]
    )
    assert len(slow_emulator.jobs()) == SHOTS
    assert "waiting for its job" in logs  # the lapsed claim was honoured for its lease
    assert bucket.keys("claims/") == []

    again = a.apply()
    assert len(slow_emulator.jobs()) == SHOTS, again.output
    assert "Credits spent: 0." in again.output
    assert _complete(a) == _complete(b) == _complete(c)
