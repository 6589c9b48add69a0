"""Render records as the bucket stores them: the signed document, and the checks to trust one."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import asdict

from tchavi_render.engine.cache import CacheRecord
from tchavi_render.engine.keys import canonical_json
from tchavi_render.engine.remote.settings import ENV_SECRET

__all__ = ["RECORD_FORMAT", "SHA256_HEX", "parse_record", "record_document", "short_key"]

RECORD_FORMAT = "tchavi-render-record/1"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def _payload(record: CacheRecord) -> bytes:
    return canonical_json({"format": RECORD_FORMAT, "record": asdict(record)}).encode("utf-8")


def _signature(record: CacheRecord, secret: bytes) -> str:
    return "hmac-sha256:" + hmac.new(secret, _payload(record), hashlib.sha256).hexdigest()


def record_document(record: CacheRecord, secret: bytes | None) -> bytes:
    """A record as stored in the bucket: signed when a secret is given."""
    doc = {
        "format": RECORD_FORMAT,
        "record": asdict(record),
        "signature": None if secret is None else _signature(record, secret),
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")


def parse_record(data: bytes, key: str, secret: bytes | None) -> tuple[CacheRecord | None, str]:
    """The record in `data` if it can be trusted for `key`, else (None, why not)."""
    try:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != RECORD_FORMAT:
            return None, "not a tchavi-render record"
        raw = doc.get("record")
        if not isinstance(raw, dict):
            return None, "not a tchavi-render record"
        record = CacheRecord(**raw)
    except (ValueError, TypeError):
        return None, "not a readable tchavi-render record"
    if record.key != key:
        return None, f"it names another key ({short_key(str(record.key))})"
    if not (isinstance(record.sha256, str) and SHA256_HEX.match(record.sha256)):
        return None, "its sha256 is not a sha256"
    if not _well_typed(record):
        return None, "its fields do not have the types of a record"
    if secret is not None:
        signature = doc.get("signature")
        if not signature:
            return None, f"it is not signed, and {ENV_SECRET} is set"
        if not (
            isinstance(signature, str)
            and hmac.compare_digest(signature, _signature(record, secret))
        ):
            return None, "its signature does not match (written without this secret, or altered)"
    return record, ""


def _well_typed(record: CacheRecord) -> bool:
    def count(value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    return (
        all(isinstance(v, str) for v in (record.key, record.job_id, record.model))
        and all(count(v) for v in (record.bytes, record.credits_used, record.credits_refunded))
        and (record.duration is None or number(record.duration))
        and (record.resolution is None or isinstance(record.resolution, str))
        and number(record.created)
    )


def short_key(key: str) -> str:
    return key[:19] if key.startswith("sha256:") else key[:12]
