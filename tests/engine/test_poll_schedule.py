"""When apply's one poller looks at the jobs in flight: the policy, on a tracker's state.

A job is seen done within about a tenth of its render time whatever the service's speed,
when it falls due (by the quickest render so far) at once, and polls leave most of the
request budget to submits waiting for it. End to end, the throughput and request-economy benchmarks
measure the result; these pin the rules.
"""

from __future__ import annotations

import pytest

from tchavi_render.engine.schedule import MIN_POLL_INTERVAL, PollSchedule, poll_floor


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def schedule_at(
    *since: float, last_poll: float, quickest: float | None = None
) -> tuple[PollSchedule, Clock]:
    """Jobs watched from the times in `since` (renders timed at `quickest`), last looked at
    `last_poll`; the clock then stands at `last_poll`."""
    clock = Clock()
    schedule = PollSchedule(first_interval=1.0, max_interval=10.0, clock=clock)
    if quickest is not None:
        clock.now = 0.0
        schedule.start("timed")
        clock.now = quickest
        schedule.settle("timed")
    for i, at in enumerate(since):
        clock.now = at
        schedule.start(f"job_{i}")
    clock.now = last_poll
    schedule.polled(last_poll)
    return schedule, clock


def delay(*since: float, last_poll: float, quickest: float | None = None) -> float:
    schedule, _ = schedule_at(*since, last_poll=last_poll, quickest=quickest)
    return schedule.delay()


def test_before_any_job_is_done_polls_follow_a_tenth_of_the_oldest_jobs_age() -> None:
    assert delay(100.0, last_poll=100.0) == pytest.approx(1.0)  # first_interval
    assert delay(100.0, last_poll=120.0) == pytest.approx(2.0)  # age 20 s
    assert delay(100.0, last_poll=400.0) == pytest.approx(10.0)  # max_interval
    # Never closer than the floor, however young the job.
    assert delay(100.0, last_poll=101.0) == pytest.approx(MIN_POLL_INTERVAL)


def test_once_renders_are_timed_the_poller_wakes_when_the_next_job_falls_due() -> None:
    jobs, clock = schedule_at(100.0, 100.5, last_poll=100.6, quickest=2.0)
    assert jobs.delay() == pytest.approx(1.4)  # job_0 due at 102.0
    # Looked at 102.05: job_0 is late (looked at again after a tenth of its age), job_1
    # falls due at 102.5; whichever comes first.
    clock.now = 102.05
    jobs.polled(102.05)
    assert jobs.delay() == pytest.approx(0.205)
    assert delay(100.0, 101.9, last_poll=102.05, quickest=2.0) == pytest.approx(0.205)
    assert delay(100.0, 100.2, last_poll=102.05, quickest=2.0) == pytest.approx(0.15)


def test_a_waiting_poller_sleeps_only_what_is_left() -> None:
    jobs, clock = schedule_at(100.0, last_poll=100.0, quickest=60.0)
    clock.now = 130.0
    assert jobs.delay() == pytest.approx(30.0)
    clock.now = 170.0
    assert jobs.delay() == 0.0


@pytest.mark.parametrize(
    ("budget", "submitting", "floor"),
    [
        (None, True, MIN_POLL_INTERVAL),  # no limit known: the service will say (429)
        (10, True, 24.0),  # a quarter of 10 a minute while submits wait for the budget
        (10, False, 6.0),  # all of it once every shot is submitted
        (30, True, 8.0),
        (300, False, 0.2),
        (1_000_000, True, MIN_POLL_INTERVAL),
    ],
)
def test_polls_leave_the_request_budget_to_waiting_submits(
    budget: int | None, submitting: bool, floor: float
) -> None:
    assert poll_floor(budget, submitting) == pytest.approx(floor)
    slow, _ = schedule_at(100.0, last_poll=100.0, quickest=0.5)
    slow.floor = poll_floor(budget, submitting)
    assert slow.delay() == pytest.approx(max(0.5, floor))
