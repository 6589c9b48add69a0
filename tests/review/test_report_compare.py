"""`report --compare BASE`: the earlier render's frames beside the new ones, from a cache."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.storyboard.browser import dump_dom
from tests.storyboard.test_report import cards
from tests.support.specs import head

from .conftest import Project, Repo, git_init

SPEC = head(seed=9, generate_audio=False) + (
    "  - id: opening\n"
    '    prompt: "Aerial view of Cotonou at golden hour"\n'
    "  - id: statue\n"
    '    prompt: "Slow push-in on the Amazon statue"\n'
)
FRAME = re.compile(r'src="(data:image/jpeg;base64,[^"]+)"')


def rendered_on_main_then_edited(project: Project, git_env: None) -> tuple[Repo, str]:
    """main: both shots rendered, lock committed; working tree: opening re-rendered.
    Returns the repository and the opening card of a report made on main."""
    project.write(SPEC)
    project.write("renders/\nreport.html\nbase.html\n", ".gitignore")
    project.apply()
    project.run("report", "-o", "base.html")
    opening_at_main = cards((project.root / "base.html").read_text())["opening"]
    repo = git_init(project.root)
    repo.commit({}, "storyboard")
    project.write(SPEC.replace("golden hour", "blue hour"))
    project.apply()
    return repo, opening_at_main


def before_and_now(card: str) -> tuple[list[str], list[str]]:
    before, _, now = card.partition('<p class="compare-label after-label">Now</p>')
    return FRAME.findall(before), FRAME.findall(now)


def test_a_changed_render_shows_the_earlier_frames_beside_the_new(
    project: Project, git_env: None
) -> None:
    repo, opening_at_main = rendered_on_main_then_edited(project, git_env)
    main = repo.git("rev-parse", "main")
    result = project.run("report", "--compare", "main")
    assert result.output == (
        f"Wrote report.html: 2 shots, 2 up to date; 1 render changed since main ({main[:12]}).\n"
    )
    page = (project.root / "report.html").read_text()
    by_id = cards(page)
    before, now = before_and_now(by_id["opening"])
    assert before == FRAME.findall(opening_at_main)  # main's render, frame for frame
    assert len(now) == 3 and not set(now) & set(before)
    assert f'Before — <span class="rev">main ({main[:12]})</span></p>' in by_id["opening"]
    assert "compare-label" not in by_id["statue"]  # same bytes: nothing to compare
    assert f'<div class="label">renders changed since main ({main[:12]})</div>' in page


def test_an_earlier_render_in_no_cache_says_so(project: Project, git_env: None) -> None:
    rendered_on_main_then_edited(project, git_env)
    shutil.rmtree(project.cache_dir)  # main's render now exists nowhere
    result = project.run("report", "--compare", "main")
    assert result.output.endswith(
        "; 1 render changed since main ("
        + result.output.split("since main (")[1].split(")")[0]
        + ") (1 of them without an earlier render to show).\n"
    )
    before, now = before_and_now(cards((project.root / "report.html").read_text())["opening"])
    assert before == [] and len(now) == 3  # the new render is still on disk
    page = (project.root / "report.html").read_text()
    assert page.count("Not in the local cache: nothing to show of this render") == 3


def test_compare_with_an_unknown_revision_is_one_message(project: Project, git_env: None) -> None:
    rendered_on_main_then_edited(project, git_env)
    result = project.run("report", "--compare", "nope", ok=False)
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown revision 'nope': it names no commit in ")
    assert not (project.root / "report.html").exists()


def test_the_comparison_in_a_real_browser(project: Project, git_env: None, chromium: Path) -> None:
    rendered_on_main_then_edited(project, git_env)
    project.run("report", "--compare", "main")
    dom = dump_dom(chromium, project.root / "report.html")
    before, now = before_and_now(cards(dom)["opening"])
    assert len(before) == 3 and len(now) == 3
    assert "<script" not in dom
