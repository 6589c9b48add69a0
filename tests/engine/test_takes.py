"""Takes end to end: N renders of a shot, each with its documented seed, paid once each; the
pick chooses which one is the shot, for free. Proven by the jobs the emulator received."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tchavi_render.api.models import SEED_MAX, SEED_MIN
from tchavi_render.emulator import EmulatorConfig, running_emulator
from tchavi_render.engine.backends import local_data_dir
from tchavi_render.engine.keys import KEY_SCHEME, canonical_json
from tests.engine.conftest import Project
from tests.support.specs import head

HEAD = head(generate_audio=False)


def spec(takes: int | None = None, pick: int | None = None, seed: int | None = None) -> str:
    lines = ["  - id: opening", '    prompt: "Aerial view of Cotonou at golden hour"']
    if seed is not None:
        lines.append(f"    seed: {seed}")
    if takes is not None:
        lines.append(f"    takes: {takes}")
    if pick is not None:
        lines.append(f"    pick: {pick}")
    return HEAD + "\n".join(lines) + "\n"


CONTINUED = (
    "  - id: statue\n"
    "    image_url: {shot: opening, frame: last}\n"
    '    prompt: "The Amazon statue, slow push in"\n'
    "    seed: 12\n"
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seeds(project: Project) -> list[int | None]:
    return [job["params"].get("seed") for job in project.jobs()]


def take_file(project: Project, take: int) -> Path:
    return project.root / "renders" / "opening.takes" / f"{take}.mp4"


def documented_seed(take: int) -> int:
    """The seed docs/spec.md documents for take `take` of a shot without a seed: the first
    63 bits of sha256 of the shot's request (no seed) and the take number."""
    request = {
        "aspect_ratio": "16:9",
        "duration": 1,
        "generate_audio": False,
        "model": "seedance-2",
        "prompt": "Aerial view of Cotonou at golden hour",
        "resolution": "480p",
    }
    text = canonical_json({"scheme": KEY_SCHEME, "request": request, "take": take})
    digest = hashlib.sha256(("tchavi-render take seed:" + text).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def plan_json(project: Project) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(project.run("plan", "--json").output)
    return doc


def test_three_takes_are_three_jobs_with_the_documented_seeds(project: Project) -> None:
    project.write(spec(takes=3))
    project.apply()
    assert sorted(seeds(project)) == sorted(documented_seed(i) for i in (1, 2, 3))  # type: ignore[type-var]
    assert all(0 <= s <= SEED_MAX for s in seeds(project))  # type: ignore[operator]
    assert project.output("opening").is_file()
    assert take_file(project, 2).is_file() and take_file(project, 3).is_file()
    lock = yaml.safe_load(project.lock.read_text())
    assert lock["version"] == 2
    opening = lock["shots"]["opening"]
    assert opening["pick"] == 1
    assert [t["take"] for t in opening["takes"]] == [1, 2, 3]
    assert [t["seed"] for t in opening["takes"]] == [documented_seed(i) for i in (1, 2, 3)]
    assert opening["output"]["path"] == "renders/opening.mp4"
    assert opening["takes"][2]["output"]["path"] == "renders/opening.takes/3.mp4"
    assert lock["credits_total"] == 3 * 260
    assert "No changes" in project.run("plan").output


def test_a_seeded_shot_sends_its_seed_then_the_next_ones(project: Project) -> None:
    project.write(spec(takes=3, seed=40))
    project.apply()
    assert sorted(seeds(project)) == [40, 41, 42]  # type: ignore[type-var]


def test_seeds_wrap_around_the_apis_64_bit_range(project: Project) -> None:
    project.write(spec(takes=2, seed=SEED_MAX))
    project.apply()
    assert sorted(seeds(project)) == [SEED_MIN, SEED_MAX]  # type: ignore[type-var]


def test_one_take_keeps_the_request_and_key_of_a_shot_without_takes(project: Project) -> None:
    project.write(spec())
    project.apply()
    before = project.lock.read_text()
    for text in (spec(takes=1), spec(takes=1, pick=1)):
        project.write(text)
        assert "No changes" in project.run("plan").output
        project.apply()
        assert project.lock.read_text() == before
    assert seeds(project) == [None]  # no seed sent when the shot sets none
    assert yaml.safe_load(before)["version"] == 1


def test_picking_another_take_submits_nothing_and_places_its_bytes(project: Project) -> None:
    project.write(spec(takes=3))
    project.apply()
    take3 = sha(take_file(project, 3))
    take1 = sha(project.output("opening"))
    project.write(spec(takes=3, pick=3))
    plan = project.run("plan").output
    assert "~ opening  pick 1 → 3  (no cost)" in plan
    assert "Estimated cost: 0 credits." in plan
    project.apply()
    assert len(project.jobs()) == 3
    assert sha(project.output("opening")) == take3
    assert sha(take_file(project, 1)) == take1
    assert not take_file(project, 3).exists()
    lock = yaml.safe_load(project.lock.read_text())
    assert lock["shots"]["opening"]["pick"] == 3
    assert lock["shots"]["opening"]["output"]["sha256"] == take3
    assert "No changes" in project.run("plan").output


@pytest.mark.parametrize(
    ("first", "then", "jobs"),
    [(3, 5, 2), (5, 2, 0), (2, 5, 0)],
    ids=["3-to-5-renders-two", "5-to-2-renders-none", "2-to-5-after-5-is-cached"],
)
def test_changing_the_number_of_takes_renders_only_new_takes(
    project: Project, first: int, then: int, jobs: int
) -> None:
    if (first, then) == (2, 5):
        project.write(spec(takes=5))  # rendered once: lowering then raising again is free
        project.apply()
    project.write(spec(takes=first))
    project.apply()
    before = len(project.jobs())
    project.write(spec(takes=then))
    project.apply()
    assert len(project.jobs()) - before == jobs
    on_disk = sorted(p.name for p in (project.root / "renders" / "opening.takes").glob("*"))
    assert on_disk == [f"{i}.mp4" for i in range(2, then + 1)]
    lock = yaml.safe_load(project.lock.read_text())
    assert [t["take"] for t in lock["shots"]["opening"]["takes"]] == list(range(1, then + 1))


def test_lowering_takes_says_what_goes_and_that_the_cache_keeps_it(project: Project) -> None:
    project.write(spec(takes=5))
    project.apply()
    project.write(spec(takes=2))
    plan = project.run("plan").output
    assert "- opening  3 takes dropped" in plan
    assert "takes 3, 4, 5: the files go, the cache keeps the renders" in plan
    assert "Estimated cost: 0 credits." in plan


def test_back_to_one_take_removes_the_takes_folder(project: Project) -> None:
    project.write(spec(takes=3, seed=7))
    project.apply()
    project.write(spec(seed=7))
    project.apply()
    assert len(project.jobs()) == 3  # take 1 of a seeded shot is the shot itself
    assert not (project.root / "renders" / "opening.takes").exists()
    lock = yaml.safe_load(project.lock.read_text())
    assert lock["version"] == 1 and "takes" not in lock["shots"]["opening"]


def test_the_plan_prices_new_takes_and_lists_them_per_shot(project: Project) -> None:
    project.write(spec(takes=2, seed=3))
    project.apply()
    project.write(spec(takes=4, seed=3))
    plan = project.run("plan").output
    assert "+ opening  2 more takes  520 credits" in plan
    assert "take 3 (seed 5): new shot" in plan
    doc = plan_json(project)
    (opening,) = doc["shots"]
    assert opening["pick"] == 1
    takes = {t["take"]: (t["seed"], t["action"]) for t in opening["takes"]}
    assert takes == {1: (3, "unchanged"), 2: (4, "unchanged"), 3: (5, "create"), 4: (6, "create")}
    assert doc["summary"]["estimated_credits"] == 520


def local_jobs(project: Project) -> list[dict[str, Any]]:
    """The jobs of the embedded emulator the local backend ran for this spec."""
    data_dir = local_data_dir(project.spec, project.cache_dir)
    with running_emulator(EmulatorConfig(data_dir=data_dir)) as emu:
        return list(emu.jobs())


def continued(takes: int, pick: int | None = None) -> str:
    # Frames of another shot are served by the local backend (the tchavi one needs a bucket).
    return (spec(takes=takes, pick=pick) + CONTINUED).replace("backend: tchavi", "backend: local")


def test_a_continuity_shot_follows_the_pick(project: Project) -> None:
    project.write(continued(3))
    project.apply()
    assert len(local_jobs(project)) == 4
    project.write(continued(3, pick=3))
    plan = project.run("plan").output
    assert "~ opening  pick 1 → 3  (no cost; 1 shot continues it and re-renders)" in plan
    assert "-/+ statue" in plan
    project.apply()
    assert len(local_jobs(project)) == 5  # the statue only
    lock = yaml.safe_load(project.lock.read_text())
    picked = lock["shots"]["opening"]["output"]["sha256"]
    assert picked == lock["shots"]["opening"]["takes"][2]["output"]["sha256"]
    assert lock["shots"]["statue"]["request"]["image_url"]["shot_output"] == picked
    # back to take 1: the statue's first render comes back from the cache
    project.write(continued(3, pick=1))
    project.apply()
    assert len(local_jobs(project)) == 5


def test_max_credits_counts_every_take(project: Project) -> None:
    project.write(spec(takes=3))
    result = project.apply("--max-credits", "700", ok=False)
    assert result.exit_code != 0
    assert "estimated 780 credits, over --max-credits 700" in result.output
    assert project.jobs() == []


def test_target_names_every_take_of_a_shot(project: Project) -> None:
    project.write(
        spec(takes=3) + CONTINUED.replace("image_url: {shot: opening, frame: last}\n    ", "")
    )
    project.apply("--target", "opening")
    assert len(project.jobs()) == 3
    assert not project.output("statue").exists()


def test_replace_one_take_renders_that_take_only(project: Project) -> None:
    project.write(spec(takes=3, seed=9))
    project.apply()
    project.apply("--replace", "opening.takes/2")
    assert seeds(project)[3:] == [10]
    project.apply("--replace", "opening")
    assert len(project.jobs()) == 4 + 3


def test_a_lock_of_the_release_before_takes_plans_as_unchanged(project: Project) -> None:
    """tests/engine/data/lock-v1 holds a spec and the lock the release before takes wrote
    for it (seeded shots, so the emulator renders the same bytes again)."""
    fixture = Path(__file__).parent / "data" / "lock-v1"
    shutil.copy(fixture / "tchavi.yaml", project.spec)
    project.apply()  # renders the outputs (the same bytes); then the old lock comes back
    old = (fixture / "tchavi.lock").read_text()
    project.lock.write_text(old)
    doc = plan_json(project)
    assert [s["action"] for s in doc["shots"]] == ["unchanged", "unchanged"]
    assert "No changes" in project.run("plan").output


def test_the_release_before_takes_keyed_a_shot_as_this_one_does(project: Project) -> None:
    """A shot without takes and without a seed: the key the release before takes gave it
    (pinned), so every cache and lock written before stays valid."""
    project.write(
        head(generate_audio=False)
        .replace("duration: 1", "duration: 2")
        .replace("backend: tchavi", "backend: local")
        + '  - id: dawn\n    prompt: "A lighthouse at dawn"\n    takes: 1\n'
    )
    keys = re.findall(r'"key": "([^"]+)"', project.run("plan", "--json").output)
    assert keys == ["sha256:fb8e2202159783dd21c75438712cfd33d03a5b27892e9260f935b3272d140e25"]


COMMENTED = (
    "# The harbour storyboard: reviewed in pull requests.\n"
    + HEAD.replace("shots:\n", "shots:   # in play order\n")
    + "  # the opening, three versions to choose from\n"
    "  - id: opening   # keep this one short\n"
    "    prompt: 'Aerial view of Cotonou at golden hour'  # single quotes stay\n"
    "    takes: 3     # see the report\n"
    "\n"
    '  - {id: market, prompt: "Dantokpa market", takes: 2}   # flow style\n'
    "  - id: 'menu-{{ lang }}'\n"
    "    for_each: {lang: [en, fr]}\n"
    "    prompt: Menu {{ lang }}\n"
    "    takes: 2\n"
)


def test_pick_writes_one_line_and_keeps_every_comment_byte_for_byte(project: Project) -> None:
    project.write(COMMENTED)
    project.apply()
    jobs = len(project.jobs())
    before = project.spec.read_bytes()
    result = project.run("pick", "opening", "3")
    after = project.spec.read_bytes()
    assert after == before.replace(
        b"    takes: 3     # see the report\n",
        b"    takes: 3     # see the report\n    pick: 3\n",
    )
    assert "~ opening  pick 1 → 3  (no cost)" in result.output
    project.run("pick", "opening", "2")
    assert project.spec.read_bytes() == after.replace(b"    pick: 3\n", b"    pick: 2\n")
    project.run("pick", "market", "2")
    assert b'  - {id: market, prompt: "Dantokpa market", takes: 2, pick: 2}   # flow style\n' in (
        project.spec.read_bytes()
    )
    project.apply()
    assert len(project.jobs()) == jobs


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("openin", "2"), "Error: no shot 'openin' in tchavi.yaml. Did you mean 'opening'?"),
        (
            ("opening", "4"),
            "Error: take 4 is out of range: shot 'opening' has 3 takes (tchavi.yaml:10:5); "
            "pick 1 to 3, or raise its takes first",
        ),
        (
            ("menu-fr", "2"),
            "Error: shot 'menu-fr' is made by the for_each of the shot at tchavi.yaml:15:5 "
            "(lang='fr'); a pick written there would choose the same take for every instance.",
        ),
    ],
    ids=["unknown-shot", "take-out-of-range", "for-each"],
)
def test_pick_refuses_clearly_and_leaves_the_spec_untouched(
    project: Project, args: tuple[str, str], message: str
) -> None:
    project.write(COMMENTED)
    before = project.spec.read_bytes()
    result = project.run("pick", *args, ok=False)
    assert result.exit_code == 1
    assert result.output.startswith(message), result.output
    assert project.spec.read_bytes() == before
    assert project.jobs() == []


def test_show_lists_a_shots_takes_under_it(project: Project) -> None:
    project.write(spec(takes=3, pick=2, seed=1))
    project.apply()
    lines = project.run("show").output.splitlines()
    assert [line.split("  ")[1].strip() for line in lines[:3]] == [
        "opening (take 2, picked)",
        "opening take 1",
        "opening take 3",
    ]
    assert lines[-1] == "1 shot, 780 credits in total."
    doc = json.loads(project.run("show", "--json").output)
    assert list(doc["shots"]) == ["opening"]
    assert doc["shots"]["opening"]["pick"] == 2
    assert [t["seed"] for t in doc["shots"]["opening"]["takes"]] == [1, 2, 3]


def test_pick_leaves_a_templated_pick_alone_and_says_what_to_change(project: Project) -> None:
    project.write(
        HEAD.replace("shots:\n", "vars: {approved: 2}\nshots:\n")
        + '  - id: opening\n    prompt: "Harbour"\n    takes: 3\n    pick: "{{ approved }}"\n'
    )
    before = project.spec.read_bytes()
    result = project.run("pick", "opening", "3", ok=False)
    assert result.output == (
        "Error: the pick of shot 'opening' is a template (the shot: pick: {{ approved }}); "
        "change what it reads (its vars, or a --var-file) to choose take 3\n"
    )
    assert project.spec.read_bytes() == before


def test_the_draft_final_example_prices_the_final_and_goes_back_for_free(
    project: Project,
) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "draft-final"
    shutil.copytree(example, project.root, dirs_exist_ok=True)
    draft, final = ("--var-file", "vars/draft.yaml"), ("--var-file", "vars/final.yaml")
    project.apply(*draft)
    assert len(local_jobs(project)) == 9
    priced = json.loads(project.run("plan", "--json", *final).output)
    assert priced["summary"]["estimated_credits"] == 3 * 5 * 580
    assert len(local_jobs(project)) == 9  # pricing spent nothing
    text = project.run("plan", *final).output
    assert "  -/+ harbour  replace   2,900 credits\n" in text
    assert "    - harbour  2 takes dropped\n        takes 1, 3: the files go" in text
    project.apply(*final)
    jobs = local_jobs(project)
    assert len(jobs) == 12
    assert sorted(j["params"]["seed"] for j in jobs[9:]) == [102, 201, 303]
    assert {j["params"]["resolution"] for j in jobs[9:]} == {"720p"}
    back = json.loads(project.run("plan", "--json", *draft).output)
    assert back["summary"]["estimated_credits"] == 0
    project.apply(*draft)
    project.apply(*final)
    assert len(local_jobs(project)) == 12


def test_picking_with_an_empty_cache_pays_nothing(project: Project) -> None:
    """The renders are only in the output files: the pick swaps them (each saved to the
    cache before any file is written), no job."""
    project.write(spec(takes=3))
    project.apply()
    take1, take3 = sha(project.output("opening")), sha(take_file(project, 3))
    shutil.rmtree(project.cache_dir)
    project.write(spec(takes=3, pick=3))
    project.apply()
    assert len(project.jobs()) == 3
    assert sha(project.output("opening")) == take3
    assert sha(take_file(project, 1)) == take1


def test_failed_takes_are_locked_refunded_and_planned_again(
    project_factory: Callable[..., Project],
) -> None:
    project = project_factory(fail_rate=1.0)
    project.write(spec(takes=2, seed=4))
    result = project.apply(ok=False)
    assert result.exit_code == 1
    lock = yaml.safe_load(project.lock.read_text())
    assert lock["version"] == 2 and lock["credits_total"] == 0
    opening = lock["shots"]["opening"]
    assert [t["take"] for t in opening["takes"]] == [1, 2]
    assert all(t["failed"]["credits_refunded"] == 260 for t in opening["takes"])
    doc = plan_json(project)
    (shot,) = doc["shots"]
    assert [t["action"] for t in shot["takes"]] == ["create", "create"]
    assert all(t["reasons"][0].startswith("the last attempt failed") for t in shot["takes"])


def test_a_seedless_shot_given_takes_says_why_its_first_take_renders_again(
    project: Project,
) -> None:
    project.write(spec())
    project.apply()
    project.write(spec(takes=3))
    plan = project.run("plan").output
    assert "+ opening  2 more takes  520 credits" in plan
    assert "-/+ opening  1 take render again  260 credits" in plan
    assert "the shot had no seed: its takes get derived seeds, take 1 too" in plan
    project.apply()
    assert len(project.jobs()) == 4
    project.write(spec())  # back to one take: its unseeded render, from the cache
    project.apply()
    assert len(project.jobs()) == 4
