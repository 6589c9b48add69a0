"""Which service and which account: the base URL and API key as configured, and the account's
fingerprint (a keyed digest of the key, never the key). Imports nothing heavy: plan uses it."""

from __future__ import annotations

import hashlib
import hmac
import os

__all__ = ["DEFAULT_BASE_URL", "account_fingerprint", "api_key_from_env", "configured_base_url"]

DEFAULT_BASE_URL = "https://tchavi.com/api/v1"
# The fingerprint is an HMAC under this label, so that it is useless as a plain hash of the
# key (nobody can test a candidate key against a journal line without knowing the scheme) and
# the same on every machine (a team compares fingerprints across machines).
_LABEL = b"tchavi-render account fingerprint v1"


def api_key_from_env() -> str:
    """TCHAVI_API_KEY, stripped; "" when it is not set."""
    return os.environ.get("TCHAVI_API_KEY", "").strip()


def configured_base_url(base_url: str | None = None) -> str:
    """The API base URL: `base_url` (a flag), else TCHAVI_BASE_URL, else the real service."""
    url = (base_url or os.environ.get("TCHAVI_BASE_URL") or DEFAULT_BASE_URL).strip()
    return url.rstrip("/")


def account_fingerprint(api_key: str) -> str:
    """`acct_` and 24 hex digits standing for the account of `api_key` in journals and logs."""
    digest = hmac.new(_LABEL, api_key.strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return f"acct_{digest[:24]}"
