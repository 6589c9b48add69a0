"""What a machine says and does about another machine's claim: `plan` shows the shot as
`wait` at no cost, `apply --json` says where it is in flight, an altered claim binds nobody,
and `--replace` still pays for a new take although the bucket has the old one."""

from __future__ import annotations

import json
import time
from typing import Any

from tchavi_render.emulator import RunningEmulator
from tchavi_render.engine.remote.claims import Claim, claim_document, parse_claim
from tests.remote.conftest import CACHE_SECRET, Bucket, MachineFactory
from tests.support.specs import storyboard
from tests.support.waiting import wait_until


def _claim_with_job(bucket: Bucket) -> Claim | None:
    """The one claim in the bucket once its holder has named its job, else None."""
    names = bucket.keys("claims/")
    if len(names) != 1:
        return None
    key = "sha256:" + names[0].rsplit("/", 1)[1]
    try:
        claim, _ = parse_claim(bucket.read(names[0]), key, CACHE_SECRET.encode())
    except Exception:  # released between the listing and the read
        return None
    return claim if claim is not None and claim.job_id else None


def _events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_plan_shows_a_shot_another_machine_pays_for_as_wait_and_apply_follows_it(
    slow_machines: MachineFactory, bucket: Bucket, slow_emulator: RunningEmulator
) -> None:
    a, b = slow_machines("a"), slow_machines("b")
    for machine in (a, b):
        machine.write(storyboard(1))
    holder = a.spawn("apply", "--yes")
    wait_until(lambda: _claim_with_job(bucket) is not None, 30, "machine A's claim with its job")
    claim = _claim_with_job(bucket)
    assert claim is not None

    planned = json.loads(b.run("plan", "--json").output)
    (shot,) = planned["shots"]
    assert shot["action"] == "wait"
    assert shot["estimated_credits"] == 0
    assert f"in flight on host {claim.host}, {claim.job_id}" in shot["reasons"][0]
    assert "follows that job" in shot["reasons"][0]  # same account: it can follow the job
    assert planned["summary"]["wait"] == 1 and planned["summary"]["estimated_credits"] == 0
    text = b.run("plan").output
    assert "wait" in text and "0 credits" in text
    assert "1 to wait for (paid on another machine)" in text

    # --max-credits counts what this machine pays: following A's job fits a budget of 0.
    applied = b.apply("--json", "--max-credits", "0")
    statuses = [e for e in _events(applied.output) if e.get("event") == "status"]
    assert any(
        e.get("job_id") == claim.job_id and "in flight on host" in (e.get("message") or "")
        for e in statuses
    ), applied.output
    a.finish(holder)
    assert len(slow_emulator.jobs()) == 1
    done = [e for e in _events(applied.output) if e.get("event") == "done"]
    assert done and done[-1].get("credits", 0) == 0  # following a job costs this machine nothing


def test_a_claim_altered_in_the_bucket_is_ignored_with_a_warning(
    machines: MachineFactory, bucket: Bucket, emulator: RunningEmulator
) -> None:
    a = machines("a")
    a.write(storyboard(1))
    key = json.loads(a.run("plan", "--json").output)["shots"][0]["key"]
    now = time.time()
    forged = Claim(key, "forger", 1, "run", "tchavi:x", "acct_forged", now, now, "job_forged")
    name = f"team/claims/{key.removeprefix('sha256:')}"
    bucket.write(name, claim_document(forged, b"not the team's secret"))

    planned = a.run("plan")
    assert "is ignored: its signature does not match" in planned.output
    assert "create" in planned.output and "wait" not in planned.output
    applied = a.apply()
    assert "is ignored: its signature does not match" in applied.output
    assert len(emulator.jobs()) == 1  # rendered here: the forged claim bound nobody
    assert bucket.keys("claims/") == []  # taken over, then released after the record


def test_replace_with_a_remote_cache_pays_for_a_new_take(
    machines: MachineFactory, bucket: Bucket, emulator: RunningEmulator
) -> None:
    """The bucket has the key's render, but --replace asks for a new one: it is not
    answered from the bucket."""
    a = machines("a")
    a.write(storyboard(1))
    a.apply()
    assert len(emulator.jobs()) == 1
    result = a.apply("--replace", "shot-000")
    assert "rendered meanwhile" not in result.output
    assert len(emulator.jobs()) == 2
