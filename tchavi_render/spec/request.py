"""Checking a rendered shot against the API's rules, and its references against its prompt."""

from __future__ import annotations

from typing import Any, assert_never
from urllib.parse import quote

from tchavi_render.api.models import (
    MAX_REFERENCE_VIDEO_SECONDS,
    REFERENCE_TOKEN,
    ParamProblem,
    check_request,
)
from tchavi_render.spec.fields import Ref, ShotState, Where
from tchavi_render.spec.reporter import Reporter
from tchavi_render.spec.shot import (
    MEDIA_LIST_FIELDS,
    MEDIA_ONE_FIELDS,
    LocalMedia,
    Media,
    ShotFrame,
    UrlMedia,
)
from tchavi_render.spec.yamlpos import PathKey, YamlDoc

__all__ = ["RequestChecks"]


class RequestChecks:
    """Reports, at the field that set it, each API rule a shot instance breaks."""

    def __init__(self, doc: YamlDoc, report: Reporter) -> None:
        self.doc = doc
        self.report = report

    def check(self, state: ShotState, shot_path: PathKey, where: Where) -> list[ParamProblem]:
        """Report what the API would refuse in `state`; return every rule it breaks (those
        of fields that already failed are not reported again)."""
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
            self.report.error(self.doc.locate(path), message + where.suffix(path, templated))
        self._check_video_length(state, where)
        prompt = state.values.get("prompt")
        if isinstance(prompt, str):
            self._unmentioned(state, prompt, where)
        return problems

    def _check_video_length(self, state: ShotState, where: Where) -> None:
        refs = state.refs.get("reference_videos", [])
        # URLs are measured by the service; only local videos are known here
        total = sum(_local_seconds(r.media) for r in refs)
        if total > MAX_REFERENCE_VIDEO_SECONDS + 1e-6:
            path = state.sources["reference_videos"]
            self.report.error(
                self.doc.locate(path),
                f"reference_videos: the local videos last {total:.1f} s in total; at most "
                f"{MAX_REFERENCE_VIDEO_SECONDS:g} s are allowed. Trim or drop a clip"
                f"{where.suffix(path, 'reference_videos' in state.templated)}",
            )
            state.failed.add("reference_videos")

    def _unmentioned(self, state: ShotState, prompt: str, where: Where) -> None:
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
                    self.report.warn(
                        self.doc.locate(first.path),
                        f"{name}: {first.written!r} is never mentioned in the prompt; "
                        f"write {{{{ ref('{first.written}') }}}} where it matters"
                        f"{where.suffix(first.path, templated)}",
                    )
                if len(indexes) > 1:
                    second = refs[indexes[1]]
                    self.report.warn(
                        self.doc.locate(second.path),
                        f"{name}: {first.written!r} is listed "
                        f"{'twice' if len(indexes) == 2 else f'{len(indexes)} times'} "
                        f"({_items(indexes, refs)}); keep one"
                        f"{where.suffix(second.path, templated)}",
                    )


def _items(indexes: list[int], refs: list[Ref]) -> str:
    """'items 1 and 3', with the spellings when they differ ('logo' and 'logo.png')."""
    numbers = [str(i + 1) for i in indexes]
    text = "items " + ", ".join(numbers[:-1]) + " and " + numbers[-1]
    spellings = list(dict.fromkeys(refs[i].written for i in indexes))
    if len(spellings) > 1:
        text += ", written " + " and ".join(repr(w) for w in spellings)
    return text


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


def _probe_body(state: ShotState) -> dict[str, Any]:
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


def _probe_url(ref: Ref) -> str:
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
