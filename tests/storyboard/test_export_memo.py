"""export's memo: a second export with nothing changed neither loads the spec nor plans;
any change to what the verdict read (or a memo that cannot be trusted) takes the slow way,
with exactly the slow way's result.

Which way an export went is seen from outside: it runs in a child process that reports
whether the spec layer (pydantic, Jinja, the loader) and the planner were imported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tchavi_render.exportmemo import SETTLED_NS, memo_path_for
from tests.support.specs import head

from .conftest import Project
from .test_export_copy import frame_hashes, packets

SPEC = (
    head(backend="local", seed=5, generate_audio=True).replace(
        "shots:\n", "vars: {mood: Calm}\nassets: {spare: frames/spare.png}\nshots:\n"
    )
    + """\
  - id: harbour
    prompt: "{{ mood }} boats leave the harbour {% include 'light.j2' %}"
    image_url: frames/harbour.png
  - id: market
    prompt: "The market wakes up at {{ hour }}"
    duration: 2
"""
)
VARS = ("--var-file", "vars.yaml")
HEAVY = ("pydantic", "jinja2", "tchavi_render.spec", "tchavi_render.engine.plan")
CHILD = """\
import sys
from tchavi_render.cli.main import cli
try:
    cli.main(sys.argv[1:], prog_name="tchavi-render")
finally:
    heavy = [m for m in {heavy!r} if m in sys.modules]
    print("imported:", ", ".join(heavy) or "nothing heavy", file=sys.stderr)
"""


def png(path: Path, colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 36), colour).save(path)


def settle() -> None:
    """Wait until the files just written are old enough to be fingerprinted."""
    time.sleep(SETTLED_NS / 1e9 + 0.1)


@pytest.fixture
def rendered(project: Project) -> Project:
    """Two shots rendered (one with a template, a var file and a local image), settled."""
    project.write(SPEC)
    project.write("at dawn", "light.j2")
    project.write("hour: six\nextra: 2\n", "vars.yaml")  # a warning each, with the spec's
    png(project.root / "frames" / "harbour.png", (200, 120, 40))
    png(project.root / "frames" / "spare.png", (0, 0, 0))
    project.apply(*VARS)
    settle()
    return project


def export(project: Project, *args: str) -> tuple[int, str, bool]:
    """Export in a child process: its exit code, its output (timings blanked) and whether
    it took the slow way (imported the spec layer or the planner)."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(heavy=HEAVY), "export", *args],
        cwd=project.root,
        env={**os.environ, **project.env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    *lines, imported = done.stderr.splitlines()
    output = re.sub(r"\(\d+\.\d s\)", "(… s)", "\n".join([*lines, done.stdout]))
    return done.returncode, output, imported != "imported: nothing heavy"


def memo(project: Project, spec: str = "tchavi.yaml") -> Path:
    return memo_path_for(project.root / spec)


def test_a_second_export_neither_loads_nor_plans_and_cuts_the_same_file(
    rendered: Project,
) -> None:
    code, slow_output, slow = export(rendered, *VARS)
    assert code == 0 and slow
    assert memo(rendered).is_file()
    slow_cut = rendered.root / "slow.mp4"
    (rendered.root / "final.mp4").rename(slow_cut)
    shutil.rmtree(rendered.cache_dir)  # its media index and renders: the fast way reads neither
    code, fast_output, slow = export(rendered, *VARS)
    assert code == 0 and not slow
    assert fast_output == slow_output
    assert "vars.yaml:2:1: warning: " in fast_output  # warnings are printed as before
    assert "\nWrote final.mp4: 2 clips, 3.00 s, 854x480 at 24 fps" in fast_output
    fast_cut = rendered.root / "final.mp4"
    assert frame_hashes(fast_cut) == frame_hashes(slow_cut)
    assert packets(fast_cut) == packets(slow_cut)


def test_an_export_right_after_a_render_writes_no_memo(project: Project) -> None:
    # The lock and the renders were written a moment ago: a change within the same
    # timestamp tick could keep their fingerprint, so nothing is remembered yet.
    project.write(head(backend="local", seed=5) + '  - id: harbour\n    prompt: "Boats"\n')
    project.apply()
    project.run("export")
    assert not memo(project).exists()


def same_size_edit(path: Path, old: str, new: str) -> None:
    """Rewrite `path` in place, same size, and put its mtime back: an edit within the same
    second that neither mtime nor size shows (ctime does)."""
    before = path.stat()
    text = path.read_text()
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def renamed_over(path: Path) -> None:
    """The same bytes and mtime, written beside and renamed over (as editors save)."""
    before = path.stat()
    temp = path.with_name(path.name + ".new")
    temp.write_bytes(path.read_bytes())
    os.utime(temp, ns=(before.st_atime_ns, before.st_mtime_ns))
    temp.replace(path)


def damaged_in_place(path: Path) -> None:
    # mtime is left as the write sets it: the media index, which the slow way reads the
    # renders' sha256 through, keys on mtime, size and inode, not ctime.
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))


def re_rendered(project: Project) -> None:
    same_size_edit(project.spec, "wakes up", "wakes UP")
    project.apply(*VARS)


CHANGES: dict[str, tuple[Callable[[Project], object], bool]] = {
    # name: (the change, whether export still succeeds)
    "spec edited in the same second": (
        lambda p: same_size_edit(p.spec, "leave", "leaf!"),
        False,
    ),
    "spec saved by rename, same bytes": (lambda p: renamed_over(p.spec), True),
    "template edited": (lambda p: same_size_edit(p.root / "light.j2", "dawn", "dusk"), False),
    "var file changed": (lambda p: same_size_edit(p.root / "vars.yaml", "six", "ten"), False),
    "media file replaced": (
        lambda p: png(p.root / "frames" / "harbour.png", (20, 60, 200)),
        False,
    ),
    "unused asset deleted": (lambda p: (p.root / "frames" / "spare.png").unlink(), False),
    "lock rewritten by apply": (re_rendered, True),
    "output modified by hand": (lambda p: damaged_in_place(p.output("market")), False),
    "output replaced by another render": (
        lambda p: p.output("harbour").write_bytes(p.output("market").read_bytes()),
        False,
    ),
    "lock saved by rename, same bytes": (lambda p: renamed_over(p.lock), True),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_to_what_export_read_takes_the_slow_way_with_its_result(
    rendered: Project, change: str
) -> None:
    assert export(rendered, *VARS)[0] == 0
    assert memo(rendered).is_file()
    make_change, succeeds = CHANGES[change]
    make_change(rendered)
    code, output, slow = export(rendered, *VARS)
    assert slow
    assert (code == 0) is succeeds, output
    # Exactly what export says with no memo at all.
    memo(rendered).unlink(missing_ok=True)
    assert export(rendered, *VARS)[:2] == (code, output)


def test_editing_a_prompt_refuses_the_export_as_before(rendered: Project) -> None:
    assert export(rendered, *VARS)[0] == 0
    same_size_edit(rendered.spec, "wakes up", "wakes UP")
    code, output, slow = export(rendered, *VARS)
    assert (code, slow) == (1, True)
    assert (
        "\nError: cannot export: 1 shot is not ready:\n  market: out of date (apply would "
        in output
    )


@pytest.mark.parametrize(
    "arguments",
    [
        ("--var", "mood=Calm", *VARS),  # the spec's own value, but another request
        ("--var-file", "vars.yaml", "--var-file", "vars.yaml"),
        (),  # no var file: `hour` is undefined
        ("../project/tchavi.yaml", *VARS),  # the same files, named otherwise in warnings
        ("--var-file", "../project/vars.yaml"),
    ],
    ids=["a --var", "a var file twice", "no var file", "spec spelled", "var file spelled"],
)
def test_other_arguments_take_the_slow_way(rendered: Project, arguments: tuple[str, ...]) -> None:
    assert export(rendered, *VARS)[0] == 0
    code, output, slow = export(rendered, *arguments)
    assert slow
    memo(rendered).unlink(missing_ok=True)
    assert export(rendered, *arguments)[:2] == (code, output)


def test_two_specs_in_one_folder_keep_a_memo_each(rendered: Project) -> None:
    other = rendered.write(
        SPEC.replace("wakes up", "sleeps in")
        .replace("- id: market", "- id: night")
        .replace("shots:\n", "output_dir: renders-b\nshots:\n"),
        "b.yaml",
    )
    rendered.apply(str(other.name), *VARS)
    settle()
    for spec in ("tchavi.yaml", "b.yaml"):
        assert export(rendered, spec, *VARS, "-o", f"{spec}.mp4")[0] == 0
    assert memo(rendered).is_file() and memo(rendered, "b.yaml").is_file()
    for spec, folder, last in (
        ("tchavi.yaml", "renders", "market"),
        ("b.yaml", "renders-b", "night"),
    ):
        code, output, slow = export(rendered, spec, *VARS, "-o", f"{spec}.fast.mp4")
        assert (code, slow) == (0, False), output
        renders = [rendered.root / folder / f"{name}.mp4" for name in ("harbour", last)]
        cut = frame_hashes(rendered.root / f"{spec}.fast.mp4")
        assert cut == [h for render in renders for h in frame_hashes(render)]


def test_a_memo_pointing_at_another_file_is_not_trusted(rendered: Project) -> None:
    assert export(rendered, *VARS)[0] == 0
    expected = export(rendered, *VARS)[1]
    doc = json.loads(memo(rendered).read_text())
    outside = rendered.root.parent / "outside.mp4"
    outside.write_bytes(rendered.output("market").read_bytes())
    st = outside.stat()
    doc["outputs"][str(outside)] = [
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_size,
        st.st_ino,
        st.st_dev,
    ]
    # Outside the project; a file the verdict read, but not as a render.
    for path in (str(outside), str(rendered.root / "light.j2")):
        doc["clips"][1]["path"] = path
        memo(rendered).write_text(json.dumps(doc))
        code, output, slow = export(rendered, *VARS)
        assert (code, output, slow) == (0, expected, True)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"format": 1}',
        "[" * 100_000,
        '{"format": "tchavi-render-export-memo/1", "files": NaN}',
        '{"format": "tchavi-render-export-memo/2"}',
        "\xff\xfe",
    ],
    ids=["empty", "truncated", "list", "wrong types", "deep", "nan", "other format", "binary"],
)
def test_a_bad_memo_takes_the_slow_way_without_a_word(rendered: Project, text: str) -> None:
    assert export(rendered, *VARS)[0] == 0
    expected = export(rendered, *VARS)[1]
    memo(rendered).write_bytes(text.encode("latin-1"))
    assert export(rendered, *VARS) == (0, expected, True)
    assert export(rendered, *VARS) == (0, expected, False)  # written anew


def test_a_memo_that_is_a_directory_or_a_fifo_is_ignored(rendered: Project) -> None:
    assert export(rendered, *VARS)[0] == 0
    expected = export(rendered, *VARS)[1]
    memo(rendered).unlink()
    memo(rendered).mkdir()
    assert export(rendered, *VARS) == (0, expected, True)
    memo(rendered).rmdir()
    os.mkfifo(memo(rendered))
    assert export(rendered, *VARS) == (0, expected, True)


def test_a_memo_that_cannot_be_written_leaves_export_working(rendered: Project) -> None:
    memo(rendered).parent.mkdir(exist_ok=True)
    memo(rendered).mkdir()  # no file can be renamed over it
    code, output, slow = export(rendered, *VARS)
    assert (code, slow) == (0, True), output
    assert export(rendered, *VARS) == (0, output, True)


@pytest.mark.parametrize("name", ["frames/harbour.png", "light.j2"])
def test_re_pointing_a_symlink_the_spec_names_takes_the_slow_way(
    rendered: Project, name: str
) -> None:
    named = rendered.root / name
    first = named.with_name("v1" + named.suffix)
    named.rename(first)
    named.symlink_to(first.name)  # the same bytes: every shot stays up to date
    settle()
    assert export(rendered, *VARS)[0] == 0
    assert export(rendered, *VARS)[2] is False
    second = named.with_name("v2" + named.suffix)
    if named.suffix == ".png":
        png(second, (20, 60, 200))
    else:
        second.write_text("at dusk")
    link = named.with_name("link.tmp")
    link.symlink_to(second.name)
    link.replace(named)
    code, output, slow = export(rendered, *VARS)
    assert (code, slow) == (1, True)
    assert "\nError: cannot export: 1 shot is not ready:\n  harbour: out of date" in output
