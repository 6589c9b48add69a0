"""The whole spec schema in one module: frozen pydantic models that reject unknown keys."""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema

from tchavi_render.api.models import (
    ASPECT_RATIOS,
    MAX_REFERENCE,
    MODELS,
    RESOLUTIONS,
    SEED_MAX,
    SEED_MIN,
    did_you_mean,
)
from tchavi_render.spec.template import MAX_TEXT

__all__ = [
    "BACKENDS",
    "CACHE_MODES",
    "GENERATION_FIELDS",
    "MAX_MEDIA_URL_TTL",
    "RESERVED_NAMES",
    "SCHEMA_VERSION",
    "CacheSpec",
    "Defaults",
    "GenerationFields",
    "SequenceClip",
    "ShotSpec",
    "Spec",
    "describe",
    "is_template",
    "json_schema",
    "parse_s3_url",
    "var_name_problem",
]

# These models check the shape of what was written (types, names, unknown keys). The value
# rules of generation fields (enums, ranges, cross-field rules) are applied after templating
# by the API's own `check_request`, so a storyboard meets exactly the service's rules. The
# JSON Schema also lists the enums and ranges, so an editor flags bad values as you type.

SCHEMA_VERSION = 1
BACKENDS: tuple[str, ...] = ("tchavi", "local")
CACHE_MODES: tuple[str, ...] = ("read-write", "read")
# S3 refuses presigned URLs that live longer than a week.
MAX_MEDIA_URL_TTL = 7 * 24 * 3600
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ASSET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# Names Jinja reads as something else, and the one function templates are given.
RESERVED_NAMES = frozenset(
    {"true", "false", "none", "True", "False", "None", "loop", "self", "caller"}
    | {"varargs", "kwargs", "ref", "and", "or", "not", "in", "is", "if", "else"}
    | set(keyword.kwlist)
)


def is_template(value: str) -> bool:
    """True when the string holds Jinja syntax and must be rendered."""
    return "{{" in value or "{%" in value or "{#" in value


def describe(value: object) -> str:
    """A short, YAML-flavoured rendering of a value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, tuple | list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def var_name_problem(name: str) -> str | None:
    """Why `name` cannot be a template variable, or None when it can."""
    if not _VAR_NAME.match(name):
        return (
            f"{name!r} is not a valid variable name; use letters, digits and _ "
            "(not starting with a digit)"
        )
    if name in RESERVED_NAMES:
        return f"{name!r} is a reserved name in templates; choose another"
    return None


_TEMPLATE: dict[str, Any] = {
    "type": "string",
    "pattern": r"\{\{|\{%|\{#",
    "description": "A Jinja template; its rendered text must be a valid value.",
}
_NULL: dict[str, Any] = {"type": "null"}
_MEDIA_NAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "description": "An asset name, a path relative to the spec, or an http(s) URL.",
}
_FRAME_REF: dict[str, Any] = {
    "type": "object",
    "description": "A frame of another shot's rendered video (continuity).",
    "properties": {
        "shot": {"type": "string", "minLength": 1, "description": "The upstream shot's id."},
        "frame": {
            "anyOf": [{"enum": ["first", "last"]}, {"type": "number", "minimum": 0}],
            "default": "last",
            "description": "first, last, or a time in seconds.",
        },
    },
    "required": ["shot"],
    "additionalProperties": False,
}
_MEDIA_ITEM: dict[str, Any] = {"anyOf": [_MEDIA_NAME, _FRAME_REF]}


@dataclass(frozen=True)
class FrameRef:
    """`{shot: ID, frame: first|last|SECONDS}` as written: a frame of another shot's output."""

    shot: str
    frame: str | float = "last"


def _frame_ref(v: Mapping[str, Any]) -> FrameRef:
    unknown = sorted(set(v) - {"shot", "frame"})
    if unknown:
        raise ValueError(
            f"unknown key {unknown[0]!r} in a frame reference; "
            "write {shot: ID, frame: first|last|SECONDS}"
        )
    shot = v.get("shot")
    if not isinstance(shot, str) or not shot.strip():
        raise ValueError("a frame reference needs 'shot': the id of the shot to take it from")
    frame = v.get("frame", "last")
    if isinstance(frame, bool) or not (
        frame in ("first", "last") or (isinstance(frame, int | float) and frame >= 0)
    ):
        raise ValueError(
            f"frame: must be first, last, or a time in seconds (>= 0), got {describe(frame)}"
        )
    return FrameRef(shot.strip(), float(frame) if isinstance(frame, int | float) else frame)


def _media_entry(v: Any) -> str | FrameRef:
    if isinstance(v, Mapping):
        return _frame_ref(v)
    return _string(v)


def _string(v: Any) -> str:
    if isinstance(v, str):
        if len(v) > MAX_TEXT:
            # The same bound as a rendered template: no field of a request is that long.
            raise ValueError(f"is {len(v):,} characters long; at most {MAX_TEXT:,} are allowed")
        return v
    hint = "; quote it" if isinstance(v, int | float) and not isinstance(v, bool) else ""
    raise ValueError(f"must be a string, got {describe(v)}{hint}")


def _optional_string(v: Any) -> str | None:
    return None if v is None else _string(v)


# YAML 1.1 booleans: editors and our loader read them as text (YAML 1.2), PyYAML did not.
_YAML11_BOOLS = {
    **dict.fromkeys(("yes", "on", "y"), "true"),
    **dict.fromkeys(("no", "off", "n"), "false"),
}
_INTEGER_TEXT = re.compile(r"^\s*[-+]?[0-9]+\s*$")


def _typed(kind: type, name: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, str):
            if is_template(v):
                return v
            raise ValueError(f"must be {name} or a template, got {v!r}; {_text_hint(v, kind)}")
        if isinstance(v, kind) and (kind is bool or not isinstance(v, bool)):
            return v
        if isinstance(v, float) and not math.isfinite(v):
            # 1e400 reads as infinity: say what was written, not "inf".
            raise ValueError(f"must be {name}, got {describe(v)}, which is out of range")
        raise ValueError(f"must be {name}, got {describe(v)}")

    return check


def _text_hint(v: str, kind: type) -> str:
    """What to write instead of the text `v` where a number or a boolean is expected."""
    meant = _YAML11_BOOLS.get(v.strip().lower()) if kind is bool else None
    if meant is not None:
        return f"write {meant} (YAML reads yes, no, on and off as text)"
    unquoted = v.strip() in ("true", "false") if kind is bool else _INTEGER_TEXT.match(v)
    if unquoted:
        return "write it without quotes, or compute it with {{ ... }}"
    expected = "true or false" if kind is bool else "a whole number"
    return f"write {expected}, or compute it with {{{{ ... }}}}"


def _optional_media(v: Any) -> str | FrameRef | None:
    return None if v is None else _media_entry(v)


def _media_list(v: Any) -> tuple[str | FrameRef, ...] | None:
    if v is None:
        return None
    if isinstance(v, str):
        raise ValueError(f"must be a list, got {v!r}; write [{v}]")
    if not isinstance(v, tuple):
        raise ValueError(f"must be a list of asset names, paths or URLs, got {describe(v)}")
    items: list[str | FrameRef] = []
    for i, item in enumerate(v):
        if isinstance(item, Mapping):
            try:
                items.append(_frame_ref(item))
            except ValueError as exc:
                raise ValueError(f"item {i + 1}: {exc}") from None
            continue
        if not isinstance(item, str) or not item:
            raise ValueError(
                f"item {i + 1} must be an asset name, path or URL, got {describe(item)}"
            )
        items.append(item)
    return tuple(items)


def _var_name(v: str) -> str:
    problem = var_name_problem(v)
    if problem:
        raise ValueError(problem)
    return v


def _asset_name(v: str) -> str:
    if not _ASSET_NAME.match(v):
        raise ValueError(
            f"{v!r} is not a valid asset name; use letters, digits, _ and - "
            "(no dots or slashes, so that a name is never mistaken for a path)"
        )
    return v


def _for_each_values(v: Any) -> tuple[Any, ...] | str:
    if isinstance(v, str):
        stripped = v.strip()
        if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
            return stripped
        raise ValueError(
            f"must be a list of values or one expression like '{{{{ langs }}}}', got {v!r}"
        )
    if not isinstance(v, tuple):
        raise ValueError(f"must be a list of values, got {describe(v)}")
    if not v:
        raise ValueError("must list at least one value")
    return v


def _non_empty(v: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    if v is not None and not v:
        raise ValueError("must name at least one variable and its values")
    return v


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if isinstance(v, str) and v in choices:
            return v
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"must be one of {listed}, got {describe(v)}.{did_you_mean(v, choices)}")

    return check


def _version(v: Any) -> int:
    if v == SCHEMA_VERSION and isinstance(v, int) and not isinstance(v, bool):
        return SCHEMA_VERSION
    raise ValueError(
        f"must be {SCHEMA_VERSION}, got {describe(v)}; "
        f"this tchavi-render reads version {SCHEMA_VERSION} specs"
    )


def _clip(v: Any) -> Any:
    # A bare id is short for {id: ...}; anything else but a mapping gets one clear message.
    if isinstance(v, str):
        return {"id": v}
    if isinstance(v, dict):
        return v
    raise ValueError(f"must be a shot id or {{id: ..., trim: [start, end]}}, got {describe(v)}")


def _seconds(v: Any) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    raise ValueError(f"must be [start, end] in seconds; {describe(v)} is not a number")


def _trim(v: Any) -> tuple[float, float] | None:
    if v is None:
        return None
    if not isinstance(v, tuple) or len(v) != 2:
        raise ValueError(f"must be [start, end] in seconds, got {describe(v)}")
    start, end = _seconds(v[0]), _seconds(v[1])
    if start < 0:
        raise ValueError(f"starts at {start:g} s; the start cannot be negative")
    if end <= start:
        raise ValueError(f"ends at {end:g} s, not after its start ({start:g} s)")
    return start, end


def _clips(v: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
    if v is not None and not v:
        raise ValueError("must list at least one shot; remove it to export every shot in order")
    return v


def _schema(*options: dict[str, Any], description: str) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": list(options), "description": description})


def _enum(choices: tuple[str, ...], description: str) -> WithJsonSchema:
    return _schema({"enum": list(choices)}, _TEMPLATE, _NULL, description=description)


def _media_one(description: str) -> WithJsonSchema:
    return _schema(_MEDIA_ITEM, _NULL, description=description)


def _media_many(field: str, description: str) -> WithJsonSchema:
    array = {"type": "array", "items": _MEDIA_ITEM, "maxItems": MAX_REFERENCE[field]}
    return _schema(array, _NULL, description=description)


VarName = Annotated[str, AfterValidator(_var_name)]
AssetName = Annotated[str, AfterValidator(_asset_name)]
Str = Annotated[str, PlainValidator(_string)]
_VAR_NAMES: dict[str, Any] = {"pattern": _VAR_NAME.pattern}
OptStr = Annotated[str | None, PlainValidator(_optional_string)]
OneMedia = Annotated[str | FrameRef | None, PlainValidator(_optional_media)]
ManyMedia = Annotated[tuple[str | FrameRef, ...] | None, PlainValidator(_media_list)]

Prompt = Annotated[
    str | None,
    PlainValidator(_optional_string),
    _schema(
        {"type": "string", "minLength": 1},
        _NULL,
        description="What to render; a template. {{ ref('asset') }} writes [Image1] & co.",
    ),
]
Duration = Annotated[
    int | str | None,
    PlainValidator(_typed(int, "an integer")),
    _schema(
        {"type": "integer", "minimum": 1, "maximum": 15},
        {"const": -1},
        _TEMPLATE,
        _NULL,
        description="Seconds of video, 1..15, or -1 for auto (billed as 10 s).",
    ),
]
Seed = Annotated[
    int | str | None,
    PlainValidator(_typed(int, "an integer")),
    _schema(
        {"type": "integer", "minimum": SEED_MIN, "maximum": SEED_MAX},
        _TEMPLATE,
        _NULL,
        description="The same request with the same seed gives the same video.",
    ),
]
Flag = Annotated[
    bool | str | None,
    PlainValidator(_typed(bool, "true or false")),
    _schema(
        {"type": "boolean"},
        _TEMPLATE,
        _NULL,
        description="Generate a soundtrack (default true).",
    ),
]
ForEachValues = Annotated[
    tuple[Any, ...] | str,
    PlainValidator(_for_each_values),
    _schema(
        {"type": "array", "minItems": 1},
        {"type": "string", "pattern": r"^\s*\{\{.*\}\}\s*$"},
        description="The values this variable takes; one shot per combination.",
    ),
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class GenerationFields(_Frozen):
    """The generation parameters, named as the API names them; any may be a template.

    `null` unsets a field (the API default applies, not `defaults:`).
    """

    model: Annotated[OptStr, _enum(MODELS, "The video model.")] = None
    prompt: Prompt = None
    duration: Duration = None
    resolution: Annotated[OptStr, _enum(RESOLUTIONS, "Output resolution; sets the price.")] = None
    aspect_ratio: Annotated[
        OptStr, _enum(ASPECT_RATIOS, 'Frame shape; quote it in YAML: "16:9".')
    ] = None
    generate_audio: Flag = None
    seed: Seed = None
    image_url: Annotated[OneMedia, _media_one("The first frame (image-to-video).")] = None
    last_frame_image_url: Annotated[OneMedia, _media_one("The last frame; needs image_url.")] = None
    reference_images: Annotated[
        ManyMedia,
        _media_many("reference_images", "Images the prompt calls [Image1]..; not with image_url."),
    ] = None
    reference_videos: Annotated[
        ManyMedia,
        _media_many("reference_videos", "Videos the prompt calls [Video1]..; 15 s in all at most."),
    ] = None
    reference_audios: Annotated[
        ManyMedia,
        _media_many("reference_audios", "Audio the prompt calls [Audio1]..; needs an image too."),
    ] = None


GENERATION_FIELDS: tuple[str, ...] = tuple(GenerationFields.model_fields)


class Defaults(GenerationFields):
    """Generation fields applied to every shot that does not set them."""


class ShotSpec(GenerationFields):
    """One shot as written: generation fields plus its id, its vars and its for_each."""

    model_config = ConfigDict(title="Shot")

    id: Annotated[
        str,
        PlainValidator(_string),
        WithJsonSchema(
            {
                "type": "string",
                "minLength": 1,
                "description": "Unique shot id, [a-z0-9][a-z0-9._-]{0,63} once rendered; "
                "a template for for_each shots.",
            }
        ),
    ]
    vars: Annotated[
        dict[VarName, Any], WithJsonSchema({"type": "object", "propertyNames": _VAR_NAMES})
    ] = Field(default_factory=dict, description="Template variables for this shot only.")
    for_each: Annotated[dict[VarName, ForEachValues] | None, AfterValidator(_non_empty)] = Field(
        default=None,
        description="variable -> values; one shot per combination (cartesian product).",
    )


_TRIM: dict[str, Any] = {
    "type": "array",
    "prefixItems": [
        {"type": "number", "minimum": 0},
        {"type": "number", "exclusiveMinimum": 0},
    ],
    "minItems": 2,
    "maxItems": 2,
    "description": "[start, end] in seconds of the shot: the part the clip keeps.",
}


class SequenceClip(_Frozen):
    """One clip of the final cut: a shot id, optionally trimmed to [start, end] seconds."""

    id: Annotated[
        str,
        PlainValidator(_string),
        WithJsonSchema({"type": "string", "minLength": 1, "description": "A shot id."}),
    ]
    trim: Annotated[
        tuple[float, float] | None,
        PlainValidator(_trim),
        WithJsonSchema(_TRIM),
    ] = None


Clip = Annotated[
    SequenceClip,
    BeforeValidator(_clip),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "minLength": 1, "description": "A shot id, kept whole."},
                {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "minLength": 1},
                        "trim": _TRIM,
                    },
                    "required": ["id"],
                    "additionalProperties": False,
                },
            ],
            "description": "A shot id, or {id: ..., trim: [start, end]} in seconds.",
        }
    ),
]


def parse_s3_url(text: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix"); ValueError says what is wrong."""
    if not text.startswith("s3://"):
        raise ValueError(f"must be an s3:// URL like s3://my-bucket/renders, got {text!r}")
    bucket, _, prefix = text[len("s3://") :].partition("/")
    if not _BUCKET.match(bucket):
        raise ValueError(
            f"{bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, dots "
            "and hyphens); write s3://BUCKET/PREFIX"
        )
    parts = [p for p in prefix.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"the prefix of {text!r} must not contain . or .. parts")
    return bucket, "/".join(parts)


def _remote_url(v: Any) -> str | None:
    if v is None:
        return None
    parse_s3_url(_string(v))
    return str(v)


def _endpoint_url(v: Any) -> str | None:
    if v is None:
        return None
    if not _string(v).startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s) URL like https://s3.example.com, got {v!r}")
    return str(v)


def _ttl(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_MEDIA_URL_TTL:
        return v
    raise ValueError(f"must be a number of seconds from 1 to {MAX_MEDIA_URL_TTL} (a week)")


class CacheSpec(_Frozen):
    """The remote cache shared by a team and its CI: an S3 bucket (or any S3-compatible store).

    Credentials are never written here: boto3 finds them (environment, profile, role).
    """

    model_config = ConfigDict(title="Cache")

    remote: Annotated[
        str | None,
        PlainValidator(_remote_url),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "pattern": r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$"},
                    _NULL,
                ],
                "description": "s3://BUCKET/PREFIX: renders shared by every machine; "
                "TCHAVI_RENDER_REMOTE_CACHE overrides it (off disables it).",
            }
        ),
    ] = None
    endpoint_url: Annotated[
        str | None,
        PlainValidator(_endpoint_url),
        WithJsonSchema(
            {
                "anyOf": [{"type": "string", "pattern": "^https?://"}, _NULL],
                "description": "An S3-compatible store's URL (MinIO, R2, ...); default: AWS.",
            }
        ),
    ] = None
    mode: Annotated[
        str,
        PlainValidator(_choice(CACHE_MODES)),
        WithJsonSchema(
            {
                "enum": list(CACHE_MODES),
                "default": "read-write",
                "description": "read: use renders others made, never upload (untrusted "
                "pull-request builds); TCHAVI_RENDER_REMOTE_CACHE_MODE overrides it.",
            }
        ),
    ] = "read-write"
    media_url_ttl: Annotated[
        int,
        PlainValidator(_ttl),
        WithJsonSchema(
            {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_MEDIA_URL_TTL,
                "default": 3600,
                "description": "Seconds the presigned URLs of hosted local media stay valid.",
            }
        ),
    ] = 3600


class Spec(_Frozen):
    """A storyboard: shots rendered on the Tchavi video API."""

    model_config = ConfigDict(title="tchavi-render storyboard")

    version: Annotated[
        int,
        PlainValidator(_version),
        WithJsonSchema({"const": SCHEMA_VERSION, "description": "The spec format version."}),
    ]
    backend: Annotated[
        str,
        PlainValidator(_choice(BACKENDS)),
        WithJsonSchema(
            {
                "enum": list(BACKENDS),
                "default": "tchavi",
                "description": "tchavi: the real service; local: the embedded emulator.",
            }
        ),
    ] = "tchavi"
    output_dir: Annotated[
        str,
        PlainValidator(_string),
        WithJsonSchema(
            {
                "type": "string",
                "minLength": 1,
                "default": "renders",
                "description": "Where rendered videos go, relative to the spec; a template.",
            }
        ),
    ] = "renders"
    defaults: Defaults = Field(
        default_factory=Defaults, description="Generation fields applied to every shot."
    )
    vars: Annotated[
        dict[VarName, Any], WithJsonSchema({"type": "object", "propertyNames": _VAR_NAMES})
    ] = Field(
        default_factory=dict,
        description="Template variables; --var-file and --var override them.",
    )
    assets: Annotated[
        dict[AssetName, Str],
        WithJsonSchema(
            {
                "type": "object",
                "propertyNames": {"pattern": _ASSET_NAME.pattern},
                "additionalProperties": {"type": "string", "minLength": 1},
            }
        ),
    ] = Field(
        default_factory=dict,
        description="Named media: a path relative to the spec, or an http(s) URL.",
    )
    cache: CacheSpec | None = Field(
        default=None, description="A remote cache shared by a team and its CI (S3)."
    )
    shots: tuple[ShotSpec, ...] = Field(description="The shots, in storyboard order.")
    sequence: Annotated[tuple[Clip, ...] | None, AfterValidator(_clips)] = Field(
        default=None,
        description="The final cut (export): shot ids in play order, each optionally "
        "trimmed; default: every shot in storyboard order.",
    )


class _SchemaGenerator(GenerateJsonSchema):
    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        out = super().generate(schema, mode=mode)
        return {"$schema": self.schema_dialect, **out}


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the spec format, as committed in schemas/tchavi-render.schema.json."""
    return Spec.model_json_schema(schema_generator=_SchemaGenerator)
