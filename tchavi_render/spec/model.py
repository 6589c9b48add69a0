"""The spec schema: frozen pydantic models that reject unknown keys (value types: fieldtypes)."""

from __future__ import annotations

import math
import re
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

from tchavi_render.api.models import ASPECT_RATIOS, MODELS, RESOLUTIONS
from tchavi_render.spec.fieldtypes import (
    NULL_SCHEMA,
    Assets,
    Duration,
    Flag,
    ForEach,
    ManyMedia,
    OneMedia,
    OptStr,
    Pick,
    Prompt,
    Seed,
    Takes,
    Vars,
    check_string,
    describe,
    enum_schema,
    media_list_schema,
    media_schema,
    one_of,
)

__all__ = [
    "BACKENDS",
    "CACHE_MODES",
    "CLAIM_POLICIES",
    "GENERATION_FIELDS",
    "MAX_MEDIA_URL_TTL",
    "SCHEMA_VERSION",
    "TAKE_FIELDS",
    "CacheSpec",
    "Defaults",
    "GenerationFields",
    "SequenceClip",
    "ShotSpec",
    "Spec",
    "json_schema",
    "parse_s3_url",
]

# These models check the shape of what was written (types, names, unknown keys). The value
# rules of generation fields (enums, ranges, cross-field rules) are applied after templating
# by the API's own `check_request`, so a storyboard meets exactly the service's rules. The
# JSON Schema also lists the enums and ranges, so an editor flags bad values as you type.

SCHEMA_VERSION = 1
BACKENDS: tuple[str, ...] = ("tchavi", "local")
CACHE_MODES: tuple[str, ...] = ("read-write", "read")
# auto: claims when the store honours conditional writes, else a warning and none;
# required: an apply that would write claims refuses a store that ignores them.
CLAIM_POLICIES: tuple[str, ...] = ("auto", "required")
# S3 refuses presigned URLs that live longer than a week.
MAX_MEDIA_URL_TTL = 7 * 24 * 3600
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


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


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class GenerationFields(_Frozen):
    """The generation parameters, named as the API names them; any may be a template.

    `null` unsets a field (the API default applies, not `defaults:`).
    """

    model: Annotated[OptStr, enum_schema(MODELS, "The video model.")] = None
    prompt: Prompt = None
    duration: Duration = None
    resolution: Annotated[
        OptStr, enum_schema(RESOLUTIONS, "Output resolution; sets the price.")
    ] = None
    aspect_ratio: Annotated[
        OptStr, enum_schema(ASPECT_RATIOS, 'Frame shape; quote it in YAML: "16:9".')
    ] = None
    generate_audio: Flag = None
    seed: Seed = None
    image_url: Annotated[OneMedia, media_schema("The first frame (image-to-video).")] = None
    last_frame_image_url: Annotated[OneMedia, media_schema("The last frame; needs image_url.")] = (
        None
    )
    reference_images: Annotated[
        ManyMedia,
        media_list_schema(
            "reference_images", "Images the prompt calls [Image1]..; not with image_url."
        ),
    ] = None
    reference_videos: Annotated[
        ManyMedia,
        media_list_schema(
            "reference_videos", "Videos the prompt calls [Video1]..; 15 s in all at most."
        ),
    ] = None
    reference_audios: Annotated[
        ManyMedia,
        media_list_schema(
            "reference_audios", "Audio the prompt calls [Audio1]..; needs an image too."
        ),
    ] = None


GENERATION_FIELDS: tuple[str, ...] = tuple(GenerationFields.model_fields)


class TakeFields(_Frozen):
    """How many versions of a shot to render and which one is kept: not sent to the API."""

    takes: Takes = None
    pick: Pick = None


TAKE_FIELDS: tuple[str, ...] = tuple(TakeFields.model_fields)


class Defaults(GenerationFields, TakeFields):
    """Generation fields applied to every shot that does not set them."""


class ShotSpec(GenerationFields, TakeFields):
    """One shot as written: generation fields plus its id, its vars and its for_each."""

    model_config = ConfigDict(title="Shot")

    id: Annotated[
        str,
        PlainValidator(check_string),
        WithJsonSchema(
            {
                "type": "string",
                "minLength": 1,
                "description": "Unique shot id, [a-z0-9][a-z0-9._-]{0,63} once rendered; "
                "a template for for_each shots.",
            }
        ),
    ]
    vars: Vars = Field(default_factory=dict, description="Template variables for this shot only.")
    for_each: ForEach = Field(
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
        PlainValidator(check_string),
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
    parse_s3_url(check_string(v))
    return str(v)


def _endpoint_url(v: Any) -> str | None:
    if v is None:
        return None
    if not check_string(v).startswith(("http://", "https://")):
        raise ValueError(f"must be an http(s) URL like https://s3.example.com, got {v!r}")
    return str(v)


def _ttl(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_MEDIA_URL_TTL:
        return v
    raise ValueError(f"must be a number of seconds from 1 to {MAX_MEDIA_URL_TTL} (a week)")


MAX_CLAIM_TTL = 3600


def _claim_ttl(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and 5 <= v <= MAX_CLAIM_TTL:
        return v
    raise ValueError(f"must be a number of seconds from 5 to {MAX_CLAIM_TTL}")


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
                    NULL_SCHEMA,
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
                "anyOf": [{"type": "string", "pattern": "^https?://"}, NULL_SCHEMA],
                "description": "An S3-compatible store's URL (MinIO, R2, ...); default: AWS.",
            }
        ),
    ] = None
    mode: Annotated[
        str,
        PlainValidator(one_of(CACHE_MODES)),
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
    claim_ttl: Annotated[
        int,
        PlainValidator(_claim_ttl),
        WithJsonSchema(
            {
                "type": "integer",
                "minimum": 5,
                "maximum": MAX_CLAIM_TTL,
                "default": 60,
                "description": "Seconds a render claim lives without renewal before another "
                "machine takes it over (its holder is presumed gone).",
            }
        ),
    ] = 60
    claims: Annotated[
        str,
        PlainValidator(one_of(CLAIM_POLICIES)),
        WithJsonSchema(
            {
                "enum": list(CLAIM_POLICIES),
                "default": "auto",
                "description": "auto: render claims when the store honours conditional writes, "
                "else a warning and none; required: refuse to apply (before any submit) on a "
                "store that ignores them.",
            }
        ),
    ] = "auto"


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
        PlainValidator(one_of(BACKENDS)),
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
        PlainValidator(check_string),
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
    vars: Vars = Field(
        default_factory=dict,
        description="Template variables; --var-file and --var override them.",
    )
    assets: Assets = Field(
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
