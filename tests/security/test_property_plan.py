"""Hypothesis over the loader, the plan, the lock and the journal: no unexpected exception."""

from __future__ import annotations

import fnmatch
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tchavi_render.cli.output import plan_json, plan_markdown, plan_text
from tchavi_render.engine.journal import Journal
from tchavi_render.engine.keys import key_request, shot_key
from tchavi_render.engine.lock import LockEntry, Lockfile, OutputRecord
from tchavi_render.engine.lockread import read_lock
from tchavi_render.engine.plan import Action, make_plan
from tchavi_render.errors import LockfileError, NoSuchShot, SpecError
from tchavi_render.spec import load_spec
from tests.engine.conftest import Disk

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Mostly valid values, so that most specs load and reach the plan; a few bad ones.
IDS = st.sampled_from(["a", "b", "c", "intro", "a", "b", "c", "Bad Id", "../x", "s-{{ n }}"])
PROMPTS = st.one_of(
    st.text(alphabet="abc xyz[]Image1", min_size=1, max_size=30),
    st.sampled_from(["{{ city }}", "{{ city }} again", "{{ n * 3 }}", "{{ nope }}", "{{"]),
)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "model": st.sampled_from(["seedance-2", "kling-v3", "{{ model }}", "other"]),
    "duration": st.one_of(st.integers(1, 15), st.sampled_from(["{{ n + 1 }}", -1, 0, 99])),
    "resolution": st.sampled_from(["480p", "720p", None, "1080p"]),
    "aspect_ratio": st.sampled_from(["16:9", "9:16", "adaptive", "{{ ratio }}", "5:4"]),
    "generate_audio": st.one_of(st.booleans(), st.sampled_from(["{{ flag }}", "yes"])),
    "seed": st.one_of(st.integers(0, 2**31), st.none(), st.just(1.5)),
    "image_url": st.sampled_from(["https://cdn.example.com/a.png", "file:///etc/passwd"]),
}


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    shots = []
    for i in range(draw(st.integers(0, 5))):
        shot: dict[str, Any] = {"id": draw(IDS) + str(i), "prompt": draw(PROMPTS)}
        for name in draw(st.sets(st.sampled_from(sorted(FIELD_VALUES)), max_size=4)):
            shot[name] = draw(FIELD_VALUES[name])
        if "{{ n" in str(shot) or draw(st.booleans()):
            shot["for_each"] = {"n": draw(st.lists(st.integers(0, 3), max_size=3, unique=True))}
        shots.append(shot)
    return {
        "version": draw(st.sampled_from([1] * 9 + [2])),
        "defaults": {"model": "seedance-2", "duration": draw(st.integers(1, 15))},
        "vars": {"city": "Cotonou", "model": "kling-v3", "ratio": "9:16", "flag": "true"},
        "shots": shots,
    }


@SETTINGS
@given(
    doc=specs(),
    relock=st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), max_size=10),
    cached=st.booleans(),
    intact=st.booleans(),
    targets=st.lists(st.sampled_from(["a", "s-*", "*", "zzz"]), max_size=2),
    replace=st.lists(st.sampled_from(["b", "*", "nothing"]), max_size=2),
)
def test_loading_and_planning_any_spec_raises_nothing_but_spec_errors(
    doc: dict[str, Any],
    relock: list[tuple[bool, bool, bool]],
    cached: bool,
    intact: bool,
    targets: list[str],
    replace: list[str],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tchavi.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        try:
            spec = load_spec(path)
        except SpecError as exc:
            assert exc.problems
            event("invalid spec")
            return
    event(f"planned {min(len(spec.shots), 3)} or more shots")
    # A lock that matches some shots, is stale for others, and names shots that are gone.
    entries: dict[str, LockEntry] = {}
    for shot, (same_key, rendered, failed) in zip(spec.shots, relock, strict=False):
        entries[shot.id] = LockEntry(
            key=shot_key(shot) if same_key else "sha256:" + "0" * 64,
            model=shot.model,
            request=key_request(shot) if same_key else {"prompt": "older"},
            job_id="job_1" if rendered else None,
            output=OutputRecord(f"renders/{shot.id}.mp4", "f" * 64, 10, 1, "480p")
            if rendered
            else None,
        )
        del failed
    entries["gone"] = LockEntry(key="sha256:" + "1" * 64, model="seedance-2", request={})
    lock = Lockfile(entries)
    on_disk = {e.output.path: e.output.sha256 for e in entries.values() if e.output and intact}
    try:
        plan = make_plan(
            spec,
            lock,
            cached=lambda key: "c" * 64 if cached else None,
            files=Disk(on_disk),
            targets=targets,
            force_replace=replace,
        )
    except NoSuchShot as exc:
        known = {s.id for s in spec.shots} | set(entries)
        assert not all(any(fnmatch.fnmatchcase(i, g) for i in known) for g in targets + replace)
        assert "matches no shot" in str(exc)
        return
    ids = [p.id for p in plan.shots]
    assert len(ids) == len(set(ids))
    for planned in plan.shots:
        assert (planned.estimated_credits > 0) == planned.spends
        assert planned.reasons
        assert (planned.shot is None) == (planned.action is Action.DELETE)
    summary = plan.summary
    counted = summary.create + summary.replace + summary.reuse + summary.unchanged
    assert counted + summary.collect + summary.delete + summary.blocked == len(plan.shots)
    json.loads(plan_json(plan))
    plan_text(plan, verbose=True)
    plan_markdown(plan)


@SETTINGS
@given(text=st.one_of(st.text(max_size=300), specs().map(yaml.safe_dump)))
def test_reading_any_lockfile_gives_a_lock_or_a_lockfile_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tchavi.lock"
        path.write_text(text)
        try:
            read_lock(path)
        except LockfileError as exc:
            assert "tchavi.lock" in str(exc)


@SETTINGS
@given(
    lines=st.lists(
        st.one_of(
            st.text(max_size=80),
            st.dictionaries(
                st.sampled_from(
                    ["op", "key", "shot", "job_id", "started", "credits", "at", "endpoint"]
                ),
                st.one_of(st.text(max_size=10), st.integers(), st.floats(), st.none()),
            ).map(json.dumps),
        ),
        max_size=12,
    )
)
def test_any_journal_loads_and_compacts(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tchavi.journal"
        path.write_text("\n".join(lines) + "\n")
        journal = Journal(path)
        assert isinstance(journal.known_job_ids, set)
        journal.compact()
        Journal(path)
