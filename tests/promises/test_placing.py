"""Placing outputs is a transaction: swaps, rotations and inserts of ids on an empty cache
pay nothing and leave every output with the right bytes."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from tests.engine.conftest import Project
from tests.support.specs import head


def spec(*shots: tuple[str, str]) -> str:
    lines = [head()]
    for i, (shot_id, word) in enumerate(shots):
        seed = {"Alpha": 1, "Bravo": 2, "Charlie": 3, "Zero": 4}.get(word, 10 + i)
        lines.append(f"  - id: {shot_id}\n    prompt: 'A {word} shot'\n    seed: {seed}\n")
    return "".join(lines)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def render_alpha_bravo_charlie(project: Project) -> dict[str, str]:
    """shot-1..3 rendered; returns word -> sha256 of its render. The cache is then emptied
    (a fresh clone, a CI runner, `cache clear`)."""
    project.write(spec(("shot-1", "Alpha"), ("shot-2", "Bravo"), ("shot-3", "Charlie")))
    project.apply()
    renders = project.root / "renders"
    shas = {
        "Alpha": digest(renders / "shot-1.mp4"),
        "Bravo": digest(renders / "shot-2.mp4"),
        "Charlie": digest(renders / "shot-3.mp4"),
    }
    shutil.rmtree(project.cache_dir)
    return shas


def outputs(project: Project) -> dict[str, str]:
    lock = yaml.safe_load(project.lock.read_text())
    found = {}
    for shot_id, entry in lock["shots"].items():
        path = project.root / entry["output"]["path"]
        assert path == project.root / "renders" / f"{shot_id}.mp4"
        assert digest(path) == entry["output"]["sha256"], f"{shot_id}: the lock lies"
        found[shot_id] = entry["output"]["sha256"]
    return found


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # insert a new shot-1 before the others: every id moves one down
        (
            [("shot-1", "Zero"), ("shot-2", "Alpha"), ("shot-3", "Bravo"), ("shot-4", "Charlie")],
            {"shot-2": "Alpha", "shot-3": "Bravo", "shot-4": "Charlie"},
        ),
        # a plain swap
        (
            [("shot-1", "Bravo"), ("shot-2", "Alpha"), ("shot-3", "Charlie")],
            {"shot-1": "Bravo", "shot-2": "Alpha", "shot-3": "Charlie"},
        ),
        # a rotation a -> b -> c -> a
        (
            [("shot-1", "Charlie"), ("shot-2", "Alpha"), ("shot-3", "Bravo")],
            {"shot-1": "Charlie", "shot-2": "Alpha", "shot-3": "Bravo"},
        ),
        # renumbered and one removed: shot-3 goes, its render lives on as shot-1
        (
            [("shot-1", "Charlie"), ("shot-2", "Bravo")],
            {"shot-1": "Charlie", "shot-2": "Bravo"},
        ),
    ],
    ids=["insert", "swap", "rotation", "renumber-and-delete"],
)
def test_moving_renders_between_ids_on_an_empty_cache_pays_nothing_and_keeps_every_render(
    project: Project, order: list[tuple[str, str]], expected: dict[str, str]
) -> None:
    shas = render_alpha_bravo_charlie(project)
    project.write(spec(*order))
    new_shots = sum(1 for _, word in order if word not in shas)

    result = project.apply()

    assert len(project.jobs()) == 3 + new_shots, result.output
    placed = outputs(project)
    for shot_id, word in expected.items():
        assert placed[shot_id] == shas[word], f"{shot_id} should hold {word}"
    assert "failed" not in result.output
    # and nothing is left to do, or to pay
    again = project.run("plan")
    assert "No changes" in again.output, again.output


def test_a_corrupt_cached_render_is_never_placed(project: Project) -> None:
    project.write(spec(("shot-1", "Alpha")))
    project.apply()
    output = project.root / "renders" / "shot-1.mp4"
    good = digest(output)
    output.unlink()
    cached = next((project.cache_dir / "objects").rglob(f"{good}*"))
    data = bytearray(cached.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    cached.write_bytes(bytes(data))

    result = project.apply(ok=False)

    assert result.exit_code == 1
    assert "the cached render was corrupt; apply again" in result.output
    assert not output.exists()
    assert not cached.exists()  # dropped, so the next apply renders it again
    project.apply()
    assert outputs(project) == {"shot-1": digest(output)}
