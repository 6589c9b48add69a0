"""The lockfile format and the plan's action table, on frozen shots built in the test."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tchavi_render.engine.keys import key_request, shot_key
from tchavi_render.engine.lock import (
    LockEntry,
    Lockfile,
    OutputRecord,
    lock_path_for,
    write_lock,
)
from tchavi_render.engine.lockread import read_lock
from tchavi_render.engine.plan import Action, make_plan, storyboard_order
from tchavi_render.engine.reasons import word_diff
from tchavi_render.errors import LockfileError, NoSuchShot
from tchavi_render.spec.shot import LoadedSpec, LocalMedia, Location, Shot, ShotFrame
from tests.engine.conftest import Disk


def shot(shot_id: str, prompt: str = "a red kite over the sea", **kw: object) -> Shot:
    return Shot(
        id=shot_id,
        index=0,
        location=Location(Path("tchavi.yaml"), 1, 1),
        model="seedance-2",
        prompt=prompt,
        **kw,  # type: ignore[arg-type]
    )


def spec_of(tmp_path: Path, *shots: Shot) -> LoadedSpec:
    return LoadedSpec(
        path=tmp_path / "tchavi.yaml",
        project_dir=tmp_path,
        backend="local",
        output_dir=tmp_path / "renders",
        shots=shots,
    )


def rendered(s: Shot, sha: str = "a" * 64, path: str | None = None) -> LockEntry:
    return LockEntry(
        key=shot_key(s),
        model=s.model,
        request=key_request(s),
        job_id=f"job_{s.id}",
        output=OutputRecord(path or f"renders/{s.id}.mp4", sha, 10, 5, "480p"),
        credits_used=1300,
        credits_refunded=0,
    )


def plan_for(
    tmp_path: Path,
    shots: list[Shot],
    lock: Lockfile,
    *,
    cached: set[str] = frozenset(),  # type: ignore[assignment]
    intact: bool = True,
    **kw: object,
):  # type: ignore[no-untyped-def]
    on_disk = {e.output.path: e.output.sha256 for e in lock.shots.values() if e.output and intact}
    return make_plan(
        spec_of(tmp_path, *shots),
        lock,
        cached=lambda key: "c" * 64 if key in cached else None,
        files=Disk(on_disk, frozenset({"c" * 64})),
        **kw,  # type: ignore[arg-type]
    )


def test_the_key_ignores_the_id_and_follows_the_request() -> None:
    assert shot_key(shot("a")) == shot_key(shot("b"))
    assert shot_key(shot("a")) != shot_key(shot("a", prompt="a blue kite over the sea"))
    assert shot_key(shot("a")) != shot_key(shot("a", duration=6))


def test_the_key_of_local_media_follows_their_bytes_not_their_path(tmp_path: Path) -> None:
    def media(rel: str, sha: str) -> LocalMedia:
        return LocalMedia(tmp_path / rel, rel, sha, 10, "image")

    one = shot("a", image_url=media("a.png", "1" * 64))
    moved = shot("a", image_url=media("moved/a.png", "1" * 64))
    edited = shot("a", image_url=media("a.png", "2" * 64))
    assert shot_key(one) == shot_key(moved)
    assert shot_key(one) != shot_key(edited)


def test_every_action_of_the_table(tmp_path: Path) -> None:
    same, edited, fresh, renamed, restored = (
        shot("same", "one"),
        shot("edited", "two words here"),
        shot("fresh", "three"),
        shot("renamed-new", "four"),
        shot("restored", "five"),
    )
    old_edited = shot("edited", "two other words")
    lock = Lockfile(
        {
            "same": rendered(same),
            "edited": rendered(old_edited),
            "gone": rendered(shot("gone", "six")),
            "renamed-old": rendered(shot("renamed-old", "four")),
        }
    )
    plan = plan_for(
        tmp_path,
        [same, edited, fresh, renamed, restored],
        lock,
        cached={shot_key(restored)},
    )
    actions = {p.id: p.action for p in plan.shots}
    assert actions == {
        "same": Action.UNCHANGED,
        "edited": Action.REPLACE,
        "fresh": Action.CREATE,
        "renamed-new": Action.REUSE,  # the old id's locked output holds these bytes
        "restored": Action.REUSE,
        "gone": Action.DELETE,
        "renamed-old": Action.DELETE,
    }
    edited_plan = next(p for p in plan.shots if p.id == "edited")
    assert edited_plan.reasons == ("prompt: two [-other-] words {+here+}",)
    assert edited_plan.estimated_credits == 1300
    summary = plan.summary
    assert (summary.create, summary.replace, summary.reuse, summary.unchanged, summary.delete) == (
        1,
        1,
        2,
        1,
        2,
    )
    assert summary.estimated_credits == 2600


def test_a_missing_output_is_restored_from_the_cache_or_rendered_again(tmp_path: Path) -> None:
    s = shot("s")
    lock = Lockfile({"s": rendered(s)})
    restored = plan_for(tmp_path, [s], lock, cached={shot_key(s)}, intact=False)
    assert restored.shots[0].action is Action.REUSE
    gone = plan_for(tmp_path, [s], lock, intact=False)
    assert gone.shots[0].action is Action.REPLACE
    assert "not in the cache" in gone.shots[0].reasons[0]


def test_identical_requests_in_one_run_are_paid_once(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, [shot("a"), shot("b"), shot("c", duration=8)], Lockfile())
    assert [p.action for p in plan.shots] == [Action.CREATE, Action.REUSE, Action.CREATE]
    assert plan.summary.estimated_credits == 1300 + 8 * 260


def test_targets_limit_the_plan_and_replace_forces_a_render(tmp_path: Path) -> None:
    a, b = shot("hero-16x9", "a"), shot("hero-9x16", "b")
    lock = Lockfile({"hero-16x9": rendered(a), "hero-9x16": rendered(b)})
    targeted = plan_for(tmp_path, [a, b, shot("other", "c")], lock, targets=["hero-*"])
    assert [p.id for p in targeted.shots] == ["hero-16x9", "hero-9x16"]
    forced = plan_for(tmp_path, [a, b], lock, force_replace=["hero-9x16"])
    assert [p.action for p in forced.shots] == [Action.UNCHANGED, Action.REPLACE]
    with pytest.raises(NoSuchShot) as unknown:
        plan_for(tmp_path, [a], lock, targets=["nope"])
    assert str(unknown.value) == (
        "--target 'nope' matches no shot of tchavi.yaml or its lock. Check the id, or quote a glob"
    )


def test_durations_resolutions_and_auto_are_estimated_as_billed(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        [
            shot("a", "1", duration=8),
            shot("b", "2", resolution="720p"),
            shot("c", "3", duration=-1),
        ],
        Lockfile(),
    )
    assert [p.estimated_credits for p in plan.shots] == [8 * 260, 5 * 580, 10 * 260]


def test_word_diff_marks_removed_and_added_words() -> None:
    assert word_diff("Aerial view at golden hour", "Aerial view at blue hour") == (
        "Aerial view at [-golden-] {+blue+} hour"
    )


def test_the_lockfile_is_sorted_stable_and_rewritten_only_on_change(tmp_path: Path) -> None:
    path = tmp_path / "tchavi.lock"
    lock = Lockfile({"zeta": rendered(shot("zeta", "z")), "alpha": rendered(shot("alpha"))})
    assert write_lock(path, lock) is True
    text = path.read_text()
    assert text.index("alpha:") < text.index("zeta:")
    assert "credits_total: 2600" in text
    before = path.stat().st_mtime_ns
    assert write_lock(path, read_lock(path)) is False
    assert path.stat().st_mtime_ns == before
    assert read_lock(path).dumps() == text


def whole_document(lock: Lockfile) -> str:
    """The lock's text as one YAML dump of the whole document (what dumps() must equal)."""
    doc = {
        "version": 1,
        "credits_total": lock.credits_total,
        "shots": {sid: lock.shots[sid].as_yaml() for sid in sorted(lock.shots)},
    }
    header = "# Written by tchavi-render: what was rendered for each shot. Commit it.\n"
    options = {"allow_unicode": True, "default_flow_style": False, "width": 100}
    return header + yaml.safe_dump(doc, sort_keys=False, **options)


EDITS = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["a", "b", "intro", "s-10"]), st.text(min_size=1, max_size=150)),
        st.one_of(st.none(), st.text(max_size=300)),  # None: remove the shot
    ),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(edits=EDITS)
def test_the_lock_dumped_entry_by_entry_is_the_whole_document_dumped_at_once(
    edits: list[tuple[str, str | None]],
) -> None:
    """apply rewrites the lock after renders, dumping only the entries that changed; the
    text must be byte for byte what one dump of the whole document gives."""
    lock = Lockfile()
    for shot_id, prompt in edits:
        if prompt is None:
            lock = lock.without(shot_id)
        else:
            lock = lock.with_entry(shot_id, rendered(shot("x", prompt)))
        assert lock.dumps() == whole_document(lock)


def test_shots_sharing_one_render_count_its_credits_once(tmp_path: Path) -> None:
    a = rendered(shot("a"))
    b = LockEntry(**{**a.__dict__})
    assert Lockfile({"a": a, "b": b}).credits_total == 1300


def test_a_corrupt_lockfile_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tchavi.lock"
    path.write_text("version: 1\nshots: [1, 2\n")
    with pytest.raises(LockfileError) as syntax:
        read_lock(path)
    assert str(syntax.value).splitlines()[1] == (
        "  tchavi.lock:3:1: YAML syntax error: did not find expected ',' or ']' "
        "(while parsing a flow sequence started at line 2)"
    )
    path.write_text("version: 7\nshots: {}\n")
    with pytest.raises(LockfileError) as newer:
        read_lock(path)
    assert str(newer.value).splitlines()[1] == (
        "  tchavi.lock:1:10: version 7 was written by a newer tchavi-render; upgrade it"
    )


def test_the_lock_sits_beside_the_spec() -> None:
    assert lock_path_for(Path("/p/tchavi.yaml")) == Path("/p/tchavi.lock")
    assert lock_path_for(Path("/p/teaser.yml")) == Path("/p/teaser.lock")


def continuing(shot_id: str, *upstream: str) -> Shot:
    frames = tuple(ShotFrame(shot=u, frame="last") for u in upstream)
    return shot(shot_id, reference_images=frames) if frames else shot(shot_id)


def test_an_upstream_shot_is_pulled_forward_to_just_before_the_first_shot_it_feeds() -> None:
    shots = [continuing("x", "z"), continuing("y"), continuing("z")]
    # Depth first: not ["y", "z", "x"], which taking the earliest ready shot would give.
    assert [s.id for s in storyboard_order(shots)] == ["z", "x", "y"]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_storyboard_order_puts_upstreams_first_and_otherwise_keeps_the_spec_s(
    data: st.DataObject,
) -> None:
    n = data.draw(st.integers(1, 8))
    ranks = data.draw(st.permutations(range(n)))  # a hidden dependency order: never a cycle
    shots = []
    for i in range(n):
        earlier = [j for j in range(n) if ranks[j] < ranks[i]]
        ups = (
            data.draw(st.lists(st.sampled_from(earlier), unique=True, max_size=3))
            if earlier
            else []
        )
        shots.append(continuing(f"s{i}", *(f"s{j}" for j in ups)))
    order = [s.id for s in storyboard_order(shots)]
    assert sorted(order) == sorted(s.id for s in shots)
    for s in shots:
        assert all(order.index(u) < order.index(s.id) for u in s.upstream)
    if all(int(u[1:]) < i for i, s in enumerate(shots) for u in s.upstream):
        assert order == [s.id for s in shots]
