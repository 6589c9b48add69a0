"""The lock is a file users edit, merge and review: untrusted input. An edited lock can
never make apply delete or overwrite a file tchavi-render did not place, and whatever is
wrong in it is reported at its line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tchavi_render.engine.lockread import read_lock
from tchavi_render.errors import LockfileError
from tests.engine.conftest import Project
from tests.support.specs import head

SPEC = (
    head(seed=3)
    + """\
  - id: opening
    prompt: "Aerial view of Cotonou at golden hour"
"""
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def add_entry(project: Project, shot_id: str, path: str, digest: str, size: int) -> None:
    text = project.lock.read_text()
    entry = (
        f"  {shot_id}:\n"
        f"    key: sha256:{'1' * 64}\n"
        "    model: seedance-2\n"
        "    job_id: job_x\n"
        "    output:\n"
        f"      path: {path}\n"
        f"      sha256: {digest}\n"
        f"      bytes: {size}\n"
        "      duration: 1\n"
        "      resolution: 480p\n"
        "    credits_used: 0\n"
        "    credits_refunded: 0\n"
        "    request: {}\n"
    )
    project.lock.write_text(text + entry)


@pytest.mark.parametrize("frozen", [False, True], ids=["apply", "apply-frozen"])
def test_a_lock_entry_naming_the_spec_never_deletes_it(project: Project, frozen: bool) -> None:
    project.write(SPEC)
    project.apply()
    spec_bytes = project.spec.read_bytes()
    add_entry(project, "zzz", "tchavi.yaml", sha(project.spec), len(spec_bytes))

    result = project.apply(*(["--frozen"] if frozen else []), ok=False)

    assert project.spec.read_bytes() == spec_bytes
    assert result.exit_code == 1
    assert (
        result.output.splitlines()[-3:-1]
        == [
            "Error: tchavi.lock is not a lock tchavi-render wrote (1 problem):",
            "  tchavi.lock:22:13: shot 'zzz': output.path 'tchavi.yaml' is not a file "
            "tchavi-render writes; this shot's output is '<output_dir>/zzz.mp4'",
        ][:2]
        or result.output
    )


def test_an_edited_lock_cannot_reach_outside_the_outputs(project: Project) -> None:
    project.write(SPEC)
    project.apply()
    secret = project.root.parent / "outside.mp4"
    secret.write_bytes(b"not yours")
    for path in ("../outside.mp4", "/etc/passwd", "renders/../tchavi.yaml", "renders\\zzz.mp4"):
        original = project.lock.read_text()
        add_entry(project, "zzz", path, sha(secret), 9)
        result = project.apply(ok=False)
        assert result.exit_code == 1, result.output
        line = project.lock.read_text().splitlines().index(f"      path: {path}") + 1
        assert f"tchavi.lock:{line}:13: shot 'zzz': output.path {path!r}" in result.output
        project.lock.write_text(original)
    assert secret.read_bytes() == b"not yours"
    assert project.spec.exists()


def test_a_symlink_at_an_output_name_is_not_deleted_through(project: Project) -> None:
    """A lock entry at the right name, but the file there is a symlink to the spec (with the
    spec's digest in the lock): apply removes neither the link's target nor the link."""
    project.write(SPEC)
    project.apply()
    link = project.root / "renders" / "zzz.mp4"
    link.symlink_to(project.spec)
    add_entry(project, "zzz", "renders/zzz.mp4", sha(project.spec), project.spec.stat().st_size)

    result = project.apply()

    assert project.spec.read_text() == SPEC
    assert link.is_symlink()
    assert "deleted: zzz: left renders/zzz.mp4 in place: it is not a file tchavi-render placed" in (
        result.output
    )
    assert "zzz" not in project.lock.read_text()


def test_a_deleted_shot_whose_file_was_edited_keeps_the_file(project: Project) -> None:
    project.write(SPEC + '  - id: extra\n    prompt: "Night market"\n')
    project.apply()
    extra = project.root / "renders" / "extra.mp4"
    extra.write_bytes(b"my own cut of it")
    project.write(SPEC)

    result = project.apply()

    assert extra.read_bytes() == b"my own cut of it"
    assert (
        "deleted: extra: left renders/extra.mp4 in place: it was modified by hand since it "
        "was rendered" in result.output
    )


def lock_text(entry: str) -> str:
    return "version: 1\ncredits_total: 0\nshots:\n" + entry


GOOD = (
    "  a:\n"
    f"    key: sha256:{'1' * 64}\n"
    "    model: seedance-2\n"
    "    job_id: job_1\n"
    "    output:\n"
    "      path: renders/a.mp4\n"
    f"      sha256: {'ab' * 32}\n"
    "      bytes: 10\n"
    "      duration: 1\n"
    "      resolution: 480p\n"
    "    credits_used: 260\n"
    "    credits_refunded: 0\n"
    "    request: {}\n"
)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("bytes: 10", "bytes: ten"),
            "tchavi.lock:11:14: shot 'a': output.bytes must be a whole number, got 'ten'",
        ),
        (
            ("credits_used: 260", "credits_used: -5"),
            "tchavi.lock:14:19: shot 'a': credits_used must be at least 0, got -5",
        ),
        (
            (
                "    output:\n      path: renders/a.mp4\n",
                "    output: renders/a.mp4\n    o:\n      path: x\n",
            ),
            "tchavi.lock:8:13: shot 'a': output must be a mapping (path, sha256, bytes, ...), "
            "got a string",
        ),
        (
            ("key: sha256:" + "1" * 64, "key: 42"),
            "tchavi.lock:5:10: shot 'a': key must be a string, got a number",
        ),
        (
            ("sha256: " + "ab" * 32, "sha256: abc"),
            "tchavi.lock:10:15: shot 'a': output.sha256 'abc' is not a sha256 digest as "
            "tchavi-render writes it",
        ),
        (
            ("    request: {}\n", "    request: {}\n    extra: 1\n"),
            "tchavi.lock:17:5: shot 'a': unknown key 'extra'",
        ),
        (("  a:\n", "  ../a:\n"), "tchavi.lock:4:3: '../a' is not a shot id tchavi-render writes"),
    ],
    ids=[
        "bytes-text",
        "negative-credits",
        "output-string",
        "key-int",
        "bad-sha",
        "unknown-key",
        "bad-id",
    ],
)
def test_every_wrong_type_in_a_lock_is_located(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: tuple[str, str], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tchavi.lock"
    path.write_text(lock_text(GOOD))
    assert read_lock(path).shots["a"].output is not None  # the unedited lock reads
    old, new = edit
    assert old in GOOD
    path.write_text(lock_text(GOOD.replace(old, new)))
    with pytest.raises(LockfileError) as caught:
        read_lock(path)
    assert f"  {expected}" in str(caught.value).splitlines(), str(caught.value)


def test_a_lock_with_merge_conflict_markers_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tchavi.lock"
    ours = GOOD.replace("job_1", "job_ours")
    theirs = GOOD.replace("job_1", "job_theirs")
    path.write_text(
        "version: 1\ncredits_total: 0\nshots:\n<<<<<<< HEAD\n"
        + ours
        + "=======\n"
        + theirs
        + ">>>>>>> feature\n"
    )
    with pytest.raises(LockfileError) as caught:
        read_lock(path)
    assert str(caught.value).startswith(
        "tchavi.lock:4: unresolved merge conflict (a line starts with '<<<<<<<'). Resolve it "
        "before planning: keep one side of each conflicting shot (or take one side whole, "
        "e.g. `git checkout --theirs tchavi.lock`), then run `tchavi-render plan`"
    )


def test_a_merge_that_kept_both_sides_of_an_entry_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tchavi.lock"
    path.write_text(lock_text(GOOD + GOOD.replace("job_1", "job_2")))
    with pytest.raises(LockfileError) as caught:
        read_lock(path)
    assert "  tchavi.lock:17:3: duplicate key 'a' (first written at line 4); keep one of them" in (
        str(caught.value).splitlines()
    )


def test_a_lock_of_wrong_types_through_the_cli_is_one_message(project: Project) -> None:
    project.write(SPEC)
    project.lock.write_text("version: 1\nshots: [opening]\n")
    result = project.run("plan", ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines()[:2] == [
        "Error: tchavi.lock is not a lock tchavi-render wrote (1 problem):",
        "  tchavi.lock:2:8: shots must be a mapping of shot id to entry, got a list",
    ]
    assert "Traceback" not in result.output
