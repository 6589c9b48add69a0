"""A store that ignores conditional writes (some S3-compatible stores do): the probe at the
first claim finds it out, and the apply runs without claims, as before claims existed."""

from __future__ import annotations

import hashlib

import yaml

from tchavi_render.emulator import RunningEmulator
from tests.remote.conftest import Bucket, CarelessStore, MachineFactory
from tests.support.checkouts import Machine
from tests.support.specs import HARBOUR_AND_MARKET

WARNING = (
    "the store ignores conditional writes (If-None-Match), so render claims are off for this "
    "apply: two machines starting one shot at the same time may both pay for it"
)


def _consistent(machine: Machine) -> dict[str, str]:
    """shot -> key, after checking every locked output is the file on disk."""
    shots = yaml.safe_load(machine.lock.read_text())["shots"]
    for name, entry in shots.items():
        data = machine.output(name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["output"]["sha256"]
    return {name: entry["key"] for name, entry in shots.items()}


def test_a_store_that_ignores_conditional_writes_warns_once_and_runs_without_claims(
    slow_machines: MachineFactory,
    bucket: Bucket,
    slow_emulator: RunningEmulator,
    careless_store: CarelessStore,
) -> None:
    a, b = (
        slow_machines(name, TCHAVI_RENDER_REMOTE_CACHE_ENDPOINT_URL=careless_store.url)
        for name in ("a", "b")
    )
    for machine in (a, b):
        machine.write(HARBOUR_AND_MARKET)
    processes = [(m, m.spawn("apply", "--yes")) for m in (a, b)]
    logs = [m.finish(p, timeout=120) for m, p in processes]

    for log in logs:
        assert log.count(WARNING) == 1, log
        assert "in flight on host" not in log
    # Only the probe's conditional writes reached the store; no claim was ever written.
    assert careless_store.dropped
    assert all("/claims/probe-" in path for _, path in careless_store.dropped)
    claim_paths = [p for _, p in bucket.writes() if "/claims/" in p]
    assert claim_paths and all("/claims/probe-" in p for p in claim_paths)
    assert bucket.keys("claims/") == []
    # Nothing worse than today: every shot rendered (perhaps twice), every lock consistent.
    assert 2 <= len(slow_emulator.jobs()) <= 4
    keys_a, keys_b = _consistent(a), _consistent(b)
    assert keys_a == keys_b and len(keys_a) == 2
    assert len(bucket.keys("records/")) == 2


REQUIRED = HARBOUR_AND_MARKET.replace("version: 1\n", "version: 1\ncache:\n  claims: required\n", 1)


def test_claims_required_refuses_such_a_store_before_submitting_anything(
    machines: MachineFactory,
    bucket: Bucket,
    emulator: RunningEmulator,
    careless_store: CarelessStore,
) -> None:
    a = machines("a", TCHAVI_RENDER_REMOTE_CACHE_ENDPOINT_URL=careless_store.url)
    a.write(REQUIRED)
    result = a.apply(ok=False)
    assert result.exit_code == 1, result.output
    message = (
        "the store ignores conditional writes (If-None-Match), so render claims cannot work, "
        "and the spec requires them (cache: {claims: required}); nothing was submitted"
    )
    assert result.output.count(message) == 1, result.output
    assert WARNING not in result.output
    assert emulator.jobs() == []
    assert bucket.keys("claims/") == [] and bucket.keys("records/") == []

    # The same spec on a store that honours conditional writes applies, with claims.
    b = machines("b")
    b.write(REQUIRED)
    b.apply()
    assert len(emulator.jobs()) == 2
    assert any("/claims/" in p and "probe-" not in p for _, p in bucket.writes())
