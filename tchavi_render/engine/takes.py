"""Takes: a shot of `takes: N` becomes N shots, each with a stable seed and its own key.

The picked take keeps the shot's id, so its output is `OUTPUT_DIR/<id>.mp4`, its frames are
the ones continuity reads and its clip is the one export uses; every other take is planned,
cached, locked and placed like a shot of its own whose id is `<id>.takes/<i>` (a `/` no spec
id may contain), so its output is `OUTPUT_DIR/<id>.takes/<i>.mp4`. Changing the pick swaps
ids between takes whose keys do not change: the plan reuses them, and no job is paid.

A shot of one take is left exactly as it is (no seed added), so its key, and the keys of
every lock and cache written before takes existed, stay what they were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace

from tchavi_render.api.models import SEED_MAX, SEED_MIN
from tchavi_render.engine.keys import KEY_SCHEME, canonical_json, media_value
from tchavi_render.spec.shot import Media, Shot

__all__ = [
    "TAKES_SEPARATOR",
    "base_id",
    "split_take_id",
    "take_id",
    "take_seed",
    "take_shots",
]

TAKES_SEPARATOR = ".takes/"
_SEED_SPAN = SEED_MAX - SEED_MIN + 1  # the API's seeds are signed 64-bit integers


def take_id(shot_id: str, take: int) -> str:
    """The id under which a take that is not the pick is planned and locked."""
    return f"{shot_id}{TAKES_SEPARATOR}{take}"


def split_take_id(planned_id: str) -> tuple[str, int | None]:
    """(shot id, take number) of a take's id; (id, None) for a shot's own id."""
    shot_id, sep, number = planned_id.rpartition(TAKES_SEPARATOR)
    if sep and number.isdigit() and not number.startswith("0"):
        return shot_id, int(number)
    return planned_id, None


def base_id(planned_id: str) -> str:
    """The spec's shot id behind a planned id (itself for a shot's own id)."""
    return split_take_id(planned_id)[0]


def _seed_basis(media: Media) -> dict[str, str]:
    """What a media item contributes to a derived seed: what it is, never where an upstream
    shot's output came from, so a continuity shot's seeds do not move with its upstream
    shot's pick (its keys do) and a rename does not move them either."""
    return media_value(media, lambda frame: {"frame": frame.selector})


def take_seed(shot: Shot, take: int) -> int:
    """The seed take `take` (1-based) of `shot` sends.

    With a seed in the spec, take i sends seed + i - 1 (wrapped into the API's signed 64-bit
    range), so take 1 is the very request of the shot rendered once. Without one, the seed
    is derived from the shot's request and i: sha256 of both, its first 63 bits. The same
    spec asks for the same seeds on every machine and every run.
    """
    if shot.seed is not None:
        return (shot.seed + take - 1 - SEED_MIN) % _SEED_SPAN + SEED_MIN
    request = shot.request(_seed_basis)
    request.pop("seed", None)
    text = canonical_json({"scheme": KEY_SCHEME, "request": request, "take": take})
    digest = hashlib.sha256(("tchavi-render take seed:" + text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def take_shots(shots: Iterable[Shot]) -> tuple[Shot, ...]:
    """Every take of every shot, in storyboard order and take order: a shot of one take
    as it is, the picked take under the shot's id, the others under `take_id`."""
    out: list[Shot] = []
    for shot in shots:
        if shot.takes <= 1:
            out.append(shot)
            continue
        for take in range(1, shot.takes + 1):
            planned_id = shot.id if take == shot.pick else take_id(shot.id, take)
            out.append(replace(shot, id=planned_id, seed=take_seed(shot, take), take=take))
    return tuple(out)
