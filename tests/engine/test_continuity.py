"""Continuity: a shot may start from another shot's frame; the chain re-renders as a unit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import av
from click.testing import CliRunner

from tchavi_render.cli.main import cli
from tchavi_render.emulator import EmulatorConfig, running_emulator
from tchavi_render.engine.backends import local_data_dir

# Listed downstream first: apply must still render in dependency order.
CHAIN = """\
version: 1
backend: local
defaults: {model: seedance-2, duration: 1, seed: 5, generate_audio: false}
shots:
  - id: landing
    image_url: {shot: flight, frame: last}
    prompt: "The plane lands on a red runway"
  - id: flight
    image_url: {shot: takeoff}
    prompt: "The plane crosses a green sky"
  - id: takeoff
    prompt: "A plane takes off at dawn over a blue sea"
"""


class Chain:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache = root.parent / "cache"
        self.runner = CliRunner()

    def write(self, text: str) -> None:
        (self.root / "tchavi.yaml").write_text(text)

    def run(self, *args: str, code: int = 0) -> str:
        env = {"TCHAVI_RENDER_CACHE_DIR": str(self.cache)}
        result = self.runner.invoke(
            cli, [*args, str(self.root / "tchavi.yaml")], env=env, catch_exceptions=False
        )
        assert result.exit_code == code, result.output
        return result.output

    def plan(self) -> dict[str, Any]:
        doc = json.loads(self.run("plan", "--json"))
        return {s["id"]: s for s in doc["shots"]}

    def jobs(self) -> list[dict[str, Any]]:
        data_dir = local_data_dir(self.root / "tchavi.yaml", self.cache)
        with running_emulator(EmulatorConfig(data_dir=data_dir)) as emu:
            return list(emu.jobs())


def mean_rgb(image: Any) -> tuple[float, ...]:
    from PIL import ImageStat

    return tuple(ImageStat.Stat(image.convert("RGB")).mean)


def frame_of(video: Path, last: bool) -> Any:
    with av.open(str(video)) as container:
        frames = [f.to_image() for f in container.decode(video=0)]
    return frames[-1] if last else frames[0]


def test_a_chain_renders_in_order_and_each_shot_starts_on_the_frame_it_names(
    tmp_path: Path,
) -> None:
    chain = Chain(tmp_path / "project")
    chain.root.mkdir()
    chain.write(CHAIN)
    plan = chain.plan()
    assert plan["takeoff"]["action"] == "create" and plan["takeoff"]["key"]
    assert plan["flight"]["action"] == "create" and plan["flight"]["key"] is None
    assert "upstream 'takeoff' renders in this run" in plan["flight"]["reasons"][0]
    chain.run("apply", "--yes")
    assert len(chain.jobs()) == 3
    renders = chain.root / "renders"
    takeoff_end = mean_rgb(frame_of(renders / "takeoff.mp4", last=True))
    flight_start = mean_rgb(frame_of(renders / "flight.mp4", last=False))
    assert all(abs(a - b) < 12 for a, b in zip(takeoff_end, flight_start, strict=True))
    assert "No changes" in chain.run("plan")


def test_re_rendering_the_head_re_renders_the_chain_and_nothing_else(tmp_path: Path) -> None:
    chain = Chain(tmp_path / "project")
    chain.root.mkdir()
    chain.write(CHAIN + '  - id: aside\n    prompt: "An unrelated close-up of a cat"\n')
    chain.run("apply", "--yes")
    assert len(chain.jobs()) == 4
    chain.write(
        CHAIN.replace("over a blue sea", "over a grey sea")
        + '  - id: aside\n    prompt: "An unrelated close-up of a cat"\n'
    )
    plan = chain.plan()
    assert {k: v["action"] for k, v in plan.items()} == {
        "takeoff": "replace",
        "flight": "replace",
        "landing": "replace",
        "aside": "unchanged",
    }
    assert "upstream 'flight'" in plan["landing"]["reasons"][0]
    chain.run("apply", "--yes")
    assert len(chain.jobs()) == 7

    # Back to the first take: every link comes back from the cache, no job.
    chain.write(CHAIN + '  - id: aside\n    prompt: "An unrelated close-up of a cat"\n')
    chain.run("apply", "--yes")
    assert len(chain.jobs()) == 7
    assert "No changes" in chain.run("plan")


def test_editing_the_tail_re_renders_only_the_tail(tmp_path: Path) -> None:
    chain = Chain(tmp_path / "project")
    chain.root.mkdir()
    chain.write(CHAIN)
    chain.run("apply", "--yes")
    chain.write(CHAIN.replace("red runway", "wet runway"))
    plan = chain.plan()
    assert [k for k, v in plan.items() if v["action"] != "unchanged"] == ["landing"]
    assert plan["landing"]["key"]
    chain.run("apply", "--yes")
    assert len(chain.jobs()) == 4


def test_a_cycle_is_refused_naming_it(tmp_path: Path) -> None:
    chain = Chain(tmp_path / "project")
    chain.root.mkdir()
    chain.write(
        CHAIN.replace(
            'prompt: "A plane takes off',
            'image_url: {shot: landing}\n    prompt: "A plane takes off',
        )
    )
    output = chain.run("validate", code=1)
    assert "shots continue each other in a cycle: " in output
    assert all(name in output for name in ("landing", "flight", "takeoff"))
    assert chain.run("apply", "--yes", code=1)
    assert not (chain.cache / "local-backend").exists()


def test_frame_references_are_checked_where_they_are_written(tmp_path: Path) -> None:
    chain = Chain(tmp_path / "project")
    chain.root.mkdir()
    chain.write(
        CHAIN
        + "  - id: typo\n    image_url: {shot: takeof, frame: first}\n    prompt: x\n"
        + "  - id: late\n    image_url: {shot: takeoff, frame: 9}\n    prompt: x\n"
        + "  - id: sound\n    image_url: {shot: takeoff}\n"
        + "    reference_audios: [{shot: takeoff}]\n    prompt: x\n"
    )
    output = chain.run("validate", code=1)
    assert (
        "tchavi.yaml:14:16: no shot has id 'takeof' to take a frame from. "
        "Did you mean 'takeoff'?" in output
    )
    assert "tchavi.yaml:17:16: frame 9 s is past the end of shot 'takeoff' (1 s)" in output
    assert (
        "tchavi.yaml:21:24: reference_audios: a frame of shot 'takeoff' is an image, "
        "but reference_audios takes an audio file" in output
    )
