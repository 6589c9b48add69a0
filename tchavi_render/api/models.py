"""The wire JSON of the Tchavi API: generation parameters (with every documented rule) and jobs.

The request model is strict (it is what we send, and what the emulator accepts); the
response models are tolerant (they parse whatever shape the real service's docs allow).
The spec layer reuses `check_request` so that a storyboard is held to exactly the rules the
service applies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tchavi_render.text import did_you_mean

__all__ = [
    "ASPECT_RATIOS",
    "FRAME_SIZES",
    "GENERATION_FIELDS",
    "MAX_REFERENCE",
    "MEDIA_SLOTS",
    "MODELS",
    "REFERENCE_TOKEN",
    "RESOLUTIONS",
    "GenerationParams",
    "Job",
    "JobCredits",
    "JobError",
    "JobList",
    "JobOutput",
    "MediaKind",
    "MediaSlot",
    "ParamProblem",
    "check_request",
]

MODELS: tuple[str, ...] = ("seedance-2", "kling-v3")
RESOLUTIONS: tuple[str, ...] = ("480p", "720p")
ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16", "1:1", "4:3", "3:4", "adaptive")
MediaKind = Literal["image", "video", "audio"]
MAX_REFERENCE_VIDEO_SECONDS = 15.0
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1

# Frame size (width, height) by resolution and aspect ratio, as the service renders them.
FRAME_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "480p": {
        "16:9": (854, 480),
        "9:16": (480, 854),
        "1:1": (480, 480),
        "4:3": (640, 480),
        "3:4": (480, 640),
    },
    "720p": {
        "16:9": (1280, 720),
        "9:16": (720, 1280),
        "1:1": (720, 720),
        "4:3": (960, 720),
        "3:4": (720, 960),
    },
}

_TOKEN_RE = re.compile(r"\[(Image|Video|Audio)(\d+)\]")


def _one_of(value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"must be one of {listed}, got {value!r}.{did_you_mean(value, choices)}")
    return value


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value


@dataclass(frozen=True)
class MediaSlot:
    """Marks a GenerationParams field that takes media: what kind, and for a reference list,
    how many items it allows and the token prompts use for them ([Image1], [Video2]...)."""

    kind: MediaKind
    most: int | None = None  # None: one item (a URL), else a list of at most this many
    token: str | None = None

    @property
    def many(self) -> bool:
        return self.most is not None


class GenerationParams(BaseModel):
    """The body of POST /videos/generations, validated with every documented rule."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    model: str
    prompt: str
    duration: int = 5
    resolution: str = "480p"
    aspect_ratio: str = "16:9"
    generate_audio: bool = True
    seed: int | None = None
    image_url: Annotated[str | None, MediaSlot("image")] = None
    last_frame_image_url: Annotated[str | None, MediaSlot("image")] = None
    reference_images: Annotated[tuple[str, ...] | None, MediaSlot("image", 9, "Image")] = Field(
        default=None
    )
    reference_videos: Annotated[tuple[str, ...] | None, MediaSlot("video", 3, "Video")] = Field(
        default=None
    )
    reference_audios: Annotated[tuple[str, ...] | None, MediaSlot("audio", 3, "Audio")] = Field(
        default=None
    )

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        return _one_of(v, MODELS)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v

    @field_validator("duration")
    @classmethod
    def _duration(cls, v: int) -> int:
        if v != -1 and not 1 <= v <= 15:
            raise ValueError(f"must be 1..15 seconds, or -1 for auto; got {v}")
        return v

    @field_validator("resolution")
    @classmethod
    def _resolution(cls, v: str) -> str:
        return _one_of(v, RESOLUTIONS)

    @field_validator("aspect_ratio")
    @classmethod
    def _aspect_ratio(cls, v: str) -> str:
        return _one_of(v, ASPECT_RATIOS)

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int | None) -> int | None:
        if v is not None and not SEED_MIN <= v <= SEED_MAX:
            raise ValueError("must fit in a signed 64-bit integer")
        return v

    @field_validator("image_url", "last_frame_image_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else _check_url(v)

    @field_validator("reference_images", "reference_videos", "reference_audios", mode="before")
    @classmethod
    def _list_in(cls, v: Any) -> Any:
        # JSON arrays arrive as lists; the frozen model keeps tuples. An empty list is absent.
        if isinstance(v, list):
            v = tuple(v)
        if v == ():
            return None
        return v

    @field_validator("reference_images", "reference_videos", "reference_audios")
    @classmethod
    def _urls(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None:
            for url in v:
                _check_url(url)
        return v

    @model_validator(mode="after")
    def _cross_field_rules(self) -> GenerationParams:
        problems = _cross_field_problems(self)
        if problems:
            raise ValueError(problems[0].message_with_param())
        return self

    def to_request(self) -> dict[str, Any]:
        """The JSON body to send: defaults written out, absent optional fields left out."""
        body: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            body[name] = list(value) if isinstance(value, tuple) else value
        return body

    def reference_count(self, field: str) -> int:
        value = getattr(self, field)
        return 0 if value is None else len(value)


# Everything below is read off GenerationParams, the one list of generation fields.
GENERATION_FIELDS: tuple[str, ...] = tuple(GenerationParams.model_fields)  # request order
MEDIA_SLOTS: dict[str, MediaSlot] = {
    name: slot
    for name, info in GenerationParams.model_fields.items()
    for slot in info.metadata
    if isinstance(slot, MediaSlot)
}
MAX_REFERENCE: dict[str, int] = {
    name: slot.most for name, slot in MEDIA_SLOTS.items() if slot.most is not None
}
REFERENCE_TOKEN: dict[str, str] = {
    name: slot.token for name, slot in MEDIA_SLOTS.items() if slot.token is not None
}


@dataclass(frozen=True)
class ParamProblem:
    """One broken rule: the parameter path (e.g. ("reference_images", 2)) and the message."""

    param: tuple[str | int, ...]
    message: str

    @property
    def param_name(self) -> str:
        return ".".join(str(p) for p in self.param) if self.param else "request"

    def message_with_param(self) -> str:
        return f"{self.param_name}: {self.message}"


def _cross_field_problems(p: GenerationParams) -> list[ParamProblem]:
    out: list[ParamProblem] = []
    if p.last_frame_image_url is not None and p.image_url is None:
        out.append(
            ParamProblem(
                ("last_frame_image_url",),
                "requires image_url (the first frame); add image_url or drop the last frame",
            )
        )
    if p.reference_images is not None and p.image_url is not None:
        out.append(
            ParamProblem(
                ("reference_images",),
                "cannot be used together with image_url; use one or the other",
            )
        )
    for name, most in MAX_REFERENCE.items():
        count = p.reference_count(name)
        if count > most:
            out.append(ParamProblem((name,), f"at most {most} allowed, got {count}"))
    if p.reference_audios is not None and p.image_url is None and p.reference_images is None:
        out.append(
            ParamProblem(
                ("reference_audios",),
                "requires image_url or reference_images; add an image reference",
            )
        )
    for field, word in REFERENCE_TOKEN.items():
        have = p.reference_count(field)
        for match in _TOKEN_RE.finditer(p.prompt):
            if match.group(1) == word and not 1 <= int(match.group(2)) <= have:
                out.append(
                    ParamProblem(
                        ("prompt",),
                        f"mentions {match.group(0)} but the request has {have} {field}",
                    )
                )
    return out


def _problem_from_error(err: Mapping[str, Any]) -> ParamProblem:
    loc = tuple(err.get("loc", ()))
    ctx = err.get("ctx") or {}
    raw = ctx.get("error")
    kind = err.get("type", "")
    if raw is not None:
        message = str(raw)
    elif kind == "extra_forbidden":
        name = str(loc[-1]) if loc else "?"
        known = list(GenerationParams.model_fields)
        message = f"unknown field {name!r}.{did_you_mean(name, known)}"
    elif kind == "missing":
        message = "is required"
    elif kind.startswith(("int_", "bool_", "string_", "tuple_", "list_")):
        expected = kind.split("_", 1)[0]
        expected = {"int": "an integer", "bool": "true or false", "string": "a string"}.get(
            expected, "a list"
        )
        got = err.get("input")
        message = f"must be {expected}, got {got!r}"
    else:
        message = str(err.get("msg", "is invalid"))
    return ParamProblem(loc, message)


def check_request(data: Mapping[str, Any]) -> tuple[GenerationParams | None, list[ParamProblem]]:
    """Validate a request body: every problem at once (field rules, then cross-field rules)."""
    try:
        params = GenerationParams.model_validate(dict(data))
    except ValidationError as exc:
        problems = [_problem_from_error(e) for e in exc.errors()]
        # A cross-field failure only reports its first rule; recompute them all.
        if len(problems) == 1 and problems[0].param == ():
            try:
                fields = GenerationParams.model_construct(**dict(data))
                problems = _cross_field_problems(fields)
            except Exception:
                pass
        return None, _strip_value_error(problems)
    return params, []


def _strip_value_error(problems: list[ParamProblem]) -> list[ParamProblem]:
    out = []
    for p in problems:
        message = p.message
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        out.append(ParamProblem(p.param, message))
    return out


# --- responses: tolerant of every shape the docs allow --------------------------------------

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed"})


class _Tolerant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class JobOutput(_Tolerant):
    video_url: str
    duration: float | None = None
    resolution: str | None = None
    file_size_mb: float | None = None
    url_expires_at: str | None = None


class JobError(_Tolerant):
    code: str = "upstream_error"
    message: str = ""


class JobCredits(_Tolerant):
    credits_used: int = 0
    credits_refunded: int = 0


class Job(_Tolerant):
    """A job record. Accepts the bare record or one wrapped as {"job": {...}}."""

    id: str
    object: str = "job"
    status: str
    model: str | None = None
    created_at: str | None = None
    output: JobOutput | None = None
    error: JobError | None = None
    tchavi: JobCredits = Field(default_factory=JobCredits)

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "job" in data and isinstance(data["job"], Mapping):
            data = data["job"]
        if isinstance(data, Mapping) and data.get("tchavi") is None:
            data = {**data, "tchavi": {}}
        return data

    @property
    def done(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def credits_used(self) -> int:
        return self.tchavi.credits_used

    @property
    def credits_refunded(self) -> int:
        return self.tchavi.credits_refunded


class JobList(_Tolerant):
    object: str = "list"
    data: tuple[Job, ...] = ()
    limit: int | None = None
    offset: int | None = None
    has_more: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shapes(cls, data: Any) -> Any:
        # Also accept a bare array, or {"jobs": [...]}.
        if isinstance(data, list):
            return {"data": data}
        if isinstance(data, Mapping) and "data" not in data and "jobs" in data:
            return {**data, "data": data["jobs"]}
        return data
