"""Rendering a shot's fields: text, numbers, flags, media items, frames, and the prompt's ref()."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, assert_never, get_args

from tchavi_render.api.models import MEDIA_SLOTS, REFERENCE_TOKEN, GenerationParams
from tchavi_render.spec.fieldtypes import FrameRef, describe
from tchavi_render.spec.locate import template_problem
from tchavi_render.spec.model import Defaults, ShotSpec
from tchavi_render.spec.reporter import Reporter
from tchavi_render.spec.shot import (
    MEDIA_LIST_FIELDS,
    MEDIA_ONE_FIELDS,
    SCALAR_FIELDS,
    LocalMedia,
    Media,
    MediaKind,
    ShotFrame,
    UrlMedia,
)
from tchavi_render.spec.targets import MediaTargets
from tchavi_render.spec.template import FieldTemplates, RefError, TemplateFailure, is_template
from tchavi_render.spec.yamlpos import PathKey, YamlDoc
from tchavi_render.spec.yamlscalar import parse_scalar

__all__ = ["Fields", "Ref", "ShotState", "Where", "no_ref"]


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


@dataclass(frozen=True)
class Where:
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
class Ref:
    """One item of a reference list: as written (after templating) and what it resolved to."""

    written: str
    media: Media | None
    path: PathKey


@dataclass
class ShotState:
    """One shot instance's fields as they are rendered: values, where each came from, which
    were templates, which failed (already reported), and its reference lists."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, PathKey] = field(default_factory=dict)
    templated: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    refs: dict[str, list[Ref]] = field(default_factory=dict)


class Fields:
    """Renders templated values for one load, reporting each failure at its field."""

    def __init__(
        self, templates: FieldTemplates, targets: MediaTargets, doc: YamlDoc, report: Reporter
    ) -> None:
        self.templates = templates
        self.targets = targets
        self.doc = doc
        self.report = report

    def text(
        self,
        raw: str,
        context: Mapping[str, Any],
        path: PathKey,
        prefix: str,
        where: Where | None,
        templated: bool = True,
    ) -> str | None:
        """`raw` rendered, or None when its template failed (reported)."""
        if not is_template(raw):
            return raw
        try:
            return self.templates.render(raw, context)
        except TemplateFailure as failure:
            suffix = where.suffix(path, templated) if where is not None else ""
            self.report.add(template_problem(failure, self.doc, path, prefix, suffix))
            return None

    def field(
        self,
        name: str,
        raw: Any,
        path: PathKey,
        context: dict[str, Any],
        where: Where,
        state: ShotState,
    ) -> None:
        """Render the generation field `name` (not the prompt) into `state`."""
        templated = name in state.templated
        prefix = f"{name}: "
        if name in _TEXT_FIELDS:
            text = self.text(raw, context, path, prefix, where, templated)
            if text is None:
                state.failed.add(name)
            else:
                state.values[name] = text.strip()
        elif name in _INT_FIELDS or name in _BOOL_FIELDS:
            if not isinstance(raw, str):
                state.values[name] = raw
                return
            text = self.text(raw, context, path, prefix, where, templated)
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
                self.report.error(
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

    def prompt(
        self,
        shot: ShotSpec,
        defaults: Defaults,
        context: dict[str, Any],
        where: Where,
        state: ShotState,
    ) -> None:
        """Render the prompt last, with a ref() that names the shot's references."""
        path = state.sources.get("prompt")
        if path is None:
            return
        raw = shot.prompt if path[0] == "shots" else defaults.prompt
        if raw is None:
            return
        templated = is_template(raw)
        if templated:
            state.templated.add("prompt")
        context["ref"] = _ref_function(state, self.targets.lookup)
        text = self.text(raw, context, path, "prompt: ", where, templated)
        if text is None:
            state.failed.add("prompt")
            return
        state.values["prompt"] = text

    def _media_item(
        self,
        name: str,
        raw: str,
        path: PathKey,
        context: dict[str, Any],
        where: Where,
        templated: bool,
    ) -> Ref:
        if isinstance(raw, FrameRef):
            return self._frame_item(name, raw, path, context, where)
        written = self.text(raw, context, path, f"{name}: ", where, templated)
        if written is None:
            return Ref(raw, None, path)
        written = written.strip()
        suffix = where.suffix(path, templated)
        media = self.targets.resolve(written, path, f"{name}: ", suffix, use=True)
        expected = _FIELD_KIND[name]
        match media:
            case LocalMedia(kind=kind) if kind != expected:
                self.report.error(
                    self.doc.locate(path),
                    f"{name}: {written!r} is {_ARTICLE[kind]} ({media.relpath}), "
                    f"but {name} takes {_ARTICLE[expected]}{suffix}",
                )
                return Ref(written, None, path)
            case LocalMedia() | UrlMedia() | ShotFrame() | None:
                pass  # a URL's kind is the service's to check; frames come from _frame_item
            case _:
                assert_never(media)
        return Ref(written, media, path)

    def _frame_item(
        self, name: str, raw: FrameRef, path: PathKey, context: dict[str, Any], where: Where
    ) -> Ref:
        """`{shot: ID, frame: ...}`: a frame of another shot's output, an image."""
        templated = is_template(raw.shot)
        shot_path = (*path, "shot")
        target = self.text(raw.shot, context, shot_path, f"{name}: ", where, templated)
        if target is None:
            return Ref(raw.shot, None, path)
        target = target.strip()
        if _FIELD_KIND[name] != "image":
            self.report.error(
                self.doc.locate(path),
                f"{name}: a frame of shot {target!r} is an image, but {name} takes "
                f"{_ARTICLE[_FIELD_KIND[name]]}{where.suffix(path, templated)}",
            )
            return Ref(target, None, path)
        return Ref(f"frame of {target}", ShotFrame(target, raw.frame), path)


def no_ref(name: object = None) -> str:
    """ref() outside a prompt."""
    raise RefError("ref() only works in a prompt, where it names one of the shot's references")


def _ref_function(
    state: ShotState, lookup: Callable[[str], Media | None]
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
        if isinstance(first, Ref) and first.written == name:
            have = f"{name!r} is the first frame (image_url), which prompts cannot mention"
        raise RefError(
            f"ref({name!r}): {name!r} is not among this shot's references ({have}); "
            "add it to reference_images, reference_videos or reference_audios"
        )

    return ref
