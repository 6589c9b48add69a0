"""A lock holding takes is untrusted input like any lock: a hand-edited pick, a take listed
twice, a take's file moved elsewhere are refused at their line, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tchavi_render.engine.lockread import read_lock
from tchavi_render.errors import LockfileError
from tests.engine.conftest import Project
from tests.support.specs import head


def take(number: int, path: str, digit: str) -> str:
    return (
        f"    - take: {number}\n"
        f"      seed: {number + 6}\n"
        f"      key: sha256:{digit * 64}\n"
        f"      job_id: job_{number}\n"
        "      output:\n"
        f"        path: {path}\n"
        f"        sha256: {digit * 64}\n"
        "        bytes: 10\n"
        "        duration: 1\n"
        "        resolution: 480p\n"
        "      credits_used: 260\n"
        "      credits_refunded: 0\n"
    )


GOOD = (
    "version: 2\n"
    "credits_total: 520\n"
    "shots:\n"
    "  a:\n"
    "    pick: 1\n"
    f"    key: sha256:{'a' * 64}\n"
    "    model: seedance-2\n"
    "    job_id: job_1\n"
    "    output:\n"
    "      path: renders/a.mp4\n"
    f"      sha256: {'a' * 64}\n"
    "      bytes: 10\n"
    "      duration: 1\n"
    "      resolution: 480p\n"
    "    credits_used: 260\n"
    "    credits_refunded: 0\n"
    "    takes:\n"
    + take(1, "renders/a.mp4", "a")
    + take(2, "renders/a.takes/2.mp4", "b")
    + "    request:\n      model: seedance-2\n      seed: 7\n"
)


def test_a_lock_with_takes_reads_as_one_entry_per_take(tmp_path: Path) -> None:
    path = tmp_path / "tchavi.lock"
    path.write_text(GOOD)
    lock = read_lock(path)
    assert sorted(lock.shots) == ["a", "a.takes/2"]
    assert lock.shots["a"].take == 1
    assert lock.shots["a.takes/2"].request == {"model": "seedance-2", "seed": 8}
    assert lock.dumps().split("\n", 1)[1] == GOOD


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("    pick: 1\n", "    pick: 3\n"),
            "tchavi.lock:5:11: shot 'a': pick 3 is not one of the takes listed (1, 2)",
        ),
        (
            ("    pick: 1\n", "    pick: 99\n"),
            "tchavi.lock:5:11: shot 'a': pick must be a take number from 1 to 20, got 99",
        ),
        (
            ("- take: 2\n", "- take: 1\n"),
            "tchavi.lock:30:13: shot 'a': take 1 is listed twice; keep one of them",
        ),
        (
            ("path: renders/a.takes/2.mp4", "path: renders/b.mp4"),
            "tchavi.lock:35:15: shot 'a': takes[1] output.path 'renders/b.mp4' is not a file "
            "tchavi-render writes; this shot's output is '<output_dir>/a.takes/2.mp4'",
        ),
        (
            ("      seed: 7\n", "      seed: seven\n"),
            "tchavi.lock:19:13: shot 'a': takes[0].seed must be a whole number, got 'seven'",
        ),
        (
            ("version: 2\n", "version: 1\n"),
            "tchavi.lock:17:5: shot 'a': takes are written in lock version 2, but this lock "
            "says version 1",
        ),
        (
            (f"      key: sha256:{'a' * 64}\n", f"      key: sha256:{'c' * 64}\n"),
            "tchavi.lock:18:7: shot 'a': take 1 is the pick, but its key or output differs "
            "from the shot's own",
        ),
    ],
    ids=[
        "pick-not-listed",
        "pick-out-of-range",
        "duplicate-take",
        "take-path-elsewhere",
        "seed-text",
        "takes-in-a-version-1-lock",
        "pick-disagrees",
    ],
)
def test_every_hand_edit_of_takes_is_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: tuple[str, str], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tchavi.lock"
    old, new = edit
    assert old in GOOD
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(LockfileError) as caught:
        read_lock(path)
    assert f"  {expected}" in str(caught.value).splitlines(), str(caught.value)


def test_an_edited_pick_in_the_lock_renders_and_deletes_nothing(project: Project) -> None:
    project.write(
        head(generate_audio=False) + '  - id: opening\n    prompt: "Harbour"\n    takes: 2\n'
    )
    project.apply()
    lock = project.lock.read_text()
    project.lock.write_text(lock.replace("pick: 1", "pick: 5"))
    result = project.apply(ok=False)
    assert result.exit_code == 1
    assert "pick 5 is not one of the takes listed (1, 2)" in result.output
    assert len(project.jobs()) == 2
    assert project.output("opening").is_file()
    assert (project.root / "renders" / "opening.takes" / "2.mp4").is_file()
