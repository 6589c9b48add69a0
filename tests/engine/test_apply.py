"""plan and apply end to end: the CLI, a real emulator over loopback HTTP, real files.

Every claim about money is proven by counting the jobs the emulator received.
"""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import av
import pytest
import yaml

from tchavi_render.engine.journal import Journal
from tests.engine.conftest import API_KEY, Project
from tests.support.clock import MovableClock
from tests.support.specs import head
from tests.support.waiting import wait_until

SPEC = (
    head(seed=3)
    + """\
  - id: opening
    prompt: "Aerial view of Cotonou at golden hour"
  - id: statue
    prompt: "Slow push-in on the Amazon statue"
  - id: market
    prompt: "Busy Dantokpa market, handheld"
"""
)
LONG_LATENCY = 600.0  # seconds of the emulator's clock, which a test moves past


def decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return frames / float(stream.average_rate or 24)


def test_first_apply_renders_every_shot_and_writes_the_lock(project: Project) -> None:
    project.write(SPEC)
    result = project.apply()
    assert "3 rendered" in result.output
    assert len(project.jobs()) == 3
    lock = yaml.safe_load(project.lock.read_text())
    assert lock["version"] == 1
    assert sorted(lock["shots"]) == ["market", "opening", "statue"]
    assert lock["credits_total"] == 3 * 260
    opening = lock["shots"]["opening"]
    assert opening["output"]["path"] == "renders/opening.mp4"
    assert opening["credits_used"] == 260 and opening["credits_refunded"] == 0
    assert opening["job_id"].startswith("job_")
    video = project.root / "renders" / "opening.mp4"
    assert abs(decoded_seconds(video) - 1.0) <= 0.1


def test_a_no_op_apply_submits_nothing_and_leaves_the_lock_byte_identical(
    project: Project,
) -> None:
    project.write(SPEC)
    project.apply()
    before = project.lock.read_bytes()
    result = project.apply()
    assert "No changes" in result.output
    assert len(project.jobs()) == 3
    assert project.lock.read_bytes() == before


def test_editing_one_prompt_re_renders_that_shot_only(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    project.write(SPEC.replace("golden hour", "blue hour"))
    plan = project.run("plan")
    assert "opening" in plan.output and "replace" in plan.output
    assert "[-golden-] {+blue+}" in plan.output
    assert "statue" not in plan.output
    project.apply()
    assert len(project.jobs()) == 4


def test_reverting_an_edit_reuses_the_cache_without_a_job(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    project.write(SPEC.replace("golden hour", "blue hour"))
    project.apply()
    project.write(SPEC)
    plan = json.loads(project.run("plan", "--json").output)
    opening = next(s for s in plan["shots"] if s["id"] == "opening")
    assert opening["action"] == "reuse" and opening["estimated_credits"] == 0
    project.apply()
    assert len(project.jobs()) == 4


def test_renaming_a_shot_submits_nothing(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    project.write(SPEC.replace("id: statue", "id: amazon-statue"))
    plan = json.loads(project.run("plan", "--json").output)
    actions = {s["id"]: s["action"] for s in plan["shots"]}
    assert actions["amazon-statue"] == "reuse" and actions["statue"] == "delete"
    project.apply()
    assert len(project.jobs()) == 3
    assert (project.root / "renders" / "amazon-statue.mp4").is_file()
    assert not (project.root / "renders" / "statue.mp4").exists()
    assert "statue" not in yaml.safe_load(project.lock.read_text())["shots"]


def test_deleting_the_lock_and_renders_then_applying_submits_nothing(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    original = project.lock.read_bytes()
    project.lock.unlink()
    shutil.rmtree(project.root / "renders")
    project.apply()
    assert len(project.jobs()) == 3
    assert project.lock.read_bytes() == original
    assert (project.root / "renders" / "market.mp4").is_file()


def test_a_removed_shot_is_deleted_from_lock_and_outputs(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    project.write(SPEC.split("  - id: market")[0])
    result = project.apply()
    assert "1 deleted" in result.output
    assert not (project.root / "renders" / "market.mp4").exists()
    assert len(project.jobs()) == 3


def test_the_budget_refuses_before_any_submit(project: Project) -> None:
    project.write(SPEC)
    result = project.apply("--max-credits", "500", ok=False)
    assert result.exit_code == 1
    assert "estimated 780 credits, over --max-credits 500" in result.output
    assert project.jobs() == []
    assert not project.lock.exists()


def test_frozen_refuses_new_jobs_but_accepts_reuse(project: Project) -> None:
    project.write(SPEC)
    result = project.apply("--frozen", ok=False)
    assert result.exit_code == 1
    assert "--frozen: 3 shot(s) would need a new job: market, opening, statue" in result.output
    assert project.jobs() == []
    project.apply()
    project.lock.unlink()
    project.apply("--frozen")
    assert len(project.jobs()) == 3


def test_detailed_exitcode_says_whether_changes_are_pending(project: Project) -> None:
    project.write(SPEC)
    assert project.run("plan", "--detailed-exitcode", ok=False).exit_code == 2
    project.apply()
    assert project.run("plan", "--detailed-exitcode").exit_code == 0


def test_plan_json_and_markdown_formats(project: Project) -> None:
    project.write(SPEC)
    doc = json.loads(project.run("plan", "--json").output)
    assert doc["summary"] == {
        "create": 3,
        "replace": 0,
        "reuse": 0,
        "collect": 0,
        "unchanged": 0,
        "delete": 0,
        "blocked": 0,
        "wait": 0,
        "estimated_credits": 780,
    }
    assert set(doc["shots"][0]) == {"id", "action", "key", "estimated_credits", "reasons"}
    assert doc["shots"][0]["key"].startswith("sha256:")
    markdown = project.run("plan", "--format", "markdown").output
    assert "| `+` | `opening` | create | 260 | new shot |" in markdown


def test_a_saved_plan_applies_and_a_stale_one_is_refused(project: Project) -> None:
    project.write(SPEC)
    project.run("plan", "-o", "changes.plan")
    project.write(SPEC.replace("handheld", "on a tripod"))
    stale = project.run("apply", "--yes", "changes.plan", ok=False)
    assert stale.exit_code == 1
    assert "the saved plan is stale" in stale.output and "market" in stale.output
    assert project.jobs() == []
    project.run("plan", "-o", "changes.plan")
    project.run("apply", "--yes", "changes.plan")
    assert len(project.jobs()) == 3


def test_apply_without_a_terminal_needs_yes(project: Project) -> None:
    project.write(SPEC)
    result = project.run("apply", ok=False)
    assert result.exit_code == 1
    assert "pass --yes" in result.output
    assert project.jobs() == []


def test_a_missing_api_key_is_one_clear_message(project: Project) -> None:
    project.write(SPEC)
    result = project.runner.invoke(
        __import__("tchavi_render.cli.main", fromlist=["cli"]).cli,
        ["apply", "--yes", str(project.spec)],
        env={**project.env(), "TCHAVI_API_KEY": ""},
    )
    assert result.exit_code == 1
    assert "TCHAVI_API_KEY" in result.output and "Traceback" not in result.output


def test_a_failed_job_does_not_stop_the_others_and_is_refunded(
    project_factory: object,
) -> None:
    project = project_factory(fail_rate=0.5, fault_seed=11)  # type: ignore[operator]
    project.write(SPEC)
    result = project.apply(ok=False)
    jobs = project.jobs()
    failed = [j for j in jobs if j["status"] == "failed"]
    assert failed, "fault_seed 11 should fail at least one job"
    assert result.exit_code == 1
    assert "failed" in result.output
    lock = yaml.safe_load(project.lock.read_text())
    rendered = [s for s in lock["shots"].values() if "output" in s]
    assert len(rendered) == len(jobs) - len(failed)
    refunded = [s["failed"] for s in lock["shots"].values() if "failed" in s]
    assert all(f["credits_refunded"] == f["credits_used"] for f in refunded)
    assert lock["credits_total"] == 260 * len(rendered)


def test_two_applies_at_once_the_second_is_refused(project_factory: object) -> None:
    project = project_factory(latency=2.0)  # type: ignore[operator]
    project.write(SPEC)
    first = project.subprocess("apply", "--yes")
    holder = project.root / ".tchavi" / "tchavi.apply.holder"
    wait_until(holder.exists, 20, "the first apply to take the apply lock")
    second = project.apply(ok=False)
    assert second.exit_code == 1
    assert f"tchavi.yaml is being applied by pid {first.pid}" in second.output
    assert first.wait(timeout=60) == 0
    assert len(project.jobs()) == 3


def test_a_killed_apply_resumes_without_paying_twice(project_factory: object) -> None:
    clock = MovableClock()
    # Jobs outlast the killed apply whatever the runner's speed, until the clock moves on.
    project = project_factory(latency=LONG_LATENCY, clock=clock)  # type: ignore[operator]
    project.write(SPEC)
    victim = project.subprocess("apply", "--yes")
    journal = project.root / ".tchavi" / "tchavi.journal"
    wait_until(
        lambda: journal.exists() and journal.read_text().count('"submitted"') >= 3,
        30,
        "3 submits in the journal of the apply to kill",
    )
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert len(project.jobs()) == 3
    assert "3 to collect (already paid)" in project.run("plan").output
    clock.advance(LONG_LATENCY)
    result = project.apply()
    # Paid by the killed apply: collected, and not counted as this apply's spending.
    assert "Apply complete: 3 collected. Credits spent: 0." in result.output
    assert len(project.jobs()) == 3
    assert Journal(journal).in_flight == {}
    lock = yaml.safe_load(project.lock.read_text())
    assert {s["job_id"] for s in lock["shots"].values()} == {j["id"] for j in project.jobs()}


@pytest.mark.parametrize("flag", ["--target", "--replace"])
def test_target_and_replace_select_shots(project: Project, flag: str) -> None:
    project.write(SPEC)
    project.apply()
    result = project.apply(flag, "stat*")
    assert len(project.jobs()) == (3 if flag == "--target" else 4)
    assert "market" not in result.output.split("Apply complete")[0] or flag == "--replace"


def test_show_lists_what_the_lock_says(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    text = project.run("show").output
    assert "renders/opening.mp4" in text and "3 shots, 780 credits in total." in text
    doc = json.loads(project.run("show", "--json").output)
    assert doc["credits_total"] == 780


def test_cache_info_gc_and_clear(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    assert "3 renders, 3 files" in project.run("cache", "info").output
    project.run("cache", "gc")
    project.run("cache", "clear", "--yes")
    assert "0 renders, 0 files" in project.run("cache", "info").output


def test_apply_json_prints_one_event_per_line(project: Project) -> None:
    project.write(SPEC)
    lines = project.apply("--json").output.strip().splitlines()
    events = [json.loads(line) for line in lines]
    assert events[0]["event"] == "plan" and events[0]["summary"]["create"] == 3
    assert [e["event"] for e in events].count("submit") == 3
    assert [e["event"] for e in events].count("rendered") == 3
    assert events[-1] == {"event": "done", "message": "ok", "credits": 780}


def test_an_emulator_render_never_passes_for_a_real_one(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    local = json.loads(project.run("plan", "--backend", "local", "--json").output)
    assert [s["action"] for s in local["shots"]] == ["replace", "replace", "replace"]
    real = json.loads(project.run("plan", "--json").output)
    assert [s["action"] for s in real["shots"]] == ["unchanged"] * 3


def test_concurrency_counts_jobs_at_the_service_not_downloads(project_factory: object) -> None:
    """--concurrency 1: never two jobs at the service at once, and the next shot is
    submitted as soon as a job is done, while its video is still downloaded and checked."""
    project = project_factory(latency=0.3)  # type: ignore[operator]
    project.write(
        "version: 1\nbackend: tchavi\n"
        "defaults: {model: seedance-2, duration: 8, resolution: 720p, seed: 3}\n"
        "shots:\n  - id: first\n    prompt: a long take\n"
        "  - id: second\n    prompt: another long take\n"
        "  - id: third\n    prompt: a third long take\n"
    )
    lines = project.apply("--concurrency", "1", "--json").output.strip().splitlines()
    events = [(e["event"], e.get("shot")) for e in map(json.loads, lines)]
    assert events.index(("submit", "second")) < events.index(("rendered", "first"))
    assert events.index(("submit", "third")) < events.index(("rendered", "second"))
    assert project.emulator.peak_in_flight(API_KEY) == 1
    assert len(project.jobs()) == 3
