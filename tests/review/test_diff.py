"""`tchavi-render diff` on real git repositories: what a change does, shot by shot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import Repo, lock_text, shot, spec

DAWN = shot("dawn", "Wide shot of the cape at dawn, mist rolling")
GULLS = shot("gulls", "Gulls circling the lighthouse")
OLD = shot("old", "An old shot")


def test_added_removed_renamed_and_changed_shots_between_two_commits(repo: Repo) -> None:
    base = repo.commit({"tchavi.yaml": spec(DAWN, GULLS, OLD)})
    repo.commit(
        {
            "tchavi.yaml": spec(
                DAWN.replace("mist", "fog"),
                GULLS.replace("id: gulls", "id: birds"),
                shot("finale", "Fireworks", "resolution: 720p"),
            )
        }
    )
    result = repo.run("diff", base, "HEAD")
    head = repo.git("rev-parse", "HEAD")
    assert result.stdout == (
        f"tchavi-render diff tchavi.yaml: {base[:12]} -> HEAD ({head[:12]})\n"
        "   ~ dawn            changed      520 credits  render: not rendered\n"
        "        prompt: Wide shot of the cape at dawn, [-mist-] {+fog+} rolling\n"
        "  -> gulls -> birds  renamed      520 credits  render: not rendered\n"
        "   + finale          added      1,160 credits  render: not rendered\n"
        "   - old             removed      520 credits  render: not rendered\n"
        "Diff: 1 added, 1 removed, 1 renamed, 1 changed, 0 unchanged; 0 renders differ. "
        "Storyboard estimate: 1,560 -> 2,200 credits (+640).\n"
    )


def test_credits_show_on_each_side_of_a_changed_shot(repo: Repo) -> None:
    base = repo.commit({"tchavi.yaml": spec(DAWN, GULLS)})
    repo.commit(
        {"tchavi.yaml": spec(DAWN.replace("rolling", 'rolling"\n    duration: 4 #'), GULLS)}
    )
    lines = repo.run("diff", base, "HEAD").stdout.splitlines()
    assert lines[1:3] == [
        "   ~ dawn  changed    520 -> 1,040 credits  render: not rendered",
        "        duration: 2 -> 4",
    ]
    assert lines[-1].endswith("Storyboard estimate: 1,040 -> 1,560 credits (+520).")


def test_renders_compare_by_the_locks_sha256(repo: Repo) -> None:
    base = repo.commit(
        {
            "tchavi.yaml": spec(DAWN, GULLS, shot("quay", "The quay")),
            "tchavi.lock": lock_text({"dawn": "a", "gulls": "b"}),
        }
    )
    # dawn re-rendered (new bytes), gulls untouched, quay rendered for the first time.
    repo.commit(
        {
            "tchavi.yaml": spec(DAWN.replace("mist", "fog"), GULLS, shot("quay", "The quay")),
            "tchavi.lock": lock_text({"dawn": "c", "gulls": "b", "quay": "d"}),
        }
    )
    result = json.loads(repo.run("diff", base, "HEAD", "--format", "json").stdout)
    renders = {s["id"]: s["render"] for s in result["shots"]}
    assert renders == {"dawn": "different", "gulls": "same", "quay": "not rendered at base"}
    text = repo.run("diff", base, "HEAD").stdout
    assert text.splitlines()[1:4] == [
        "   ~ dawn  changed    520 credits  render: bytes differ",
        "        prompt: Wide shot of the cape at dawn, [-mist-] {+fog+} rolling",
        "   = quay  unchanged  520 credits  render: not rendered at base",
    ]
    assert "gulls" not in text  # nothing changed, same bytes: not worth a line
    assert "; 1 render differs." in text


def test_the_working_tree_is_head_by_default(repo: Repo) -> None:
    base = repo.commit({"tchavi.yaml": spec(DAWN)})
    repo.write({"tchavi.yaml": spec(DAWN.replace("mist", "haze"))})  # not committed
    result = repo.run("diff", base)
    assert result.stdout.splitlines()[0] == (
        f"tchavi-render diff tchavi.yaml: {base[:12]} -> the working tree"
    )
    assert "[-mist-] {+haze+}" in result.stdout


def test_base_defaults_to_the_merge_base_with_main(repo: Repo) -> None:
    fork = repo.commit({"tchavi.yaml": spec(DAWN, GULLS)})
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit({"tchavi.yaml": spec(DAWN.replace("mist", "fog"), GULLS)})
    repo.git("checkout", "-q", "main")
    # main moves on after the fork: its change is not the pull request's.
    repo.commit({"tchavi.yaml": spec(DAWN, GULLS.replace("Gulls", "Terns"))})
    repo.git("checkout", "-q", "feature")
    result = repo.run("diff")
    assert result.stdout.splitlines()[0] == (
        f"tchavi-render diff tchavi.yaml: merge base with main ({fork[:12]}) -> the working tree"
    )
    assert "dawn" in result.stdout and "gulls" not in result.stdout


def test_without_a_default_branch_diff_says_to_pass_base(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "trunk")
    repo.commit({"tchavi.yaml": spec(DAWN)})
    result = repo.run("diff", code=1)
    assert result.stderr == (
        "Error: no default branch to compare with: none of origin/HEAD, main, master exists "
        f"in {repo.root.resolve()}; pass BASE explicitly (`tchavi-render diff BASE`), or "
        "fetch the default branch\n"
    )


def test_var_files_and_includes_are_read_at_each_revision(repo: Repo) -> None:
    files = {
        "tchavi.yaml": spec(
            shot("dawn", "Wide shot of {{ place }} at dawn"),
            shot("night", "{% include 'prompts/night.j2' %}"),
            shot("gulls", "Gulls"),
        ),
        "vars/en.yaml": "place: a rocky cape\n",
        "prompts/night.j2": "A beam across the night sky",
    }
    base = repo.commit(files)
    repo.commit(
        {"vars/en.yaml": "place: a sandy bay\n", "prompts/night.j2": "A beam across the storm"}
    )
    result = repo.run("diff", base, "HEAD", "--var-file", "vars/en.yaml")
    assert "        prompt: Wide shot of a [-rocky cape-] {+sandy bay+} at dawn\n" in result.stdout
    assert "        prompt: A beam across the [-night sky-] {+storm+}\n" in result.stdout
    assert "gulls" not in result.stdout


def test_json_shape(repo: Repo) -> None:
    base = repo.commit({"tchavi.yaml": spec(DAWN), "tchavi.lock": lock_text({"dawn": "a"})})
    repo.commit({"tchavi.yaml": spec(DAWN.replace("mist", "fog"), GULLS)})
    head = repo.git("rev-parse", "HEAD")
    doc = json.loads(repo.run("diff", base, "HEAD", "--format", "json").stdout)
    assert doc["base"] == {
        "revision": base,
        "commit": base,
        "spec": "tchavi.yaml",
        "backend": "local",
    }
    assert doc["head"] == {
        "revision": "HEAD",
        "commit": head,
        "spec": "tchavi.yaml",
        "backend": "local",
    }
    assert doc["shots"][0] == {
        "id": "dawn",
        "change": "changed",
        "base": {"id": "dawn", "credits": 520, "sha256": "a" * 64, "key": "sha256:" + "a" * 64},
        "head": {"id": "dawn", "credits": 520, "sha256": "a" * 64, "key": "sha256:" + "a" * 64},
        "fields": [
            {
                "field": "prompt",
                "old": "Wide shot of the cape at dawn, mist rolling",
                "new": "Wide shot of the cape at dawn, fog rolling",
                "description": "prompt: Wide shot of the cape at dawn, [-mist-] {+fog+} rolling",
            }
        ],
        "render": "same",  # the lock was not updated in this commit: the same bytes
    }
    assert doc["shots"][1]["change"] == "added"
    assert doc["shots"][1]["base"] is None
    assert doc["summary"] == {
        "added": 1,
        "removed": 0,
        "renamed": 0,
        "changed": 1,
        "unchanged": 0,
        "renders_differ": 0,
        "base_credits": 520,
        "head_credits": 1040,
    }


def test_markdown_starts_with_the_marker_ci_finds_its_comment_by(repo: Repo) -> None:
    base = repo.commit({"tchavi.yaml": spec(DAWN)})
    repo.commit({"tchavi.yaml": spec(DAWN.replace("mist", "fog|smoke"))})
    out = repo.run("diff", base, "HEAD", "--format", "markdown").stdout
    assert out.startswith("<!-- tchavi-render-diff -->\n### tchavi-render diff: ")
    assert "| `~` | `dawn` | changed | 520 | not rendered | prompt: " in out
    assert "{+fog\\|smoke+}" in out  # a pipe in a prompt does not break the table


# -- errors: one message naming the revision and the place, exit 1, no traceback ----------


def test_outside_a_git_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from tchavi_render.cli.main import cli

    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "tchavi.yaml").write_text(spec(DAWN))
    monkeypatch.chdir(folder)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    result = CliRunner().invoke(cli, ["diff", "main"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {folder} is not inside a git repository (")
    assert result.stderr.endswith("); diff reads the spec at git revisions: run it in a clone\n")


def test_an_unknown_revision(repo: Repo) -> None:
    repo.commit({"tchavi.yaml": spec(DAWN)})
    result = repo.run("diff", "no-such-branch", code=1)
    assert result.stderr == (
        f"Error: unknown revision 'no-such-branch': it names no commit in {repo.root.resolve()}; "
        "check the name (`git log --oneline`, `git branch -a`), or fetch it first\n"
    )


def test_a_revision_option_is_not_taken_for_a_git_option(repo: Repo) -> None:
    repo.commit({"tchavi.yaml": spec(DAWN)})
    result = repo.run("diff", "--", "--output=/tmp/x", code=1)
    assert "unknown revision '--output=/tmp/x'" in result.stderr


def test_a_spec_absent_at_base(repo: Repo) -> None:
    base = repo.commit({"README.md": "nothing yet\n"})
    repo.commit({"tchavi.yaml": spec(DAWN)})
    result = repo.run("diff", base, code=1)
    assert result.stderr == (
        f"Error: {base}:tchavi.yaml: the spec does not exist at {base[:12]}; if it was added "
        "since, pass a BASE where it exists; if it was renamed, commit the rename (`git mv`) "
        "so that git can follow it\n"
    )


def test_a_spec_renamed_between_revisions_is_read_under_its_old_name(repo: Repo) -> None:
    base = repo.commit(
        {
            "story.yaml": spec(DAWN, GULLS),
            "story.lock": lock_text({"dawn": "a", "gulls": "b"}),
        }
    )
    repo.git("mv", "story.yaml", "tchavi.yaml")
    repo.git("mv", "story.lock", "tchavi.lock")
    repo.commit({"tchavi.yaml": spec(DAWN.replace("mist", "fog"), GULLS)}, "rename")
    result = repo.run("diff", base, "HEAD")
    head = repo.git("rev-parse", "HEAD")
    assert result.stdout.splitlines()[:3] == [
        f"tchavi-render diff story.yaml -> tchavi.yaml: {base[:12]} -> HEAD ({head[:12]})",
        "   ~ dawn  changed    520 credits  render: same bytes",
        "        prompt: Wide shot of the cape at dawn, [-mist-] {+fog+} rolling",
    ]
    # Renamed in the working tree only (staged): followed as well.
    repo.git("mv", "tchavi.yaml", "storyboard.yaml")
    assert "story.yaml -> storyboard.yaml" in repo.run("diff", base, "-s", "storyboard.yaml").stdout


def test_an_invalid_spec_at_base_names_the_revision_file_and_line(repo: Repo) -> None:
    base = repo.commit({"tchavi.yaml": spec(DAWN, "  - id: bad\n    prompt: 'x'\n    seeed: 3\n")})
    repo.commit({"tchavi.yaml": spec(DAWN)})
    result = repo.run("diff", base, "HEAD", code=1)
    assert result.stderr == (
        f"Error: 1 error in the spec:\n{base}:tchavi.yaml:12:5: unknown key 'seeed'. "
        "Did you mean 'seed'?\n"
    )
    assert "Traceback" not in result.output


def test_an_invalid_included_template_at_head_names_the_template_at_that_revision(
    repo: Repo,
) -> None:
    base = repo.commit(
        {"tchavi.yaml": spec(shot("night", "{% include 'night.j2' %}")), "night.j2": "Night"}
    )
    repo.commit({"night.j2": "Night\n{{ nowhere }}"})
    result = repo.run("diff", base, "HEAD", code=1)
    assert result.stderr == (
        "Error: 1 error in the spec:\nHEAD:night.j2:2:1: undefined variable 'nowhere'. Define it "
        "under vars:, in a --var-file, or with --var nowhere=... (included from "
        "HEAD:tchavi.yaml:9:13, prompt)\n"
    )
    assert "tchavi-render-rev-" not in result.stderr  # no temporary path leaks out


def test_a_lock_with_conflict_markers_at_base_is_a_located_error(repo: Repo) -> None:
    conflicted = (
        lock_text({"dawn": "a"}).replace("shots:\n", "shots:\n<<<<<<< HEAD\n", 1)
        + "=======\n>>>>>>> other\n"
    )
    base = repo.commit({"tchavi.yaml": spec(DAWN), "tchavi.lock": conflicted})
    repo.commit({"tchavi.lock": lock_text({"dawn": "a"})})
    result = repo.run("diff", base, "HEAD", code=1)
    line = conflicted.splitlines().index("<<<<<<< HEAD") + 1
    assert result.stderr.startswith(
        f"Error: {base}:tchavi.lock:{line}: unresolved merge conflict "
        "(a line starts with '<<<<<<<')"
    )
    assert "tchavi-render-rev-" not in result.stderr


def test_an_include_outside_the_repository_at_a_revision_is_refused(repo: Repo) -> None:
    secret = repo.root.parent / "secret.j2"
    secret.write_text("SECRET-OUTSIDE")
    base = repo.commit({"tchavi.yaml": spec(shot("dawn", "{% include '../secret.j2' %}"))})
    repo.commit({"tchavi.yaml": spec(DAWN)})
    result = repo.run("diff", base, "HEAD", code=1)
    assert f"{base}:tchavi.yaml:9:" in result.stderr
    assert "it is outside the project directory" in result.stderr
    assert "SECRET-OUTSIDE" not in result.output


def test_a_committed_symlink_leading_outside_is_refused_at_that_revision(repo: Repo) -> None:
    secret = repo.root.parent / "secret.j2"
    secret.write_text("SECRET-OUTSIDE")
    os.symlink(secret, repo.root / "night.j2")
    base = repo.commit({"tchavi.yaml": spec(shot("dawn", "{% include 'night.j2' %}"))})
    repo.commit({"tchavi.yaml": spec(DAWN)})
    result = repo.run("diff", base, "HEAD", code=1)
    assert f"{base}:tchavi.yaml:9:" in result.stderr
    assert "outside the project directory" in result.stderr
    assert "SECRET-OUTSIDE" not in result.output


def test_a_lock_error_at_a_revision_names_no_temporary_path_from_any_working_dir(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    base = repo.commit({"tchavi.yaml": spec(DAWN), "tchavi.lock": "version: 1\nshots: [1]\n"})
    repo.commit({"tchavi.lock": lock_text({"dawn": "a"})})
    # From the temporary folder's parent, messages may show paths relative to it.
    monkeypatch.chdir(tempfile.gettempdir())
    result = repo.run("diff", base, "HEAD", "--spec", str(repo.root / "tchavi.yaml"), code=1)
    assert result.stderr.startswith(f"Error: {base}:tchavi.lock is not a lock tchavi-render wrote")
    assert f"  {base}:tchavi.lock:2:8: shots must be a mapping" in result.stderr
    assert "tchavi-render-rev-" not in result.stderr


def test_a_spec_in_a_folder_with_var_files_elsewhere_in_the_repository(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    story = spec(shot("dawn", "Dawn over {{ place }}"))
    base = repo.commit({"films/teaser/tchavi.yaml": story, "vars/en.yaml": "place: Cotonou\n"})
    repo.commit({"vars/en.yaml": "place: Ouidah\n"})
    (repo.root / "films" / "notes").mkdir()
    monkeypatch.chdir(repo.root / "films" / "notes")
    result = repo.run(
        "diff", base, "HEAD", "--spec", "../teaser/tchavi.yaml", "--var-file", "../../vars/en.yaml"
    )
    assert result.stdout.splitlines()[:3] == [
        f"tchavi-render diff films/teaser/tchavi.yaml: {base[:12]} -> HEAD "
        f"({repo.git('rev-parse', 'HEAD')[:12]})",
        "   ~ dawn  changed    520 credits  render: not rendered",
        "        prompt: Dawn over [-Cotonou-] {+Ouidah+}",
    ]


def test_a_var_file_absent_at_a_revision_is_located_there(repo: Repo) -> None:
    base = repo.commit({"tchavi.yaml": spec(shot("dawn", "Dawn over {{ place }}"))})
    repo.commit({"vars.yaml": "place: Ouidah\n"})
    result = repo.run("diff", base, "HEAD", "--var-file", "vars.yaml", code=1)
    assert result.stderr == (
        f"Error: 1 error in the spec:\n{base}:vars.yaml: var file not found; check the "
        "--var-file path\n"
    )


def test_a_committed_spec_symlink_leading_outside_is_refused(repo: Repo) -> None:
    secret = repo.root.parent / "elsewhere.yaml"
    secret.write_text(spec(DAWN))
    os.symlink(secret, repo.root / "tchavi.yaml")
    base = repo.commit({})
    (repo.root / "tchavi.yaml").unlink()
    repo.commit({"tchavi.yaml": spec(DAWN)})
    result = repo.run("diff", base, "HEAD", code=1)
    assert result.stderr.startswith(
        f"Error: 1 error in the spec:\n{base}:tchavi.yaml: the spec file is a symlink that "
        "leads outside the project directory"
    )


def test_a_file_whose_content_git_lacks_is_a_located_error(repo: Repo) -> None:
    base = repo.commit(
        {
            "tchavi.yaml": spec(shot("night", "{% include 'night.j2' %}")),
            "night.j2": "A beam across the night sky, only at base",
        }
    )
    repo.commit({"night.j2": "A beam across the storm"})
    blob = repo.git("rev-parse", f"{base}:night.j2")
    (repo.root / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # as a shallow clone
    result = repo.run("diff", base, "HEAD", code=1)
    assert result.stderr == (
        f"Error: {base}:night.j2: git does not have this file's content (missing); fetch "
        f"{base} fully (`git fetch --unshallow`, or `fetch-depth: 0` in actions/checkout)\n"
    )


def test_a_render_made_again_for_the_same_request_is_listed(repo: Repo) -> None:
    base = repo.commit({"tchavi.yaml": spec(DAWN, GULLS), "tchavi.lock": lock_text({"dawn": "a"})})
    repo.commit({"tchavi.lock": lock_text({"dawn": "e"})})  # apply --replace dawn
    lines = repo.run("diff", base, "HEAD").stdout.splitlines()
    assert lines[1:] == [
        "   = dawn  unchanged  520 credits  render: bytes differ",
        "Diff: 0 added, 0 removed, 0 renamed, 0 changed, 2 unchanged; 1 render differs. "
        "Storyboard estimate: 1,040 -> 1,040 credits (+0).",
    ]


def test_a_change_of_backend_says_every_shot_renders_again(repo: Repo) -> None:
    base = repo.commit({"tchavi.yaml": spec(DAWN)})
    repo.commit({"tchavi.yaml": spec(DAWN).replace("backend: local", "backend: tchavi")})
    lines = repo.run("diff", base, "HEAD").stdout.splitlines()
    assert lines[1:3] == [
        "No shot changed: the same requests, the same renders.",
        "backend: local -> tchavi: renders of one backend are not reused by the other, so "
        "every shot renders again",
    ]


def test_a_var_file_outside_the_repository_cannot_be_read_at_a_revision(repo: Repo) -> None:
    outside = repo.root.parent / "vars.yaml"
    outside.write_text("place: Ouidah\n")
    base = repo.commit({"tchavi.yaml": spec(shot("dawn", "Dawn over {{ place }}"))})
    result = repo.run("diff", base, "--var-file", str(outside), code=1)
    assert result.stderr == (
        f"Error: the var file {outside} is outside the git repository {repo.root.resolve()}; "
        "only files in git can be read at a revision\n"
    )
