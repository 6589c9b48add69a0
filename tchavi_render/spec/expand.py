"""Expanding shots: each for_each combination becomes a shot with its id, fields and checks."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tchavi_render.spec.fields import Fields, ShotState, Where, no_ref
from tchavi_render.spec.fieldtypes import MAX_TAKES, describe
from tchavi_render.spec.graph import ShotGraph
from tchavi_render.spec.locate import template_problem
from tchavi_render.spec.model import GENERATION_FIELDS, TAKE_FIELDS, Defaults, ShotSpec
from tchavi_render.spec.repair import Aside
from tchavi_render.spec.reporter import Reporter
from tchavi_render.spec.request import RequestChecks
from tchavi_render.spec.shot import ID_PATTERN, MEDIA_LIST_FIELDS, MEDIA_ONE_FIELDS, Shot
from tchavi_render.spec.template import FieldTemplates, TemplateFailure, is_template
from tchavi_render.spec.yamlpos import PathKey, YamlDoc
from tchavi_render.spec.yamlscalar import parse_scalar

__all__ = ["Axes", "Expander", "WrittenShot"]

Axes = list[tuple[str, tuple[Any, ...]]]  # each for_each variable and its values


@dataclass(frozen=True)
class WrittenShot:
    """A shot as written (its shape errors set aside), the defaults it falls back on, and
    its path in the spec."""

    spec: ShotSpec
    defaults: Defaults
    path: PathKey


class Expander:
    """Turns each shot as written into its instances: frozen Shots for the valid ones, and
    every id, duration and frame reference (broken instances' too) noted in `graph`."""

    def __init__(
        self,
        doc: YamlDoc,
        report: Reporter,
        templates: FieldTemplates,
        fields: Fields,
        graph: ShotGraph,
        aside: Aside,
    ) -> None:
        self.doc = doc
        self.report = report
        self.templates = templates
        self.fields = fields
        self.graph = graph
        self.aside = aside
        self.checks = RequestChecks(doc, report)

    def for_each(self, shot: WrittenShot, variables: Mapping[str, Any]) -> Axes | None:
        """The shot's for_each variables with their values ([] without for_each); None when
        an expression failed (reported)."""
        if not shot.spec.for_each:
            return []
        out: Axes = []
        for name, values in shot.spec.for_each.items():
            path: PathKey = (*shot.path, "for_each", name)
            if isinstance(values, str):
                try:
                    evaluated = self.templates.evaluate(values, variables)
                except TemplateFailure as failure:
                    self.report.add(
                        template_problem(failure, self.doc, path, f"for_each {name}: ", "")
                    )
                    return None
                if not isinstance(evaluated, list | tuple) or not evaluated:
                    self.report.error(
                        self.doc.locate(path),
                        f"for_each {name}: {values} must give a non-empty list, "
                        f"got {describe(evaluated)}",
                    )
                    return None
                values = tuple(evaluated)
            out.append((name, values))
        return out

    def expand(
        self, shot: WrittenShot, shot_vars: Mapping[str, Any], axes: Axes, first_index: int
    ) -> list[Shot]:
        """The valid instances of `shot`, indexed from `first_index` on."""
        out: list[Shot] = []
        names = [name for name, _ in axes]
        for combination in itertools.product(*(values for _, values in axes)):
            instance = dict(zip(names, combination, strict=True))
            label = ", ".join(f"{k}={_short(v)}" for k, v in instance.items())
            context = {**shot_vars, **instance}
            resolved = self._shot(shot, context, label, first_index + len(out))
            if resolved is not None:
                out.append(resolved)
        return out

    def _shot(
        self, written: WrittenShot, context: dict[str, Any], label: str, index: int
    ) -> Shot | None:
        shot, defaults, shot_path = written.spec, written.defaults, written.path
        context["ref"] = no_ref
        written_id = self._id(shot, context, shot_path, label)
        where = Where(shot_path, written_id, label)
        valid_id = written_id is not None and ID_PATTERN.match(written_id) is not None
        aside = self.aside.shots.get(shot_path, set())
        state = ShotState()
        for name in GENERATION_FIELDS:
            if name in shot.model_fields_set:
                raw, path = getattr(shot, name), (*shot_path, name)
            elif name in aside:
                state.failed.add(name)  # the shot's value has its own error already
                continue
            elif name in defaults.model_fields_set:
                raw, path = getattr(defaults, name), ("defaults", name)
            else:
                if name in self.aside.defaults:
                    state.failed.add(name)
                continue
            state.sources[name] = path
            if raw is None or name == "prompt":
                continue  # null unsets the field; the prompt waits for the references
            if isinstance(raw, str) and is_template(raw):
                state.templated.add(name)
            self.fields.field(name, raw, path, context, where, state)
        self.fields.prompt(shot, defaults, context, where, state)
        takes = self._takes(written, context, where, state)
        return self._check(
            state, shot_path, written_id if valid_id else None, label, index, where, takes
        )

    def _takes(
        self, written: WrittenShot, context: dict[str, Any], where: Where, state: ShotState
    ) -> tuple[int, int] | None:
        """The shot's (takes, pick), from the shot or `defaults:`, templates rendered; None
        when either is broken (reported here, or already by the shape check)."""
        values: dict[str, tuple[int, PathKey]] = {}
        aside = self.aside.shots.get(written.path, set())
        for name in TAKE_FIELDS:
            if name in written.spec.model_fields_set:
                value, path = getattr(written.spec, name), (*written.path, name)
            elif name in aside:
                return None
            elif name in written.defaults.model_fields_set:
                value, path = getattr(written.defaults, name), ("defaults", name)
            elif name in self.aside.defaults:
                return None
            else:
                continue
            if isinstance(value, str):
                value = self._take_number(name, value, path, context, where)
                if value is None:
                    state.failed.add(name)
                    return None
            if value is not None:  # null: the default (one take, the first)
                values[name] = (value, path)
        takes, _ = values.get("takes", (1, ()))
        pick, pick_path = values.get("pick", (1, ()))
        if pick > takes:
            count = "1 take" if takes == 1 else f"{takes} takes"
            self.report.error(
                self.doc.locate(pick_path),
                f"pick: {pick} is not one of the shot's {count}; pick a take from 1 to "
                f"{takes}, or raise takes{where.suffix(pick_path, False)}",
            )
            state.failed.add("pick")
            return None
        return takes, pick

    def _take_number(
        self, name: str, raw: str, path: PathKey, context: dict[str, Any], where: Where
    ) -> int | None:
        """A templated `takes` or `pick`, rendered and checked (reported when broken)."""
        text = self.fields.text(raw, context, path, f"{name}: ", where)
        if text is None:
            return None
        value = parse_scalar(text.strip())
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_TAKES:
            return value
        what = "a number of takes" if name == "takes" else "a take number"
        self.report.error(
            self.doc.locate(path),
            f"{name}: the template gave {text!r}, which is not {what} from 1 to {MAX_TAKES}"
            f"{where.suffix(path, True)}",
        )
        return None

    def _id(
        self, shot: ShotSpec, context: dict[str, Any], shot_path: PathKey, label: str
    ) -> str | None:
        """The instance's rendered id, noted in the graph (an invalid one is reported);
        None when it could not be rendered."""
        id_path: PathKey = (*shot_path, "id")
        shot_id = None
        if "id" not in self.aside.shots.get(shot_path, set()):
            where = Where(shot_path, None, label)
            shot_id = self.fields.text(shot.id, context, id_path, "id: ", where)
        if shot_id is None:
            self.graph.ids_unknown = True
            return None
        shot_id = shot_id.strip()
        if ID_PATTERN.match(shot_id):
            self.graph.add_id(shot_id, shot_path, label)
        else:
            self.graph.known.setdefault(shot_id, None)
            self.report.error(
                self.doc.locate(id_path),
                f"id: {shot_id!r} is not a valid shot id; use 1 to 64 lowercase letters, "
                f"digits, '.', '_' or '-', starting with a letter or digit"
                f"{_id_hint(shot_id)}{Where(shot_path, shot_id, label).suffix(id_path, False)}",
            )
        return shot_id

    def _check(
        self,
        state: ShotState,
        shot_path: PathKey,
        shot_id: str | None,
        label: str,
        index: int,
        where: Where,
        takes: tuple[int, int] | None,
    ) -> Shot | None:
        problems = self.checks.check(state, shot_path, where)
        self.graph.note_frames(state, shot_id, label)
        if shot_id is not None:
            broken = "duration" in state.failed or any(
                p.param[:1] == ("duration",) for p in problems
            )
            duration = state.values.get("duration")
            self.graph.known.setdefault(
                shot_id, None if broken else 5 if duration is None else duration
            )
        if shot_id is None or state.failed or problems or takes is None:
            return None
        return self._build(state, shot_path, shot_id, label, index, takes)

    def _build(
        self,
        state: ShotState,
        shot_path: PathKey,
        shot_id: str,
        label: str,
        index: int,
        takes: tuple[int, int],
    ) -> Shot:
        values = state.values
        fields: dict[str, Any] = {
            k: v for k, v in values.items() if k not in MEDIA_ONE_FIELDS + MEDIA_LIST_FIELDS
        }
        for name in MEDIA_ONE_FIELDS:
            if name in values:
                fields[name] = values[name].media
        for name in MEDIA_LIST_FIELDS:
            if name in values:
                fields[name] = tuple(ref.media for ref in values[name])
        return Shot(
            id=shot_id,
            index=index,
            location=self.doc.locate(shot_path),
            instance=label,
            takes=takes[0],
            pick=takes[1],
            **fields,
        )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _id_hint(shot_id: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", shot_id.lower()).strip("-._")[:64]
    return f". Did you mean {slug!r}?" if slug and slug != shot_id else ""
