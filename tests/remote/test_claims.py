"""Render claims: machines applying one storyboard together pay for each shot once, whether
they share an account (they follow each other's jobs) or not (they wait for the records).

Machines are separate processes with separate cache dirs, started together on one bucket and
one emulator whose jobs take a while; jobs are counted on the emulator.
"""

from __future__ import annotations

import json
from collections import Counter

import yaml

from tchavi_render.emulator import RunningEmulator
from tchavi_render.engine.remote.claims import Claim, claim_document, parse_claim
from tests.remote.conftest import API_KEY, Bucket, MachineFactory
from tests.support.checkouts import Machine
from tests.support.specs import storyboard

SHOTS = 30


def _locked(machine: Machine) -> dict[str, tuple[str, str]]:
    """shot -> (key, sha256 of its output) as the machine's lock says."""
    shots = yaml.safe_load(machine.lock.read_text())["shots"]
    return {name: (entry["key"], entry["output"]["sha256"]) for name, entry in shots.items()}


def _apply_together(machines: list[Machine]) -> str:
    spec = storyboard(SHOTS)
    for machine in machines:
        machine.write(spec)
    processes = [(m, m.spawn("apply", "--yes")) for m in machines]
    return "".join(m.finish(p, timeout=240) for m, p in processes)


def test_three_machines_on_one_account_render_thirty_shots_with_thirty_jobs(
    slow_machines: MachineFactory, bucket: Bucket, slow_emulator: RunningEmulator
) -> None:
    machines = [slow_machines(name) for name in ("a", "b", "c")]
    log = _apply_together(machines)
    assert len(slow_emulator.jobs()) == SHOTS
    locks = [_locked(m) for m in machines]
    assert len(locks[0]) == SHOTS
    assert locks[0] == locks[1] == locks[2]
    assert "in flight on host " in log
    assert bucket.keys("claims/") == []
    assert len(bucket.keys("records/")) == SHOTS
    # Followers fetched the videos themselves but wrote neither object nor record again.
    puts = [path for method, path in bucket.writes() if method == "PUT"]
    assert len([p for p in puts if "/records/" in p]) == SHOTS
    assert len([p for p in puts if "/objects/" in p]) == SHOTS


def test_three_machines_on_three_accounts_render_thirty_shots_with_thirty_jobs(
    slow_machines: MachineFactory, bucket: Bucket, slow_emulator: RunningEmulator
) -> None:
    machines = [
        slow_machines(name, TCHAVI_API_KEY=f"sk-tch_account-{name}") for name in ("a", "b", "c")
    ]
    _apply_together(machines)
    jobs = slow_emulator.jobs()
    assert len(jobs) == SHOTS
    assert len(Counter(job["account"] for job in jobs)) > 1  # the work was shared
    locks = [_locked(m) for m in machines]
    assert len(locks[0]) == SHOTS
    assert locks[0] == locks[1] == locks[2]
    assert bucket.keys("claims/") == []


def test_claim_documents_are_signed_and_an_altered_one_is_refused() -> None:
    key = "sha256:" + "a" * 64
    claim = Claim(key, "ci-1", 42, "run1", "tchavi:https://x", "acct_1", 1.0, 2.0, "job_1")
    signed = claim_document(claim, b"k")
    assert json.loads(signed)["signature"].startswith("hmac-sha256:")
    assert parse_claim(signed, key, b"k") == (claim, "")
    assert parse_claim(claim_document(claim, None), key, None) == (claim, "")
    doc = json.loads(signed)
    doc["claim"]["job_id"] = "job_2"
    altered = parse_claim(json.dumps(doc).encode(), key, b"k")
    assert altered == (
        None,
        "its signature does not match (written without this secret, or altered)",
    )
    unsigned = parse_claim(claim_document(claim, None), key, b"k")
    assert unsigned == (None, "it is not signed, and TCHAVI_RENDER_CACHE_SECRET is set")
    other = parse_claim(signed, "sha256:" + "c" * 64, b"k")
    assert other[0] is None and "names another key" in other[1]


def test_a_holder_whose_job_fails_is_retried_by_exactly_one_machine(
    failing_machines: MachineFactory, bucket: Bucket, failing_emulator: RunningEmulator
) -> None:
    """Two machines, one shot, every job fails: the holder's job fails and is refunded, the
    follower claims the key anew and retries once; never two jobs for the key at once."""
    machines = [failing_machines(name) for name in ("a", "b")]
    spec = storyboard(1)
    for machine in machines:
        machine.write(spec)
    processes = [(m, m.spawn("apply", "--yes")) for m in machines]
    codes = [p.wait(timeout=120) for _, p in processes]
    log = "".join(m.log.read_text() for m in machines)
    assert codes == [1, 1], log  # the shot failed on both machines: nothing was rendered
    jobs = failing_emulator.jobs()
    assert len(jobs) == 2, log  # the holder's job, and exactly one retry
    assert {job["status"] for job in jobs} == {"failed"}
    assert failing_emulator.peak_in_flight(API_KEY) == 1  # one job per attempt, not two
    assert "in flight on host " in log  # the other machine followed the first attempt
    assert bucket.keys("claims/") == [] and bucket.keys("records/") == []


def test_a_holder_whose_job_fails_is_retried_once_across_accounts(
    failing_machines: MachineFactory, bucket: Bucket, failing_emulator: RunningEmulator
) -> None:
    """The same with two accounts: the waiter cannot see the job; it sees the claim released
    with the failure, claims the key and retries once."""
    keys = {name: f"sk-tch_failing-{name}" for name in ("a", "b")}
    machines = [failing_machines(name, TCHAVI_API_KEY=key) for name, key in keys.items()]
    spec = storyboard(1)
    for machine in machines:
        machine.write(spec)
    processes = [(m, m.spawn("apply", "--yes")) for m in machines]
    codes = [p.wait(timeout=120) for _, p in processes]
    log = "".join(m.log.read_text() for m in machines)
    assert codes == [1, 1], log
    jobs = failing_emulator.jobs()
    assert len(jobs) == 2, log
    assert len(Counter(job["account"] for job in jobs)) == 2  # one attempt on each account
    assert all(failing_emulator.peak_in_flight(key) == 1 for key in keys.values())
    assert "in flight on host " in log  # the second attempt waited for the first
    assert bucket.keys("claims/") == [] and bucket.keys("records/") == []
