"""The shots as a graph: unique ids, and frames taken from shots that exist, in time, acyclic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import assert_never

from tchavi_render.spec.fields import ShotState
from tchavi_render.spec.reporter import Reporter
from tchavi_render.spec.shot import (
    MEDIA_LIST_FIELDS,
    MEDIA_ONE_FIELDS,
    LocalMedia,
    ShotFrame,
    UrlMedia,
)
from tchavi_render.spec.template import is_template
from tchavi_render.spec.yamlpos import PathKey, YamlDoc
from tchavi_render.text import did_you_mean

__all__ = ["ShotGraph"]


class ShotGraph:
    """Every shot id the spec gives and every frame reference, gathered while shots are
    resolved and checked once all of them are.

    `known` maps each id, shots with errors included, to its duration when known: a shot
    with an error still exists for frames and the sequence. `ids_unknown` is set when
    some shot's id could not be worked out: "no shot has id X" would then be a guess.
    """

    def __init__(self, doc: YamlDoc, report: Reporter) -> None:
        self.doc = doc
        self.report = report
        self.known: dict[str, int | None] = {}
        self.ids_unknown = False
        self._ids: list[tuple[str, PathKey, str]] = []  # (id, shot path, instance)
        # (shot id or None, frame, path, label) of every frame reference, broken shots' too
        self._frames: list[tuple[str | None, ShotFrame, PathKey, str]] = []

    def add_id(self, shot_id: str, shot_path: PathKey, instance: str) -> None:
        """A valid id a shot instance rendered, to check that no other shot has it."""
        self._ids.append((shot_id, shot_path, instance))

    def exists(self, written_id: str) -> None:
        """A shot that cannot be checked still has its id, if the id is not a template."""
        if is_template(written_id) or not written_id.strip():
            self.ids_unknown = True
        else:
            self.known.setdefault(written_id.strip(), None)

    def note_frames(self, state: ShotState, shot_id: str | None, label: str) -> None:
        """Keep the shot's frame references for check_frames, whether it has errors or not."""
        for name in MEDIA_ONE_FIELDS + MEDIA_LIST_FIELDS:
            value = state.values.get(name)
            for ref in value if isinstance(value, list) else [value] if value else []:
                match ref.media:
                    case ShotFrame():
                        self._frames.append((shot_id, ref.media, ref.path, label))
                    case LocalMedia() | UrlMedia() | None:
                        pass
                    case _:
                        assert_never(ref.media)

    def check_ids(self) -> None:
        first: dict[str, tuple[PathKey, str]] = {}
        for shot_id, path, instance in self._ids:
            if shot_id not in first:
                first[shot_id] = (path, instance)
                continue
            other_path, other_instance = first[shot_id]
            where = self.doc.locate((*path, "id"))
            if other_path == path:
                self.report.error(
                    where,
                    f"id: this for_each makes {shot_id!r} twice ({other_instance} and "
                    f"{instance}); the id must use every for_each variable, and their "
                    "values must differ",
                )
            else:
                there = self.doc.locate((*other_path, "id"))
                self.report.error(
                    where,
                    f"id: duplicate shot id {shot_id!r}, also used at {there}; ids must be unique"
                    + (f" (for_each {instance})" if instance else ""),
                )

    def check_frames(self) -> None:
        """Frame references name existing shots, never form a cycle, and stay in time.

        A shot with errors still exists: only a time past its end needs its duration.
        """
        edges: dict[str, list[tuple[str, PathKey]]] = {}
        for shot_id, frame, path, label in self._frames:
            place = self.doc.locate(path)
            suffix = f" (for_each {label})" if label else ""
            if frame.shot not in self.known:
                if not self.ids_unknown:
                    hint = did_you_mean(frame.shot, list(self.known))
                    self.report.error(
                        place, f"no shot has id {frame.shot!r} to take a frame from.{hint}{suffix}"
                    )
                continue
            duration = self.known[frame.shot]
            timed = isinstance(frame.frame, float) and duration is not None and duration != -1
            if timed and duration is not None and float(frame.frame) > duration:
                self.report.error(
                    place,
                    f"frame {frame.frame:g} s is past the end of shot {frame.shot!r} "
                    f"({duration} s){suffix}",
                )
            if shot_id is not None:
                edges.setdefault(shot_id, []).append((frame.shot, path))
        for cycle, path in _cycles(edges):
            self.report.error(
                self.doc.locate(path),
                "shots continue each other in a cycle: "
                + " -> ".join(cycle)
                + "; a shot can only use frames of shots that do not depend on it",
            )


def _cycles(edges: Mapping[str, list[tuple[str, PathKey]]]) -> list[tuple[list[str], PathKey]]:
    """Each cycle of the continuity graph once, as ids (first repeated at the end) with the
    path of the edge that closes it."""
    found: list[tuple[list[str], PathKey]] = []
    done: set[str] = set()
    for start in sorted(edges):
        stack: list[tuple[str, int]] = [(start, 0)]
        on_path: list[str] = [start]
        while stack:
            node, i = stack[-1]
            outgoing = edges.get(node, [])
            if i >= len(outgoing):
                stack.pop()
                on_path.pop()
                done.add(node)
                continue
            stack[-1] = (node, i + 1)
            nxt, path = outgoing[i]
            if nxt in on_path:
                cycle = [*on_path[on_path.index(nxt) :], nxt]
                if not any(set(cycle) == set(c) for c, _ in found):
                    found.append((cycle, path))
            elif nxt not in done:
                stack.append((nxt, 0))
                on_path.append(nxt)
    return found
