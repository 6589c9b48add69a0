"""The sha256 of a file: the one place a file on disk is hashed (bytes hashed as they are
downloaded or copied are hashed where they stream)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["sha256_file"]


def sha256_file(path: Path) -> str:
    """The hex sha256 of the bytes of `path` (OSError when it cannot be read)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
