"""report end to end: real renders, the page opened in headless Chromium, read back."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

from PIL import Image

from tchavi_render.report import marker_colour
from tests.support.specs import head

from .browser import dump_dom, screenshot
from .conftest import Project

INJECTION = '<b id="injected">bold</b><script>document.title = "pwned"</script>'
SPEC = (
    head(seed=9, generate_audio=False)
    + f"""\
  - id: opening
    prompt: "Aerial view of Cotonou at golden hour"
  - id: statue
    prompt: "Slow push-in on the Amazon statue"
    aspect_ratio: "9:16"
  - id: market
    prompt: '{INJECTION} Busy Dantokpa market'
"""
)
CARD_HEIGHT = 720  # px, generous: a card is about 620 px tall at 1280 px wide


def rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


def marker_rows(png: Path, colour: str) -> list[int]:
    """The rows where `colour` fills a vertical band at least 6 px wide: a shot's marker."""
    image = Image.open(png).convert("RGB")
    target = rgb(colour)
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    rows = []
    for y in range(0, height, 4):
        run = best = 0
        for x in range(0, min(width, 200)):
            run = run + 1 if pixels[x, y] == target else 0
            best = max(best, run)
        if best >= 6:
            rows.append(y)
    return rows


def cards(dom: str) -> dict[str, str]:
    """Each shot card's HTML in the parsed DOM, by its data-shot-id."""
    out = {}
    for chunk in dom.split("<article")[1:]:
        found = re.search(r'data-shot-id="([^"]+)"', chunk)
        assert found is not None
        out[found.group(1)] = chunk.split("</article>")[0]
    return out


def test_the_page_shows_every_shot_in_a_real_browser(
    project: Project, chromium: Path, tmp_path: Path
) -> None:
    project.write(SPEC)
    project.apply()
    # One shot edited since, one not rendered yet: the page must say so.
    project.write(
        SPEC.replace("golden hour", "blue hour") + '  - id: finale\n    prompt: "Fireworks"\n'
    )
    result = project.run("report")
    page = project.root / "report.html"
    assert result.output == "Wrote report.html: 4 shots, 2 up to date.\n"

    png = screenshot(chromium, page, tmp_path / "report.png", 1280, 400 + 4 * CARD_HEIGHT)
    tops = []
    for index, shot_id in enumerate(["opening", "statue", "market", "finale"]):
        rows = marker_rows(png, marker_colour(index))
        assert len(rows) * 4 >= 300, f"{shot_id}'s card is not on the screenshot"
        tops.append(min(rows))
    assert tops == sorted(tops), "the cards are not in storyboard order"
    assert Image.open(png).getpixel((640, 400 + 4 * CARD_HEIGHT - 5))[:3] == (244, 245, 247)

    dom = dump_dom(chromium, page)
    by_id = cards(dom)
    assert list(by_id) == ["opening", "statue", "market", "finale"]
    # The prompt is text, not markup: no element, no script ran.
    assert '<b id="injected"' not in dom
    assert "<script" not in dom
    assert '&lt;b id="injected"&gt;bold&lt;/b&gt;&lt;script&gt;' in by_id["market"]
    assert "<title>Storyboard review — tchavi.yaml</title>" in dom
    # Where each shot stands.
    assert "up to date</span>" in by_id["statue"]
    assert "out of date</span>" in by_id["opening"]
    assert "[-golden-] {+blue+}" in by_id["opening"]
    assert "not rendered yet</span>" in by_id["finale"]
    # Three frames for each rendered shot, none for the new one; the render's facts.
    assert by_id["statue"].count('src="data:image/jpeg;base64,') == 3
    assert "data:image" not in by_id["finale"]
    assert "520 credits" not in by_id["statue"]
    assert re.search(r"<dt>credits</dt><dd>260</dd>", by_id["statue"])
    assert re.search(r"<dt>job</dt><dd><code>job_[0-9a-f]+</code>", by_id["statue"])
    assert "<dt>aspect ratio</dt><dd>9:16</dd>" in by_id["statue"]
    assert '<div class="value">780</div><div class="label">credits spent</div>' in dom


def test_videos_are_linked_relative_to_the_page_and_nothing_else_is_fetched(
    project: Project,
) -> None:
    project.write(SPEC)
    project.apply()
    project.run("report", "-o", "review/index.html")
    page = project.root / "review" / "index.html"
    text = page.read_text()
    links = re.findall(r'(?:src|href)="([^"]+)"', text)
    videos = [link for link in links if not link.startswith("data:")]
    assert sorted(Counter(videos)) == [
        "../renders/market.mp4",
        "../renders/opening.mp4",
        "../renders/statue.mp4",
    ]
    for link in videos:
        assert (page.parent / unquote(link)).resolve().is_file()
    assert "default-src 'none'" in text


def test_a_report_of_an_unrendered_storyboard_says_so(project: Project) -> None:
    project.write(SPEC)
    result = project.run("report", "-o", "r.html")
    assert result.output == "Wrote r.html: 3 shots, 0 up to date.\n"
    text = (project.root / "r.html").read_text()
    assert text.count("Not rendered yet</div>") == 9
    assert '<div class="value">0 / 3</div>' in text
    assert project.jobs() == []


def test_a_continuity_reference_shows_the_other_shot_s_frame(project: Project) -> None:
    project.write(
        """\
version: 1
backend: local  # the tchavi backend takes media only as URLs
defaults: {model: seedance-2, duration: 1, seed: 4, generate_audio: false}
shots:
  - id: flight
    prompt: "A plane over the clouds"
  - id: landing
    image_url: {shot: flight, frame: last}
    prompt: "The plane lands on a red runway"
"""
    )
    project.apply()
    project.run("report")
    by_id = cards((project.root / "report.html").read_text())
    last_of_flight = re.findall(r'src="(data:image/jpeg;base64,[^"]+)"', by_id["flight"])[2]
    landing = by_id["landing"]
    assert '<span class="ref-name">last frame of shot flight</span>' in landing
    assert f'<img class="ref-thumb" src="{last_of_flight}"' in landing


def test_spec_text_is_escaped_wherever_the_page_shows_it(project: Project) -> None:
    stills = project.root / "stills"
    stills.mkdir(parents=True)
    hostile_name = '"><img src=x onerror=alert(1)>.png'
    Image.new("RGB", (32, 24), (200, 30, 30)).save(stills / hostile_name)
    project.write(
        f"""\
version: 1
backend: local
defaults: {{model: seedance-2, duration: 1, generate_audio: false}}
shots:
  - id: "ad-{{{{ n }}}}"
    for_each: {{n: [1], tag: ["<i>it</i>"]}}
    image_url: 'stills/{hostile_name}'
    prompt: '{INJECTION} {{{{ tag }}}}'
"""
    )
    project.run("report", "-o", "r.html")
    text = (project.root / "r.html").read_text()
    assert "<script" not in text and "<b " not in text and "<i>" not in text
    assert "<img src=x" not in text
    assert "&lt;b id=&#34;injected&#34;&gt;bold&lt;/b&gt;&lt;script&gt;" in text
    assert "&lt;i&gt;it&lt;/i&gt;" in text  # the prompt, and the for_each values shown
    assert "stills/&#34;&gt;&lt;img src=x onerror=alert(1)&gt;.png" in text


def test_every_take_shows_side_by_side_with_the_pick_marked(
    project: Project, chromium: Path, tmp_path: Path
) -> None:
    project.write(
        head(seed=20, generate_audio=False)
        + '  - id: opening\n    prompt: "Aerial view of Cotonou"\n    takes: 3\n    pick: 2\n'
        + '  - id: statue\n    prompt: "The Amazon statue"\n'
    )
    project.apply()
    project.run("report")
    page = project.root / "report.html"
    png = screenshot(chromium, page, tmp_path / "report.png", 1280, 400 + 3 * CARD_HEIGHT)
    assert len(marker_rows(png, marker_colour(0))) * 4 >= 300
    dom = dump_dom(chromium, page)
    opening = cards(dom)["opening"]
    takes = re.findall(
        r'<figure class="take( picked)?" data-take="(\d)">(.*?)</figure>', opening, re.S
    )
    assert [(n, bool(p)) for p, n, _ in takes] == [("1", False), ("2", True), ("3", False)]
    for _, number, html in takes:
        assert html.count('src="data:image/jpeg;base64,') == 3  # first, middle, last
        assert f"seed {19 + int(number)} · 260 credits" in html
    assert '<code class="pick">tchavi-render pick opening 1</code>' in takes[0][2]
    assert '<code class="pick">' not in takes[1][2]
    assert 'href="renders/opening.takes/3.mp4"' in takes[2][2]
    assert "<dt>seed</dt><dd>take 2 of 3, 21</dd>" in opening
    assert "Takes" not in cards(dom)["statue"]
    assert '<div class="value">1,040</div><div class="label">credits spent</div>' in dom
