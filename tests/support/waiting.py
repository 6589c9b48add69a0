"""Waiting for something another thread or process does, with a deadline that fails loudly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float, what: str, *, interval: float = 0.02
) -> T:
    """Call `condition` until it returns something truthy, and return that.

    Raises AssertionError naming `what` once `timeout` seconds pass first: a wait that runs
    out must fail the test where it waited, not let it carry on and fail somewhere else.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(interval)
