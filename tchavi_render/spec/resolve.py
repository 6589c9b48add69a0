"""Spec -> shots: variables, defaults, for_each, templates, ids and media, every problem at once."""

from __future__ import annotations

import contextlib
import difflib
import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, assert_never, get_args
from urllib.parse import quote, urlsplit

from pydantic import ValidationError

from tchavi_render.api.models import (
    MAX_REFERENCE_VIDEO_SECONDS,
    MEDIA_SLOTS,
    REFERENCE_TOKEN,
    GenerationParams,
    ParamProblem,
    check_request,
    did_you_mean,
)
from tchavi_render.errors import Problem, SpecError
from tchavi_render.media import MediaIndex
from tchavi_render.spec.fieldtypes import FrameRef, describe, var_name_problem
from tchavi_render.spec.locate import problem_at, template_problem, validation_problems
from tchavi_render.spec.model import GENERATION_FIELDS, Defaults, ShotSpec, Spec
from tchavi_render.spec.sequence import resolve_sequence
from tchavi_render.spec.shot import (
    MEDIA_LIST_FIELDS,
    MEDIA_ONE_FIELDS,
    SCALAR_FIELDS,
    LoadedSpec,
    LocalMedia,
    Location,
    Media,
    MediaKind,
    Shot,
    ShotFrame,
    UrlMedia,
)
from tchavi_render.spec.template import FieldTemplates, RefError, TemplateFailure, is_template
from tchavi_render.spec.yamlpos import MAX_BYTES, PathKey, YamlDoc, parse_yaml
from tchavi_render.spec.yamlscalar import parse_scalar

__all__ = ["ID_PATTERN", "MAX_SHOTS", "load_spec"]

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MAX_SHOTS = 100_000
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def _scalars(kind: type) -> tuple[str, ...]:
    """The generation fields the API model types as `kind` (or `kind | None`)."""
    fields = GenerationParams.model_fields
    return tuple(
        name
        for name in SCALAR_FIELDS
        if kind in (get_args(fields[name].annotation) or (fields[name].annotation,))
    )


# the prompt is rendered apart: it waits for the shot's references (ref())
_TEXT_FIELDS = tuple(name for name in _scalars(str) if name != "prompt")
_INT_FIELDS = _scalars(int)
_BOOL_FIELDS = _scalars(bool)
_FIELD_KIND: dict[str, MediaKind] = {name: slot.kind for name, slot in MEDIA_SLOTS.items()}
_ARTICLE = {"image": "an image", "video": "a video", "audio": "an audio file"}


def load_spec(
    path: Path,
    *,
    variables: Mapping[str, str] | None = None,
    var_files: Sequence[Path] = (),
    media: MediaIndex | None = None,
    template_cache: Path | None = None,
) -> LoadedSpec:
    """Load, template and check a spec; raise SpecError listing every problem found.

    `variables` are `--var key=value` pairs, `var_files` the `--var-file` paths (later
    ones win). `media` remembers probed files across runs; its store, if any, is saved
    before returning (that is the only write a load makes, with `template_cache`, a
    directory where compiled templates are kept for the next load).
    """
    index = media if media is not None else MediaIndex()
    try:
        loader = _Loader(Path(path), dict(variables or {}), list(var_files), index, template_cache)
        return loader.load()
    finally:
        # The memo is a shortcut only: failing to persist it must not fail the load.
        with contextlib.suppress(OSError):
            index.save()


@dataclass
class _Asset:
    name: str
    written: str  # after templating
    media: Media | None  # None when it could not be resolved (already reported)
    used: bool = False


@dataclass(frozen=True)
class _Where:
    """Which shot a problem belongs to, for messages."""

    shot_path: PathKey
    shot_id: str | None
    instance: str  # "ratio='9:16'" or ""

    def suffix(self, path: PathKey, templated: bool) -> str:
        inside = path[: len(self.shot_path)] == self.shot_path
        if inside:
            return f" (for_each {self.instance})" if self.instance else ""
        if not templated:
            return ""  # the same value for every shot: one message is enough
        name = f"shot {self.shot_id!r}" if self.shot_id else f"shot #{self.shot_path[-1]}"
        return f" ({name}, for_each {self.instance})" if self.instance else f" ({name})"


@dataclass
class _Ref:
    """One item of a reference list: as written (after templating) and what it resolved to."""

    written: str
    media: Media | None
    path: PathKey


@dataclass
class _Aside:
    """What shape errors set aside, so that later checks neither blame it again nor miss
    the rest: field names (and the fields a misspelt key meant) of `defaults:` and of
    each shot by its path, and the original index of each sequence clip kept."""

    defaults: set[str] = field(default_factory=set)
    shots: dict[PathKey, set[str]] = field(default_factory=dict)
    clips: list[int] | None = None


@dataclass
class _ShotState:
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, PathKey] = field(default_factory=dict)
    templated: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    refs: dict[str, list[_Ref]] = field(default_factory=dict)


class _Loader:
    def __init__(
        self,
        path: Path,
        variables: dict[str, str],
        var_files: list[Path],
        media: MediaIndex,
        template_cache: Path | None = None,
    ) -> None:
        self.display = path
        self.absolute = path.absolute()
        self.project_dir = self.absolute.parent.resolve()
        self.variables = variables
        self.var_files = var_files
        self.media_index = media
        self.templates = FieldTemplates(self.project_dir, path.parent, template_cache)
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self._seen: set[tuple[str, Path | None, int | None, int | None, str]] = set()
        self.assets: dict[str, _Asset] = {}
        self._local_cache: dict[str, LocalMedia | str] = {}
        self._ids: list[tuple[str, PathKey, str]] = []  # (id, shot path, instance)
        # (shot id or None, frame, path, label) of every frame reference, broken shots' too
        self._frames: list[tuple[str | None, ShotFrame, PathKey, str]] = []
        # Every id the spec gives, shots with errors included, and its duration when known:
        # a shot with an error still exists for frames and the sequence.
        self._known: dict[str, int | None] = {}
        # Some shot's id could not be worked out: "no shot has id X" would be a guess.
        self._ids_unknown = False
        self._aside = _Aside()
        self.doc: YamlDoc
        self.file_order: list[Path] = [path]
        self._var_docs: list[YamlDoc] = []  # the --var-file documents, to locate their keys

    # -- reporting -------------------------------------------------------------------

    def _add(self, problem: Problem) -> None:
        key = (problem.severity, problem.file, problem.line, problem.column, problem.message)
        if key in self._seen:
            return
        self._seen.add(key)
        (self.warnings if problem.severity == "warning" else self.errors).append(problem)

    def error(self, location: Location, message: str) -> None:
        self._add(problem_at(location, message))

    def warn(self, location: Location, message: str) -> None:
        self._add(problem_at(location, message, "warning"))

    def _sorted(self, problems: list[Problem]) -> list[Problem]:
        rank = {f: i for i, f in enumerate(self.file_order)}

        def key(p: Problem) -> tuple[int, int, int]:
            if p.file is None:
                return (-1, 0, 0)
            return (rank.get(p.file, len(rank)), p.line or 0, p.column or 0)

        return sorted(problems, key=key)

    def _fail(self) -> SpecError:
        return SpecError(self._sorted(self.errors), self._sorted(self.warnings))

    # -- the steps -------------------------------------------------------------------

    def load(self) -> LoadedSpec:
        doc = self._read_yaml(self.display, "spec file", "create it, or pass the spec's path")
        if doc is None:
            raise self._fail()
        self.doc = doc
        layers = [self._read_var_file(p) for p in self.var_files]
        self._check_cli_vars()
        spec, shot_paths = self._validate(doc)
        if spec is None or any(p.file != self.display for p in self.errors):
            # No usable spec, or the variables are wrong: templating would only add noise.
            raise self._fail()
        global_vars: dict[str, Any] = dict(spec.vars)
        for layer in layers:
            global_vars.update(layer)
        global_vars.update(self.variables)
        output_dir = self._output_dir(spec, global_vars)
        self._read_assets(spec, global_vars)
        shots: list[Shot] = []
        total = 0
        for shot_spec, shot_path in zip(spec.shots, shot_paths, strict=True):
            if self._aside.shots.get(shot_path, set()) & {"vars", "for_each"}:
                # Without its variables the shot's templates cannot be rendered; checking
                # them would only blame what its shape error already explains.
                self._exists(shot_spec.id)
                continue
            shot_vars = {**global_vars, **shot_spec.vars}
            axes = self._for_each(shot_spec, shot_vars, shot_path)
            if axes is None:
                self._exists(shot_spec.id)
                continue
            count = math.prod(len(values) for _, values in axes)
            total += count
            if total > MAX_SHOTS:
                self.error(
                    self.doc.locate((*shot_path, "for_each")),
                    f"this shot makes {count} shots, past the limit of {MAX_SHOTS} "
                    "per spec; split the storyboard",
                )
                self._ids_unknown = True
                break
            shots.extend(
                self._expand(shot_spec, spec.defaults, shot_vars, axes, shot_path, len(shots))
            )
        self._check_ids()
        self._check_frames()
        clips = None
        if spec.sequence is not None:
            index = self._aside.clips or range(len(spec.sequence))
            clips = list(zip(index, spec.sequence, strict=True))
        sequence = resolve_sequence(
            clips, shots, self._known, self.doc, self.error, every_id_known=not self._ids_unknown
        )
        if self.errors:
            # Shots with errors may not have reached their media: "unused" would be a guess.
            raise self._fail()
        for asset in self.assets.values():
            if not asset.used:
                self.warn(
                    self.doc.locate(("assets", asset.name), key=True),
                    f"asset {asset.name!r} is never used; remove it or reference it in a shot",
                )
        if not spec.shots:
            self.warn(self.doc.locate(("shots",)), "the storyboard has no shots")
        self._warn_unused_vars()
        sources = [self.absolute]
        sources += [p.absolute() for p in self.var_files]
        sources += sorted(self.templates.loader.loaded)
        return LoadedSpec(
            path=self.absolute,
            project_dir=self.project_dir,
            backend=spec.backend,
            output_dir=output_dir or self.project_dir / "renders",
            shots=tuple(shots),
            warnings=tuple(self._sorted(self.warnings)),
            sources=tuple(dict.fromkeys(sources)),
            sequence=sequence,
            cache=spec.cache,
        )

    def _read_yaml(self, path: Path, what: str, fix: str) -> YamlDoc | None:
        try:
            if path.is_symlink() and not path.resolve().is_relative_to(self.project_dir):
                # The rule media and includes follow: a symlink must not lead out of the
                # project (a spec or var file linked to ~/.env would be read and quoted).
                self._add(
                    Problem(
                        f"the {what} is a symlink that leads outside the project directory "
                        "(the spec's folder); copy the file into the project, or pass its "
                        "own path",
                        path,
                    )
                )
                return None
            if not path.exists():
                self._add(Problem(f"{what} not found; {fix}", path))
                return None
            if not path.is_file():
                self._add(Problem(f"{what} is not a regular file; {fix}", path))
                return None
            with path.open("rb") as handle:
                data = handle.read(MAX_BYTES + 1)
        except (OSError, RuntimeError, ValueError) as exc:  # RuntimeError: a symlink loop
            self._add(Problem(f"cannot read the {what}: {_os_reason(exc)}", path))
            return None
        doc, problems = parse_yaml(data, path)
        for problem in problems:
            self._add(problem)
        return doc

    def _read_var_file(self, path: Path) -> dict[str, Any]:
        self.file_order.append(path)
        doc = self._read_yaml(path, "var file", "check the --var-file path")
        if doc is None or doc.value is None:
            return {}
        if not isinstance(doc.value, dict):
            self.error(
                doc.locate(()),
                f"a var file must be a mapping of variable names to values, "
                f"got {describe(doc.value)}",
            )
            return {}
        for name in doc.value:
            problem = var_name_problem(name)
            if problem:
                self.error(doc.locate((name,), key=True), problem)
        self._var_docs.append(doc)
        return dict(doc.value)

    def _check_cli_vars(self) -> None:
        for name, value in self.variables.items():
            problem = var_name_problem(name)
            if problem:
                self._add(Problem(f"--var {name}={value}: {problem}"))

    def _warn_unused_vars(self) -> None:
        """A --var or --var-file variable no template reads is most likely a typo: say so
        (a spec's own `vars:` may hold spares; what is given for one run should not)."""
        used = self.templates.names_used()
        known = sorted(used - {"ref"})
        for doc in self._var_docs:
            for name in doc.value:
                if name not in used and not var_name_problem(name):
                    self.warn(
                        doc.locate((name,), key=True),
                        f"variable {name!r} is not used by any template; "
                        f"remove it or use it{_hint(name, known)}",
                    )
        for name in self.variables:
            if name not in used and not var_name_problem(name):
                self._add(
                    Problem(
                        f"--var {name}: no template uses the variable {name!r}; "
                        f"check its name{_hint(name, known)}",
                        severity="warning",
                    )
                )

    def _validate(self, doc: YamlDoc) -> tuple[Spec | None, list[PathKey]]:
        """The valid part of the spec and each kept shot's path.

        Every shape error is reported; then the offending parts are set aside (a bad shot,
        a bad default, a bad variable...) so that the rest can still be checked and all
        the problems come out in one run.
        """
        raw = doc.value
        if not isinstance(raw, dict):
            got = "an empty file" if raw is None else describe(raw)
            self.error(
                doc.locate(()),
                f"a spec must be a mapping with 'version: 1' and 'shots:', got {got}",
            )
            return None, []
        try:
            spec = Spec.model_validate(raw)
        except ValidationError as exc:
            locs = []
            for loc, problem in validation_problems(exc, doc):
                self._add(problem)
                locs.append(loc)
            repaired = self._set_aside(raw, locs)
            if repaired is None:
                return None, []
            data, kept = repaired
            try:
                spec = Spec.model_validate(data)
            except ValidationError:
                return None, []
            return spec, [("shots", i) for i in kept]
        return spec, [("shots", i) for i in range(len(spec.shots))]

    def _set_aside(
        self, raw: dict[str, Any], locs: list[tuple[Any, ...]]
    ) -> tuple[dict[str, Any], list[int]] | None:
        """`raw` without the parts the errors at `locs` are about, and the shots kept.

        As little as possible is set aside: a bad field of a shot, not the shot, so its
        other fields are still checked and the shot still exists for frames and the
        sequence; a bad trim, not the sequence. What was set aside is kept in
        `self._aside` so that no later check blames it again.
        """
        data = dict(raw)
        nested: dict[str, set[str]] = {"defaults": set(), "vars": set(), "assets": set()}
        shot_fields: dict[int, set[str]] = {}
        clip_fields: dict[int, set[str]] = {}
        for loc in locs:
            head = loc[0] if loc else None
            index = loc[1] if len(loc) >= 2 and isinstance(loc[1], int) else None
            if head == "shots" and index is not None:
                # "" stands for the shot itself (not a mapping)
                shot_fields.setdefault(index, set()).add(str(loc[2]) if len(loc) > 2 else "")
            elif head == "sequence" and index is not None:
                clip_fields.setdefault(index, set()).add(str(loc[2]) if len(loc) > 2 else "")
            elif head in nested and len(loc) >= 2:
                nested[str(head)].add(str(loc[1]))
            elif head == "version":
                data["version"] = 1
            elif head == "shots" or head is None:
                return None  # no usable list of shots
            else:
                data.pop(str(head), None)  # a bad or unknown top-level key: its default
        for key, names in nested.items():
            if names and isinstance(data.get(key), dict):
                data[key] = {k: v for k, v in data[key].items() if k not in names}
        self._aside.defaults = _with_meant(nested["defaults"])
        shots = data.get("shots")
        if not isinstance(shots, tuple):
            return None
        repaired = list(shots)
        kept: list[int] = []
        for i, shot in enumerate(shots):
            names = shot_fields.get(i, set())
            if names and ("" in names or not isinstance(shot, dict)):
                self._ids_unknown = True  # not a mapping: nothing of it can be checked
                continue
            kept.append(i)
            if names:
                self._aside.shots[("shots", i)] = _with_meant(names)
                repaired[i] = {k: v for k, v in shot.items() if k not in names}
                if "id" in names:
                    repaired[i]["id"] = ""  # a stand-in: the other fields are still checked
        data["shots"] = tuple(repaired[i] for i in kept)
        clips = data.get("sequence")
        if clip_fields and isinstance(clips, tuple):
            kept_clips: list[Any] = []
            self._aside.clips = []
            for i, clip in enumerate(clips):
                names = clip_fields.get(i, set())
                if names & {"", "id"}:
                    continue  # no shot named: nothing left of the clip to check
                if names and isinstance(clip, dict):
                    clip = {k: v for k, v in clip.items() if k not in names}
                kept_clips.append(clip)
                self._aside.clips.append(i)
            data["sequence"] = tuple(kept_clips) or None
        return data, kept

    def _output_dir(self, spec: Spec, variables: Mapping[str, Any]) -> Path | None:
        path: PathKey = ("output_dir",)
        written = self._render_text(spec.output_dir, variables, path, "output_dir: ", None)
        if written is None:
            return None
        where = self.doc.locate(path)
        if not written:
            self.error(where, "output_dir: must not be empty")
            return None
        if PurePosixPath(written).is_absolute():
            self.error(
                where,
                f"output_dir: {written!r} is absolute; use a directory relative to the spec",
            )
            return None
        try:
            target = (self.project_dir / written).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            self.error(where, f"output_dir: {written!r}: {_os_reason(exc)}")
            return None
        if not target.is_relative_to(self.project_dir):
            self.error(
                where,
                f"output_dir: {written!r} is outside the project directory; "
                "keep renders next to the spec",
            )
            return None
        return target

    def _read_assets(self, spec: Spec, variables: Mapping[str, Any]) -> None:
        for name, value in spec.assets.items():
            path: PathKey = ("assets", name)
            written = self._render_text(value, variables, path, f"asset {name!r}: ", None)
            media = None
            if written is not None:
                media = self._resolve_target(written, path, f"asset {name!r}: ", "")
            self.assets[name] = _Asset(name, written or value, media)

    # -- shots -----------------------------------------------------------------------

    def _for_each(
        self, shot: ShotSpec, variables: Mapping[str, Any], shot_path: PathKey
    ) -> list[tuple[str, tuple[Any, ...]]] | None:
        if not shot.for_each:
            return []
        out: list[tuple[str, tuple[Any, ...]]] = []
        for name, values in shot.for_each.items():
            path: PathKey = (*shot_path, "for_each", name)
            if isinstance(values, str):
                try:
                    evaluated = self.templates.evaluate(values, variables)
                except TemplateFailure as failure:
                    self._add(template_problem(failure, self.doc, path, f"for_each {name}: ", ""))
                    return None
                if not isinstance(evaluated, list | tuple) or not evaluated:
                    self.error(
                        self.doc.locate(path),
                        f"for_each {name}: {values} must give a non-empty list, "
                        f"got {describe(evaluated)}",
                    )
                    return None
                values = tuple(evaluated)
            out.append((name, values))
        return out

    def _expand(
        self,
        shot: ShotSpec,
        defaults: Defaults,
        shot_vars: Mapping[str, Any],
        axes: list[tuple[str, tuple[Any, ...]]],
        shot_path: PathKey,
        first_index: int,
    ) -> list[Shot]:
        out: list[Shot] = []
        names = [name for name, _ in axes]
        for combination in itertools.product(*(values for _, values in axes)):
            instance = dict(zip(names, combination, strict=True))
            label = ", ".join(f"{k}={_short(v)}" for k, v in instance.items())
            context = {**shot_vars, **instance}
            resolved = self._shot(shot, defaults, context, shot_path, label, first_index + len(out))
            if resolved is not None:
                out.append(resolved)
        return out

    def _shot(
        self,
        shot: ShotSpec,
        defaults: Defaults,
        context: dict[str, Any],
        shot_path: PathKey,
        label: str,
        index: int,
    ) -> Shot | None:
        where = _Where(shot_path, None, label)
        context["ref"] = _no_ref
        id_path: PathKey = (*shot_path, "id")
        aside = self._aside.shots.get(shot_path, set())
        shot_id = None
        if "id" not in aside:
            shot_id = self._render_text(shot.id, context, id_path, "id: ", where)
        if shot_id is None:
            self._ids_unknown = True
        else:
            shot_id = shot_id.strip()
            where = _Where(shot_path, shot_id, label)
            if ID_PATTERN.match(shot_id):
                self._ids.append((shot_id, shot_path, label))
            else:
                self._known.setdefault(shot_id, None)
                self.error(
                    self.doc.locate(id_path),
                    f"id: {shot_id!r} is not a valid shot id; use 1 to 64 lowercase letters, "
                    f"digits, '.', '_' or '-', starting with a letter or digit"
                    f"{_id_hint(shot_id)}{where.suffix(id_path, False)}",
                )
                shot_id = None
        state = _ShotState()
        for name in GENERATION_FIELDS:
            if name in shot.model_fields_set:
                raw, path = getattr(shot, name), (*shot_path, name)
            elif name in aside:
                state.failed.add(name)  # the shot's value has its own error already
                continue
            elif name in defaults.model_fields_set:
                raw, path = getattr(defaults, name), ("defaults", name)
            else:
                if name in self._aside.defaults:
                    state.failed.add(name)
                continue
            state.sources[name] = path
            if raw is None or name == "prompt":
                continue  # null unsets the field; the prompt waits for the references
            if isinstance(raw, str) and is_template(raw):
                state.templated.add(name)
            self._field(name, raw, path, context, where, state)
        self._prompt(shot, defaults, context, where, state)
        return self._check(state, shot_path, shot_id, label, index, where)

    def _field(
        self,
        name: str,
        raw: Any,
        path: PathKey,
        context: dict[str, Any],
        where: _Where,
        state: _ShotState,
    ) -> None:
        templated = name in state.templated
        prefix = f"{name}: "
        if name in _TEXT_FIELDS:
            text = self._render_text(raw, context, path, prefix, where, templated)
            if text is None:
                state.failed.add(name)
            else:
                state.values[name] = text.strip()
        elif name in _INT_FIELDS or name in _BOOL_FIELDS:
            if not isinstance(raw, str):
                state.values[name] = raw
                return
            text = self._render_text(raw, context, path, prefix, where, templated)
            if text is None:
                state.failed.add(name)
                return
            value = parse_scalar(text.strip())
            if value is None:
                return  # rendered empty or null: the field is unset
            ok = (
                isinstance(value, bool)
                if name in _BOOL_FIELDS
                else isinstance(value, int) and not isinstance(value, bool)
            )
            if not ok:
                expected = "true or false" if name in _BOOL_FIELDS else "an integer"
                self.error(
                    self.doc.locate(path),
                    f"{name}: the template gave {text!r}, which is not {expected}"
                    f"{where.suffix(path, templated)}",
                )
                state.failed.add(name)
                return
            state.values[name] = value
        elif name in MEDIA_ONE_FIELDS:
            item = self._media_item(name, raw, path, context, where, templated)
            if item.media is None:
                state.failed.add(name)
            state.values[name] = item
        else:
            items = [
                self._media_item(name, value, (*path, i), context, where, templated)
                for i, value in enumerate(raw)
            ]
            if any(item.media is None for item in items):
                state.failed.add(name)
            state.refs[name] = items
            state.values[name] = items

    def _media_item(
        self,
        name: str,
        raw: str,
        path: PathKey,
        context: dict[str, Any],
        where: _Where,
        templated: bool,
    ) -> _Ref:
        if isinstance(raw, FrameRef):
            return self._frame_item(name, raw, path, context, where)
        written = self._render_text(raw, context, path, f"{name}: ", where, templated)
        if written is None:
            return _Ref(raw, None, path)
        written = written.strip()
        suffix = where.suffix(path, templated)
        media = self._resolve_target(written, path, f"{name}: ", suffix, use=True)
        expected = _FIELD_KIND[name]
        match media:
            case LocalMedia(kind=kind) if kind != expected:
                self.error(
                    self.doc.locate(path),
                    f"{name}: {written!r} is {_ARTICLE[kind]} ({media.relpath}), "
                    f"but {name} takes {_ARTICLE[expected]}{suffix}",
                )
                return _Ref(written, None, path)
            case LocalMedia() | UrlMedia() | ShotFrame() | None:
                pass  # a URL's kind is the service's to check; frames come from _frame_item
            case _:
                assert_never(media)
        return _Ref(written, media, path)

    def _frame_item(
        self, name: str, raw: FrameRef, path: PathKey, context: dict[str, Any], where: _Where
    ) -> _Ref:
        """`{shot: ID, frame: ...}`: a frame of another shot's output, an image."""
        templated = is_template(raw.shot)
        shot_path = (*path, "shot")
        target = self._render_text(raw.shot, context, shot_path, f"{name}: ", where, templated)
        if target is None:
            return _Ref(raw.shot, None, path)
        target = target.strip()
        if _FIELD_KIND[name] != "image":
            self.error(
                self.doc.locate(path),
                f"{name}: a frame of shot {target!r} is an image, but {name} takes "
                f"{_ARTICLE[_FIELD_KIND[name]]}{where.suffix(path, templated)}",
            )
            return _Ref(target, None, path)
        return _Ref(f"frame of {target}", ShotFrame(target, raw.frame), path)

    def _check_frames(self) -> None:
        """Frame references name existing shots, never form a cycle, and stay in time.

        A shot with errors still exists: only a time past its end needs its duration.
        """
        edges: dict[str, list[tuple[str, PathKey]]] = {}
        for shot_id, frame, path, label in self._frames:
            place = self.doc.locate(path)
            suffix = f" (for_each {label})" if label else ""
            if frame.shot not in self._known:
                if not self._ids_unknown:
                    hint = did_you_mean(frame.shot, list(self._known))
                    self.error(
                        place, f"no shot has id {frame.shot!r} to take a frame from.{hint}{suffix}"
                    )
                continue
            duration = self._known[frame.shot]
            timed = isinstance(frame.frame, float) and duration is not None and duration != -1
            if timed and duration is not None and float(frame.frame) > duration:
                self.error(
                    place,
                    f"frame {frame.frame:g} s is past the end of shot {frame.shot!r} "
                    f"({duration} s){suffix}",
                )
            if shot_id is not None:
                edges.setdefault(shot_id, []).append((frame.shot, path))
        for cycle, path in _cycles(edges):
            self.error(
                self.doc.locate(path),
                "shots continue each other in a cycle: "
                + " -> ".join(cycle)
                + "; a shot can only use frames of shots that do not depend on it",
            )

    def _prompt(
        self,
        shot: ShotSpec,
        defaults: Defaults,
        context: dict[str, Any],
        where: _Where,
        state: _ShotState,
    ) -> None:
        path = state.sources.get("prompt")
        if path is None:
            return
        raw = shot.prompt if path[0] == "shots" else defaults.prompt
        if raw is None:
            return
        templated = is_template(raw)
        if templated:
            state.templated.add("prompt")
        context["ref"] = _ref_function(state, self._lookup)
        text = self._render_text(raw, context, path, "prompt: ", where, templated)
        if text is None:
            state.failed.add("prompt")
            return
        state.values["prompt"] = text

    def _check(
        self,
        state: _ShotState,
        shot_path: PathKey,
        shot_id: str | None,
        label: str,
        index: int,
        where: _Where,
    ) -> Shot | None:
        problems = _request_problems(_probe_body(state))
        for problem in problems:
            name = str(problem.param[0]) if problem.param else None
            if name in state.failed:
                continue
            if name is not None and name in state.sources:
                path = (*state.sources[name], *problem.param[1:])
            else:
                path = shot_path
            templated = name in state.templated
            message = problem.message_with_param() if name else problem.message
            if problem.message == "is required" and name:
                message = f"{name}: is required; set it in the shot or under 'defaults:'"
            self.error(self.doc.locate(path), message + where.suffix(path, templated))
        self._check_video_length(state, where)
        prompt = state.values.get("prompt")
        if isinstance(prompt, str):
            self._unmentioned(state, prompt, where)
        self._note_frames(state, shot_id, label)
        if shot_id is not None:
            broken = "duration" in state.failed or any(
                p.param[:1] == ("duration",) for p in problems
            )
            duration = state.values.get("duration")
            self._known.setdefault(shot_id, None if broken else 5 if duration is None else duration)
        if shot_id is None or state.failed or problems:
            return None
        return self._build(state, shot_path, shot_id, label, index)

    def _note_frames(self, state: _ShotState, shot_id: str | None, label: str) -> None:
        """Keep the shot's frame references for _check_frames, whether it has errors or not."""
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

    def _exists(self, written_id: str) -> None:
        """A shot that cannot be checked still has its id, if the id is not a template."""
        if is_template(written_id) or not written_id.strip():
            self._ids_unknown = True
        else:
            self._known.setdefault(written_id.strip(), None)

    def _check_video_length(self, state: _ShotState, where: _Where) -> None:
        refs = state.refs.get("reference_videos", [])
        # URLs are measured by the service; only local videos are known here
        total = sum(_local_seconds(r.media) for r in refs)
        if total > MAX_REFERENCE_VIDEO_SECONDS + 1e-6:
            path = state.sources["reference_videos"]
            self.error(
                self.doc.locate(path),
                f"reference_videos: the local videos last {total:.1f} s in total; at most "
                f"{MAX_REFERENCE_VIDEO_SECONDS:g} s are allowed. Trim or drop a clip"
                f"{where.suffix(path, 'reference_videos' in state.templated)}",
            )
            state.failed.add("reference_videos")

    def _unmentioned(self, state: _ShotState, prompt: str, where: _Where) -> None:
        """Warn about each reference the prompt never mentions, and about one listed twice
        (once, at its second copy: `ref()` names the first, so a copy is never mentioned)."""
        for name in MEDIA_LIST_FIELDS:
            token = REFERENCE_TOKEN[name]
            refs = state.refs.get(name, [])
            copies: dict[Media, list[int]] = {}
            for i, ref in enumerate(refs):
                if ref.media is not None:
                    copies.setdefault(ref.media, []).append(i)
            for indexes in copies.values():
                first = refs[indexes[0]]
                templated = name in state.templated
                if not any(f"[{token}{i + 1}]" in prompt for i in indexes):
                    self.warn(
                        self.doc.locate(first.path),
                        f"{name}: {first.written!r} is never mentioned in the prompt; "
                        f"write {{{{ ref('{first.written}') }}}} where it matters"
                        f"{where.suffix(first.path, templated)}",
                    )
                if len(indexes) > 1:
                    second = refs[indexes[1]]
                    self.warn(
                        self.doc.locate(second.path),
                        f"{name}: {first.written!r} is listed "
                        f"{'twice' if len(indexes) == 2 else f'{len(indexes)} times'} "
                        f"({_items(indexes, refs)}); keep one"
                        f"{where.suffix(second.path, templated)}",
                    )

    def _build(
        self, state: _ShotState, shot_path: PathKey, shot_id: str, label: str, index: int
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
            **fields,
        )

    def _check_ids(self) -> None:
        first: dict[str, tuple[PathKey, str]] = {}
        for shot_id, path, instance in self._ids:
            if shot_id not in first:
                first[shot_id] = (path, instance)
                continue
            other_path, other_instance = first[shot_id]
            where = self.doc.locate((*path, "id"))
            if other_path == path:
                self.error(
                    where,
                    f"id: this for_each makes {shot_id!r} twice ({other_instance} and "
                    f"{instance}); the id must use every for_each variable, and their "
                    "values must differ",
                )
            else:
                there = self.doc.locate((*other_path, "id"))
                self.error(
                    where,
                    f"id: duplicate shot id {shot_id!r}, also used at {there}; ids must be unique"
                    + (f" (for_each {instance})" if instance else ""),
                )

    # -- templates and media -----------------------------------------------------------

    def _render_text(
        self,
        raw: str,
        context: Mapping[str, Any],
        path: PathKey,
        prefix: str,
        where: _Where | None,
        templated: bool = True,
    ) -> str | None:
        if not is_template(raw):
            return raw
        try:
            return self.templates.render(raw, context)
        except TemplateFailure as failure:
            suffix = where.suffix(path, templated) if where is not None else ""
            self._add(template_problem(failure, self.doc, path, prefix, suffix))
            return None

    def _lookup(self, name: str) -> Media | None:
        """What `name` (an asset name, URL or local path) stands for; None if nothing."""
        if name in self.assets:
            return self._asset_media(name)
        if _SCHEME.match(name):
            return UrlMedia(name)
        found = self._local(name)
        return None if isinstance(found, str) else found

    def _asset_media(self, name: str) -> Media | None:
        asset = self.assets.get(name)
        if asset is None:
            return None
        asset.used = True
        return asset.media

    def _resolve_target(
        self, value: str, path: PathKey, prefix: str, suffix: str, *, use: bool = False
    ) -> Media | None:
        """An asset name (when `use`), an http(s) URL, or a local file inside the project."""
        where = self.doc.locate(path)
        if use and value in self.assets:
            return self._asset_media(value)
        scheme = _SCHEME.match(value)
        if scheme and len(scheme.group(1)) > 1:
            parts = urlsplit(value)
            if parts.scheme.lower() in ("http", "https") and parts.netloc:
                return UrlMedia(value)
            if parts.scheme.lower() in ("http", "https"):
                self.error(where, f"{prefix}{value!r} is not a valid URL (no host){suffix}")
            else:
                self.error(
                    where,
                    f"{prefix}{value!r}: {parts.scheme}: URLs are not allowed; use an "
                    f"http(s) URL, an asset name or a path relative to the spec{suffix}",
                )
            return None
        found = self._local(value)
        if isinstance(found, str):
            hint = ""
            if use and "/" not in value and "." not in value:
                close = did_you_mean(value, list(self.assets))
                hint = f" No asset is named {value!r} either.{close}"
            self.error(where, f"{prefix}{value!r}: {found}.{hint}{suffix}")
            return None
        return found

    def _local(self, value: str) -> LocalMedia | str:
        """The local file `value` names, or why it cannot be used."""
        cached = self._local_cache.get(value)
        if cached is None:
            cached = self._probe_local(value)
            self._local_cache[value] = cached
        return cached

    def _probe_local(self, value: str) -> LocalMedia | str:
        if not value:
            return "is empty"
        pure = PurePosixPath(value)
        if pure.is_absolute() or value.startswith("~") or re.match(r"^[A-Za-z]:[\\/]", value):
            return "absolute paths are not allowed; use a path relative to the spec's directory"
        try:
            target = (self.project_dir / value).resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            return f"cannot be resolved: {_os_reason(exc)}"
        if not target.is_relative_to(self.project_dir):
            if ".." in pure.parts:
                return "is outside the project directory ('..'); keep media inside it"
            return (
                "leads outside the project directory through a symlink; "
                "copy the file into the project instead"
            )
        try:
            if not target.exists():
                return "no such file in the project directory"
            if not target.is_file():
                return "is not a regular file"
            info = self.media_index.info(target)
        except (OSError, ValueError) as exc:
            return f"cannot be read: {_os_reason(exc)}"
        if info.kind is None:
            return "is not an image, video or audio file that can be decoded"
        return LocalMedia(
            path=target,
            relpath=target.relative_to(self.project_dir).as_posix(),
            sha256=info.sha256,
            size=info.size,
            kind=info.kind,
            duration=info.duration,
            width=info.width,
            height=info.height,
        )


# -- helpers ---------------------------------------------------------------------------


def _with_meant(names: set[str]) -> set[str]:
    """`names` plus the generation field each misspelt one meant (`promt` -> `prompt`), so
    that a typo is reported once, not again as a missing field."""
    out = set(names)
    for name in names:
        out.update(difflib.get_close_matches(name, GENERATION_FIELDS, n=1, cutoff=0.6))
    return out


def _hint(name: str, known: list[str]) -> str:
    """'. Did you mean 'x'?' (as a sentence after a clause), or ''."""
    close = did_you_mean(name, known).strip()
    return f". {close}" if close else ""


def _items(indexes: list[int], refs: list[_Ref]) -> str:
    """'items 1 and 3', with the spellings when they differ ('logo' and 'logo.png')."""
    numbers = [str(i + 1) for i in indexes]
    text = "items " + ", ".join(numbers[:-1]) + " and " + numbers[-1]
    spellings = list(dict.fromkeys(refs[i].written for i in indexes))
    if len(spellings) > 1:
        text += ", written " + " and ".join(repr(w) for w in spellings)
    return text


def _no_ref(name: object = None) -> str:
    raise RefError("ref() only works in a prompt, where it names one of the shot's references")


def _ref_function(
    state: _ShotState, lookup: Callable[[str], Media | None]
) -> Callable[[object], str]:
    """ref(name) -> the [ImageN]/[VideoN]/[AudioN] token of `name` in this shot's lists."""

    def ref(name: object) -> str:
        if not isinstance(name, str):
            raise RefError(f"ref() takes an asset name or a path, got {describe(name)}")
        for field_name in MEDIA_LIST_FIELDS:
            for i, item in enumerate(state.refs.get(field_name, [])):
                if item.written == name:
                    return f"[{REFERENCE_TOKEN[field_name]}{i + 1}]"
        target = lookup(name)
        if target is not None:
            for field_name in MEDIA_LIST_FIELDS:
                for i, item in enumerate(state.refs.get(field_name, [])):
                    if item.media == target:
                        return f"[{REFERENCE_TOKEN[field_name]}{i + 1}]"
        listed = [item.written for f in MEDIA_LIST_FIELDS for item in state.refs.get(f, [])]
        have = (
            f"this shot references {', '.join(map(repr, listed))}"
            if listed
            else ("this shot has no reference_images, reference_videos or reference_audios")
        )
        first = state.values.get("image_url")
        if isinstance(first, _Ref) and first.written == name:
            have = f"{name!r} is the first frame (image_url), which prompts cannot mention"
        raise RefError(
            f"ref({name!r}): {name!r} is not among this shot's references ({have}); "
            "add it to reference_images, reference_videos or reference_audios"
        )

    return ref


_PLACEHOLDERS: dict[str, Any] = {
    "model": "seedance-2",
    "prompt": "-",
    "duration": 5,
    "resolution": "480p",
    "aspect_ratio": "16:9",
    "generate_audio": True,
    "image_url": "https://placeholder.invalid/",
    "last_frame_image_url": "https://placeholder.invalid/",
}


def _request_problems(body: dict[str, Any]) -> list[ParamProblem]:
    """Every API rule `body` breaks. check_request reports the cross-field rules only once
    every field is valid, so a second pass puts valid stand-ins in the invalid fields."""
    _, first = check_request(body)
    if not first:
        return []
    fixed = dict(body)
    for problem in first:
        if problem.param:
            name = str(problem.param[0])
            if name in _PLACEHOLDERS:
                fixed[name] = _PLACEHOLDERS[name]
            elif name == "seed":
                fixed.pop(name, None)
    _, second = check_request(fixed)
    return list(dict.fromkeys([*first, *second]))


def _probe_body(state: _ShotState) -> dict[str, Any]:
    """The request body check_request sees: media as stand-in URLs, failed fields as
    placeholders (their own errors are already reported)."""
    body: dict[str, Any] = {}
    for name, value in state.values.items():
        if name in MEDIA_ONE_FIELDS:
            body[name] = _probe_url(value)
        elif name in MEDIA_LIST_FIELDS:
            body[name] = tuple(_probe_url(item) for item in value)
        else:
            body[name] = value
    for name in state.failed:
        if name not in body and name in _PLACEHOLDERS:
            body[name] = _PLACEHOLDERS[name]
    return body


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


def _probe_url(ref: _Ref) -> str:
    match ref.media:
        case ShotFrame():
            return "https://frame.invalid/" + quote(ref.media.shot)
        case UrlMedia():
            return ref.media.url
        case LocalMedia():
            return "https://local.invalid/" + quote(ref.media.relpath)
        case None:
            return "https://unresolved.invalid/"
        case _:
            assert_never(ref.media)


def _local_seconds(media: Media | None) -> float:
    """How long a local video reference lasts; 0 for anything else."""
    match media:
        case LocalMedia(kind="video", duration=seconds):
            return seconds or 0.0
        case LocalMedia() | UrlMedia() | ShotFrame() | None:
            return 0.0
        case _:
            assert_never(media)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _id_hint(shot_id: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", shot_id.lower()).strip("-._")[:64]
    return f". Did you mean {slug!r}?" if slug and slug != shot_id else ""


def _os_reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
