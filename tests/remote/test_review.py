"""`report --compare` with a team's bucket: the earlier render comes from the remote cache."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.remote.conftest import Bucket, MachineFactory
from tests.review.conftest import git_init
from tests.storyboard.test_report import cards
from tests.support.specs import HARBOUR_AND_MARKET


def test_report_compare_fetches_the_earlier_render_from_the_bucket(
    machines: MachineFactory, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Reviewer")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "reviewer@example.com")
    a = machines("a")
    a.write(HARBOUR_AND_MARKET)
    a.write("renders/\nreport.html\n", ".gitignore")
    a.apply()  # rendered, and uploaded to the bucket
    git_init(a.root).commit({}, "storyboard")
    a.write(HARBOUR_AND_MARKET.replace("leaving", "returning to"))
    a.apply()
    shutil.rmtree(a.cache_dir)  # main's render is now in the bucket only
    result = a.run("report", "--compare", "main")
    assert "; 1 render changed since main (" in result.output
    assert "without an earlier render" not in result.output
    harbour = cards((a.root / "report.html").read_text())["harbour"]
    before, _, now = harbour.partition('<p class="compare-label after-label">Now</p>')
    frames = re.compile(r'src="data:image/jpeg;base64,[^"]+"')
    assert len(frames.findall(before)) == 3 and len(frames.findall(now)) == 3
