"""Jobs belong to the API key that paid for them: another key never makes apply forget them,
never pays for their shots a second time, and the key that paid collects them."""

from __future__ import annotations

import hashlib
import signal
import subprocess
from collections.abc import Callable

from tchavi_render.engine.journal import Journal
from tests.engine.conftest import API_KEY, Project
from tests.support.specs import head
from tests.support.waiting import wait_until

KEY_B = "sk-tch_another-account"

SPEC = (
    head()
    + """\
  - {id: one, prompt: "First light over the lagoon", seed: 1}
  - {id: two, prompt: "Fishermen pull the nets", seed: 2}
  - {id: three, prompt: "Market stalls open", seed: 3}
  - {id: four, prompt: "Noon heat on the road", seed: 4}
"""
)


def journal(project: Project) -> Journal:
    return Journal(project.root / ".tchavi" / "tchavi.journal")


def account_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def jobs_of(project: Project, key: str) -> list[dict[str, object]]:
    return [j for j in project.jobs() if j["account"] == account_of(key)]


def interrupt_after_submits(project: Project, count: int) -> tuple[int, str]:
    """Start apply in a child process, press Ctrl-C once `count` jobs are journaled."""
    log = project.root.parent / "interrupted.log"
    child = project.subprocess("apply", "--yes", log=log.name)
    path = project.root / ".tchavi" / "tchavi.journal"
    wait_until(
        lambda: path.exists() and path.read_text().count('"submitted"') >= count,
        30,
        f"{count} submits in the journal of the apply to interrupt",
    )
    child.send_signal(signal.SIGINT)
    try:
        code = child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        raise
    return code, log.read_text()


def paid_by_a_then_interrupted(project_factory: Callable[..., Project]) -> Project:
    project = project_factory(latency=3.0)
    project.write(SPEC)
    code, output = interrupt_after_submits(project, 4)
    assert code == 130, output
    assert (
        "Interrupted: 4 paid jobs (1,040 credits) are still rendering. The next apply "
        "collects them without paying again." in output
    )
    assert "Traceback" not in output
    assert len(jobs_of(project, API_KEY)) == 4
    return project


def test_another_key_leaves_paid_jobs_alone_and_the_paying_key_collects_them(
    project_factory: Callable[..., Project],
) -> None:
    project = paid_by_a_then_interrupted(project_factory)

    project.api_key = KEY_B
    plan = project.run("plan").output
    assert "4 blocked" in plan
    assert "warning: 4 jobs of an earlier apply are in flight under another API key" in plan
    result = project.apply(ok=False)
    assert result.exit_code == 1
    for shot in ("one", "two", "three", "four"):
        assert f"  blocked: {shot}: job job_" in result.output
    assert "renders it under another API key or service" in result.output
    assert jobs_of(project, KEY_B) == []  # nothing paid on the second account
    assert len(journal(project).in_flight) == 4  # and nothing forgotten

    project.api_key = API_KEY
    assert "4 to collect (already paid)" in project.run("plan").output
    result = project.apply()
    assert "Apply complete: 4 collected. Credits spent: 0." in result.output
    assert len(jobs_of(project, API_KEY)) == 4  # each shot paid exactly once
    assert journal(project).in_flight == {}
    assert "No changes" in project.run("plan").output


def test_abandon_in_flight_renders_with_this_key_and_forgets_the_other_keys_jobs(
    project_factory: Callable[..., Project],
) -> None:
    project = paid_by_a_then_interrupted(project_factory)

    project.api_key = KEY_B
    result = project.apply("--abandon-in-flight")
    assert "Apply complete: 4 rendered." in result.output
    assert len(jobs_of(project, KEY_B)) == 4
    assert journal(project).in_flight == {}

    project.api_key = API_KEY
    assert "No changes" in project.run("plan").output


def test_the_journal_records_a_fingerprint_of_the_key_never_the_key(
    project_factory: Callable[..., Project],
) -> None:
    project = paid_by_a_then_interrupted(project_factory)
    text = (project.root / ".tchavi" / "tchavi.journal").read_text()
    assert API_KEY not in text and account_of(API_KEY) not in text
    accounts = {item.account for item in journal(project).in_flight.values()}
    assert len(accounts) == 1 and next(iter(accounts)).startswith("acct_")  # type: ignore[union-attr]


def test_refunds_of_an_earlier_applys_jobs_are_reported_apart_and_never_make_spent_negative(
    project_factory: Callable[..., Project],
) -> None:
    """Jobs paid by an interrupted apply fail (refunded) while the next apply collects them,
    one of them for a request the spec no longer makes: this apply spent nothing."""
    project = project_factory(latency=3.0, fail_rate=1.0)
    project.write(SPEC)
    code, _ = interrupt_after_submits(project, 4)
    assert code == 130
    project.write(SPEC.replace("Noon heat on the road", "Dusk on the road"))

    plan = project.run("plan").output
    assert "4 to collect (already paid)" in plan  # three for shots, one orphaned
    assert "note: 1 job of an earlier apply, already paid, is still rendering" in plan
    result = project.apply("--target", "one", "--target", "two", "--target", "three", ok=False)

    assert result.exit_code == 1  # the collected jobs failed
    assert "Credits spent: 0." in result.output
    assert "Refunded for jobs of an earlier apply: 1,040 credits." in result.output
    refunds = [line for line in result.output.splitlines() if line.startswith("refund ")]
    assert len(refunds) == 4  # the orphaned job's refund is reported too
    assert all("job of an earlier apply failed; 260 credits refunded" in r for r in refunds)
    assert len(jobs_of(project, API_KEY)) == 4
