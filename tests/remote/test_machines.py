"""Two machines, one bucket: what one renders the other never pays for, and nothing read from
the bucket is used unless it can be trusted.

Machines are separate processes with separate cache dirs; jobs are counted on the emulator
and writes on the S3 server.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from tchavi_render.emulator import RunningEmulator
from tchavi_render.engine.cache import CacheRecord
from tchavi_render.engine.remote import RECORD_FORMAT, parse_record, record_document
from tests.remote.conftest import AWS_SECRET, CACHE_SECRET, Bucket, MachineFactory
from tests.support.specs import HARBOUR_AND_MARKET
from tests.support.waiting import wait_until

SPEC = HARBOUR_AND_MARKET


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def locked(machine_lock: Path) -> dict[str, dict[str, object]]:
    shots: dict[str, dict[str, object]] = yaml.safe_load(machine_lock.read_text())["shots"]
    return shots


def test_machine_b_applies_after_machine_a_and_submits_nothing(
    machines: MachineFactory, bucket: Bucket, emulator: RunningEmulator
) -> None:
    a, b = machines("a"), machines("b")
    a.write(SPEC)
    b.write(SPEC)
    log_a = a.finish(a.spawn("apply", "--yes"))
    assert len(emulator.jobs()) == 2
    assert len(bucket.keys("objects/")) == 2 and len(bucket.keys("records/")) == 2

    before = len(bucket.server.requests)
    plan = json.loads(b.run("plan", "--json").output)
    assert [(s["action"], s["reasons"]) for s in plan["shots"]] == [
        ("reuse", ["in the remote cache"]),
        ("reuse", ["in the remote cache"]),
    ]
    assert {m for m, _ in bucket.server.seen(bucket.name, before)} == {"GET"}  # plan only reads

    log_b = b.finish(b.spawn("apply", "--yes"))
    assert len(emulator.jobs()) == 2
    assert b.lock.read_bytes() == a.lock.read_bytes()
    for shot in ("harbour", "market"):
        assert sha256(b.output(shot)) == sha256(a.output(shot))

    everything = log_a + log_b + a.lock.read_text() + b.lock.read_text()
    everything += "".join(bucket.read(k).decode() for k in bucket.keys("records/"))
    assert AWS_SECRET not in everything and CACHE_SECRET not in everything


def _other_object(bucket: Bucket, record: CacheRecord) -> str:
    (other,) = [k for k in bucket.keys("objects/") if record.sha256 not in k]
    return Path(other).stem


def test_a_record_altered_in_the_bucket_is_refused_and_the_shot_rendered_again(
    machines: MachineFactory, bucket: Bucket, emulator: RunningEmulator
) -> None:
    a, b = machines("a"), machines("b")
    a.write(SPEC)
    b.write(SPEC.split("  - id: market")[0])
    a.apply()
    harbour = locked(a.lock)["harbour"]
    name = f"team/records/{str(harbour['key']).removeprefix('sha256:')}.json"
    doc = json.loads(bucket.read(name))
    original = doc["record"]["sha256"]
    # Point harbour's key at market's video, keeping the (now wrong) signature.
    record = CacheRecord(**doc["record"])
    doc["record"]["sha256"] = _other_object(bucket, record)
    bucket.write(name, json.dumps(doc).encode())

    result = b.apply()
    assert f"the record {name} is ignored: its signature does not match" in result.output
    assert len(emulator.jobs()) == 3
    assert sha256(b.output("harbour")) == original != doc["record"]["sha256"]
    # B's own render replaced the altered record with a valid one.
    repaired, _ = parse_record(bucket.read(name), str(harbour["key"]), CACHE_SECRET.encode())
    assert repaired is not None and repaired.sha256 == original


def test_an_unsigned_record_from_a_build_without_the_secret_is_refused(
    machines: MachineFactory, bucket: Bucket, emulator: RunningEmulator
) -> None:
    pull_request = machines("pr", TCHAVI_RENDER_CACHE_SECRET="")
    trusted = machines("main")
    pull_request.write(SPEC)
    trusted.write(SPEC)
    pull_request.apply()  # a pull request with write access, but no secret
    result = trusted.apply()
    assert "is ignored: it is not signed, and TCHAVI_RENDER_CACHE_SECRET is set" in result.output
    assert len(emulator.jobs()) == 4


def test_an_object_whose_bytes_do_not_match_is_never_used(
    machines: MachineFactory, bucket: Bucket, emulator: RunningEmulator
) -> None:
    a, b = machines("a"), machines("b")
    a.write(SPEC)
    b.write(SPEC)
    a.apply()
    harbour = str(locked(a.lock)["harbour"]["key"])
    record, _ = parse_record(
        bucket.read(f"team/records/{harbour.removeprefix('sha256:')}.json"),
        harbour,
        CACHE_SECRET.encode(),
    )
    assert record is not None
    forged = b"\x00\x00\x00\x18ftypisom" + b"\x00" * (record.bytes - 12)
    bucket.write(f"team/objects/{record.sha256}.mp4", forged)

    result = b.apply()
    assert f"team/objects/{record.sha256}.mp4 does not match its sha256" in result.output
    assert len(emulator.jobs()) == 3
    assert b.output("harbour").read_bytes() != forged
    assert sha256(b.output("harbour")) == record.sha256  # the same seed renders the same bytes
    # B's render replaced the bad object, so the next machine gets the right bytes.
    repaired = bucket.read(f"team/objects/{record.sha256}.mp4")
    assert hashlib.sha256(repaired).hexdigest() == record.sha256


def test_read_mode_reads_the_bucket_and_never_writes_to_it(
    machines: MachineFactory, bucket: Bucket, emulator: RunningEmulator
) -> None:
    main, pull_request = machines("main"), machines("pr", TCHAVI_RENDER_REMOTE_CACHE_MODE="read")
    main.write(SPEC)
    main.apply()
    keys = bucket.keys()
    pull_request.write(SPEC + '  - id: stilts\n    prompt: "Houses on stilts, drone shot"\n')

    before = len(bucket.server.requests)
    result = pull_request.apply()
    assert "2 reused" in result.output and "1 rendered" in result.output
    assert len(emulator.jobs()) == 3
    push = pull_request.run("cache", "push", ok=False)
    assert push.exit_code == 1
    assert "cache push writes to the remote cache" in push.output
    assert "its mode is read" in push.output
    assert bucket.server.seen(bucket.name, before)  # it did read
    assert bucket.writes(before) == []
    assert bucket.keys() == keys


def test_two_machines_starting_one_shot_together_pay_for_one_job(
    slow_machines: MachineFactory, bucket: Bucket, slow_emulator: RunningEmulator
) -> None:
    unseeded = SPEC.replace("  seed: 5\n", "").split("  - id: market")[0]
    a, b, c = slow_machines("a"), slow_machines("b"), slow_machines("c")
    for machine in (a, b, c):
        machine.write(unseeded)
    first, second = a.spawn("apply", "--yes"), b.spawn("apply", "--yes")
    log = a.finish(first) + b.finish(second)
    assert len(slow_emulator.jobs()) == 1  # both planned before either finished
    assert "in flight on host " in log
    # No seed, so a second job would have made other bytes: both placed the one render.
    assert sha256(a.output("harbour")) == sha256(b.output("harbour"))
    assert locked(a.lock)["harbour"] == locked(b.lock)["harbour"]
    assert bucket.keys("claims/") == []  # released once the record was written
    (name,) = bucket.keys("records/")
    key = str(locked(a.lock)["harbour"]["key"])
    record, problem = parse_record(bucket.read(name), key, CACHE_SECRET.encode())
    assert record is not None, problem
    assert record.sha256 == sha256(a.output("harbour"))

    c.apply()
    assert len(slow_emulator.jobs()) == 1
    assert sha256(c.output("harbour")) == record.sha256


def test_a_render_finished_on_another_machine_meanwhile_is_not_paid_again(
    slow_machines: MachineFactory, bucket: Bucket, slow_emulator: RunningEmulator
) -> None:
    a, b = slow_machines("a"), slow_machines("b")
    harbour = '  - id: harbour\n    prompt: "Fishing boats leaving Ganvie at dawn"\n'
    a.write(SPEC.split("  - id: harbour")[0] + harbour)
    # B renders two shots first, one job at a time, then comes to harbour: by then A has
    # rendered it, although it was not in the bucket when B planned.
    b.write(
        SPEC.split("  - id: harbour")[0]
        + '  - id: market\n    prompt: "Dantokpa market, handheld"\n'
        + '  - id: stilts\n    prompt: "Houses on stilts, drone shot"\n'
        + harbour
    )
    journal = a.root / ".tchavi" / "tchavi.journal"
    first = a.spawn("apply", "--yes")
    wait_until(
        lambda: journal.exists() and '"submitted"' in journal.read_text(),
        30,
        "machine A's first submit in its journal",
    )
    result = b.apply("--concurrency", "1")
    a.finish(first)
    # Planned while A's render was still running: A holds its claim, so B waits for it.
    assert "2 to create" in result.output and "1 to wait for" in result.output
    assert "rendered meanwhile on another machine; from the remote cache" in result.output
    assert len(slow_emulator.jobs()) == 3
    assert sha256(b.output("harbour")) == sha256(a.output("harbour"))


def test_record_documents_are_signed_and_name_their_format() -> None:
    record = CacheRecord(
        key="sha256:" + "a" * 64,
        sha256="b" * 64,
        bytes=10,
        job_id="job_1",
        model="seedance-2",
        credits_used=260,
        credits_refunded=0,
        duration=1,
        resolution="480p",
        created=1.5,
    )
    doc = json.loads(record_document(record, b"k"))
    assert doc["format"] == RECORD_FORMAT and doc["signature"].startswith("hmac-sha256:")
    assert parse_record(record_document(record, b"k"), record.key, b"k") == (record, "")
    assert parse_record(record_document(record, None), record.key, None) == (record, "")
    wrong_key = parse_record(record_document(record, b"k"), record.key, b"other")
    assert wrong_key[0] is None and "signature does not match" in wrong_key[1]
    other = parse_record(record_document(record, b"k"), "sha256:" + "c" * 64, b"k")
    assert other[0] is None and "names another key" in other[1]
    doc["record"]["sha256"] = "../../../etc/passwd"
    escape = parse_record(json.dumps(doc).encode(), record.key, None)
    assert escape == (None, "its sha256 is not a sha256")
